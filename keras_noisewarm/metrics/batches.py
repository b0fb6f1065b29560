"""Turns a batch of labels and predictions into per-example rows.

Every metric in this package reads its inputs the same way: the class axis
is last, every other axis is a batch axis (a segmentation map counts every
position as one prediction), and a single-column prediction is a sigmoid
output, read as the two classes `[1 - p, p]`. Whether `y_pred` holds logits
or probabilities follows the package's rule (`keras_noisewarm.outputs`):
`from_logits=None` detects it for each batch.

Rows that cannot be measured (a label out of range, a NaN, probabilities
that do not sum to one) are an error where Python can read the values
(eager execution). Inside a compiled step (`jit`, a `tf.function`), where
nothing can raise, they are left out and counted by kind (`PROBLEMS`), so
that the metric can report them when its result is read.

Rows whose label is the metric's `ignore_label` (the 255 of a segmentation
mask, the padding of a sequence) are neither measured nor checked: they
weigh 0 whatever their prediction holds.
"""

import collections
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm.backend import reductions
from keras_noisewarm.backend.compilation import values_are_concrete

# The kinds of input problems a metric counts inside compiled steps. The
# first three leave rows out; the last only asks for a warning.
PROBLEMS = (
    "invalid_labels",
    "non_finite_predictions",
    "not_probabilities",
    "probability_like_logits",
)
NUM_REJECTING_PROBLEMS = 3
# What each kind of problem is, for the warning; the regression metrics
# count kinds of their own (`keras_noisewarm.metrics.regression`).
PROBLEM_DESCRIPTIONS = {
    "invalid_labels": "{n:.0f} row(s) with a label out of range or not an integer",
    "non_finite_predictions": "{n:.0f} row(s) with NaN or Inf in y_pred",
    "not_probabilities": (
        "{n:.0f} row(s) that are not probabilities (outside [0, 1], or not "
        "summing to one: pass from_logits=True if y_pred holds logits)"
    ),
    "probability_like_logits": (
        "{n:.0f} row(s) read as logits (from_logits=True) that look like "
        "probabilities"
    ),
    "non_finite_targets": "{n:.0f} target(s) that are NaN or Inf",
    "non_finite_spreads": "{n:.0f} prediction(s) with NaN or Inf in the mean or spread",
    "non_positive_spreads": (
        "{n:.0f} prediction(s) whose variance or standard deviation is not "
        "positive (pass spread='log_variance' if the model outputs a log-variance)"
    ),
}
# Kinds that only ask for a warning and leave the result alone.
WARNING_ONLY_PROBLEMS = ("probability_like_logits",)
# The metrics whose problems have been reported: each warns once.
_REPORTED_METRICS = weakref.WeakSet()


class Batch(collections.namedtuple(
        "Batch", ["outputs", "is_logits", "labels", "weights", "valid", "problems"])):
    """One batch as rows; see `prepare_batch`."""

    __slots__ = ()

    @property
    def probabilities(self):
        """Class probabilities of the rows, formed when read: `(rows, max(K, 2))`."""
        return _read_as_detected(outputs_lib.probabilities, self.outputs, self.is_logits)


def top_label(batch):
    """Confidence and predicted class of each row of a batch.

    The predicted class is the first index of the largest probability (as
    argmax). A reading detected inside a compiled step goes to
    `reductions.detected_top_label`, which never forms the probabilities.

    Returns:
        `(confidences, predicted)`, float32 and int32 tensors of shape `(rows,)`.
    """
    if isinstance(batch.is_logits, bool) or batch.outputs.shape[-1] == 1:
        return _read_as_detected(_top_label_of_outputs, batch.outputs, batch.is_logits)
    return reductions.detected_top_label(batch.outputs, batch.is_logits)


def _top_label_of_outputs(outputs, from_logits):
    return reductions.top_label(outputs_lib.probabilities(outputs, from_logits))


