"""The warm-up budget measurement, end to end at tiny sizes."""

import dataclasses
import json
import re

import pytest
from datafiles import write_tiny_datasets

from paper import cli
from paper import warmup_budget


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    quick = {name: dataclasses.replace(setting, train_size=100, epochs=2, validation_size=40, test_size=40)
             for name, setting in warmup_budget.QUICK.items() if name in ("mlp", "fashion_cnn")}
    monkeypatch.setattr(warmup_budget, "QUICK", quick)
    monkeypatch.setattr(warmup_budget, "QUICK_SEEDS", (0, 1))
    return str(write_tiny_datasets(tmp_path / "data", num_train=400, num_test=100))


@pytest.mark.one_backend
def test_budget_quick_runs_every_length_chooses_on_validation_and_resumes(tmp_path, tiny, monkeypatch):
    arguments = ["reproduce", "budget", "--quick", "--quiet", "--output", str(tmp_path),
                 "--data-dir", tiny]
    monkeypatch.setattr(warmup_budget, "load_data", _tiny_loader(warmup_budget.load_data))
    assert cli.main(arguments) == 0
    section = (tmp_path / "sections" / "budget.md").read_text()
    assert re.search(r"^Chosen on validation[^*]*\*\*[\w.]+\*\*", section, re.MULTILINE), section
    for name in ("mlp", "fashion_cnn"):
        assert f"### {name}" in section
        folder = next(tmp_path.glob(f"runs/budget-v*-{name}-*"))
        runs = {path.stem: json.loads(path.read_text()) for path in folder.glob("seed*.json")}
        # Baseline, two lengths and the stopping rule, for two seeds.
        assert len(runs) == 2 * 4
        short, long = runs["seed0_lr0.0001_f0.1"], runs["seed0_lr0.0001_f1"]
        assert short["warmup_steps"] < long["warmup_steps"]
        assert short["warmup_seconds"] <= long["warmup_seconds"]
        assert set(short["validation"]) == {"accuracy", "ece", "nll", "brier"}
    assert (tmp_path / "figures" / warmup_budget.FIGURE).stat().st_size > 10_000

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(warmup_budget, "run_seed", must_not_train)
    assert cli.main(arguments) == 0


def _tiny_loader(load):
    def loader(setting, data_dir=None):
        # The tiny folder has too few images for the real validation offsets.
        (x, y), _, test = load(dataclasses.replace(setting, validation_size=0), data_dir)
        return (x, y), (x[:setting.validation_size], y[:setting.validation_size]), test
    return loader


def test_the_claim_line_counts_the_settings_where_ece_fell():
    def effect(wins, p_value):
        return {"wins": wins, "seeds": 5, "p_value": p_value, "ratio": 0.9, "accuracy_change": 0.01}

    test = {"a": {"v": effect(5, 0.0625)}, "b": {"v": effect(3, 0.6)}, "c": {"v": effect(0, 0.0625)}}
    line = warmup_budget.claim_line(test, "v")
    assert line.startswith("Paper's claim (") and "lower in 1 of 3 settings" in line
    assert "a lower (ECE ratio 0.90, 5/5" in line and "b no clear change" in line and "c higher" in line


def test_the_default_is_chosen_by_its_worst_responding_setting():
    def effect(reduction, wins, cost=0.1):
        return {"reduction": reduction, "wins": wins, "seeds": 5, "cost": cost}

    validation = {
        "a": {"short": effect(0.02, 5), "long": effect(0.05, 5, cost=0.9), "mid": effect(0.03, 5)},
        "b": {"short": effect(0.01, 4), "long": effect(0.02, 5), "mid": effect(0.02, 5, cost=0.2)},
        # No length better in every seed: it does not vote.
        "c": {"short": effect(0.03, 4), "long": effect(-0.01, 1), "mid": effect(0.0, 2)},
    }
    assert warmup_budget.responding_settings(validation) == ["a", "b"]
    chosen, shares = warmup_budget.choose_default(validation)
    # "long" keeps 100% and 100%; "mid" 60% and 100%; "short" 40% and 50%.
    assert chosen == "long"
    assert shares == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    # Equal shares (to two decimals) go to the cheaper variant.
    validation["a"]["mid"] = effect(0.0499, 5)
    assert warmup_budget.choose_default(validation)[0] == "mid"
    # Only fixed lengths up to max_fraction: shares are still of the best of all.
    lengths = {"lr0.001_f0.1": effect(0.01, 5), "lr0.001_f1": effect(0.04, 5), "stop_lr0.001": effect(0.05, 5)}
    limited = {"a": lengths, "b": dict(lengths)}
    assert warmup_budget.choose_default(limited, max_fraction=0.1) == (
        "lr0.001_f0.1", {"a": pytest.approx(0.2), "b": pytest.approx(0.2)})
    assert warmup_budget.choose_default(limited)[0] == "stop_lr0.001"
    for variants in validation.values():
        for name in variants:
            variants[name] = effect(0.01, 3)
    assert warmup_budget.choose_default(validation) == (None, {})
