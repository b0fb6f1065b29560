"""Regression calibration metrics: a calibrated synthetic model gives ~0, one
whose variances are 4 times off gives the known values, and every metric
agrees with an independent NumPy/SciPy computation written here from the
definitions; streaming equals one batch; configs round-trip; bad inputs are
rejected eagerly and make the result NaN inside compiled steps."""

import math
import warnings

import keras
import numpy as np
import pytest
from scipy import stats

from keras_noisewarm.metrics import ExpectedNormalizedCalibrationError
from keras_noisewarm.metrics import GaussianNegativeLogLikelihood
from keras_noisewarm.metrics import IntervalCoverage
from keras_noisewarm.metrics import IntervalCoverageError
from keras_noisewarm.metrics import QuantileCalibrationError
from keras_noisewarm.metrics import regression

BACKEND = keras.backend.backend()
NUM_EXAMPLES = 20_000


def gaussian_data(seed=0, num_examples=NUM_EXAMPLES):
    """Means, true standard deviations and targets drawn from N(mu, sigma^2)."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=num_examples)
    sigma = np.exp(0.5 * rng.normal(size=num_examples))
    targets = mean + sigma * rng.normal(size=num_examples)
    return mean, sigma, targets


def predictions(mean, variance):
    return np.stack([mean, variance], axis=-1).astype("float32")


def result_of(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(metric.result())


# ----------------------------------------------------------------------------
# Independent references, from the definitions (not the library's twins).


def reference_ence(targets, mean, variance, num_bins):
    order = np.argsort(np.sqrt(variance), kind="stable")
    errors = []
    for members in np.array_split(order, num_bins):
        rmv = np.sqrt(np.mean(variance[members]))
        rmse = np.sqrt(np.mean((targets[members] - mean[members]) ** 2))
        errors.append(abs(rmv - rmse) / rmv)
    return float(np.mean(errors))


def reference_levels(num_levels):
    return np.arange(1, num_levels + 1) / (num_levels + 1)


def reference_quantile_error(targets, mean, variance, num_levels=99):
    levels = reference_levels(num_levels)
    quantiles = stats.norm.ppf(levels[None, :], loc=mean[:, None], scale=np.sqrt(variance)[:, None])
    observed = np.mean(targets[:, None] <= quantiles, axis=0)
    return float(np.mean(np.abs(observed - levels)))


def reference_coverage(targets, mean, variance, level=0.9):
    lower, upper = stats.norm.interval(level, loc=mean, scale=np.sqrt(variance))
    return float(np.mean((targets >= lower) & (targets <= upper)))


def reference_nll(targets, mean, variance):
    return float(-np.mean(stats.norm.logpdf(targets, loc=mean, scale=np.sqrt(variance))))


# ----------------------------------------------------------------------------
# Calibrated and miscalibrated models.


@pytest.fixture(scope="module")
def streamed():
    """Every metric's result on three models (streaming is tested below)."""
    mean, sigma, targets = gaussian_data()
    results = {}
    for factor in (1.0, 4.0, 0.25):
        y_pred = predictions(mean, factor * sigma**2)
        metrics = {
            "ence": ExpectedNormalizedCalibrationError(),
            "qce": QuantileCalibrationError(),
            "coverage": IntervalCoverage(0.9),
            "nll": GaussianNegativeLogLikelihood(),
        }
        for metric in metrics.values():
            metric.update_state(targets, y_pred)
        results[factor] = {name: float(metric.result()) for name, metric in metrics.items()}
    return (mean, sigma, targets), results


def test_calibrated_model_scores_near_zero_and_matches_the_reference(streamed):
    (mean, sigma, targets), results = streamed
    calibrated = results[1.0]
    variance = sigma**2
    # Sampling noise only: 2,000 targets per ENCE bin, 20,000 per level.
    assert calibrated["ence"] < 0.04
    assert calibrated["qce"] < 0.01
    assert calibrated["coverage"] == pytest.approx(0.9, abs=3 * math.sqrt(0.09 / NUM_EXAMPLES))
    assert calibrated["ence"] == pytest.approx(reference_ence(targets, mean, variance, 10), abs=2e-3)
    assert calibrated["qce"] == pytest.approx(reference_quantile_error(targets, mean, variance), abs=1e-5)
    assert calibrated["coverage"] == pytest.approx(reference_coverage(targets, mean, variance), abs=1e-6)
    assert calibrated["nll"] == pytest.approx(reference_nll(targets, mean, variance), rel=1e-5)