def prepare_batch(y_true, y_pred, sample_weight, from_logits, sparse_y_true, ignore_label=None):
    """Flattens one batch into rows of class probabilities.

    Args:
        y_true: Integer labels of shape `batch_shape` or `batch_shape + (1,)`
            when `sparse_y_true`, else one-hot of the same shape as `y_pred`.
            For a sigmoid output (one column) labels are 0 or 1.
        y_pred: Probabilities or logits, shape `batch_shape + (num_classes,)`.
        sample_weight: `None`, a scalar, or weights of shape `batch_shape`
            (or `batch_shape + (1,)`).
        from_logits: `True`, `False` or `None` (detect, per batch).
        sparse_y_true: Whether `y_true` holds integer labels.
        ignore_label: An integer label whose rows are left out (weight 0,
            never invalid, their predictions unread), or `None`. Needs
            `sparse_y_true`.

    Returns:
        A `Batch` of flat tensors: `outputs`, float32 `y_pred` as given, of
        shape `(rows, columns)`; `probabilities` of shape `(rows, classes)`
        (two classes for a sigmoid output), formed when read; `is_logits`,
        how `y_pred` was read (a Python bool, or a scalar boolean tensor when
        detected inside a compiled step); int32 `labels` of shape `(rows,)` (0 where
        invalid or ignored); float32 `weights` of shape `(rows,)` (0 where
        invalid or ignored); `valid`, a boolean `(rows,)` mask of the rows
        that are measured, `None` when values are concrete and no row is
        ignored (every row has been checked then), and `problems`, float32
        counts of shape `(len(PROBLEMS),)`, `None` when values are concrete.
        Invalid and ignored rows keep their raw outputs and probabilities
        (possibly NaN): mask them with `where_valid` before summing.

    Raises:
        ValueError: If the shapes do not fit together, if the batch is
            empty, or, when values are concrete, if any row is invalid (see
            `raise_for_invalid_rows`).
    """
    # A metric never differentiates: under torch, whose trainer updates
    # metrics with autograd on, every op on y_pred would otherwise record a
    # backward node.
    y_pred = ops.stop_gradient(ops.convert_to_tensor(y_pred))
    tolerance = outputs_lib.probability_tolerance(y_pred.dtype)
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.convert_to_tensor(y_true)
    num_columns = _check_prediction_shape(y_pred.shape)
    _check_label_shape(y_true.shape, y_pred.shape, sparse_y_true, num_columns)
    if any(dim == 0 for dim in y_pred.shape[:-1]):
        raise ValueError(
            f"y_pred of shape {tuple(y_pred.shape)} holds no predictions; a "
            "calibration metric of nothing would read as perfect."
        )

    outputs = flatten(y_pred, num_columns)
    if sparse_y_true:
        labels = flatten(y_true)
    else:
        labels = ops.argmax(flatten(y_true, num_columns), axis=-1)
    weights = flat_weights(sample_weight, y_pred)

    num_classes = max(num_columns, 2)
    label_in_range = ops.logical_and(
        ops.greater_equal(labels, 0), ops.less(labels, num_classes)
    )
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        label_in_range = ops.logical_and(
            label_in_range, ops.equal(labels, ops.floor(labels))
        )
    ignored = None
    label_is_valid = label_in_range
    if ignore_label is not None:
        ignored = ops.equal(labels, ignore_label)
        # An ignored row is not judged: its prediction may hold anything.
        label_is_valid = ops.logical_and(label_in_range, ops.logical_not(ignored))
    summary = outputs_lib.summarise_rows(outputs)
    finite = outputs_lib.finite_rows(summary)
    probability_rows = outputs_lib.rows_look_like_probabilities(summary, tolerance, num_columns)
    judged = ops.logical_and(label_is_valid, finite)
    all_probabilities = ops.all(ops.logical_or(probability_rows, ops.logical_not(judged)))

    ambiguous = False
    if from_logits is None and num_columns == 1:
        is_logits = False
    elif from_logits is None:
        in_unit_interval = ops.all(
            ops.logical_or(outputs_lib.rows_in_unit_interval(summary), ops.logical_not(judged))
        )
        is_logits = ops.logical_not(all_probabilities)
        # Values in [0, 1] whose rows do not sum to one are neither (but
        # all-zero outputs are logits: a zero-initialised head).
        any_nonzero = ops.any(
            ops.logical_or(ops.not_equal(summary.minimum, 0.0), ops.not_equal(summary.maximum, 0.0))
        )
        ambiguous = ops.logical_and(ops.logical_and(in_unit_interval, is_logits), any_nonzero)
    else:
        is_logits = bool(from_logits)

    if isinstance(is_logits, bool):
        prediction_is_valid = finite if is_logits else probability_rows
    else:
        prediction_is_valid = ops.where(
            is_logits, ops.logical_and(finite, ops.logical_not(ambiguous)), probability_rows
        )
    valid = ops.logical_and(label_is_valid, prediction_is_valid)
    probability_like = (
        from_logits is True and num_columns > 1
    ) and all_probabilities

    if values_are_concrete(valid):
        measured = valid if ignored is None else ops.logical_or(valid, ignored)
        if not bool(ops.convert_to_numpy(ops.all(measured))):
            raise_for_invalid_rows(
                ops.convert_to_numpy(labels),
                ops.convert_to_numpy(outputs),
                is_logits=bool(ops.convert_to_numpy(is_logits)),
                num_classes=num_classes,
                tolerance=tolerance,
                detected=from_logits is None,
                ignored=None if ignored is None else ops.convert_to_numpy(ignored),
            )
        if probability_like is not False and bool(ops.convert_to_numpy(probability_like)):
            warn_probability_like_logits()
        if not isinstance(is_logits, bool):
            is_logits = bool(ops.convert_to_numpy(is_logits))
        if ignored is not None and bool(ops.convert_to_numpy(ops.any(ignored))):
            kept = ops.logical_not(ignored)
            labels = ops.cast(ops.where(kept, labels, 0), "int32")
            return Batch(outputs, is_logits, labels,
                         ops.where(kept, weights, 0.0), kept, None)
        # Every row is valid: no masking needed. (Eager ops cost tens of
        # microseconds each in a torch training step.)
        if keras.backend.standardize_dtype(labels.dtype) != "int32":
            labels = ops.cast(labels, "int32")
        return Batch(outputs, is_logits, labels, weights, None, None)

    not_valid = ops.logical_not(valid)
    problems = ops.stack(
        [
            _count(ops.logical_not(label_in_range if ignored is None
                                   else ops.logical_or(label_in_range, ignored))),
            _count(ops.logical_and(label_is_valid, ops.logical_not(finite))),
            _count(ops.logical_and(judged, not_valid)),
            ops.cast(probability_like, "float32") * ops.cast(ops.shape(outputs)[0], "float32")
            if probability_like is not False
            else ops.zeros((), "float32"),
        ]
    )
    labels = ops.cast(ops.where(label_is_valid, labels, 0), "int32")
    weights = ops.where(valid, weights, 0.0)
    return Batch(outputs, is_logits, labels, weights, valid, problems)


