"""Calibration metrics: exact values by hand, agreement with a plain NumPy
reference on random data whatever the batch split, compiled steps, saving,
and input validation.

The eager JAX backend compiles every operation once per new input shape
(about a second per metric), so the random cases reuse a few shapes.
"""

import math

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

BACKEND = keras.backend.backend()


def result_of(metric, y_true, y_pred, sample_weight=None):
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return float(metric.result())


def sigmoid_column(probabilities):
    return np.asarray(probabilities, "float32").reshape(-1, 1)


# ----------------------------------------------------------------------------
# A plain NumPy reference, written from the documented definitions: bins
# [edge_b, edge_b+1) with the last one closed, edges float32(k / num_bins),
# confidences compared in float32, sums in float64.


def reference_edges(num_bins):
    return np.array([np.float32(k / num_bins) for k in range(num_bins + 1)])


def reference_bin_members(confidences, num_bins):
    edges = reference_edges(num_bins)
    members = []
    for b in range(num_bins):
        if b == num_bins - 1:
            below_upper = confidences <= edges[b + 1]
        else:
            below_upper = confidences < edges[b + 1]
        members.append((confidences >= edges[b]) & below_upper)
    return members


def reference_top_label(probabilities, labels):
    probabilities = np.asarray(probabilities, "float32")
    confidences = probabilities.max(axis=-1)
    correct = (probabilities.argmax(axis=-1) == labels).astype("float64")
    return confidences, correct


def reference_error(confidences, correct, weights, members, norm="l1", centers=None):
    total = weights.sum()
    counts, gaps = [], []
    for b, in_bin in enumerate(members):
        count = weights[in_bin].sum()
        if count == 0:
            continue
        accuracy = (weights[in_bin] * correct[in_bin]).sum() / count
        if centers is None:
            confidence = (weights[in_bin] * confidences[in_bin].astype("float64")).sum() / count
        else:
            confidence = centers[b]
        counts.append(count)
        gaps.append(abs(accuracy - confidence))
    counts, gaps = np.array(counts), np.array(gaps)
    if total == 0:
        return 0.0
    if norm == "l1":
        return float((counts * gaps).sum() / total)
    if norm == "l2":
        return float(np.sqrt((counts * gaps**2).sum() / total))
    return float(gaps.max())


def reference_ece(probabilities, labels, weights, num_bins, norm="l1", centers=False):
    confidences, correct = reference_top_label(probabilities, labels)
    edges = reference_edges(num_bins).astype("float64")
    bin_centers = (edges[:-1] + edges[1:]) / 2 if centers else None
    members = reference_bin_members(confidences, num_bins)
    return reference_error(confidences, correct, weights, members, norm, bin_centers)


def reference_adaptive_ece(probabilities, labels, weights, num_bins, num_fine_bins):
    confidences, correct = reference_top_label(probabilities, labels)
    fine_members = reference_bin_members(confidences, num_fine_bins)
    fine_bin = np.argmax(fine_members, axis=0)  # each example is in exactly one
    fine_counts = np.array([weights[in_bin].sum() for in_bin in fine_members])
    middles = np.cumsum(fine_counts) - fine_counts / 2
    group_of_fine_bin = np.minimum(np.floor(middles * num_bins / fine_counts.sum()), num_bins - 1)
    group = group_of_fine_bin[fine_bin]
    members = [group == g for g in range(num_bins)]
    return reference_error(confidences, correct, weights, members)


def reference_debiased_l2(probabilities, labels, weights, num_bins):
    confidences, correct = reference_top_label(probabilities, labels)
    squared = 0.0
    for in_bin in reference_bin_members(confidences, num_bins):
        count = weights[in_bin].sum()
        if count < 2:
            continue
        accuracy = (weights[in_bin] * correct[in_bin]).sum() / count
        confidence = (weights[in_bin] * confidences[in_bin]).sum() / count
        variance = accuracy * (1 - accuracy) / (count - 1)
        squared += count * ((accuracy - confidence) ** 2 - variance)
    return math.sqrt(max(squared / weights.sum(), 0.0))


def reference_classwise(probabilities, labels, weights, num_bins):
    probabilities = np.asarray(probabilities, "float32")
    errors = []
    for k in range(probabilities.shape[-1]):
        confidences = probabilities[:, k]
        is_label = (labels == k).astype("float64")
        members = reference_bin_members(confidences, num_bins)
        errors.append(reference_error(confidences, is_label, weights, members))
    return float(np.mean(errors))


