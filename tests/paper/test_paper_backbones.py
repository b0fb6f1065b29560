"""The ResNet-18 and fine-tuning reproductions, end to end at tiny sizes."""

import dataclasses
import json

import numpy as np
import pytest
from datafiles import write_tiny_datasets

from paper import augmented_training
from paper import cli
from paper import finetune
from paper import resnet18


@pytest.fixture
def tiny_data(tmp_path):
    return str(write_tiny_datasets(tmp_path / "data", num_train=200, num_test=100))


def test_augment_crops_within_the_padding_and_flips_some_images():
    images = np.arange(2 * 6 * 6 * 1, dtype="float32").reshape(2, 6, 6, 1) + 1
    rng = np.random.default_rng(0)
    crops = [augmented_training.augment(images, rng, padding=2) for _ in range(20)]
    assert all(crop.shape == images.shape for crop in crops)
    # Each crop is a 6x6 window of the zero-padded image, flipped or not.
    padded = np.pad(images[0], ((2, 2), (2, 2), (0, 0)))
    windows = {(top, left, flip): (padded[:, ::-1] if flip else padded)[top:top + 6, left:left + 6]
               for top in range(5) for left in range(5) for flip in (False, True)}
    found = [[key for key, window in windows.items() if np.array_equal(crop[0], window)]
             for crop in crops]
    assert all(found)
    # Some flipped and some not (all 20 alike has probability 2 ** -19), and
    # more than one offset.
    flips = {keys[0][2] for keys in found}
    assert flips == {False, True}
    assert len({keys[0][:2] for keys in found}) > 1


def test_pytorch_weight_decay_becomes_keras_decay_over_one_minus_momentum():
    optimizer = augmented_training.sgd(0.1, 100, momentum=0.9, torch_weight_decay=1e-4)
    assert optimizer.weight_decay == pytest.approx(1e-3)
    assert float(optimizer.learning_rate) == pytest.approx(0.1)


@pytest.mark.one_backend
def test_resnet18_quick_compares_both_arms_reports_the_cost_and_resumes(tmp_path, tiny_data, monkeypatch):
    tiny = dataclasses.replace(resnet18.SCALES["quick"], width=2, train_size=64, test_size=32, ood_size=32,
                               epochs=1, batch_size=32, warmup_steps=2)
    monkeypatch.setitem(resnet18.SCALES, "quick", tiny)
    arguments = ["reproduce", "resnet18_cpu", "--quick", "--quiet", "--output", str(tmp_path),
                 "--cache", str(tmp_path / "runs"), "--data-dir", tiny_data]
    assert cli.main(arguments) == 0
    section = (tmp_path / "sections" / "resnet18_cpu.md").read_text()
    assert "| ECE |" in section and "of the training's wall time" in section
    runs = [json.loads(path.read_text()) for path in tmp_path.glob("runs/resnet18-quick-*/seed*.json")]
    assert sorted((run["seed"], run["arm"]) for run in runs) == [
        (0, "baseline"), (0, "warmup"), (1, "baseline"), (1, "warmup")]
    warmed = [run for run in runs if run["arm"] == "warmup"]
    assert all(run["warmup_steps"] == 2 and run["warmup_seconds"] > 0 for run in warmed)
    assert (tmp_path / "figures" / "resnet18_quick_paired.png").stat().st_size > 10_000

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(resnet18, "run", must_not_train)
    assert cli.main(arguments) == 0


@pytest.mark.one_backend
def test_finetune_quick_pretrains_once_per_seed_as_a_preset_and_runs_three_arms(tmp_path, tiny_data, monkeypatch):
    pytest.importorskip("keras_hub")
    tiny = dataclasses.replace(finetune.SCALES["quick"], pretrain_size=48, finetune_size=32, test_size=16,
                               ood_size=16, validation_size=16, stack_filters=(64,), batch_size=16,
                               learning_rates=(0.01, 0.1), pretrain_epochs=1, finetune_epochs=1)
    monkeypatch.setitem(finetune.SCALES, "quick", tiny)
    monkeypatch.setattr(finetune, "VALIDATION_START", 150)  # the tiny copy has 200 training images
    arguments = ["reproduce", "finetune", "--quick", "--quiet", "--output", str(tmp_path),
                 "--cache", str(tmp_path / "runs"), "--data-dir", tiny_data]
    assert cli.main(arguments) == 0
    section = (tmp_path / "sections" / "finetune.md").read_text()
    assert "### whole network warmed up vs no warm-up" in section
    assert "### new head warmed up (backbone frozen) vs no warm-up" in section
    folder = next(tmp_path.glob("runs/finetune-quick-*"))
    assert sorted(path.name for path in folder.glob("pretrained_seed*") if path.is_dir()) == [
        "pretrained_seed0", "pretrained_seed1"]
    runs = {path.stem: json.loads(path.read_text()) for path in folder.glob("seed*.json")}
    assert len(runs) == 2 * len(finetune.ARMS)
    chosen = {run["learning_rate"] for run in runs.values()}
    assert len(chosen) == 1 and chosen <= set(tiny.learning_rates)
    assert runs["seed0_baseline"]["warmup_steps"] == 0
    assert runs["seed0_warmup_head"]["warmup_steps"] >= 1

    def must_not_pretrain(*args, **kwargs):
        raise AssertionError("pretrained again")

    monkeypatch.setattr(finetune, "with_head", must_not_pretrain)
    assert cli.main(arguments) == 0
