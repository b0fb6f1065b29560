"""NLL and Brier score: hand-computed values, a NumPy reference on random
data, logits against probabilities, and validation shared with the
calibration metrics."""

import math

import keras
import numpy as np
import pytest

from keras_noisewarm.metrics import BrierScore
from keras_noisewarm.metrics import NegativeLogLikelihood


def result_of(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(metric.result())


def random_logits(seed, num_examples=240, num_classes=10):
    rng = np.random.default_rng(seed)
    logits = (3 * rng.normal(size=(num_examples, num_classes))).astype("float32")
    labels = rng.integers(0, num_classes, size=num_examples)
    weights = rng.uniform(0.0, 2.0, size=num_examples)
    return logits, labels, weights


def numpy_softmax(logits):
    logits = logits.astype("float64")
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_nll_and_brier_as_computed_by_hand():
    # NLL: -(log 0.5 + log 0.25) / 2 = (0.693147 + 1.386294) / 2.
    nll = result_of(NegativeLogLikelihood(), [0, 1], [[0.5, 0.5], [0.75, 0.25]])
    assert nll == pytest.approx((math.log(2) + math.log(4)) / 2, abs=1e-6)
    # Brier: (0.2^2 + 0.2^2 + (0.6^2 + 0.6^2)) / 2 = (0.08 + 0.72) / 2 = 0.4.
    brier = result_of(BrierScore(), [0, 1], [[0.8, 0.2], [0.6, 0.4]])
    assert brier == pytest.approx(0.4, abs=1e-6)


def test_sigmoid_output_gives_binary_cross_entropy_and_binary_brier():
    # p = 0.8 with y = 1 and p = 0.4 with y = 0:
    # NLL = -(log 0.8 + log 0.6) / 2; Brier = (0.2^2 + 0.4^2) / 2 = 0.1.
    p = np.array([[0.8], [0.4]], "float32")
    assert result_of(NegativeLogLikelihood(), [1, 0], p) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2, abs=1e-6
    )
    assert result_of(BrierScore(), [1, 0], p) == pytest.approx(0.1, abs=1e-6)
    logit = np.log(p / (1 - p))
    assert result_of(BrierScore(from_logits=True), [1, 0], logit) == pytest.approx(0.1, abs=1e-6)


def test_weighted_scores_equal_the_numpy_reference():
    logits, labels, weights = random_logits(seed=0)
    probabilities = numpy_softmax(logits)
    is_label = np.eye(10)[labels]
    expected_nll = np.sum(weights * -np.log(probabilities[np.arange(240), labels])) / weights.sum()
    expected_brier = np.sum(weights * ((probabilities - is_label) ** 2).sum(-1)) / weights.sum()
    for from_logits, y_pred in ((True, logits), (False, probabilities.astype("float32"))):
        nll = NegativeLogLikelihood(from_logits=from_logits)
        brier = BrierScore(from_logits=from_logits)
        for start in (0, 80, 160):
            batch = slice(start, start + 80)
            nll.update_state(labels[batch], y_pred[batch], weights[batch])
            brier.update_state(labels[batch], y_pred[batch], weights[batch])
        assert float(nll.result()) == pytest.approx(expected_nll, abs=1e-5)
        assert float(brier.result()) == pytest.approx(expected_brier, abs=1e-6)


def test_nll_from_logits_stays_exact_where_softmax_underflows():
    # Logits (0, 200): the softmax of class 0 underflows to 0 in float32, yet
    # -log p(0) = 200 + log(1 + e^-200) = 200.
    nll = result_of(NegativeLogLikelihood(from_logits=True), [0], [[0.0, 200.0]])
    assert nll == pytest.approx(200.0, rel=1e-6)
    # From probabilities the score is clipped at -log(epsilon), like Keras.
    clipped = result_of(NegativeLogLikelihood(), [0], [[0.0, 1.0]])
    assert clipped == pytest.approx(-math.log(keras.backend.epsilon()), rel=1e-5)


def test_one_hot_and_sparse_labels_give_the_same_scores():
    logits, labels, weights = random_logits(seed=1)
    one_hot = np.eye(10, dtype="float32")[labels]
    for metric_class in (NegativeLogLikelihood, BrierScore):
        sparse = result_of(metric_class(from_logits=True), labels, logits, weights)
        dense = result_of(metric_class(from_logits=True, sparse_y_true=False), one_hot, logits, weights)
        assert sparse == pytest.approx(dense, abs=1e-6)


def test_reset_state_and_config_round_trip():
    logits, labels, _ = random_logits(seed=2)
    for metric in (NegativeLogLikelihood(from_logits=True), BrierScore(from_logits=True)):
        first = result_of(metric, labels, logits)
        metric.reset_state()
        assert float(metric.result()) == 0.0
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert restored.get_config() == metric.get_config()
        assert result_of(restored, labels, logits) == pytest.approx(first, abs=1e-6)
        assert restored._direction == "down"


def test_invalid_inputs_are_rejected_like_the_calibration_metrics():
    with pytest.raises(ValueError, match="label 4"):
        NegativeLogLikelihood().update_state([0, 4], [[0.5, 0.5]] * 2)
    with pytest.raises(ValueError, match="from_logits=True"):
        BrierScore(from_logits=False).update_state([0, 1], [[2.0, 1.0]] * 2)
    with pytest.raises(ValueError, match="NaN or Inf"):
        BrierScore(from_logits=True).update_state([0, 1], [[np.nan, 1.0]] * 2)