def random_predictions(seed, num_examples, num_classes, sharpness=3.0):
    rng = np.random.default_rng(seed)
    logits = sharpness * rng.normal(size=(num_examples, num_classes))
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    # Labels drawn from a tempered version of the predictions: some bins are
    # well calibrated, others not.
    tempered = np.sqrt(probabilities)
    tempered /= tempered.sum(axis=-1, keepdims=True)
    labels = np.array([rng.choice(num_classes, p=p) for p in tempered])
    weights = rng.uniform(0.0, 2.0, size=num_examples)
    return probabilities.astype("float32"), labels, weights


# ----------------------------------------------------------------------------
# Hand-computed values.


def test_ece_of_the_docstring_example_is_015():
    # Confidences 0.9 (right), 0.6 (wrong), 0.7 (right), 0.8 (right), 5 bins:
    # [0.6, 0.8): acc 1/2, conf 0.65; [0.8, 1]: acc 1, conf 0.85.
    # ECE = 2/4 * 0.15 + 2/4 * 0.15 = 0.15.
    value = result_of(
        ExpectedCalibrationError(num_bins=5),
        [0, 1, 1, 1],
        [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]],
    )
    assert value == pytest.approx(0.15, abs=1e-6)


def test_positive_class_confidences_of_exactly_zero_one_and_an_edge_fall_in_the_documented_bins():
    # 5 bins. p = 0.0 (y=0) and the float32 just below 0.2 (y=0) -> bin 0;
    # p = 0.2 exactly on the edge (y=1) -> bin 1; p = 1.0 (y=1) -> bin 4.
    below_edge = np.nextafter(np.float32(0.2), np.float32(0.0))
    p = sigmoid_column([0.0, below_edge, 0.2, 1.0])
    metric = ExpectedCalibrationError(num_bins=5, binary_confidence="positive_class")
    value = result_of(metric, [0, 0, 1, 1], p)
    np.testing.assert_array_equal(metric.bin_statistics()["count"], [2, 1, 0, 0, 1])
    # bin 0: freq 0, mean p ~0.1 -> gap 0.1 (x2); bin 1: freq 1, p 0.2 ->
    # 0.8; bin 4: freq 1, p 1 -> 0. ECE = (2 * 0.1 + 0.8) / 4 = 0.25.
    assert value == pytest.approx(0.25, abs=1e-6)


