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
    fits = [json.loads(path.read_text())["fit_seconds"]
            for path in (folder / "runs" / "plain").glob("seed*.json")]
    assert f"took {min(fits):.0f}-{max(fits):.0f} s" in section
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
