"""Selective prediction: exact NumPy functions and the streaming Keras metrics."""

import doctest
import itertools

import keras
import numpy as np
import pytest
from scipy import special

from keras_noisewarm import metrics
from keras_noisewarm import plot
from keras_noisewarm import selective
from keras_noisewarm.metrics import selective as selective_metrics


def _outputs(confidences, errors):
    """Two-class probabilities with these top-label confidences and errors.

    Confidence c > 0.5 on class 0; the label is 0 where the prediction is
    right and 1 where it is wrong.
    """
    confidences = np.asarray(confidences, dtype="float64")
    probabilities = np.stack([confidences, 1.0 - confidences], axis=1)
    return probabilities, np.asarray(errors, dtype="int64")


def _naive_aurc(confidences, errors):
    """Sort (no ties), then the mean of the cumulative error rates."""
    order = np.argsort(-np.asarray(confidences), kind="stable")
    errors = np.asarray(errors, dtype="float64")[order]
    return np.mean(np.cumsum(errors) / np.arange(1, len(errors) + 1))


def _aurc_over_every_order(confidences, errors):
    """The mean AURC over every ranking consistent with the confidences."""
    confidences, errors = np.asarray(confidences), np.asarray(errors, dtype="float64")
    values = []
    for order in itertools.permutations(range(len(confidences))):
        ranked = confidences[list(order)]
        if np.all(ranked[:-1] >= ranked[1:]):
            values.append(np.mean(np.cumsum(errors[list(order)])
                                  / np.arange(1, len(order) + 1)))
    return float(np.mean(values))


def test_hand_checked_edges():
    # All right: no risk anywhere.
    probabilities, labels = _outputs([0.9, 0.7, 0.6], [0, 0, 0])
    assert selective.aurc(labels, probabilities) == 0.0
    assert selective.excess_aurc(labels, probabilities) == 0.0
    # One tie of a right and a wrong answer: orders (right, wrong) give risks
    # 0, 1/2 and (wrong, right) 1, 1/2; the expected AURC is 1/2.
    probabilities, labels = _outputs([0.9, 0.9], [0, 1])
    assert selective.aurc(labels, probabilities) == pytest.approx(0.5)
    coverage, risk = selective.risk_coverage_curve(labels, probabilities)
    np.testing.assert_allclose(coverage, [0.5, 1.0])
    np.testing.assert_allclose(risk, [0.5, 0.5])
    # Every confidence equal: the risk is the error rate at every coverage.
    probabilities, labels = _outputs([0.7] * 5, [1, 0, 0, 1, 0])
    assert selective.aurc(labels, probabilities) == pytest.approx(0.4)
    # The perfect ranking of 1 error among 3: risks 0, 0, 1/3.
    assert selective.optimal_aurc(1, 3) == pytest.approx(1 / 9)
    assert selective.optimal_aurc(0, 4) == 0.0
    assert selective.optimal_aurc(4, 4) == 1.0
    # All wrong: AURC 1 and, the ranking being irrelevant, E-AURC 0.
    probabilities, labels = _outputs([0.9, 0.6], [1, 1])
    assert selective.aurc(labels, probabilities) == 1.0
    assert selective.excess_aurc(labels, probabilities) == 0.0


def test_aurc_is_the_mean_over_tied_orders():
    rng = np.random.default_rng(0)
    for _ in range(6):
        confidences = rng.choice([0.55, 0.7, 0.9], size=7)
        errors = rng.integers(0, 2, size=7)
        probabilities, labels = _outputs(confidences, errors)
        assert selective.aurc(labels, probabilities) == pytest.approx(
            _aurc_over_every_order(confidences, errors), abs=1e-12)


def test_without_ties_aurc_and_excess_are_the_sorted_sums():
    rng = np.random.default_rng(1)
    confidences = rng.uniform(0.5, 1.0, size=300)
    errors = (rng.uniform(size=300) > confidences).astype(int)
    probabilities, labels = _outputs(confidences, errors)
    naive = _naive_aurc(confidences, errors)
    assert selective.aurc(labels, probabilities) == pytest.approx(naive, abs=1e-12)
    perfect = _naive_aurc(1.0 - errors + 1e-3 * rng.uniform(size=300), errors)
    assert selective.optimal_aurc(errors.sum(), 300) == pytest.approx(perfect, abs=1e-12)
    assert selective.excess_aurc(labels, probabilities) == pytest.approx(naive - perfect,
                                                                         abs=1e-12)