def test_top_label_confidence_of_exactly_one_is_counted_in_the_last_bin():
    # [1, 0] label 0: conf 1.0 right; [0, 1] label 0: conf 1.0 wrong;
    # [0.5, 0.5] label 0: conf 0.5, argmax ties to class 0, right.
    # 10 bins: last bin acc 1/2 vs conf 1 -> 0.5 (x2); bin [0.5, 0.6):
    # acc 1 vs 0.5 -> 0.5. ECE = (2 * 0.5 + 0.5) / 3 = 0.5.
    metric = ExpectedCalibrationError(num_bins=10)
    value = result_of(metric, [0, 0, 0], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    counts = metric.bin_statistics()["count"]
    assert counts[9] == 2 and counts[5] == 1 and counts.sum() == 3
    assert value == pytest.approx(0.5, abs=1e-6)


def test_confidence_on_an_interior_edge_starts_the_upper_bin():
    # 0.6 is an edge of 5 bins: [0.6, 0.4] goes to [0.6, 0.8), not [0.4, 0.6).
    metric = ExpectedCalibrationError(num_bins=5)
    result_of(metric, [0], [[0.6, 0.4]])
    np.testing.assert_array_equal(metric.bin_statistics()["count"], [0, 0, 0, 1, 0])


def test_empty_bins_never_set_the_maximum_calibration_error():
    # Both predictions in [0.8, 0.9) of 10 bins, one right: acc 0.5, mean conf
    # 0.82, so MCE = ECE = 0.32. Nine empty bins contribute nothing (the
    # paper's code counts an empty bin as accuracy 0 against its centre).
    y_pred = [[0.81, 0.19], [0.83, 0.17]]
    assert result_of(MaximumCalibrationError(num_bins=10), [0, 1], y_pred) == pytest.approx(0.32, abs=1e-6)
    assert result_of(ExpectedCalibrationError(num_bins=10), [0, 1], y_pred) == pytest.approx(0.32, abs=1e-6)


def test_single_prediction_error_is_its_distance_to_zero_or_one():
    assert result_of(ExpectedCalibrationError(), [0], [[0.7, 0.3]]) == pytest.approx(0.3, abs=1e-6)
    assert result_of(ExpectedCalibrationError(), [1], [[0.7, 0.3]]) == pytest.approx(0.7, abs=1e-6)


def test_all_correct_gives_one_minus_mean_confidence_and_all_wrong_the_mean():
    # Every bin has accuracy 1 (or 0), so sum_b |n_b - s_b| / N = 1 - mean
    # conf (or mean conf), whatever the binning.
    probabilities, _, _ = random_predictions(seed=0, num_examples=240, num_classes=3)
    predicted = probabilities.argmax(axis=-1)
    mean_confidence = probabilities.max(axis=-1).astype("float64").mean()
    right = result_of(ExpectedCalibrationError(), predicted, probabilities)
    wrong = result_of(ExpectedCalibrationError(), (predicted + 1) % 3, probabilities)
    assert right == pytest.approx(1 - mean_confidence, abs=1e-6)
    assert wrong == pytest.approx(mean_confidence, abs=1e-6)


def test_binary_top_label_and_positive_class_differ_as_computed_by_hand():
    # Sigmoid outputs 0.7 and 0.3, both labels 1, 5 bins.
    # Top label: conf 0.7 right (class 1) and 0.7 wrong (class 0), one bin
    #   [0.6, 0.8): acc 0.5 vs 0.7 -> ECE 0.2.
    # Positive class: 0.7 with y=1 -> gap 0.3; 0.3 with y=1 -> gap 0.7;
    #   ECE = (0.3 + 0.7) / 2 = 0.5.
    p = sigmoid_column([0.7, 0.3])
    top = result_of(ExpectedCalibrationError(num_bins=5), [1, 1], p)
    positive = result_of(
        ExpectedCalibrationError(num_bins=5, binary_confidence="positive_class"), [1, 1], p
    )
    assert top == pytest.approx(0.2, abs=1e-6)
    assert positive == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("binary_confidence", ["top_label", "positive_class"])
def test_sigmoid_output_equals_the_two_column_softmax(binary_confidence):
    p = np.array([0.7, 0.3, 0.55, 0.95], "float32")
    labels = np.array([1, 1, 0, 1])
    metric_args = dict(num_bins=5, binary_confidence=binary_confidence)
    sigmoid = result_of(ExpectedCalibrationError(**metric_args), labels, p[:, None])
    softmax = result_of(
        ExpectedCalibrationError(**metric_args), labels, np.stack([1 - p, p], axis=-1)
    )
    assert sigmoid == pytest.approx(softmax, abs=1e-7)


def test_sample_weights_as_computed_by_hand():
    # The docstring example with weights [1, 3, 1, 0]:
    # [0.6, 0.8): 0.6 wrong (w 3), 0.7 right (w 1): |1 - 2.5| = 1.5;
    # [0.8, 1]: 0.9 right (w 1), 0.8 (w 0): |1 - 0.9| = 0.1. N = 5.
    # ECE = 1.6 / 5 = 0.32.
    value = result_of(
        ExpectedCalibrationError(num_bins=5),
        [0, 1, 1, 1],
        [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]],
        sample_weight=[1.0, 3.0, 1.0, 0.0],
    )
    assert value == pytest.approx(0.32, abs=1e-6)


def test_integer_sample_weights_equal_repeating_predictions():
    probabilities, labels, _ = random_predictions(seed=1, num_examples=240, num_classes=3)
    repeats = np.arange(240) % 3  # 0, 1 or 2 copies: 240 predictions again
    weighted = result_of(ExpectedCalibrationError(), labels, probabilities, repeats)
    repeated = result_of(
        ExpectedCalibrationError(),
        np.repeat(labels, repeats),
        np.repeat(probabilities, repeats, axis=0),
    )
    assert weighted == pytest.approx(repeated, abs=1e-6)


