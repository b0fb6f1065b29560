"""compare_warmup: the paired A/B test of the warm-up on the user's own model."""

import json
import math

import keras
import numpy as np
import pytest
from scipy import stats

import keras_noisewarm
from keras_noisewarm import compare

NUM_CLASSES = 4
WARMUP = dict(steps=3, batch_size=32)
FIT = dict(epochs=2, batch_size=32)


def toy_data(num_examples, seed):
    """Four Gaussian blobs in 6 dimensions: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    centres = np.random.default_rng(99).normal(0, 1.5, size=(NUM_CLASSES, 6))
    inputs = centres[labels] + rng.normal(size=(num_examples, 6))
    return inputs.astype("float32"), labels


def build_model():
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(NUM_CLASSES),
    ])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.fixture(scope="module")
def data():
    return toy_data(160, seed=0), toy_data(80, seed=1), toy_data(40, seed=2)[0] * 3


def run(data, directory=None, **kwargs):
    train, held_out, ood = data
    arguments = dict(ood_data=ood, seeds=2, warmup=WARMUP, fit_kwargs=FIT,
                     directory=directory, verbose=0)
    arguments.update(kwargs)
    return keras_noisewarm.compare_warmup(build_model, train, held_out, **arguments)


def test_every_run_is_measured_and_tracked_over_epochs(data):
    comparison = run(data, track_epochs=True)
    assert comparison.seeds == (0, 1)
    for arm in compare.ARMS:
        for result in comparison.runs[arm]:
            assert len(result["epochs"]) == FIT["epochs"] + 1
            assert len(result["train_loss"]) == FIT["epochs"]
            # The last epoch's numbers are the final ones: both measure the same model.
            for name in ("accuracy", "ece", "nll", "mean_confidence"):
                assert result["epochs"][-1][name] == pytest.approx(result[name], abs=1e-6)
            arrays = comparison.arrays(result["seed"], arm)
            recomputed = compare.measure(
                arrays["validation_outputs"], arrays["validation_labels"], arrays["ood_outputs"]
            )
            assert recomputed["ece"] == pytest.approx(result["ece"], abs=1e-6)
            assert recomputed["ood_auroc"] == pytest.approx(result["ood_auroc"], abs=1e-9)
    assert [row["metric"] for row in comparison.rows()] == [name for name, _, _ in compare.METRICS]


def test_both_arms_of_a_seed_start_from_the_same_weights(data, monkeypatch):
    initial = {}
    original = keras_noisewarm.NoiseWarmup.run

    def record_then_warm_up(self, model):
        initial["warmup"] = [w.copy() for w in model.get_weights()]
        history = original(self, model)
        initial["after"] = keras_noisewarm.noise_confidence(model).mean_confidence
        return history

    monkeypatch.setattr(keras_noisewarm.NoiseWarmup, "run", record_then_warm_up)
    comparison = run(data, seeds=[3], arms=("warmup",))
    keras.utils.set_random_seed(3)
    fresh = build_model()
    for got, expected in zip(initial["warmup"], fresh.get_weights()):
        np.testing.assert_array_equal(got, expected)
    result = comparison.runs["warmup"][0]
    before = keras_noisewarm.noise_confidence(fresh).mean_confidence
    assert result["noise_confidence_before"] == pytest.approx(before, abs=1e-6)
    assert result["noise_confidence_after"] == pytest.approx(initial["after"], abs=1e-6)
    assert result["warmup_steps"] == WARMUP["steps"]


def test_a_rerun_resumes_and_other_settings_are_refused(data, tmp_path, monkeypatch):
    first = run(data, directory=tmp_path)
    assert sorted(path.name for path in tmp_path.glob("seed*.json")) == [
        "seed0_baseline.json", "seed0_warmup.json", "seed1_baseline.json", "seed1_warmup.json",
    ]
    calls = []
    monkeypatch.setattr(compare.RunProtocol, "run", lambda self, seed, arm: calls.append((seed, arm)))
    again = run(data, directory=tmp_path)
    assert calls == []
    assert again.runs == first.runs
    with pytest.raises(ValueError, match=r"other settings .*fit_kwargs"):
        run(data, directory=tmp_path, fit_kwargs=dict(FIT, epochs=3))
    with pytest.raises(ValueError, match=r"other settings .*key"):
        run(data, directory=tmp_path, key="another model")


def test_a_warmed_up_network_is_reused_and_trains_like_a_fresh_one(data, tmp_path):
    fresh = run(data, directory=tmp_path / "a", warmup_directory=tmp_path / "shared", seeds=[1])
    assert list((tmp_path / "shared" / "warmed-up").glob("*.npz"))
    reused = run(data, directory=tmp_path / "b", warmup_directory=tmp_path / "shared", seeds=[1])
    for name in ("ece", "accuracy", "nll", "noise_confidence_after"):
        assert reused.runs["warmup"][0][name] == pytest.approx(
            fresh.runs["warmup"][0][name], rel=1e-5, abs=1e-6
        )


def test_a_reused_warmup_keeps_the_reusing_runs_own_optimizer(data, tmp_path):
    # The stored warm-up must carry the layers' weights only: the run that
    # reuses it trains with its own optimizer and learning rate.
    def build_with(learning_rate):
        def build():
            model = build_model()
            model.compile(keras.optimizers.Adam(learning_rate),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            return model
        return build

    train, held_out, _ = data
    arguments = dict(seeds=[0], arms=("warmup",), warmup=WARMUP, fit_kwargs=FIT, verbose=0,
                     warmup_directory=tmp_path / "shared")
    keras_noisewarm.compare_warmup(build_with(1e-2), train, held_out,
                                   directory=tmp_path / "fast", **arguments)
    reused = keras_noisewarm.compare_warmup(build_with(1e-4), train, held_out,
                                            directory=tmp_path / "slow", **arguments)
    fresh = keras_noisewarm.compare_warmup(build_with(1e-4), train, held_out,
                                           seeds=[0], arms=("warmup",), warmup=WARMUP,
                                           fit_kwargs=FIT, verbose=0)
    np.testing.assert_allclose(reused.runs["warmup"][0]["train_loss"],
                               fresh.runs["warmup"][0]["train_loss"], rtol=1e-5)


def test_report_and_diagrams_are_written(data, tmp_path):
    comparison = run(data, directory=tmp_path)
    path = comparison.save_report(tmp_path, lines=["Toy data."])
    text = path.read_text()
    assert "| ECE |" in text and "Toy data." in text and "Wilcoxon" in text
    for arm in compare.ARMS:
        assert (tmp_path / f"reliability_{arm}_seed0.png").stat().st_size > 5000


# ----------------------------------------------------------------------------
# The statistics of the table, on values.

KNOWN_RUNS = {
    # ECE lower with warm-up in 4 of 5 seeds; accuracy higher in 3 of 5.
    "baseline": [dict(ece=e, accuracy=a) for e, a in
                 [(0.30, 0.50), (0.28, 0.52), (0.31, 0.49), (0.25, 0.55), (0.29, 0.51)]],
    "warmup": [dict(ece=e, accuracy=a) for e, a in
               [(0.24, 0.53), (0.27, 0.50), (0.22, 0.52), (0.26, 0.54), (0.20, 0.56)]],
}


def test_comparison_rows_give_known_medians_wins_and_p_values():
    rows = {row["metric"]: row for row in compare.comparison_rows(KNOWN_RUNS)}
    assert list(rows) == ["accuracy", "ece"]
    ece = rows["ece"]
    assert ece["baseline"].median == pytest.approx(0.29)
    assert (ece["baseline"].q25, ece["baseline"].q75) == (pytest.approx(0.28), pytest.approx(0.30))
    assert ece["warmup"].median == pytest.approx(0.24)
    assert ece["wins"] == 4 and ece["seeds"] == 5
    assert ece["difference"] == pytest.approx(-0.06)
    assert ece["ratio"] == pytest.approx(0.24 / 0.29)
    baseline = [run["ece"] for run in KNOWN_RUNS["baseline"]]
    warmup = [run["ece"] for run in KNOWN_RUNS["warmup"]]
    assert ece["p_value"] == pytest.approx(stats.wilcoxon(baseline, warmup).pvalue)
    # Differences -0.06, -0.01, -0.09, +0.01, -0.09: ranks 3, 1.5, 4.5, 1.5, 4.5.
    # The positive rank sum is 1.5; of the 32 sign patterns, 3 give a sum of
    # at most 1.5 (none, or either rank 1.5): an exact two-sided p of 6/32.
    assert ece["p_value"] == pytest.approx(6 / 32)
    accuracy = rows["accuracy"]
    # Higher is better for accuracy: 3 seeds improved, not the 2 that fell.
    assert accuracy["wins"] == 3 and not accuracy["lower_is_better"]


def test_a_flipped_direction_changes_the_wins():
    flipped = [(name, title, not lower) for name, title, lower in compare.METRICS]
    rows = {row["metric"]: row for row in compare.comparison_rows(KNOWN_RUNS, metrics=flipped)}
    assert rows["ece"]["wins"] == 1 and rows["accuracy"]["wins"] == 2


def test_measure_of_known_outputs():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], "float32")
    values = compare.measure(probabilities, np.array([0, 1, 1, 1]), num_bins=5)
    assert values["accuracy"] == pytest.approx(0.75)
    # The ECE docstring's example: 2/4 * 0.15 + 2/4 * 0.15.
    assert values["ece"] == pytest.approx(0.15, abs=1e-5)
    expected_nll = -np.mean(np.log([0.9, 0.4, 0.7, 0.8]))
    assert values["nll"] == pytest.approx(expected_nll, abs=1e-5)
    assert values["mean_confidence"] == pytest.approx(np.mean([0.9, 0.6, 0.7, 0.8]), abs=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(seeds=0), "seeds"),
        (dict(seeds=[1, 1]), "distinct"),
        (dict(warmup="fast"), "NoiseWarmup"),
        (dict(warmup=dict(steps=0)), "steps"),
        (dict(fit_kwargs=dict(verbose=1)), "verbose"),
        (dict(arms=("baseline", "other")), "arm"),
        (dict(ood_score="odin"), "not ODIN"),
        (dict(validation_data=(np.zeros((0, 6)), np.zeros(0))), "empty"),
    ],
)
def test_bad_arguments_raise_before_any_training(data, kwargs, message, monkeypatch):
    monkeypatch.setattr(compare.RunProtocol, "run", lambda *args: pytest.fail("trained"))
    train, held_out, ood = data
    validation_data = kwargs.pop("validation_data", held_out)
    arguments = dict(ood_data=ood, seeds=2, fit_kwargs=FIT, verbose=0)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        keras_noisewarm.compare_warmup(build_model, train, validation_data, **arguments)


def test_an_uncompiled_model_is_refused():
    def uncompiled():
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(NUM_CLASSES)])

    train, held_out = toy_data(32, 0), toy_data(16, 1)
    with pytest.raises(ValueError, match="compiled"):
        keras_noisewarm.compare_warmup(uncompiled, train, held_out, seeds=1, verbose=0)


def test_settings_file_is_json_and_names_the_backend(data, tmp_path):
    run(data, directory=tmp_path, seeds=1, arms=("baseline",))
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["backend"] == keras.backend.backend()
    assert settings["noise_stream"] == keras_noisewarm.noise.STREAM_VERSION
    assert not math.isnan(json.loads((tmp_path / "seed0_baseline.json").read_text())["ece"])


def test_kept_models_reload_from_the_directory_and_predict_their_outputs(data, tmp_path):
    train, held_out, _ = data
    comparison = run(data, directory=tmp_path, seeds=[0], keep_models=True)
    assert (tmp_path / "seed0_warmup.weights.h5").is_file()
    for arm in compare.ARMS:
        model = comparison.load_model(0, arm)
        np.testing.assert_allclose(model.predict(held_out[0], verbose=0),
                                   comparison.arrays(0, arm)["validation_outputs"], atol=1e-5)
    # A stored run without weights is trained again when models are to be kept.
    (tmp_path / "seed0_baseline.weights.h5").unlink()
    again = run(data, directory=tmp_path, seeds=[0], keep_models=True)
    assert (tmp_path / "seed0_baseline.weights.h5").is_file()
    assert again.runs["baseline"][0]["ece"] == pytest.approx(comparison.runs["baseline"][0]["ece"],
                                                             abs=1e-5)
    # Without a directory the models stay in memory; without keep_models, none.
    in_memory = run(data, seeds=[0], arms=("baseline",), keep_models=True)
    assert in_memory.load_model(0, "baseline") is in_memory.models[0, "baseline"]
    with pytest.raises(ValueError, match="keep_models=True"):
        compare.WarmupComparison(seeds=(0,), arms=("baseline",), runs={}).load_model(0, "baseline")