def test_selective_accuracy_keeps_the_most_confident():
    rng = np.random.default_rng(2)
    confidences = rng.uniform(0.5, 1.0, size=200)
    errors = (rng.uniform(size=200) > confidences).astype(int)
    probabilities, labels = _outputs(confidences, errors)
    order = np.argsort(-confidences)
    for coverage in (0.1, 0.35, 0.8, 1.0):
        kept = int(coverage * 200)
        expected = 1.0 - errors[order[:kept]].mean()
        assert selective.selective_accuracy(labels, probabilities, coverage) == pytest.approx(
            expected, abs=1e-12)
    # Between two positions the error count is interpolated: 1.5 positions
    # of (right, wrong) hold 0.5 errors.
    probabilities, labels = _outputs([0.9, 0.8, 0.7], [0, 1, 0])
    assert selective.risk_at_coverage(labels, probabilities, 0.5) == pytest.approx(0.5 / 1.5)
    with pytest.raises(ValueError, match="coverage"):
        selective.selective_accuracy(labels, probabilities, 0.0)


def test_logits_and_one_hot_labels_read_like_probabilities():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(50, 4)) * 2
    labels = rng.integers(0, 4, size=50)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    one_hot = np.eye(4)[labels]
    assert selective.aurc(labels, logits) == pytest.approx(selective.aurc(one_hot, probabilities))
    with pytest.raises(ValueError, match="shape"):
        selective.aurc(labels, logits[:, :1])


def test_harmonic_difference_is_the_digamma_difference():
    before = np.array([0.0, 0.0, 1.0, 3.5, 10.0, 999.0, 123456.0, 1e6], dtype="float32")
    count = np.array([1.0, 7.0, 2.0, 0.25, 100.0, 1.0, 5000.0, 3.0], dtype="float32")
    got = keras.ops.convert_to_numpy(selective_metrics.harmonic_difference(
        keras.ops.convert_to_tensor(before), keras.ops.convert_to_tensor(count)))
    expected = special.digamma(before.astype("float64") + count + 1) - special.digamma(
        before.astype("float64") + 1)
    np.testing.assert_allclose(got, expected, rtol=2e-6)
    assert got[1] == pytest.approx(sum(1 / j for j in range(1, 8)), rel=1e-6)


# Every streamed batch has this many rows: under JAX each new batch shape
# compiles the metric's ops again, which costs far more than the arithmetic.
BATCH = 120


def _streamed(metric, labels, probabilities, sample_weight=None):
    """Streams the rows in batches of `BATCH`, the last one padded with weight 0."""
    metric.reset_state()
    count = len(labels)
    weights = np.ones(count, "float32") if sample_weight is None else sample_weight
    padding = -count % BATCH
    labels = np.concatenate([labels, np.zeros(padding, labels.dtype)])
    probabilities = np.concatenate([probabilities, np.full((padding, 2), 0.5)])
    weights = np.concatenate([weights, np.zeros(padding, "float32")])
    for start in range(0, len(labels), BATCH):
        part = slice(start, start + BATCH)
        metric.update_state(labels[part], probabilities[part].astype("float32"),
                            sample_weight=weights[part])
    return float(metric.result())


def test_metrics_are_exact_when_each_bin_holds_tied_confidences():
    # Confidences at bin centres of 100 bins, with ties: the histogram ranks
    # exactly as the exact functions do.
    rng = np.random.default_rng(4)
    confidences = (rng.integers(50, 100, size=360) + 0.5) / 100
    errors = (rng.uniform(size=360) > confidences).astype(int)
    probabilities, labels = _outputs(confidences, errors)
    aurc = metrics.AreaUnderRiskCoverageCurve(num_bins=100)
    assert _streamed(aurc, labels, probabilities) == pytest.approx(
        selective.aurc(labels, probabilities), abs=2e-6)
    # (The bound still allows for other orders inside the bins: it is not 0.)
    assert aurc.error_bound() > 0.0
    excess = metrics.ExcessAreaUnderRiskCoverageCurve(num_bins=100)
    assert _streamed(excess, labels, probabilities) == pytest.approx(
        selective.excess_aurc(labels, probabilities), abs=2e-6)
    for coverage in (0.05, 0.5, 0.77, 1.0):
        accuracy = metrics.SelectiveAccuracy(coverage=coverage, num_bins=100)
        assert _streamed(accuracy, labels, probabilities) == pytest.approx(
            selective.selective_accuracy(labels, probabilities, coverage), abs=2e-6)
    coverage, risk = aurc.curve()
    assert coverage[-1] == 1.0 and risk[-1] == pytest.approx(errors.mean())


