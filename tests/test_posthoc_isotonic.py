"""Isotonic-regression recalibration: the fit, the layer, and saving it exactly."""

import doctest

import keras
import numpy as np
import pytest
from scipy import optimize

from keras_noisewarm import posthoc
from keras_noisewarm.posthoc import isotonic


def test_pool_adjacent_violators_matches_scipy():
    rng = np.random.default_rng(0)
    for size in (1, 2, 17, 300):
        values = rng.normal(size=size) + np.linspace(0, 2, size)
        weights = rng.uniform(0.1, 3.0, size=size)
        expected = optimize.isotonic_regression(values, weights=weights).x
        np.testing.assert_allclose(isotonic.isotonic_regression(values, weights), expected,
                                   atol=1e-12)
    # Hand-checked: one violation pooled; a falling sequence becomes its mean.
    assert isotonic.isotonic_regression([1.0, 3.0, 2.0, 4.0]).tolist() == [1.0, 2.5, 2.5, 4.0]
    np.testing.assert_allclose(isotonic.isotonic_regression([3.0, 2.0, 1.0]), [2.0] * 3)
    np.testing.assert_allclose(isotonic.isotonic_regression([0.0, 1.0], [3.0, 1.0]), [0, 1])
    np.testing.assert_allclose(isotonic.isotonic_regression([1.0, 0.0], [3.0, 1.0]), [0.75] * 2)


def test_knots_give_the_pooled_frequencies_at_the_data():
    rng = np.random.default_rng(1)
    scores = np.round(rng.uniform(size=400), 2)  # many ties
    outcomes = (rng.uniform(size=400) < scores).astype(float)
    x, y = isotonic.isotonic_knots(scores, outcomes)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) >= 0)
    unique, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    frequencies = np.bincount(inverse, weights=outcomes) / counts
    fitted = optimize.isotonic_regression(frequencies, weights=counts).x
    np.testing.assert_allclose(np.interp(unique, x, y), fitted, atol=1e-12)
    # Constant beyond the ends.
    assert np.interp(-1.0, x, y) == y[0] and np.interp(2.0, x, y) == y[-1]


def _held_out(seed=2, count=600, classes=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(count, classes)) * 3.0
    # Labels from softmax(logits / 3): the logits are overconfident.
    labels = (logits / 3.0 + rng.gumbel(size=(count, classes))).argmax(axis=1)
    return logits.astype("float32"), labels


def _independent_calibration(fit_logits, fit_labels, logits):
    """Per class: scipy's isotonic fit, np.interp, then normalisation."""
    def softmax(values):
        values = values - values.max(axis=1, keepdims=True)
        return np.exp(values) / np.exp(values).sum(axis=1, keepdims=True)

    fit_probabilities = softmax(fit_logits.astype("float64"))
    probabilities = softmax(logits.astype("float64"))
    mapped = np.empty_like(probabilities)
    for k in range(probabilities.shape[1]):
        unique, inverse, counts = np.unique(fit_probabilities[:, k], return_inverse=True,
                                            return_counts=True)
        frequencies = np.bincount(inverse, weights=fit_labels == k) / counts
        fitted = optimize.isotonic_regression(frequencies, weights=counts).x
        mapped[:, k] = np.interp(probabilities[:, k], unique, fitted)
    total = mapped.sum(axis=1, keepdims=True)
    return np.where(total > 0, mapped / np.where(total > 0, total, 1), 1 / mapped.shape[1])


def test_layer_applies_the_fitted_maps():
    logits, labels = _held_out()
    layer = posthoc.IsotonicCalibration().fit(logits[:400], labels[:400])
    assert layer.is_fitted and layer.from_logits is True
    got = keras.ops.convert_to_numpy(layer(logits[400:]))
    expected = _independent_calibration(logits[:400], labels[:400], logits[400:])
    # float32 knots and arithmetic against float64.
    np.testing.assert_allclose(got, expected, atol=2e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    # On probabilities it computes the same.
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    on_probabilities = posthoc.IsotonicCalibration().fit(probabilities[:400], labels[:400])
    assert on_probabilities.from_logits is False
    np.testing.assert_allclose(keras.ops.convert_to_numpy(on_probabilities(probabilities[400:])),
                               got, atol=2e-6)


def test_recalibration_lowers_held_out_nll_on_overconfident_outputs():
    logits, labels = _held_out(count=4000)
    layer = posthoc.IsotonicCalibration().fit(logits[:2000], labels[:2000])
    calibrated = keras.ops.convert_to_numpy(layer(logits[2000:]))
    before = keras.ops.convert_to_numpy(keras.ops.softmax(logits[2000:]))
    rows = np.arange(2000)
    nll_before = -np.log(before[rows, labels[2000:]]).mean()
    nll_after = -np.log(np.maximum(calibrated[rows, labels[2000:]], 1e-12)).mean()
    assert nll_after < nll_before - 0.2


def test_saved_and_reloaded_model_predicts_exactly_the_same(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6)).astype("float32")
    logits = model.predict(x, verbose=0)
    labels = (logits * 0.3 + rng.gumbel(size=logits.shape)).argmax(axis=1)
    layer = posthoc.IsotonicCalibration(max_knots=256).fit(logits[:200], labels[:200])
    calibrated = keras.Sequential([model, layer])
    expected = calibrated.predict(x[200:], verbose=0)
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    reloaded = keras.saving.load_model(path)
    restored = reloaded.layers[-1]
    assert isinstance(restored, posthoc.IsotonicCalibration) and restored.is_fitted
    assert restored.from_logits is True and restored.max_knots == 256
    for name in ("knots_x", "knots_y"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(getattr(restored, name)),
                                      keras.ops.convert_to_numpy(getattr(layer, name)))
    np.testing.assert_array_equal(reloaded.predict(x[200:], verbose=0), expected)


def test_unfitted_layer_is_the_identity_and_errors_are_clear():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    layer = posthoc.IsotonicCalibration(from_logits=False)
    assert not layer.is_fitted
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(probabilities)), probabilities,
                               atol=1e-6)
    logits, labels = _held_out()
    with pytest.raises(ValueError, match="max_knots"):
        posthoc.IsotonicCalibration(max_knots=3).fit(logits, labels)
    with pytest.raises(ValueError, match="max_knots"):
        posthoc.IsotonicCalibration(max_knots=1)
    with pytest.raises(ValueError, match="Labels must lie"):
        posthoc.IsotonicCalibration().fit(logits, labels + 4)
    with pytest.raises(ValueError, match="shape"):
        posthoc.fit_isotonic(logits[:, :1], labels)


def test_all_zero_maps_give_the_uniform_distribution():
    # Class 1 never the label at its only probability: its map is 0, and so is
    # class 0's; the normalisation has nothing to divide, so the row is uniform.
    outputs = np.array([[0.6, 0.4], [0.6, 0.4]], dtype="float32")
    layer = posthoc.IsotonicCalibration().fit(outputs, [0, 1])
    # Both classes' frequency is 1/2 at their only score: [0.5, 0.5].
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(outputs)), 0.5)
    layer = posthoc.IsotonicCalibration(from_logits=False)
    layer.build((None, 2))
    layer.knots_y.assign(np.zeros((2, layer.max_knots)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(outputs)), 0.5)


def test_docstring_examples():
    assert doctest.testmod(isotonic).failed == 0
