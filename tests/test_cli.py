"""`keras-noisewarm compare` end to end on tiny data, and its resumability."""

import json

import pytest

from keras_noisewarm import cli
from keras_noisewarm import datasets
from keras_noisewarm.experiments import compare

TINY = [
    "compare", "--train-size", "200", "--test-size", "100", "--epochs", "1",
    "--seeds", "2", "--depth", "3", "--width", "16", "--warmup-examples", "640",
]


def test_compare_writes_runs_report_and_diagrams_then_resumes(tmp_path, monkeypatch, capsys):
    if datasets.find_local_copy("cifar10-subset") is None:
        pytest.skip("no local CIFAR-10 copy, and this machine cannot download")
    arguments = TINY + ["--output", str(tmp_path)]
    assert cli.main(arguments) == 0

    printed = capsys.readouterr().out
    for _, title, _ in compare.METRICS:
        assert title in printed
    runs = sorted(path.name for path in (tmp_path / "runs").glob("*.json"))
    assert runs == [f"seed{s}_{arm}.json" for s in (0, 1) for arm in ("baseline", "warmup")]
    warmed = json.loads((tmp_path / "runs" / "seed0_warmup.json").read_text())
    assert 0.0 <= warmed["ece"] <= 1.0 and 0.0 <= warmed["ood_auroc"] <= 1.0
    assert warmed["noise_confidence_after"] < warmed["noise_confidence_before"]
    report = (tmp_path / "report.md").read_text()
    assert "Command: `keras-noisewarm compare --train-size 200" in report
    assert "| ECE (15 bins) |" in report
    for arm in ("baseline", "warmup"):
        assert (tmp_path / f"reliability_{arm}_seed0.png").stat().st_size > 10_000

    # A rerun finds every run finished: nothing is trained again.
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare, "run_one", must_not_run)
    assert cli.main(arguments) == 0
    assert (tmp_path / "report.md").read_text() == report


def test_compare_refuses_to_mix_runs_of_other_settings(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    other = compare.CompareConfig(epochs=1)
    (runs / "seed0_baseline.json").write_text(json.dumps({"config": other.run_key()}))
    with pytest.raises(ValueError, match="other settings"):
        compare.run_comparison(None, compare.CompareConfig(epochs=2), tmp_path, verbose=0)


def test_seeds_option_takes_a_count_or_a_list():
    parser = cli.build_parser()
    assert parser.parse_args(["compare", "--seeds", "3"]).seeds == (0, 1, 2)
    assert parser.parse_args(["compare", "--seeds", "4,7"]).seeds == (4, 7)
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--seeds", "0"])