def _count(mask):
    return ops.sum(ops.cast(mask, "float32"))


def _read_as_detected(read, outputs, is_logits):
    """`read(outputs, is_logits)`, for a traced `is_logits` too.

    A compiled conditional runs one branch: the softmax of a batch read as
    probabilities is never computed.
    """
    if isinstance(is_logits, bool):
        return read(outputs, is_logits)
    return ops.cond(is_logits, lambda: read(outputs, True), lambda: read(outputs, False))


def log_probabilities(batch):
    """Log class probabilities of a batch's rows, two columns for a sigmoid."""
    return _read_as_detected(outputs_lib.log_probabilities, batch.outputs, batch.is_logits)


def where_valid(valid, values):
    """`values` with the rows that `valid` rejects set to 0.

    Args:
        valid: `Batch.valid`: a boolean `(rows,)` mask, or `None` when every
            row is known to be valid.
        values: Tensor of shape `(rows,)` or `(rows, columns)`.
    """
    if valid is None:
        return values
    if len(values.shape) > 1:
        valid = ops.expand_dims(valid, axis=-1)
    return ops.where(valid, values, 0.0)


def flatten(tensor, num_columns=None):
    """`tensor` as rows: shape `(rows,)`, or `(rows, num_columns)` if given.

    A tensor that already has that rank is returned as is: in a torch
    training step every Keras op costs tens of microseconds of Python.
    """
    if num_columns is None:
        return tensor if len(tensor.shape) == 1 else ops.reshape(tensor, (-1,))
    if len(tensor.shape) == 2:
        return tensor
    return ops.reshape(tensor, (-1, num_columns))


def warn_probability_like_logits():
    warnings.warn(
        "from_logits=True, but y_pred looks like probabilities (every value "
        "lies in [0, 1] and every row sums to one): it is read as logits, as "
        "asked, which gives a wrong calibration error. Pass "
        "from_logits=False, or None to detect it.",
        stacklevel=4,
    )


def add_problem_counts(metric, kinds=PROBLEMS):
    """Adds the state variable that counts a metric's input problems.

    Args:
        metric: A `keras.metrics.Metric`, in its `__init__`.
        kinds: The names of the kinds it counts (`PROBLEMS` for the
            classification metrics).

    Returns:
        The float32 variable of shape `(len(kinds),)`.
    """
    return metric.add_variable(
        shape=(len(kinds),), initializer="zeros", dtype="float32", name="input_problems"
    )


