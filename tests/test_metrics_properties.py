"""Property-based tests of the calibration metrics and scoring rules.

Hypothesis draws the structure of each case (number of predictions and of
classes, bins, norm, weights, how the predictions are split into batches)
and a seed from which NumPy draws the values; the values are built to hit
the cases that break binning code: tied probabilities (the first class is
the predicted one), confidences of exactly 0 and 1, and confidences equal
to a bin edge (`k / num_bins` rounded to float32, which starts the next
bin; the last bin is closed). Every metric is compared with the float64
NumPy reference of tests/numpy_reference.py, which is written from the
documented definitions, and its result must not depend on how the
predictions are split into batches.

Batch shapes come from a short menu (1 and 64 predictions, two class
counts per test): a metric compiles its batch arithmetic for every shape it
meets twice (TensorFlow, JAX) and JAX compiles eager operations for every
new shape, so a free choice of sizes would cost a compilation per example.
Streams are random sequences of these sizes; each is checked against the
reference and against the same predictions split the other way round. A
large batch, met once, is checked on its own.
"""

import math

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import numpy_reference as reference

from keras_noisewarm import metrics

SIZES = (1, 64)
CLASSES = (1, 3, 10)  # 1: a sigmoid column
# Float32 state: sums of up to a few hundred values in [0, 1] round by about
# 1e-7 of their total, which the division by the count keeps below 1e-6.
ATOL = 2e-6
PROPERTY_SETTINGS = settings(derandomize=True, max_examples=15, deadline=None, database=None)


@st.composite
def cases(draw, classes=CLASSES):
    """A batch of predictions with ties, exact 0 and 1, and bin edges.

    Returns `(outputs, labels, weights, chunks)`, `chunks` the batch sizes
    of a stream over them.
    """
    num_classes = draw(st.sampled_from(classes))
    chunks = draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=4))
    weighting = draw(st.sampled_from(["none", "some_zero", "all_zero", "uniform"]))
    seed = draw(st.integers(0, 2**16))
    return predictions(seed, sum(chunks), num_classes, weighting) + (chunks,)


def predictions(seed, num_examples, num_classes, weighting):
    """`(outputs, labels, weights)` drawn from `seed`."""
    rng = np.random.default_rng(seed)
    outputs = _outputs(rng, num_examples, num_classes)
    labels = rng.integers(0, max(num_classes, 2), size=num_examples)
    weights = {
        "none": None,
        "some_zero": rng.integers(0, 3, size=num_examples).astype("float32"),
        "all_zero": np.zeros(num_examples, "float32"),
        "uniform": rng.uniform(0.0, 2.0, size=num_examples).astype("float32"),
    }[weighting]
    return outputs, labels, weights


# The bin counts of the metrics below: confidences are put on their edges.
EDGE_BIN_COUNTS = (4, 5, 10, 15, 200)


def _outputs(rng, num_examples, num_classes):
    """float32 probabilities of shape (N, K), or (N, 1) for a sigmoid."""
    edges = np.unique(np.concatenate(
        [reference.edges(count).astype(np.float64) for count in EDGE_BIN_COUNTS]
    ))
    if num_classes == 1:
        special = np.concatenate([[0.0, 1.0, 0.5], edges, 1.0 - edges])
        values = np.where(rng.random(num_examples) < 0.4,
                          rng.choice(special, size=num_examples), rng.random(num_examples))
        return values.astype("float32")[:, None]
    # Small integer weights per class: ties, zeros, and one-hot rows (a
    # confidence of exactly 1) come out of the normalisation.
    counts = rng.integers(0, 4, size=(num_examples, num_classes)).astype(np.float64)
    counts[counts.sum(axis=1) == 0, 0] = 1.0
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    # Rows whose top confidence is a bin edge (at least 1 / K), the rest of
    # the mass spread evenly.
    usable = edges[(edges >= 1.0 / num_classes) & (edges > 0)]
    on_edge = rng.random(num_examples) < 0.3
    for row in np.flatnonzero(on_edge):
        top = rng.choice(usable)
        rest = (1.0 - top) / (num_classes - 1)
        probabilities[row] = rest
        probabilities[row, rng.integers(num_classes)] = top
    return probabilities.astype("float32")


def two_columns(outputs):
    """A sigmoid column as the metrics read it: [1 - p, p], in float32."""
    if outputs.shape[1] == 1:
        return np.concatenate([np.float32(1.0) - outputs, outputs], axis=1)
    return outputs


def streamed(metric, labels, outputs, weights, chunks):
    start = 0
    for size in chunks:
        stop = start + size
        metric.update_state(
            labels[start:stop], outputs[start:stop],
            None if weights is None else weights[start:stop],
        )
        start = stop
    return float(metric.result())


def check(make_metric, expected, labels, outputs, weights, chunks, squared=False):
    """The metric, streamed in `chunks` and in `chunks` reversed, equals `expected`.

    `squared` compares squares: an L2 error is the square root of a mean,
    whose rounding near zero the root magnifies.
    """
    values = [streamed(make_metric(), labels, outputs, weights, chunks)]
    if len(chunks) > 1:
        values.append(streamed(make_metric(), labels, outputs, weights, chunks[::-1]))
    for value in values:
        if squared:
            assert math.isclose(value**2, expected**2, abs_tol=ATOL), (value, expected)
        else:
            assert math.isclose(value, expected, rel_tol=1e-5, abs_tol=ATOL), (value, expected)


