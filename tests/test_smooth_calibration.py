"""Smooth ECE (Błasiok & Nakkiran): against a direct computation without a grid."""

import doctest

import numpy as np
import pytest
from scipy import optimize
from scipy import stats

from keras_noisewarm import plot
from keras_noisewarm import smooth_calibration


def _direct_error(predictions, outcomes, bandwidth, points=8001):
    """`integral |(1/N) sum_i K(t, f_i) (y_i - f_i)| dt`, the kernel summed over
    reflections for every example (no grid for the examples), by Simpson's rule."""
    t = np.linspace(0.0, 1.0, points)
    kernel = np.zeros((points, len(predictions)))
    for shift in range(-4, 5):
        kernel += stats.norm.pdf(t[:, None] - predictions[None] - 2 * shift, scale=bandwidth)
        kernel += stats.norm.pdf(t[:, None] + predictions[None] - 2 * shift, scale=bandwidth)
    density = kernel @ (outcomes - predictions) / len(predictions)
    from scipy import integrate

    return integrate.simpson(np.abs(density), x=t)


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(0)
    predictions = rng.uniform(0.1, 1.0, size=150)
    outcomes = (rng.uniform(size=150) < predictions ** 1.7).astype(float)
    return predictions, outcomes


@pytest.mark.parametrize("bandwidth", [0.02, 0.08, 0.3])
def test_smooth_error_matches_the_direct_sum(sample, bandwidth):
    predictions, outcomes = sample
    assert smooth_calibration.smooth_error_at(predictions, outcomes, bandwidth) == pytest.approx(
        _direct_error(predictions, outcomes, bandwidth), abs=2e-5)


def test_bandwidth_is_the_fixed_point(sample):
    predictions, outcomes = sample
    value, bandwidth = smooth_calibration.smooth_calibration_error(predictions, outcomes)
    root = optimize.brentq(
        lambda sigma: _direct_error(predictions, outcomes, sigma, 2001) - sigma, 1e-3, 1.0)
    assert bandwidth == pytest.approx(root, abs=2e-4)
    assert value == pytest.approx(root, abs=2e-4)


def test_hand_checked_edges():
    # Residuals of one sign: |mean residual| at every bandwidth, so the fixed point too.
    value, bandwidth = smooth_calibration.smooth_calibration_error([0.8] * 4, [1] * 4)
    assert value == pytest.approx(0.2, abs=1e-6) and bandwidth == pytest.approx(0.2, abs=1e-4)
    # Certain and wrong: error 1 at every bandwidth; the search stops at 1.
    value, bandwidth = smooth_calibration.smooth_calibration_error([1.0, 1.0], [0, 0])
    assert value == pytest.approx(1.0, abs=1e-6) and bandwidth == 1.0
    # Residuals that cancel where they are: 0, at the smallest bandwidth.
    value, bandwidth = smooth_calibration.smooth_calibration_error([0.5, 0.5, 0.3, 0.3],
                                                                   [1, 0, 0.3, 0.3])
    assert value == pytest.approx(0.0, abs=1e-9)
    assert bandwidth == smooth_calibration.MIN_BANDWIDTH
    # Predictions at 0 are reflected, not lost: y = 1 at f = 0 is an error of 1.
    assert smooth_calibration.smooth_error_at([0.0], [1.0], 0.1) == pytest.approx(1.0, abs=1e-6)


def test_reflected_smoothing_keeps_the_mass():
    masses = np.zeros(1001)
    masses[[0, 10, 500, 1000]] = [0.25, 0.5, 0.125, 0.125]
    for bandwidth in (0.005, 0.05, 0.9):
        density = smooth_calibration.reflected_smooth(masses, bandwidth)
        integral = (density.sum() - (density[0] + density[-1]) / 2) / 1000
        # Exact but for the kernel's tails beyond 6 sigma (2e-9 of its mass).
        assert integral == pytest.approx(1.0, abs=1e-8)
        assert np.all(density >= -1e-12)  # FFT round-off where it is 0


def test_smooth_ece_is_that_of_the_top_label():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 5)) * 2
    labels = rng.integers(0, 5, size=200)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    correct = (probabilities.argmax(axis=1) == labels).astype(float)
    expected = smooth_calibration.smooth_calibration_error(probabilities.max(axis=1), correct)
    assert smooth_calibration.smooth_ece(labels, logits, return_bandwidth=True) == pytest.approx(
        expected)
    assert smooth_calibration.smooth_ece(labels, probabilities) == pytest.approx(expected[0])


def test_smooth_curve_and_diagram(sample):
    predictions, outcomes = sample
    curve = smooth_calibration.smooth_calibration_curve(predictions, outcomes)
    assert (curve["density"].sum() - (curve["density"][0] + curve["density"][-1]) / 2) / 200 \
        == pytest.approx(1.0, abs=1e-3)
    shown = np.isfinite(curve["accuracy"])
    assert np.all((curve["accuracy"][shown] >= 0) & (curve["accuracy"][shown] <= 1))
    # Outcomes drawn with P(y = 1) = f^1.7 < f: the curve lies below the diagonal.
    middle = (curve["t"] > 0.3) & (curve["t"] < 0.9)
    assert np.all(curve["accuracy"][middle] < curve["t"][middle])
    labels = np.where(outcomes > 0, 0, 1)
    figure = plot.smooth_reliability_diagram(labels, np.stack([predictions, 1 - predictions], 1))
    assert any("smooth ECE" in text.get_text()
               for text in figure.axes[0].get_legend().get_texts())
    plot.pyplot().close(figure)


def test_clear_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        smooth_calibration.smooth_calibration_error([1.2], [1])
    with pytest.raises(ValueError, match="one outcome per prediction"):
        smooth_calibration.smooth_calibration_error([0.5, 0.6], [1])
    with pytest.raises(ValueError, match="bandwidth"):
        smooth_calibration.smooth_error_at([0.5], [1], 0.0)


def test_docstring_examples():
    assert doctest.testmod(smooth_calibration).failed == 0