@pytest.mark.parametrize("num_bins", [20, 10_000])
def test_streaming_error_stays_within_its_bound(num_bins):
    # Continuous confidences of a model-like classifier: many distinct values
    # share a bin when the bins are coarse.
    rng = np.random.default_rng(5)
    confidences = 1.0 - 0.5 * rng.beta(0.6, 2.0, size=3000)  # crowded near 1
    errors = (rng.uniform(size=3000) > confidences ** 2).astype(int)
    probabilities, labels = _outputs(confidences, errors)
    metric = metrics.AreaUnderRiskCoverageCurve(num_bins=num_bins)
    streamed = _streamed(metric, labels, probabilities)
    bound = metric.error_bound()
    assert abs(streamed - selective.aurc(labels, probabilities)) <= bound + 1e-6
    excess = metrics.ExcessAreaUnderRiskCoverageCurve(num_bins=num_bins)
    assert abs(_streamed(excess, labels, probabilities)
               - selective.excess_aurc(labels, probabilities)) <= bound + 1e-6
    if num_bins == 10_000:
        # The documented default is fine enough for 3,000 predictions.
        assert bound < 2e-3
    else:
        assert bound > 1e-3  # coarse bins: the bound says so


def test_sample_weights_count_as_repeated_predictions():
    rng = np.random.default_rng(6)
    confidences = rng.uniform(0.5, 1.0, size=100)
    errors = (rng.uniform(size=100) > confidences).astype(int)
    probabilities, labels = _outputs(confidences, errors)
    weights = rng.integers(1, 4, size=100).astype("float32")
    repeated = np.repeat(np.arange(100), weights.astype(int))
    for metric in (metrics.AreaUnderRiskCoverageCurve(), metrics.SelectiveAccuracy(0.6),
                   metrics.ExcessAreaUnderRiskCoverageCurve()):
        weighted = _streamed(metric, labels, probabilities, sample_weight=weights)
        copied = _streamed(metric, labels[repeated], probabilities[repeated])
        assert weighted == pytest.approx(copied, abs=2e-6)


def test_metrics_inside_evaluate_match_numpy_and_serialise():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[metrics.AreaUnderRiskCoverageCurve(from_logits=True),
                           metrics.SelectiveAccuracy(0.5, from_logits=True)])
    rng = np.random.default_rng(7)
    x = rng.normal(size=(256, 5)).astype("float32")
    y = rng.integers(0, 3, size=256)
    values = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    logits = model.predict(x, verbose=0)
    assert values["aurc"] == pytest.approx(selective.aurc(y, logits), abs=2e-3)
    assert values["selective_accuracy"] == pytest.approx(
        selective.selective_accuracy(y, logits, 0.5), abs=1e-2)
    for metric in (metrics.AreaUnderRiskCoverageCurve(num_bins=30),
                   metrics.ExcessAreaUnderRiskCoverageCurve(from_logits=True)):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric) and restored.get_config() == metric.get_config()
    config = metrics.SelectiveAccuracy(0.3, num_bins=50).get_config()
    assert metrics.SelectiveAccuracy.from_config(config).coverage == 0.3
    with pytest.raises(ValueError, match="coverage"):
        metrics.SelectiveAccuracy(1.5)


def test_empty_state_and_invalid_inputs():
    metric = metrics.AreaUnderRiskCoverageCurve()
    assert float(metric.result()) == 0.0 and metric.error_bound() == 0.0
    with pytest.raises(ValueError):
        metric.update_state([0, 5], [[0.9, 0.1], [0.2, 0.8]])


def test_risk_coverage_plot_shows_the_aurc():
    probabilities, labels = _outputs([0.9, 0.8, 0.7, 0.6], [0, 1, 0, 1])
    figure = plot.risk_coverage_plot(labels, probabilities, label="model")
    texts = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert texts[0] == f"model, AURC = {selective.aurc(labels, probabilities):.4f}"
    assert texts[1].startswith("perfect ranking")
    plot.pyplot().close(figure)


def test_docstring_examples():
    for module in (selective, selective_metrics):
        assert doctest.testmod(module).failed == 0