def test_norms_and_bin_center_as_computed_by_hand():
    # Confidences 0.9 right, 0.6 wrong, 0.7 right, 0.8 right, 0.95 wrong.
    # [0.6, 0.8): n 2, acc 0.5, mean conf 0.65, centre 0.7.
    # [0.8, 1]:   n 3, acc 2/3, mean conf 2.65/3, centre 0.9.
    labels = [0, 1, 1, 1, 0]
    y_pred = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.05, 0.95]]
    gaps = np.array([0.15, 2.65 / 3 - 2 / 3])
    counts = np.array([2, 3])
    expected = {
        "l1": (counts * gaps).sum() / 5,  # 0.19
        "l2": np.sqrt((counts * gaps**2).sum() / 5),  # 0.19279
        "max": gaps.max(),  # 0.21667
    }
    for norm, value in expected.items():
        metric = ExpectedCalibrationError(num_bins=5, norm=norm)
        assert result_of(metric, labels, y_pred) == pytest.approx(value, abs=1e-6), norm
    assert result_of(MaximumCalibrationError(num_bins=5), labels, y_pred) == pytest.approx(
        expected["max"], abs=1e-6
    )
    # Centres: (2 * |0.5 - 0.7| + 3 * |2/3 - 0.9|) / 5 = (0.4 + 0.7) / 5.
    center = ExpectedCalibrationError(num_bins=5, bin_confidence="center")
    assert result_of(center, labels, y_pred) == pytest.approx(0.22, abs=1e-6)


def test_bin_center_variant_matches_the_papers_definition():
    # The paper's code: 10 bins [i/10, (i+1)/10), accuracy against the bin
    # centre, weights n_b / N. (It drops confidences of exactly 1.0; none
    # here.)
    probabilities, labels, _ = random_predictions(seed=2, num_examples=240, num_classes=10)
    confidences, correct = reference_top_label(probabilities, labels)
    assert confidences.max() < 1.0
    papers = 0.0
    for i in range(10):
        in_bin = (confidences >= i / 10) & (confidences < (i + 1) / 10)
        if in_bin.any():
            papers += in_bin.sum() / 240 * abs(correct[in_bin].mean() - (i + 0.5) / 10)
    metric = ExpectedCalibrationError(num_bins=10, bin_confidence="center")
    assert result_of(metric, labels, probabilities) == pytest.approx(papers, abs=1e-6)


def test_one_hot_and_sparse_labels_give_the_same_result():
    probabilities, labels, weights = random_predictions(seed=3, num_examples=240, num_classes=10)
    one_hot = np.eye(10, dtype="float32")[labels]
    for metric_class in (ExpectedCalibrationError, AdaptiveCalibrationError, DebiasedL2CalibrationError):
        sparse = result_of(metric_class(), labels[:, None], probabilities, weights)
        dense = result_of(metric_class(sparse_y_true=False), one_hot, probabilities, weights)
        assert sparse == pytest.approx(dense, abs=1e-7), metric_class.__name__
    sparse = result_of(ClasswiseCalibrationError(10), labels, probabilities, weights)
    dense = result_of(ClasswiseCalibrationError(10, sparse_y_true=False), one_hot, probabilities, weights)
    assert sparse == pytest.approx(dense, abs=1e-7)


def test_logits_give_the_result_of_their_softmax():
    rng = np.random.default_rng(4)
    logits = (3 * rng.normal(size=(240, 10))).astype("float32")
    labels = rng.integers(0, 10, size=240)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    from_logits = result_of(ExpectedCalibrationError(from_logits=True), labels, logits)
    from_probabilities = result_of(ExpectedCalibrationError(), labels, probabilities)
    assert from_logits == pytest.approx(from_probabilities, abs=1e-6)


def test_segmentation_maps_count_every_position():
    probabilities, labels, weights = random_predictions(seed=5, num_examples=240, num_classes=3)
    maps = probabilities.reshape(6, 8, 5, 3)
    value = result_of(ExpectedCalibrationError(), labels.reshape(6, 8, 5), maps, weights.reshape(6, 8, 5))
    expected = reference_ece(probabilities, labels, weights, 15)
    assert value == pytest.approx(expected, abs=1e-6)


def test_per_example_weights_apply_to_every_position_of_a_map():
    probabilities, labels, _ = random_predictions(seed=6, num_examples=240, num_classes=3)
    per_image = np.array([0.0, 1.0, 2.0, 1.0, 0.5, 3.0])
    value = result_of(
        ExpectedCalibrationError(), labels.reshape(6, 40), probabilities.reshape(6, 40, 3), per_image
    )
    expected = reference_ece(probabilities, labels, np.repeat(per_image, 40), 15)
    assert value == pytest.approx(expected, abs=1e-6)


def test_no_predictions_give_zero():
    for metric in (ExpectedCalibrationError(), AdaptiveCalibrationError(), DebiasedL2CalibrationError(), ClasswiseCalibrationError(3)):
        assert float(metric.result()) == 0.0