# Each norm and bin confidence (the maximum below), and bin counts with
# exact (4) and rounded (10, 15) float32 edges; few, since each compiles.
TOP_LABEL_CONFIGURATIONS = [
    dict(num_bins=15),
    dict(num_bins=4, norm="l2", bin_confidence="center"),
]


def check_top_label(case):
    outputs, labels, weights, chunks = case
    columns = two_columns(outputs)
    for options in TOP_LABEL_CONFIGURATIONS:
        check(
            lambda: metrics.ExpectedCalibrationError(**options),
            reference.ece(columns, labels, weights, **options),
            labels, outputs, weights, chunks, squared=options.get("norm") == "l2",
        )
    check(
        lambda: metrics.MaximumCalibrationError(num_bins=10, bin_confidence="center"),
        reference.ece(columns, labels, weights, num_bins=10, norm="max", bin_confidence="center"),
        labels, outputs, weights, chunks,
    )


def check_positive_class(case):
    outputs, labels, weights, chunks = case
    num_bins = 10
    positive = two_columns(outputs)[:, 1]
    expected = reference.binned_error(
        positive, labels == 1, np.ones(len(labels)) if weights is None else weights.astype(np.float64),
        reference.bin_of(positive, num_bins), num_bins,
    )
    check(
        lambda: metrics.ExpectedCalibrationError(num_bins=num_bins, binary_confidence="positive_class"),
        expected, labels, outputs, weights, chunks,
    )


def check_grouped_errors(case):
    outputs, labels, weights, chunks = case
    num_bins = 15
    columns = two_columns(outputs)
    # The adaptive error's documented grouping of a fine equal-width
    # histogram has an exact reference (the grouping itself); exact
    # equal-mass bins would need every prediction.
    check(
        lambda: metrics.AdaptiveCalibrationError(num_bins=5, num_histogram_bins=200),
        reference.adaptive_ece(columns, labels, weights, 5, num_fine_bins=200),
        labels, outputs, weights, chunks,
    )
    check(
        lambda: metrics.ClasswiseCalibrationError(columns.shape[1], num_bins=num_bins),
        reference.classwise(columns, labels, weights, num_bins),
        labels, outputs, weights, chunks,
    )
    check(
        lambda: metrics.DebiasedL2CalibrationError(num_bins=num_bins),
        reference.debiased_l2(columns, labels, weights, num_bins),
        labels, outputs, weights, chunks, squared=True,
    )


def check_scores(case, as_logits):
    outputs, labels, weights, chunks = case
    if weights is not None and not weights.any():
        weights = None  # a mean over no weight is 0 by convention; see below
    columns = two_columns(outputs)
    if as_logits and outputs.shape[1] > 1:
        # Logits whose softmax is `columns`, zeros kept far down.
        outputs = np.log(np.maximum(columns, 1e-30)).astype("float32")
        columns = reference.softmax(outputs)
    expected_nll = reference.nll(outputs if as_logits and outputs.shape[1] > 1 else columns,
                                 labels, from_logits=as_logits and outputs.shape[1] > 1,
                                 weights=weights)
    brier = reference.brier(columns, labels, weights)
    if outputs.shape[1] == 1:
        brier /= 2  # the binary form (p - y)^2
    check(metrics.NegativeLogLikelihood, expected_nll, labels, outputs, weights, chunks)
    check(metrics.BrierScore, brier, labels, outputs, weights, chunks)


@PROPERTY_SETTINGS
@given(cases(classes=(3, 10)))
def test_expected_and_maximum_calibration_errors_equal_the_reference(case):
    check_top_label(case)


@PROPERTY_SETTINGS
@given(cases(classes=(1, 2)))
def test_positive_class_calibration_of_binary_outputs_equals_the_reference(case):
    check_positive_class(case)


@PROPERTY_SETTINGS
@given(cases(classes=(1, 10)))
def test_adaptive_classwise_and_debiased_errors_equal_the_reference(case):
    check_grouped_errors(case)


@PROPERTY_SETTINGS
@given(cases(), st.booleans())
def test_nll_and_brier_score_equal_the_reference(case, as_logits):
    check_scores(case, as_logits)


def test_a_large_batch_equals_the_reference():
    for num_classes in (1, 2, 10):
        case = predictions(seed=num_classes, num_examples=3000, num_classes=num_classes,
                           weighting="some_zero") + ([3000],)
        if num_classes > 1:
            check_top_label(case)
        if num_classes < 10:
            check_positive_class(case)
        check_grouped_errors(case)
        check_scores(case, as_logits=num_classes > 1)


def test_all_zero_weights_give_zero_not_nan():
    # Documented: no weight seen reads as 0 (nothing measured), like no
    # update at all, for every metric.
    probabilities = np.array([[0.7, 0.3], [0.2, 0.8]], "float32")
    for metric in (
        metrics.ExpectedCalibrationError(), metrics.AdaptiveCalibrationError(),
        metrics.DebiasedL2CalibrationError(), metrics.ClasswiseCalibrationError(2),
        metrics.NegativeLogLikelihood(), metrics.BrierScore(),
    ):
        metric.update_state([0, 1], probabilities, sample_weight=[0.0, 0.0])
        assert float(metric.result()) == 0.0, metric.name

