"""The paper's runs: settings and folders, made by compare_warmup and read back."""

import dataclasses

import numpy as np
import pytest
from datafiles import write_tiny_datasets

import keras_noisewarm
from keras_noisewarm import compare
from keras_noisewarm import noise
from paper import data
from paper import runs

TINY = runs.RunSpec(train_size=200, test_size=100, depth=3, width=16, epochs=2,
                    warmup_examples=128 * 3)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = write_tiny_datasets(tmp_path_factory.mktemp("data"))
    return data.load_task("cifar10", "mnist", 200, 100, data_dir=folder)


def test_other_settings_and_other_noise_live_in_other_folders(monkeypatch):
    other = dataclasses.replace(TINY, epochs=3)
    assert other.folder_name() != TINY.folder_name()
    # The warm-up does not depend on the training data: one folder for all sizes.
    assert dataclasses.replace(TINY, train_size=100).warmup_folder_name() == TINY.warmup_folder_name()
    folder, warmup_folder = TINY.folder_name(), TINY.warmup_folder_name()
    monkeypatch.setattr(noise, "STREAM_VERSION", noise.STREAM_VERSION + 1)
    assert TINY.folder_name() != folder and TINY.warmup_folder_name() != warmup_folder


def test_the_paper_warmup_is_the_mlp_recipe_at_the_spec_length():
    warmup = TINY.warmup()
    assert warmup.num_steps() == 3 and warmup.batch_size == 128
    optimizer = warmup.make_optimizer()
    assert type(optimizer).__name__ == "Adam"
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    assert warmup.noise == keras_noisewarm.noise.Gaussian(0.0, 1.0)


def test_run_all_trains_missing_runs_once_and_shares_the_warmup(task, tmp_path, monkeypatch):
    store = runs.RunStore(tmp_path)
    small, large = TINY, dataclasses.replace(TINY, train_size=100)
    monkeypatch.setattr(runs.data, "load_task", lambda *args, **kwargs: task)
    calls = []
    original = compare.RunProtocol.run

    def counting_run(self, seed, arm):
        calls.append((seed, arm))
        return original(self, seed, arm)

    monkeypatch.setattr(compare.RunProtocol, "run", counting_run)
    jobs = [(small, 0, "warmup"), (large, 0, "warmup"), (small, 0, "baseline")]
    first = runs.run_all(store, jobs, verbose=0)
    assert len(calls) == 3
    # Both training-set sizes share one warmed-up network: same noise confidence.
    assert first[0]["noise_confidence_after"] == first[1]["noise_confidence_after"]
    assert list((tmp_path / small.warmup_folder_name() / "warmed-up").glob("*.npz"))
    calls.clear()
    assert runs.run_all(store, jobs, verbose=0) == first
    assert calls == []
    arrays = store.load_arrays(small, 0, "baseline")
    assert arrays["test_logits"].shape == (100, 10) and arrays["ood_logits"].shape == (100, 10)
    np.testing.assert_array_equal(arrays["test_labels"], task.y_test)
    recomputed = runs.measure(arrays["test_logits"], arrays["test_labels"], arrays["ood_logits"])
    assert recomputed["ece"] == pytest.approx(first[2]["ece"], abs=1e-6)


def test_a_folder_of_other_settings_is_refused(task, tmp_path, monkeypatch):
    store = runs.RunStore(tmp_path)
    monkeypatch.setattr(runs.data, "load_task", lambda *args, **kwargs: task)
    runs.run_all(store, [(TINY, 0, "baseline")], verbose=0)
    settings = tmp_path / TINY.folder_name() / "settings.json"
    settings.write_text(settings.read_text().replace('"epochs": 2', '"epochs": 5'))
    with pytest.raises(ValueError, match="other settings"):
        store.load(TINY, 0, "baseline")