def test_debiased_l2_as_computed_by_hand():
    # 5 bins. [0.6, 0.8): confidences 0.7 x 4, one right: acc 0.25,
    #   (0.25 - 0.7)^2 - 0.25 * 0.75 / 3 = 0.2025 - 0.0625 = 0.14, n 4.
    # [0.8, 1]: one prediction, 0.9 right: fewer than two, adds nothing.
    # sqrt(4 * 0.14 / 5) = sqrt(0.112).
    y_pred = [[0.7, 0.3]] * 4 + [[0.9, 0.1]]
    value = result_of(DebiasedL2CalibrationError(num_bins=5), [0, 1, 1, 1, 0], y_pred)
    assert value == pytest.approx(math.sqrt(0.112), abs=1e-6)


def test_debiased_l2_removes_most_of_the_sampling_bias_for_a_calibrated_model():
    # Labels drawn from the model's own probabilities: the true calibration
    # error is 0, but the plug-in squared error is biased upwards by about
    # sum_b acc_b (1 - acc_b) / N. The debiased squared error is centred on 0
    # (then clipped at 0), so over several seeds it is a small fraction of it.
    plug_in_squared, debiased_squared = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        probabilities, _, _ = random_predictions(seed, 240, num_classes=3)
        labels = np.array([rng.choice(3, p=p / p.sum()) for p in probabilities.astype("float64")])
        plug_in = result_of(ExpectedCalibrationError(norm="l2"), labels, probabilities)
        debiased = result_of(DebiasedL2CalibrationError(), labels, probabilities)
        plug_in_squared.append(plug_in**2)
        debiased_squared.append(debiased**2)
    assert np.mean(debiased_squared) < 0.25 * np.mean(plug_in_squared)


def test_classwise_error_as_computed_by_hand():
    # Class 0: p 0.9 (label 0) gap 0.1, p 0.2 (label 1) gap 0.2 -> 0.15.
    # Class 1: p 0.1 (not 1) gap 0.1, p 0.8 (label 1) gap 0.2 -> 0.15.
    value = result_of(ClasswiseCalibrationError(2, num_bins=5), [0, 1], [[0.9, 0.1], [0.2, 0.8]])
    assert value == pytest.approx(0.15, abs=1e-6)


def test_adaptive_bins_hold_equal_mass_and_approach_exact_equal_mass_ece():
    # 240 distinct top confidences, 25 fine bins apart: no two share a bin.
    top = 0.4 + 0.0025 * np.arange(240)
    probabilities = np.stack([top, (1 - top) / 2, (1 - top) / 2], axis=-1).astype("float32")
    labels = np.random.default_rng(8).integers(0, 3, size=240)
    metric = AdaptiveCalibrationError(num_bins=8)
    value = result_of(metric, labels, probabilities)
    np.testing.assert_array_equal(metric.bin_statistics()["count"], np.full(8, 30.0))
    # Exact equal-mass bins from sorting (240 distinct confidences, 30 each).
    confidences, correct = reference_top_label(probabilities, labels)
    order = np.argsort(confidences)
    exact = sum(
        abs(correct[chunk].mean() - confidences[chunk].astype("float64").mean()) * len(chunk) / 240
        for chunk in np.array_split(order, 8)
    )
    assert value == pytest.approx(exact, abs=1e-6)


# ----------------------------------------------------------------------------
# Random data against the reference, whatever the batch split.

SPLITS = ([240], [80, 80, 80])


def streamed(metric, labels, probabilities, weights, split):
    start = 0
    for size in split:
        stop = start + size
        metric.update_state(labels[start:stop], probabilities[start:stop], weights[start:stop])
        start = stop
    return float(metric.result())


@pytest.mark.parametrize("num_classes", [2, 10])
def test_streaming_metrics_equal_the_numpy_reference_for_any_seed_and_split(num_classes):
    for seed in range(4):
        probabilities, labels, weights = random_predictions(seed, 240, num_classes, sharpness=1.0 + seed)
        if seed == 0:
            weights = np.ones_like(weights)
        expected = {
            "l1": reference_ece(probabilities, labels, weights, 15),
            "l2": reference_ece(probabilities, labels, weights, 7, "l2"),
            "max": reference_ece(probabilities, labels, weights, 10, "max"),
            "center": reference_ece(probabilities, labels, weights, 10, centers=True),
            "adaptive": reference_adaptive_ece(probabilities, labels, weights, 6, 1000),
            "debiased": reference_debiased_l2(probabilities, labels, weights, 15),
            "classwise": reference_classwise(probabilities, labels, weights, 15),
        }
        for split in SPLITS:
            metrics = {
                "l1": ExpectedCalibrationError(),
                "l2": ExpectedCalibrationError(num_bins=7, norm="l2"),
                "max": MaximumCalibrationError(num_bins=10),
                "center": ExpectedCalibrationError(num_bins=10, bin_confidence="center"),
                "adaptive": AdaptiveCalibrationError(num_bins=6, num_histogram_bins=1000),
                "debiased": DebiasedL2CalibrationError(),
                "classwise": ClasswiseCalibrationError(num_classes),
            }
            for key, metric in metrics.items():
                value = streamed(metric, labels, probabilities, weights, split)
                assert value == pytest.approx(expected[key], abs=1e-6), (seed, split, key)