def record_problems(metric, problems, recompute):
    """Adds a batch's problem counts to the metric's state, or raises.

    Traced, the counts are added to `metric.input_problems`. Eagerly,
    counts can only come from a batch that was compiled (see
    `compile_repeated_calls`), where nothing could raise: `recompute()` then
    runs the batch eagerly, which raises naming the first bad row (or warns
    for probability-like logits).

    Args:
        metric: The metric, with its `input_problems` variable.
        problems: The batch's counts, or `None` (checked eagerly already).
        recompute: Callable that prepares the batch again, eagerly.
    """
    if problems is None:
        return
    if not values_are_concrete(problems):
        metric.input_problems.assign_add(ops.cast(problems, "float32"))
    elif recompute is not None and np.any(ops.convert_to_numpy(problems)):
        recompute()


def result_or_nan(metric, value, kinds=PROBLEMS):
    """`value`, or NaN when compiled steps left rows out; reported once.

    Read eagerly (as Keras does at the end of every epoch and evaluation),
    a metric whose compiled updates met invalid rows warns once, saying how
    many of which kind; its result is NaN, so that a number computed on
    part of the data is never taken for the whole. Probability-like logits
    are reported the same way but leave the result alone.

    Args:
        metric: The metric, with its `input_problems` variable.
        value: Its result computed from the state.
        kinds: The kinds of problems it counts, those that reject rows
            first (as `PROBLEMS`).
    """
    counts = metric.input_problems.value
    num_rejecting = sum(kind not in WARNING_ONLY_PROBLEMS for kind in kinds)
    rejected = ops.sum(counts[:num_rejecting])
    if values_are_concrete(rejected) and metric not in _REPORTED_METRICS:
        description = describe_problems(ops.convert_to_numpy(counts), kinds)
        if description:
            verdict = "its result is NaN" if float(rejected) else "its result is kept"
            warnings.warn(
                f"Metric {metric.name!r} met invalid inputs inside compiled "
                f"steps, where they cannot raise: {description}. They were left "
                f"out and {verdict}; call update_state eagerly on the same data "
                "to see the first bad row.",
                RuntimeWarning,
                stacklevel=3,
            )
            _REPORTED_METRICS.add(metric)
    return ops.where(ops.greater(rejected, 0), float("nan"), value)


def describe_problems(counts, kinds=PROBLEMS):
    """A sentence on the input problems counted inside compiled steps.

    Args:
        counts: NumPy array of the counts of each of `kinds`.
        kinds: Names of the kinds, keys of `PROBLEM_DESCRIPTIONS`.

    Returns:
        The sentence, or `None` when there are none.
    """
    parts = [
        PROBLEM_DESCRIPTIONS[name].format(n=count)
        for name, count in zip(kinds, counts)
        if count
    ]
    return "; ".join(parts) if parts else None


def raise_for_invalid_rows(labels, outputs, is_logits, num_classes, tolerance, detected=False,
                           ignored=None):
    """Raises a `ValueError` naming the first problem found in a batch.

    Args:
        labels: NumPy array of the flattened labels, shape `(rows,)`.
        outputs: NumPy array of the flattened predictions as given (logits
            or probabilities), shape `(rows, columns)`.
        is_logits: Whether `outputs` were read as logits.
        num_classes: Number of classes (2 for a sigmoid output).
        tolerance: The tolerance of a probability row's sum.
        detected: Whether `is_logits` was detected (`from_logits=None`).
        ignored: Boolean `(rows,)` NumPy mask of rows to pass over (their
            label is the ignore label), or `None`.
    """
    checked = np.ones(len(labels), bool) if ignored is None else ~np.asarray(ignored, bool)
    non_finite_rows = np.flatnonzero(~np.all(np.isfinite(outputs), axis=-1) & checked)
    if non_finite_rows.size:
        row = non_finite_rows[0]
        raise ValueError(
            f"y_pred contains NaN or Inf in {non_finite_rows.size} row(s); "
            f"the first is row {row}: {outputs[row].tolist()[:10]}."
        )
    bad_labels = (labels != np.floor(labels)) | (labels < 0) | (labels >= num_classes)
    if np.any(bad_labels & checked):
        row = np.flatnonzero(bad_labels & checked)[0]
        raise ValueError(
            f"y_true holds label {labels[row]:g} at row {row}; labels must be "
            f"integers in [0, {num_classes}). For one-hot labels pass "
            "sparse_y_true=False."
            + ("" if ignored is None else " (Rows of the ignore_label are left out.)")
        )
    row_sums = outputs.sum(axis=-1)
    if is_logits and detected:
        raise ValueError(
            "Cannot tell whether y_pred holds logits or probabilities: every "
            "value lies in [0, 1] but some rows do not sum to one (row "
            f"{np.flatnonzero((np.abs(row_sums - 1) > tolerance) & checked)[0]}), as "
            "independent sigmoids (a multi-label model) give. Pass "
            "from_logits=True if they are logits."
        )
    if outputs.shape[-1] == 1:
        bad_rows = np.flatnonzero(((outputs[:, 0] < 0) | (outputs[:, 0] > 1)) & checked)
        row = bad_rows[0]
        raise ValueError(
            f"y_pred holds {outputs[row, 0]:g} at row {row}, outside [0, 1]; "
            "a single-column prediction must be a sigmoid probability. If "
            "the model outputs logits, pass from_logits=True."
        )
    outside = (outputs < 0).any(axis=-1) | (outputs > 1).any(axis=-1)
    bad = np.flatnonzero(((np.abs(row_sums - 1.0) > tolerance) | outside) & checked)
    row = bad[0]
    raise ValueError(
        f"The probabilities in row {row} of y_pred sum to {row_sums[row]:g}, "
        f"not 1 (tolerance {tolerance:g} for its dtype), or leave [0, 1]. If the "
        "model outputs logits, pass from_logits=True."
    )


