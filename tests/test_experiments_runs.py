"""One run of the protocol, the store of finished runs, and warm-up reuse."""

import dataclasses

import numpy as np
import pytest
from datafiles import write_tiny_datasets

import keras_noisewarm
from keras_noisewarm import noise
from keras_noisewarm.experiments import data
from keras_noisewarm.experiments import runs

TINY = runs.RunSpec(train_size=200, test_size=100, depth=3, width=16, epochs=2,
                    warmup_examples=128 * 3)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = write_tiny_datasets(tmp_path_factory.mktemp("data"))
    return data.load_task("cifar10", "mnist", 200, 100, data_dir=folder)


def test_run_measures_the_test_set_before_training_and_after_every_epoch(task):
    result, arrays = runs.run_one(task, TINY, seed=0, arm="baseline")
    assert len(result["epochs"]) == TINY.epochs + 1
    assert len(result["train_loss"]) == TINY.epochs
    # The last epoch's numbers are the final ones: both measure the same model.
    for name in ("accuracy", "ece", "nll", "mean_confidence"):
        assert result["epochs"][-1][name] == pytest.approx(result[name], abs=1e-6)
    assert arrays["test_logits"].shape == (100, 10)
    assert arrays["ood_logits"].shape == (100, 10)
    np.testing.assert_array_equal(arrays["test_labels"], task.y_test)
    recomputed = runs.measure(arrays["test_logits"], arrays["test_labels"], arrays["ood_logits"])
    assert recomputed["ece"] == pytest.approx(result["ece"], abs=1e-6)
    assert recomputed["ood_auroc"] == pytest.approx(result["ood_auroc"], abs=1e-9)


def test_both_arms_of_a_seed_start_from_the_same_weights(task, monkeypatch):
    initial = {}

    def record_then_warm_up(model, **kwargs):
        initial["warmup"] = [w.copy() for w in model.get_weights()]
        history = original(model, **kwargs)
        initial["confidence_after"] = keras_noisewarm.noise_confidence(model).mean_confidence
        return history

    original = keras_noisewarm.warmup
    monkeypatch.setattr(keras_noisewarm, "warmup", record_then_warm_up)
    result, _ = runs.run_one(task, TINY, seed=3, arm="warmup")
    from keras_noisewarm.experiments import models

    fresh = models.build_model("mlp", task.input_shape, 10, TINY.depth, TINY.width, seed=3)
    for got, expected in zip(initial["warmup"], fresh.get_weights()):
        np.testing.assert_array_equal(got, expected)
    # The run records the noise confidence of the untrained and of the warmed-up
    # network. (Three steps of Adam 1e-4 move it by less than 0.01, either
    # way: whether warm-up lowers it is tested with real lengths in
    # test_warmup.py.)
    before = keras_noisewarm.noise_confidence(fresh).mean_confidence
    assert result["noise_confidence_before"] == pytest.approx(before, abs=1e-6)
    assert result["noise_confidence_after"] == pytest.approx(initial["confidence_after"], abs=1e-6)
    assert result["noise_confidence_after"] != pytest.approx(before, abs=1e-6)


def test_store_saves_and_loads_a_run_and_rejects_other_settings(tmp_path, monkeypatch):
    store = runs.RunStore(tmp_path)
    warmup_folder = TINY.warmup_folder_name()
    result = {"seed": 0, "arm": "baseline", "spec": TINY.key(), "ece": 0.25}
    arrays = {"test_logits": np.ones((2, 3), "float32")}
    assert not store.has(TINY, 0, "baseline")
    store.save(TINY, 0, "baseline", result, arrays)
    assert store.has(TINY, 0, "baseline")
    assert store.load(TINY, 0, "baseline") == result
    np.testing.assert_array_equal(store.load_arrays(TINY, 0, "baseline")["test_logits"], 1.0)
    # Other settings live in another folder: never mixed in.
    other = dataclasses.replace(TINY, epochs=3)
    assert not store.has(other, 0, "baseline")
    assert other.folder_name() != TINY.folder_name()
    # So do runs whose warm-up drew other noise for the same seed.
    monkeypatch.setattr(noise, "STREAM_VERSION", noise.STREAM_VERSION + 1)
    assert not store.has(TINY, 0, "baseline")
    assert TINY.warmup_folder_name() != warmup_folder
    monkeypatch.undo()
    # A file whose settings do not match its folder is refused.
    path = tmp_path / TINY.folder_name() / "seed0_baseline.json"
    path.write_text(path.read_text().replace('"epochs": 2', '"epochs": 5'))
    with pytest.raises(ValueError, match="other settings"):
        store.load(TINY, 0, "baseline")


def test_run_all_trains_only_missing_runs_and_reuses_the_warmup(task, tmp_path, monkeypatch):
    store = runs.RunStore(tmp_path)
    small, large = TINY, dataclasses.replace(TINY, train_size=100)
    calls = []
    original = runs.run_one

    def counting_run_one(*args, **kwargs):
        calls.append(args[1:4])
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "run_one", counting_run_one)
    monkeypatch.setattr(runs.data, "load_task", lambda *args, **kwargs: task)
    jobs = [(small, 0, "warmup"), (large, 0, "warmup"), (small, 0, "baseline")]
    first = runs.run_all(store, jobs, verbose=0)
    assert len(calls) == 3
    # Both training-set sizes share one warmed-up network: same noise confidence.
    assert first[0]["noise_confidence_after"] == first[1]["noise_confidence_after"]
    assert store.has_warmup(small, 0) and large.warmup_folder_name() == small.warmup_folder_name()

    calls.clear()
    assert runs.run_all(store, jobs, verbose=0) == first
    assert calls == []


def test_a_reused_warmup_trains_exactly_like_a_fresh_one(task, tmp_path):
    store = runs.RunStore(tmp_path)
    fresh, _ = runs.run_one(task, TINY, seed=1, arm="warmup", store=store)
    assert store.has_warmup(TINY, 1)
    reused, _ = runs.run_one(task, TINY, seed=1, arm="warmup", store=store)
    for name in ("ece", "accuracy", "nll", "noise_confidence_after"):
        assert reused[name] == pytest.approx(fresh[name], rel=1e-5, abs=1e-6)