def test_reset_state_forgets_everything():
    probabilities, labels, weights = random_predictions(seed=9, num_examples=240, num_classes=10)
    for metric in (ExpectedCalibrationError(), AdaptiveCalibrationError(), ClasswiseCalibrationError(10)):
        fresh = result_of(metric.__class__.from_config(metric.get_config()), labels, probabilities)
        result_of(metric, labels, probabilities, weights)
        metric.reset_state()
        assert float(metric.result()) == 0.0
        assert result_of(metric, labels, probabilities) == pytest.approx(fresh, abs=1e-7)


# ----------------------------------------------------------------------------
# Inside Keras: compiled steps, saving, callbacks.

ALL_METRICS = [
    lambda: ExpectedCalibrationError(),
    lambda: ExpectedCalibrationError(num_bins=10, norm="l2", bin_confidence="center", name="ece_l2"),
    lambda: MaximumCalibrationError(),
    lambda: AdaptiveCalibrationError(),
    lambda: DebiasedL2CalibrationError(),
    lambda: ClasswiseCalibrationError(10),
]
# torch.compile of these metrics takes minutes on CPU; the default "auto"
# runs torch eagerly and JAX/TensorFlow traced.
JIT_COMPILE = [
    "auto",
    pytest.param(True, marks=[pytest.mark.slow] if BACKEND == "torch" else []),
]


def zero_loss(y_true, y_pred):
    """A loss that ignores its labels, so that only our metrics see them."""
    return keras.ops.sum(y_pred, axis=-1) * 0.0


def prediction_model(num_classes):
    """A model whose output is its input: evaluate() feeds our predictions."""
    return keras.Sequential([keras.Input((num_classes,)), keras.layers.Identity()])


@pytest.mark.parametrize("jit_compile", JIT_COMPILE)
def test_metrics_in_a_compiled_evaluate_equal_eager(jit_compile):
    probabilities, labels, weights = random_predictions(seed=10, num_examples=240, num_classes=10)
    model = prediction_model(10)
    model.compile(loss=zero_loss, weighted_metrics=[make() for make in ALL_METRICS], jit_compile=jit_compile)
    compiled = model.evaluate(
        probabilities, labels, sample_weight=weights, batch_size=80, verbose=0, return_dict=True
    )
    for make in ALL_METRICS:
        metric = make()
        eager = result_of(metric, labels, probabilities, weights)
        assert compiled[metric.name] == pytest.approx(eager, abs=1e-6), metric.name


@pytest.mark.parametrize("num_classes", [10, 100])
def test_ties_at_the_maximum_count_the_first_class_eagerly_and_compiled(num_classes):
    # Uniform rows and rows whose maximum is shared: the predicted class is
    # the first of the tied ones (as argmax), so a uniform prediction is
    # correct only for label 0. 100 classes take the JAX backend's
    # comparison-free path, 10 its argmax.
    rng = np.random.default_rng(num_classes)
    probabilities = rng.integers(1, 4, size=(240, num_classes)).astype("float32")
    probabilities[:40] = 1.0
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    labels = rng.integers(0, num_classes, size=240)
    labels[:20] = 0
    labels[20:40] = num_classes - 1
    weights = np.ones(240)
    expected = reference_ece(probabilities, labels, weights, 15)
    assert expected != pytest.approx(reference_ece_with_ties_counted_right(probabilities, labels))
    eager = result_of(ExpectedCalibrationError(), labels, probabilities)
    model = prediction_model(num_classes)
    model.compile(loss=zero_loss, metrics=[ExpectedCalibrationError()])
    compiled = model.evaluate(probabilities, labels, batch_size=80, verbose=0, return_dict=True)
    assert eager == pytest.approx(expected, abs=1e-6)
    assert compiled["ece"] == pytest.approx(expected, abs=1e-6)


