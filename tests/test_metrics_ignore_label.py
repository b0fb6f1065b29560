"""`ignore_label` of the classification metrics: the predictions of ignored
labels (the 255 of a segmentation mask, the padding of a sequence) weigh 0,
are never checked nor counted as invalid, eagerly and in a compiled
`evaluate`, for per-pixel `(batch, H, W, K)` and per-position outputs."""

import math
import warnings

import keras
import numpy as np
import pytest

from keras_noisewarm.metrics import AdaptiveCalibrationError
from keras_noisewarm.metrics import BrierScore
from keras_noisewarm.metrics import ClasswiseCalibrationError
from keras_noisewarm.metrics import DebiasedL2CalibrationError
from keras_noisewarm.metrics import ExpectedCalibrationError
from keras_noisewarm.metrics import MaximumCalibrationError
from keras_noisewarm.metrics import NegativeLogLikelihood

IGNORE = 255
METRIC_CLASSES = [
    ExpectedCalibrationError,
    MaximumCalibrationError,
    AdaptiveCalibrationError,
    DebiasedL2CalibrationError,
    lambda **kwargs: ClasswiseCalibrationError(3, **kwargs),
    NegativeLogLikelihood,
    BrierScore,
]


def segmentation_maps(seed=0, batch=4, size=6, num_classes=3):
    """Per-pixel probabilities and labels; a border of ignored pixels whose
    predictions are garbage (NaN, values that are no probabilities)."""
    rng = np.random.default_rng(seed)
    logits = 2.0 * rng.normal(size=(batch, size, size, num_classes))
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, num_classes, size=(batch, size, size))
    labels[:, 0, :] = IGNORE
    labels[:, :, -1] = IGNORE
    probabilities[:, 0, :] = 5.0
    probabilities[:, 0, 0] = np.nan
    return probabilities.astype("float32"), labels


def kept(probabilities, labels, weights=None):
    """The non-ignored pixels as rows: what the metric must measure."""
    mask = labels != IGNORE
    rows = (labels[mask], probabilities[mask])
    return rows if weights is None else rows + (np.broadcast_to(weights, labels.shape)[mask],)


def result_of(metric, *arguments):
    metric.update_state(*arguments)
    return float(metric.result())


def test_ignored_pixels_leave_every_metric_as_if_they_were_not_there():
    probabilities, labels = segmentation_maps()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=(4, 6, 6))
    kept_labels, kept_probabilities, kept_weights = kept(probabilities, labels, weights)
    for make in METRIC_CLASSES:
        ignoring = make(ignore_label=IGNORE)
        value = result_of(ignoring, labels, probabilities, weights)
        assert math.isfinite(value)
        assert value == pytest.approx(
            result_of(make(), kept_labels, kept_probabilities, kept_weights), abs=1e-6
        ), ignoring.name


def test_padding_inside_the_class_range_is_ignored_in_next_token_logits():
    # A language model's next-token logits (batch, length, vocabulary); label
    # 0 is the padding after each sequence's end.
    rng = np.random.default_rng(2)
    logits = (2.0 * rng.normal(size=(3, 8, 5))).astype("float32")
    labels = rng.integers(1, 5, size=(3, 8))
    labels[0, 5:] = 0
    labels[2, 2:] = 0
    mask = labels != 0
    for make in (ExpectedCalibrationError, NegativeLogLikelihood):
        value = result_of(make(from_logits=True, ignore_label=0), labels, logits)
        assert value == pytest.approx(
            result_of(make(from_logits=True), labels[mask], logits[mask]), abs=1e-6)


def zero_loss(y_true, y_pred):
    return keras.ops.sum(y_pred, axis=-1) * 0.0


def test_compiled_evaluate_of_maps_with_ignored_pixels_equals_eager():
    probabilities, labels = segmentation_maps(seed=3, batch=8)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Identity()])
    model.compile(loss=zero_loss, metrics=[make(ignore_label=IGNORE) for make in METRIC_CLASSES])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = model.evaluate(probabilities, labels, batch_size=4, verbose=0, return_dict=True)
    assert not [w for w in caught if "invalid inputs" in str(w.message)]
    kept_labels, kept_probabilities = kept(probabilities, labels)
    for make in METRIC_CLASSES:
        metric = make()
        expected = result_of(metric, kept_labels, kept_probabilities)
        assert compiled[metric.name] == pytest.approx(expected, abs=1e-5), metric.name


def test_labels_out_of_range_that_are_not_ignored_still_count():
    probabilities, labels = segmentation_maps(seed=4)
    labels[1, 3, 2] = 7
    with pytest.raises(ValueError, match=r"label 7 at row 56\b"):  # 36 + 3 * 6 + 2
        ExpectedCalibrationError(ignore_label=IGNORE).update_state(labels, probabilities)
    probabilities[2, 2, 2] = [0.5, 0.5, 0.5]
    labels[1, 3, 2] = 0
    # Detected: the ignored 5.0s do not make the map read as logits.
    with pytest.raises(ValueError, match=r"Cannot tell .* \(row 86\)"):  # 72 + 2 * 6 + 2
        NegativeLogLikelihood(ignore_label=IGNORE).update_state(labels, probabilities)
    with pytest.raises(ValueError, match=r"row 86 of y_pred sum to 1.5"):
        BrierScore(from_logits=False, ignore_label=IGNORE).update_state(labels, probabilities)
    # Without ignore_label, the border itself is an error.
    with pytest.raises(ValueError, match="NaN or Inf"):
        ExpectedCalibrationError().update_state(labels, probabilities)


def test_ignore_label_is_validated_and_kept_in_the_config():
    with pytest.raises(ValueError, match="integer labels"):
        ExpectedCalibrationError(ignore_label=255, sparse_y_true=False)
    with pytest.raises(ValueError, match="ignore_label"):
        BrierScore(ignore_label=0.5)
    for make in METRIC_CLASSES:
        metric = make(ignore_label=-1)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert restored.ignore_label == -1
        assert restored.get_config() == metric.get_config()
    assert ExpectedCalibrationError().get_config()["ignore_label"] is None
