"""The per-label calibration error of multi-label (independent sigmoid) models."""

import keras
import numpy as np
import pytest
from scipy import special

from keras_noisewarm.metrics import ExpectedCalibrationError
from keras_noisewarm.metrics import MultiLabelCalibrationError

NUM_LABELS = 5


def reference_per_label(labels, probabilities, weights, num_bins=15):
    """Each label's positive-class ECE from the definition, in float64."""
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    errors = []
    for k in range(labels.shape[1]):
        p, y = probabilities[:, k].astype("float64"), labels[:, k]
        bins = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, num_bins - 1)
        total = weights.sum()
        error = 0.0
        for b in range(num_bins):
            inside = bins == b
            if weights[inside].sum() > 0:
                w = weights[inside]
                error += abs(np.sum(w * y[inside]) - np.sum(w * p[inside])) / total
        errors.append(error)
    return np.array(errors)


def random_batch(seed, rows=400):
    rng = np.random.default_rng(seed)
    # Label k is 1 with a rate of its own; the model is off by a label-wise bias.
    rates = np.linspace(0.05, 0.6, NUM_LABELS)
    labels = (rng.random((rows, NUM_LABELS)) < rates).astype("float32")
    logits = special.logit(rates) + rng.normal(0.0, 1.0, (rows, NUM_LABELS)) + np.arange(NUM_LABELS) * 0.3
    return labels, logits.astype("float32"), rng.uniform(0.5, 2.0, rows).astype("float32")


@pytest.mark.parametrize("seed", [0, 1])
def test_per_label_macro_and_micro_equal_the_reference(seed):
    labels, logits, weights = random_batch(seed)
    probabilities = special.expit(logits.astype("float64")).astype("float32")
    expected = reference_per_label(labels, probabilities, weights)
    macro = MultiLabelCalibrationError(NUM_LABELS)
    for start in range(0, len(labels), 128):  # streamed in uneven batches
        part = slice(start, start + 128)
        macro.update_state(labels[part], probabilities[part], sample_weight=weights[part])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(macro.per_label()), expected, atol=1e-5)
    np.testing.assert_allclose(float(macro.result()), expected.mean(), atol=1e-5)

    from_logits = MultiLabelCalibrationError(NUM_LABELS, from_logits=True)
    from_logits.update_state(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(float(from_logits.result()), expected.mean(), atol=1e-5)

    micro = MultiLabelCalibrationError(NUM_LABELS, average="micro")
    micro.update_state(labels, probabilities, sample_weight=weights)
    pooled = ExpectedCalibrationError(binary_confidence="positive_class")
    pooled.update_state(labels, probabilities[..., None], sample_weight=weights)
    np.testing.assert_allclose(float(micro.result()), float(pooled.result()), atol=1e-6)
    assert abs(float(micro.result()) - float(macro.result())) > 1e-3  # they do differ


def test_top_label_reads_each_label_as_a_binary_classifier():
    labels, logits, weights = random_batch(5)
    probabilities = special.expit(logits.astype("float64")).astype("float32")
    metric = MultiLabelCalibrationError(NUM_LABELS, confidence="top_label")
    metric.update_state(labels, probabilities, sample_weight=weights)
    for k, value in enumerate(keras.ops.convert_to_numpy(metric.per_label())):
        # Each label alone, as a two-class softmax, by the top-label ECE.
        two_class = np.stack([1.0 - probabilities[:, k], probabilities[:, k]], axis=-1)
        ece = ExpectedCalibrationError()
        ece.update_state(labels[:, k], two_class, sample_weight=weights)
        np.testing.assert_allclose(value, float(ece.result()), atol=1e-5)


def test_a_calibrated_label_scores_near_zero_and_a_biased_one_does_not():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.0, 1.0, (20_000, 2)).astype("float32")
    labels = (rng.random((20_000, 2)) < p).astype("float32")
    labels[:, 1] = (rng.random(20_000) < p[:, 1] * 0.5).astype("float32")  # half as often as said
    metric = MultiLabelCalibrationError(2)
    metric.update_state(labels, p)
    calibrated, biased = keras.ops.convert_to_numpy(metric.per_label())
    assert calibrated < 0.02
    assert biased == pytest.approx(0.25, abs=0.02)  # E|p - p/2| for p uniform


def test_it_logs_in_fit_and_evaluate_like_computed_directly():
    labels, logits, _ = random_batch(4, rows=256)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((NUM_LABELS,)), keras.layers.Dense(NUM_LABELS, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[MultiLabelCalibrationError(NUM_LABELS)])
    model.fit(logits, labels, batch_size=64, epochs=1, verbose=0)
    logged = model.evaluate(logits, labels, batch_size=64, verbose=0, return_dict=True)["multi_label_ece"]
    direct = MultiLabelCalibrationError(NUM_LABELS)
    direct.update_state(labels, model.predict(logits, verbose=0))
    np.testing.assert_allclose(logged, float(direct.result()), atol=1e-5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="num_labels"):
        MultiLabelCalibrationError(0)
    with pytest.raises(ValueError, match="average"):
        MultiLabelCalibrationError(3, average="weighted")
    with pytest.raises(ValueError, match="confidence"):
        MultiLabelCalibrationError(3, confidence="mean")
    with pytest.raises(ValueError, match="from_logits"):
        MultiLabelCalibrationError(3, from_logits=None)
    metric = MultiLabelCalibrationError(3)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        metric.update_state(np.zeros((4, 2)), np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        metric.update_state(np.zeros((4,)), np.full((4, 3), 0.5))
    with pytest.raises(ValueError):
        metric.update_state(np.full((4, 3), 2.0), np.full((4, 3), 0.5))  # labels must be 0 or 1
    with pytest.raises(ValueError):
        metric.update_state(np.zeros((4, 3)), np.full((4, 3), 1.5))  # not probabilities


def test_config_round_trips():
    metric = MultiLabelCalibrationError(4, num_bins=7, average="micro", confidence="top_label",
                                        from_logits=True, name="mlece")
    clone = MultiLabelCalibrationError.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    assert (clone.num_labels, clone.num_bins, clone.average, clone.confidence, clone.from_logits) == (
        4, 7, "micro", "top_label", True)
