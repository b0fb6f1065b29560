"""Paired runs around a hand-written training function."""

import json

import numpy as np

from keras_noisewarm import compare
from keras_noisewarm import paired_runs


def test_run_arms_pairs_every_seed_and_keeps_its_arrays(tmp_path, capsys):
    calls = []

    def run(seed, arm):
        calls.append((seed, arm))
        ece = 0.1 - 0.01 * seed - (0.02 if arm == "warmup" else 0.0)
        return {"seed": seed, "arm": arm, "ece": ece}, {"outputs": np.full(3, seed), "arm": np.array(arm)}

    runs = paired_runs.run_arms(run, (3, 1), output=tmp_path)
    assert calls == [(3, "baseline"), (3, "warmup"), (1, "baseline"), (1, "warmup")]
    assert [r["seed"] for r in runs["warmup"]] == [3, 1]
    assert json.loads((tmp_path / "runs.json").read_text()) == runs
    saved = np.load(tmp_path / "seed1_warmup.npz")
    np.testing.assert_array_equal(saved["outputs"], [1, 1, 1])
    assert str(saved["arm"]) == "warmup"
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == "run seed=3 arm=warmup ece=0.050000"

    rows = compare.comparison_rows(runs, metrics=(("ece", "ECE", True),))
    assert rows[0]["wins"] == 2
    (line,) = paired_runs.verdict_lines(rows)
    assert line.startswith("verdict ece: no clear difference (2/2 seeds better with warm-up, p = ")


def test_choose_on_validation_takes_the_epochs_before_the_warmup():
    seen = []

    def values(changes, arm):
        seen.append((arm, dict(changes)))
        if arm == "baseline":
            return [abs(changes["epochs"] - 5), 0.0, 9.0]
        return [changes["lr"] * changes["epochs"]]

    chosen, results = paired_runs.choose_on_validation(values, (1, 5, 9), {"lr": (3, 2)}, verbose=False)
    assert chosen == {"epochs": 5, "lr": 2}
    assert seen[3:] == [("warmup", {"epochs": 5, "lr": 3}), ("warmup", {"epochs": 5, "lr": 2})]
    assert results[json.dumps({"arm": "baseline", "epochs": 9})] == [4, 0.0, 9.0]
