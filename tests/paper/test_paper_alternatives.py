"""`python -m paper reproduce alternatives --quick`, end to end on tiny data."""

import dataclasses
import json

import keras
import numpy as np
import pytest
from datafiles import write_tiny_datasets

from keras_noisewarm import compare
from paper import alternatives
from paper import cli
from paper import models


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_tiny_datasets(tmp_path_factory.mktemp("data")))


@pytest.fixture
def tiny_quick_mode(monkeypatch):
    """`--quick` smaller still: the MLP alone, one seed, an "ensemble" of one.

    Every Keras model costs seconds of compiling whatever its size, so the
    test trains as few as cover every code path: the tuning of MC dropout's
    two candidates, and each method in both arms.
    """
    quick = alternatives.settings

    def tiny(context):
        return {name: dataclasses.replace(setting, train_size=64, test_size=48, ood_size=16,
                                          shift_size=8, holdout=(64, 96), batch_size=32,
                                          severities=(1, 5), ensemble_size=1)
                for name, setting in quick(context).items()}

    monkeypatch.setattr(alternatives, "settings", tiny)
    monkeypatch.setattr(alternatives, "QUICK_SEEDS", (0,))
    monkeypatch.setattr(alternatives, "ARCHITECTURES", ("mlp",))


@pytest.mark.one_backend
def test_quick_reproduction_writes_tables_figures_and_resumes(
        tmp_path, data_dir, tiny_quick_mode, capsys):
    arguments = ["reproduce", "alternatives", "--quick", "--output", str(tmp_path),
                 "--data-dir", data_dir, "--quiet"]
    assert cli.main(arguments) == 0
    section = (tmp_path / "sections" / "alternatives.md").read_text()
    for _, title in alternatives.METHODS:
        assert f"| {title} | no |" in section and f"| {title} | yes |" in section
    assert "Paper's claim" in section and "### Verdict" in section
    for name in (alternatives.SHIFT_FIGURE, alternatives.BOXPLOT_FIGURE,
                 alternatives.RISK_FIGURE):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    # The table's plain-training ECE is that of the stored test outputs.
    setting = alternatives.settings(_context(tmp_path, data_dir))["mlp"]
    folder = setting.folder(tmp_path / "runs", keras.backend.backend())
    stored = np.load(alternatives.outputs_path(folder, "plain", None, 0, "baseline"))
    labels = np.load(folder / "runs" / "plain" / "seed0_baseline.npz")["validation_labels"]
    ece = compare.measure(stored["test"], labels, num_bins=15, from_logits=True)["ece"]
    row = next(line for line in section.splitlines() if line.startswith("| plain training | no |"))
    assert row.split("|")[4].strip() == f"{ece:.4f}"
    # The training-time column comes from the side-by-side timing round.
    timings = json.loads((folder / alternatives.TIMING_FILE).read_text())
    assert all(len(seconds) == 1 and seconds[0] > 0 for seconds in timings["fit"].values())
    plain_fit, warmup = timings["fit"]["plain"][0], timings["warmup"][0]
    plain_rows = [line.split("|") for line in section.splitlines()
                  if line.startswith("| plain training |")][:2]  # the first table's
    assert [row[-3].strip() for row in plain_rows] == [
        "1.00x", f"{(plain_fit + warmup) / plain_fit:.2f}x"]
    assert f"the unit of the column: {plain_fit:.1f} s" in section
    choices = json.loads((folder / "choices.json").read_text())
    assert choices["mc_dropout"]["value"] in (0.1, 0.3)
    assert all(nll is not None for nll in choices["mc_dropout"]["nll"].values())
    # Training again trains nothing: every run and output is in the cache.
    before = {path: path.stat().st_mtime for path in (tmp_path / "runs").rglob("*.npz")}
    alternatives.train(_context(tmp_path, data_dir), "mlp")
    assert {path: path.stat().st_mtime for path in (tmp_path / "runs").rglob("*.npz")} == before


def _context(tmp_path, data_dir):
    from paper import context

    return context.Context(output=tmp_path, cache=tmp_path / "runs", quick=True,
                           data_dir=data_dir, verbose=0)