def reference_ece_with_ties_counted_right(probabilities, labels):
    """The ECE if any class sharing the maximum counted as correct: wrong."""
    confidences = probabilities.max(axis=-1)
    correct = (probabilities[np.arange(len(labels)), labels] == confidences).astype("float64")
    members = reference_bin_members(confidences, 15)
    return reference_error(confidences, correct, np.ones(len(labels)), members)


def test_invalid_labels_in_a_compiled_step_raise_or_give_nan():
    probabilities, labels, _ = random_predictions(seed=11, num_examples=240, num_classes=10)
    labels[5] = 10
    model = prediction_model(10)
    model.compile(loss=zero_loss, metrics=[ExpectedCalibrationError(), NegativeLogLikelihood()])
    traced = BACKEND != "torch"  # torch runs the step eagerly by default
    if traced:
        results = model.evaluate(probabilities, labels, batch_size=80, verbose=0, return_dict=True)
        assert math.isnan(results["ece"]) and math.isnan(results["nll"])
    else:
        with pytest.raises(ValueError, match=r"label 10 at row 5"):
            model.evaluate(probabilities, labels, batch_size=80, verbose=0)


def small_classifier():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=[
            ExpectedCalibrationError(num_bins=10, norm="l2"),
            AdaptiveCalibrationError(num_histogram_bins=500),
            BrierScore(),
        ],
    )
    return model


def toy_data(seed=12, num_examples=80):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_examples, 4)).astype("float32")
    labels = (features[:, 0] > 0).astype("int32") + (features[:, 1] > 1).astype("int32")
    return features, labels


def test_model_trains_with_early_stopping_on_val_ece_then_saves_and_loads_without_custom_objects(tmp_path):
    features, labels = toy_data()
    model = small_classifier()
    stopper = keras.callbacks.EarlyStopping(monitor="val_ece", patience=1)
    history = model.fit(
        features, labels, validation_data=toy_data(seed=13), epochs=3, batch_size=40, verbose=0, callbacks=[stopper]
    )
    # mode="auto" found the metric's direction: lower is better.
    assert stopper.monitor_op is keras.ops.less
    assert len(history.history["val_ece"]) >= 2

    before = model.evaluate(features, labels, batch_size=40, verbose=0, return_dict=True)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    after = loaded.evaluate(features, labels, batch_size=40, verbose=0, return_dict=True)
    for name in ("ece", "adaptive_ece", "brier_score"):
        assert after[name] == pytest.approx(before[name], abs=1e-6), name
    loaded_metrics = {m.name: m for m in loaded.metrics[1].metrics}
    assert loaded_metrics["ece"].get_config()["norm"] == "l2"
    assert loaded_metrics["adaptive_ece"].num_histogram_bins == 500


def test_configs_round_trip_through_keras_serialization():
    for make in ALL_METRICS:
        metric = make()
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
        assert type(restored) is type(metric)
        assert restored.get_config() == metric.get_config()
        assert restored._direction == "down"


# ----------------------------------------------------------------------------
# Input validation.


def test_label_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"label 3 at row 1.*\[0, 3\)"):
        ExpectedCalibrationError().update_state([0, 3], [[0.2, 0.3, 0.5]] * 2)
    with pytest.raises(ValueError, match=r"label -1"):
        ExpectedCalibrationError().update_state([-1, 0], [[0.2, 0.3, 0.5]] * 2)
    with pytest.raises(ValueError, match=r"label 2 "):
        ExpectedCalibrationError().update_state([[1], [2]], sigmoid_column([0.3, 0.6]))


def test_fractional_label_is_rejected():
    with pytest.raises(ValueError, match=r"label 0.5 .*integers"):
        ExpectedCalibrationError().update_state([0.5, 1], [[0.4, 0.6]] * 2)


def test_shape_mismatch_is_rejected_with_a_hint_for_one_hot_labels():
    with pytest.raises(ValueError, match=r"y_true shape \(3,\) and y_pred shape \(2, 3\)"):
        ExpectedCalibrationError().update_state([0, 1, 2], [[0.2, 0.3, 0.5]] * 2)
    with pytest.raises(ValueError, match="sparse_y_true=False"):
        ExpectedCalibrationError().update_state(np.eye(3)[:2], [[0.2, 0.3, 0.5]] * 2)
    with pytest.raises(ValueError, match="one-hot with the shape of y_pred"):
        ExpectedCalibrationError(sparse_y_true=False).update_state([0, 1], [[0.2, 0.3, 0.5]] * 2)
    with pytest.raises(ValueError, match="class axis last"):
        ExpectedCalibrationError().update_state([0, 1], [0.2, 0.7])
    with pytest.raises(ValueError, match="sample_weight of shape"):
        ExpectedCalibrationError().update_state([0, 1], [[0.5, 0.5]] * 2, sample_weight=[1.0, 1.0, 1.0])