def _check_prediction_shape(shape):
    if len(shape) < 2:
        raise ValueError(
            "y_pred needs a class axis last: shape (batch, num_classes), or "
            f"(batch, 1) for a sigmoid output. Received shape {tuple(shape)}."
        )
    if shape[-1] is None:
        raise ValueError(
            "The number of classes (last axis of y_pred) must be known. "
            f"Received shape {tuple(shape)}."
        )
    return shape[-1]


def _same_shape(shape, other):
    return len(shape) == len(other) and all(
        a is None or b is None or a == b for a, b in zip(shape, other)
    )


def _check_label_shape(label_shape, prediction_shape, sparse_y_true, num_columns):
    label_shape = tuple(label_shape)
    prediction_shape = tuple(prediction_shape)
    batch_shape = prediction_shape[:-1]
    if not sparse_y_true:
        if num_columns == 1:
            raise ValueError(
                "A single-column (sigmoid) y_pred takes 0/1 labels: pass "
                "sparse_y_true=True."
            )
        if not _same_shape(label_shape, prediction_shape):
            raise ValueError(
                "With sparse_y_true=False, y_true must be one-hot with the "
                f"shape of y_pred. Received y_true shape {label_shape} and "
                f"y_pred shape {prediction_shape}."
            )
        return
    if _same_shape(label_shape, batch_shape) or _same_shape(
        label_shape, batch_shape + (1,)
    ):
        return
    hint = ""
    if _same_shape(label_shape, prediction_shape):
        hint = " For one-hot labels pass sparse_y_true=False."
    raise ValueError(
        "y_true must hold one integer label per prediction, of shape "
        f"{batch_shape} or {batch_shape + (1,)}. Received y_true shape "
        f"{label_shape} and y_pred shape {prediction_shape}.{hint}"
    )


def flat_weights(sample_weight, y_pred):
    """Weights of shape `(rows,)`: one per prediction, 1 when not given.

    Args:
        sample_weight: `None`, a scalar, or weights of a shape that aligns
            with `y_pred.shape[:-1]` from the left (a per-example weight
            applies to every position of a map), with an optional trailing 1.
        y_pred: Tensor of shape `batch_shape + (columns,)`.
    """
    if sample_weight is None:
        return flatten(ops.ones_like(y_pred[..., 0]))
    batch_zeros = ops.zeros_like(y_pred[..., 0])
    sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
    batch_shape = tuple(batch_zeros.shape)
    weight_shape = tuple(sample_weight.shape)
    if len(weight_shape) == len(batch_shape) + 1 and weight_shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, axis=-1)
        weight_shape = weight_shape[:-1]
    # Like Keras losses, a per-example weight of shape (batch,) applies to
    # every position of a segmentation map: align from the left.
    fits = len(weight_shape) <= len(batch_shape) and all(
        a is None or b is None or a in (1, b)
        for a, b in zip(weight_shape, batch_shape)
    )
    if not fits:
        raise ValueError(
            f"sample_weight of shape {weight_shape} does not fit the batch "
            f"shape {batch_shape} of y_pred."
        )
    for _ in range(len(batch_shape) - len(weight_shape)):
        sample_weight = ops.expand_dims(sample_weight, axis=-1)
    return flatten(sample_weight + batch_zeros)