def test_variance_four_times_off_gives_the_known_values(streamed):
    (mean, sigma, targets), results = streamed
    levels = reference_levels(99)
    for factor, ence in ((4.0, 0.5), (0.25, 1.0)):
        scale = math.sqrt(factor)  # predicted sigma / true sigma
        # Expected values under the model, not fitted to the sample.
        assert results[factor]["ence"] == pytest.approx(ence, abs=0.02 * ence)
        expected_qce = np.mean(np.abs(stats.norm.cdf(scale * stats.norm.ppf(levels)) - levels))
        assert results[factor]["qce"] == pytest.approx(expected_qce, abs=0.01)
        expected_coverage = 2 * stats.norm.cdf(scale * stats.norm.ppf(0.95)) - 1
        assert results[factor]["coverage"] == pytest.approx(expected_coverage, abs=0.01)
        # E[NLL] = log(2 pi)/2 + E[log sigma] + log(scale) + 1 / (2 scale^2).
        expected_nll = (0.5 * math.log(2 * math.pi) + np.mean(np.log(sigma)) + math.log(scale)
                        + 0.5 / factor)
        assert results[factor]["nll"] == pytest.approx(expected_nll, abs=0.02)
        # And exactly what the definitions give on this sample.
        variance = factor * sigma**2
        assert results[factor]["ence"] == pytest.approx(
            reference_ence(targets, mean, variance, 10), abs=2e-3)
        assert results[factor]["qce"] == pytest.approx(
            reference_quantile_error(targets, mean, variance), abs=1e-5)
        assert results[factor]["coverage"] == pytest.approx(
            reference_coverage(targets, mean, variance), abs=1e-6)
    # Too wide intervals cover more than 90%, too narrow ones less.
    assert results[4.0]["coverage"] > 0.99 and results[0.25]["coverage"] < 0.65


def test_numpy_twins_agree_with_the_streaming_metrics(streamed):
    (mean, sigma, targets), results = streamed
    y_pred = predictions(mean, 4.0 * sigma**2)
    assert regression.expected_normalized_calibration_error(targets, y_pred) == pytest.approx(
        results[4.0]["ence"], abs=2e-3)
    assert regression.quantile_calibration_error(targets, y_pred) == pytest.approx(
        results[4.0]["qce"], abs=1e-5)
    assert regression.interval_coverage(targets, y_pred) == pytest.approx(
        results[4.0]["coverage"], abs=1e-6)
    assert regression.gaussian_negative_log_likelihood(targets, y_pred) == pytest.approx(
        results[4.0]["nll"], rel=1e-5)


def make_metrics():
    return [
        ExpectedNormalizedCalibrationError(num_bins=4),
        QuantileCalibrationError(num_levels=9, norm="l2"),
        QuantileCalibrationError(num_levels=9, norm="max", name="qce_max"),
        IntervalCoverage(0.8),
        IntervalCoverageError(0.8),
        GaussianNegativeLogLikelihood(),
    ]


# The eager JAX backend compiles every op once per input shape: the tests
# below share a few shapes (400 predictions, or batches of 200).


def test_streaming_in_batches_equals_one_batch_and_reset_forgets():
    mean, sigma, targets = gaussian_data(seed=1, num_examples=400)
    y_pred = predictions(mean, 2.0 * sigma**2)
    for metric, twin in zip(make_metrics(), make_metrics()):
        whole = result_of(twin, targets, y_pred)
        for start, stop in ((0, 200), (200, 400)):
            metric.update_state(targets[start:stop], y_pred[start:stop])
        assert float(metric.result()) == pytest.approx(whole, abs=1e-6), metric.name
        metric.reset_state()
        assert float(metric.result()) == 0.0