def test_mixup_batches_blend_pairs_and_repeat_under_the_same_seed():
    x = np.arange(10, dtype="float32").reshape(10, 1)
    y = keras.utils.to_categorical(np.arange(10) % 2, 2)
    batches = alternatives.MixupBatches(x, y, batch_size=4, alpha=0.4)
    assert len(batches) == 3
    np.random.seed(0)
    batches.on_epoch_begin()
    first = [batches[index] for index in range(3)]
    np.random.seed(0)
    batches.on_epoch_begin()
    again = [batches[index] for index in range(3)]
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # Every blend is lam * a + (1 - lam) * b of two examples of the batch,
    # the labels blended alike, and every example is used once per epoch.
    seen = []
    for index, (mixed, labels) in enumerate(first):
        members = batches.order[index * 4:(index + 1) * 4]
        seen += members.tolist()
        lam = batches.mixing[index]
        partners = members[batches.partners[index]]
        np.testing.assert_allclose(mixed[:, 0], lam * members + (1 - lam) * partners, rtol=1e-6)
        np.testing.assert_allclose(labels, lam * y[members] + (1 - lam) * y[partners], rtol=1e-6)
    assert sorted(seen) == list(range(10))


def test_mc_dropout_outputs_average_stochastic_passes():
    keras.utils.set_random_seed(0)
    model = models.build_mlp((6,), num_classes=3, depth=3, width=32, seed=0, dropout_rate=0.5)
    inputs = np.random.default_rng(0).normal(size=(20, 6)).astype("float32")
    one = model.predict(inputs, verbose=0)
    two = model.predict(inputs, verbose=0)
    assert not np.allclose(one, two)  # dropout stays on at inference
    mean = alternatives.mc_dropout_outputs(model, inputs, samples=20)
    probabilities = np.exp(mean)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    single = keras.ops.convert_to_numpy(keras.ops.softmax(one))
    # Averaging 20 passes moves the probabilities towards their mean: the
    # average is closer to another average than to one pass.
    again = np.exp(alternatives.mc_dropout_outputs(model, inputs, samples=20))
    assert np.abs(probabilities - again).mean() < np.abs(probabilities - single).mean()


def test_relative_costs_add_the_warmup_per_network_trained():
    timings = {"fit": {"plain": [9.0, 10.0, 30.0], "label_smoothing": [11.0, 12.0, 13.0],
                       "focal": [10.0] * 3, "mixup": [20.0] * 3, "mc_dropout": [15.0] * 3},
               "temperature": [0.5, 1.0, 1.5], "warmup": [4.0, 5.0, 6.0]}
    costs = alternatives.relative_costs(timings, ensemble_size=3)
    assert costs["plain"] == pytest.approx({"baseline": 1.0, "warmup": 1.5})
    assert costs["label_smoothing"] == pytest.approx({"baseline": 1.2, "warmup": 1.7})
    assert costs["mixup"]["baseline"] == pytest.approx(2.0)
    assert costs["temperature"] == pytest.approx({"baseline": 1.1, "warmup": 1.6})
    # Each of the three members is trained, and warmed up, on its own.
    assert costs["ensemble"] == pytest.approx({"baseline": 3.0, "warmup": 4.5})


def test_choices_at_a_grid_end_are_flagged():
    choice = {"name": "gamma", "value": 1.0, "nll": {"1": 1.8, "2": 1.9}}
    assert "weakest candidate" in alternatives.choice_text("focal", choice, (1.0, 2.0))
    choice = dict(choice, value=2.0)
    assert "strongest candidate" in alternatives.choice_text("focal", choice, (1.0, 2.0))
    middle = alternatives.choice_text("focal", choice, (1.0, 2.0, 3.0))
    assert "candidate" not in middle and "gamma = 2 (held-out NLL 1: 1.8000" in middle


def test_ensemble_members_and_outcomes():
    setting = alternatives.Setting("mlp", depth=3, width=8, ensemble_size=3)
    assert alternatives.member_seeds(2, setting) == (2, 102, 202)
    better = [{"ece": 0.1}] * 5
    worse = [{"ece": 0.2 + 0.01 * k} for k in range(5)]
    assert alternatives.outcome(worse, better, "ece") == "wins"
    assert alternatives.outcome(better, worse, "ece") == "loses"
    mixed = [{"ece": value} for value in (0.05, 0.3, 0.05, 0.3, 0.05)]
    assert alternatives.outcome(better, mixed, "ece") == "ties"
    # Fewer than five seeds never decide, even when they all agree.
    assert alternatives.outcome(worse[:2], better[:2], "ece") == "ties"