def test_probabilities_that_do_not_sum_to_one_suggest_from_logits():
    with pytest.raises(ValueError, match=r"row 1 of y_pred sum to 3.*from_logits=True"):
        ExpectedCalibrationError(from_logits=False).update_state([0, 1], [[0.2, 0.8], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*from_logits=True"):
        ExpectedCalibrationError().update_state([0, 1], sigmoid_column([0.2, 2.5]))


def test_nan_or_inf_in_predictions_is_rejected():
    for from_logits in (False, True):
        for bad_value in (np.nan, np.inf, -np.inf):
            y_pred = np.array([[0.5, 0.5], [0.1, bad_value]], "float32")
            with pytest.raises(ValueError, match=r"NaN or Inf .* row 1"):
                ExpectedCalibrationError(from_logits=from_logits).update_state([0, 1], y_pred)


def test_finite_logits_whose_row_sum_overflows_are_measured_eagerly_and_compiled():
    # Rows are checked from their sums and extremes: a sum that overflows
    # to Inf on finite logits must not read as a non-finite row.
    logits = np.array([[3e38, 3e38], [0.0, 2.0]], "float32")
    metric = ExpectedCalibrationError(num_bins=5, from_logits=True)
    for _ in range(3):
        metric.update_state([0, 1], logits)
    # Row 0: confidence 0.5, correct; row 1: confidence 0.881, correct.
    assert float(metric.result()) == pytest.approx((0.5 + (1 - 0.8807971)) / 2, abs=1e-5)


def test_rejected_batch_leaves_the_state_untouched():
    metric = ExpectedCalibrationError(num_bins=5)
    result_of(metric, [0], [[0.7, 0.3]])
    with pytest.raises(ValueError):
        metric.update_state([0, 2], [[0.7, 0.3], [0.5, 0.5]])
    assert float(metric.result()) == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize(
    "bad_row, message",
    [((2, [0.5, 0.5]), "y_true holds label 2"), ((1, [np.nan, 1.0]), "NaN or Inf .* row 1")],
)
def test_invalid_rows_raise_the_eager_error_once_repeated_calls_are_compiled(bad_row, message):
    # Under TensorFlow and JAX the second call of a shape runs compiled,
    # where nothing can raise: the metric must still name the bad row.
    labels = np.array([0, 1], "int32")
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]], "float32")
    metric = ExpectedCalibrationError(num_bins=5)
    for _ in range(3):
        metric.update_state(labels, probabilities)
    before = float(metric.result())
    bad_labels, bad_probabilities = labels.copy(), probabilities.copy()
    bad_labels[1], bad_probabilities[1] = bad_row
    with pytest.raises(ValueError, match=message):
        metric.update_state(bad_labels, bad_probabilities)
    assert float(metric.result()) == before == pytest.approx(0.25, abs=1e-6)


def test_metrics_configured_alike_share_their_compiled_update_and_others_do_not():
    from keras_noisewarm.backend import compile_repeated_calls

    def batch_totals_of(metric):
        return compile_repeated_calls(metric._configuration_key(), metric._batch_totals)

    first, renamed = ExpectedCalibrationError(name="a"), ExpectedCalibrationError(name="b")
    assert batch_totals_of(first) is batch_totals_of(renamed)
    for other in (
        ExpectedCalibrationError(num_bins=10),
        ExpectedCalibrationError(from_logits=True),
        MaximumCalibrationError(),
        ClasswiseCalibrationError(3),
    ):
        assert batch_totals_of(other) is not batch_totals_of(first)


def test_options_are_validated():
    with pytest.raises(ValueError, match="norm"):
        ExpectedCalibrationError(norm="l3")
    with pytest.raises(ValueError, match="bin_confidence"):
        ExpectedCalibrationError(bin_confidence="median")
    with pytest.raises(ValueError, match="binary_confidence"):
        ExpectedCalibrationError(binary_confidence="positive")
    with pytest.raises(ValueError, match="num_bins"):
        ExpectedCalibrationError(num_bins=0)
    with pytest.raises(ValueError, match="positive_class.*3 classes"):
        ExpectedCalibrationError(binary_confidence="positive_class").update_state([0], [[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="built for 4 classes"):
        ClasswiseCalibrationError(4).update_state([0], [[0.2, 0.3, 0.5]])