def test_spread_as_variance_log_variance_or_std_gives_the_same_numbers():
    mean, sigma, targets = gaussian_data(seed=2, num_examples=400)
    spreads = {"variance": sigma**2, "log_variance": 2 * np.log(sigma), "std": sigma}
    for make in (ExpectedNormalizedCalibrationError, QuantileCalibrationError, IntervalCoverage,
                 GaussianNegativeLogLikelihood):
        values = [result_of(make(spread=name), targets, predictions(mean, spread))
                  for name, spread in spreads.items()]
        assert values == pytest.approx([values[0]] * 3, abs=1e-5), make.__name__


def test_several_targets_use_halves_and_count_each_component():
    # (batch, 2) targets, y_pred (batch, 4): two means, then two variances.
    mean, sigma, targets = gaussian_data(seed=3, num_examples=400)
    y_true = targets.reshape(200, 2)
    y_pred = np.concatenate([mean.reshape(200, 2), (sigma**2).reshape(200, 2)], axis=-1)
    one_column = predictions(mean, sigma**2)
    for make in (QuantileCalibrationError, IntervalCoverage, GaussianNegativeLogLikelihood,
                 lambda: ExpectedNormalizedCalibrationError(num_bins=5)):
        assert result_of(make(), y_true, y_pred) == pytest.approx(
            result_of(make(), targets, one_column), abs=1e-6)


def test_integer_weights_equal_repeated_predictions_and_zero_weights_drop_them():
    mean, sigma, targets = gaussian_data(seed=4, num_examples=400)
    y_pred = predictions(mean, 1.5 * sigma**2)
    weights = np.tile([0.0, 1.0, 2.0, 1.0], 100)
    repeated = np.repeat(np.arange(400), weights.astype(int))
    for make in (QuantileCalibrationError, IntervalCoverage, GaussianNegativeLogLikelihood,
                 lambda: ExpectedNormalizedCalibrationError(num_bins=3)):
        assert result_of(make(), targets, y_pred, weights) == pytest.approx(
            result_of(make(), targets[repeated], y_pred[repeated]), abs=1e-5)


def test_interval_bounds_from_a_quantile_model():
    targets = np.array([0.5, 1.0, 2.5, -1.0, 0.0])
    bounds = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 2.0], [1.0, 0.0]])
    # Covered: 0.5, 1.0 (on the bound); not 2.5, -1.0, nor 0.0 in a crossed interval.
    metric = IntervalCoverage(0.9, output="bounds")
    assert result_of(metric, targets, bounds) == pytest.approx(0.4)
    assert float(metric.mean_width()) == pytest.approx((1 + 1 + 2 + 2 + 0) / 5)
    assert regression.interval_coverage(targets, bounds, output="bounds") == pytest.approx(0.4)
    gap = IntervalCoverageError(0.9, output="bounds")
    gap.update_state(targets, bounds)
    assert float(gap.result()) == pytest.approx(0.5)
    assert float(gap.signed_gap()) == pytest.approx(-0.5)


def test_bins_and_curve_describe_the_state():
    mean, sigma, targets = gaussian_data(seed=5, num_examples=400)
    ence = ExpectedNormalizedCalibrationError(num_bins=4)
    ence.update_state(targets, predictions(mean, 4.0 * sigma**2))
    bins = ence.bin_statistics()
    assert bins["count"].sum() == pytest.approx(400)
    assert np.all(np.abs(bins["count"] - 100) <= 2)
    assert np.all(bins["lower"][1:] >= bins["upper"][:-1] * (1 - 1e-9))
    # Variances 4x too large: RMV is twice the RMSE, up to sampling noise.
    np.testing.assert_allclose(bins["rmv"] / bins["rmse"], 2.0, rtol=0.2)
    per_bin = np.abs(bins["rmv"] - bins["rmse"]) / bins["rmv"]
    assert float(ence.result()) == pytest.approx(per_bin.mean(), abs=1e-5)
    qce = QuantileCalibrationError(num_levels=9)
    qce.update_state(targets, predictions(mean, sigma**2))
    curve = qce.calibration_curve()
    np.testing.assert_allclose(curve["expected"], np.arange(1, 10) / 10, atol=1e-7)
    assert np.all(np.diff(curve["observed"]) >= 0) and curve["count"] == 400
    assert float(qce.result()) == pytest.approx(
        np.mean(np.abs(curve["observed"] - curve["expected"])), abs=1e-6)


def test_configs_round_trip_and_results_agree():
    mean, sigma, targets = gaussian_data(seed=6, num_examples=400)
    y_pred = predictions(mean, sigma**2)
    metrics = make_metrics() + [
        ExpectedNormalizedCalibrationError(std_range=(1e-3, 1e3), num_histogram_bins=500,
                                           spread="std", name="ence_std"),
        IntervalCoverage(0.5, output="bounds", name="bounds"),
    ]
    for metric in metrics:
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric)
        assert restored.get_config() == metric.get_config()
        if metric.name != "bounds":
            assert result_of(restored, targets, y_pred) == pytest.approx(
                result_of(metric, targets, y_pred), abs=1e-6)
    assert QuantileCalibrationError()._direction == "down"


def identity_model(width):
    return keras.Sequential([keras.Input((width,)), keras.layers.Identity()])


def zero_loss(y_true, y_pred):
    return keras.ops.sum(y_pred, axis=-1) * 0.0


def test_in_a_compiled_evaluate_the_metrics_equal_eager():
    mean, sigma, targets = gaussian_data(seed=7, num_examples=400)
    y_pred = predictions(mean, 2.0 * sigma**2)
    weights = np.random.default_rng(7).uniform(0.5, 2.0, size=400)
    model = identity_model(2)
    model.compile(loss=zero_loss, weighted_metrics=make_metrics())
    compiled = model.evaluate(y_pred, targets, sample_weight=weights, batch_size=200, verbose=0,
                              return_dict=True)
    for metric in make_metrics():
        assert compiled[metric.name] == pytest.approx(
            result_of(metric, targets, y_pred, weights), abs=1e-5), metric.name


def test_invalid_predictions_are_rejected_eagerly():
    with pytest.raises(ValueError, match="variance of -1 at prediction 1"):
        GaussianNegativeLogLikelihood().update_state([0.0, 1.0], [[0.0, 1.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="targets must be finite"):
        IntervalCoverage().update_state([np.nan, 1.0], [[0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="NaN or Inf at prediction 0"):
        QuantileCalibrationError(spread="log_variance").update_state([0.0], [[0.0, np.inf]])
    with pytest.raises(ValueError, match="even number"):
        ExpectedNormalizedCalibrationError().update_state([0.0], [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"must have shape \(3, 2\)"):
        GaussianNegativeLogLikelihood().update_state(np.zeros((3, 3)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="positive"):
        regression.gaussian_negative_log_likelihood([0.0], [[0.0, 0.0]], spread="std")
    # A log-variance may be negative.
    assert math.isfinite(result_of(GaussianNegativeLogLikelihood(spread="log_variance"),
                                   [0.0], [[0.0, -3.0]]))


def test_invalid_predictions_in_a_compiled_step_give_nan_with_a_warning():
    y_pred = np.tile([[0.0, 1.0]], (80, 1)).astype("float32")
    y_pred[5, 1] = -1.0
    model = identity_model(2)
    model.compile(loss=zero_loss, metrics=[GaussianNegativeLogLikelihood(), IntervalCoverage()])
    if BACKEND == "torch":  # the torch trainer runs metrics eagerly
        with pytest.raises(ValueError, match="prediction 5"):
            model.evaluate(y_pred, np.zeros(80), batch_size=40, verbose=0)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = model.evaluate(y_pred, np.zeros(80), batch_size=40, verbose=0, return_dict=True)
    assert math.isnan(results["gaussian_nll"]) and math.isnan(results["coverage"])
    assert any("1 prediction(s) whose variance" in str(warning.message) for warning in caught)


def test_options_are_validated():
    with pytest.raises(ValueError, match="spread"):
        GaussianNegativeLogLikelihood(spread="sigma")
    with pytest.raises(ValueError, match="level"):
        IntervalCoverage(level=1.0)
    with pytest.raises(ValueError, match="output"):
        IntervalCoverage(output="quantiles")
    with pytest.raises(ValueError, match="std_range"):
        ExpectedNormalizedCalibrationError(std_range=(1.0, 0.1))
    with pytest.raises(ValueError, match="num_levels"):
        QuantileCalibrationError(num_levels=0)
    with pytest.raises(ValueError, match="norm"):
        QuantileCalibrationError(norm="l3")
