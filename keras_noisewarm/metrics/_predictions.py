"""Turns a batch of labels and predictions into per-example rows.

Every metric in this package reads its inputs the same way: the class axis
is last, every other axis is a batch axis (a segmentation map counts every
position as one prediction), and a single-column prediction is a sigmoid
output, read as the two classes `[1 - p, p]`. Rows that cannot be measured
(a label out of range, a NaN, probabilities that do not sum to one) are
flagged so that the metric can raise on them when values are concrete, and
count them when they are not (inside `jit` or a `tf.function`, where Python
cannot look at values).
"""

import collections

import keras
import numpy as np
from keras import ops

from keras_noisewarm.backend.compilation import values_are_concrete

# float32 softmax outputs sum to one within about 1e-6; a looser bound
# leaves room for float16 models whose last layer is cast to float32.
PROBABILITY_SUM_TOLERANCE = 1e-3


Batch = collections.namedtuple(
    "Batch", ["outputs", "probabilities", "labels", "weights", "valid"]
)


def prepare_batch(y_true, y_pred, sample_weight, from_logits, sparse_y_true):
    """Flattens one batch into rows of class probabilities.

    Args:
        y_true: Integer labels of shape `batch_shape` or `batch_shape + (1,)`
            when `sparse_y_true`, else one-hot of the same shape as `y_pred`.
            For a sigmoid output (one column) labels are 0 or 1.
        y_pred: Probabilities or logits, shape `batch_shape + (num_classes,)`.
        sample_weight: `None`, a scalar, or weights of shape `batch_shape`
            (or `batch_shape + (1,)`).
        from_logits: Whether `y_pred` holds logits.
        sparse_y_true: Whether `y_true` holds integer labels.

    Returns:
        A `Batch` of flat tensors: `outputs`, float32 `y_pred` as given, of
        shape `(rows, columns)`; `probabilities` of shape `(rows, classes)`
        (two classes for a sigmoid output); int32 `labels` of shape `(rows,)`
        (0 where invalid); float32 `weights` of shape `(rows,)` (0 where
        invalid); and `valid`, a boolean `(rows,)` mask of rows whose label
        and prediction are valid, or `None` when values are concrete (they
        have all been checked valid then). Invalid rows keep their raw
        outputs and probabilities (possibly NaN): mask them with
        `where_valid` before summing.

    Raises:
        ValueError: If the shapes do not fit together, or, when values are
            concrete, if any row is invalid (see `raise_for_invalid_rows`).
    """
    # A metric never differentiates: under torch, whose trainer updates
    # metrics with autograd on, every op on y_pred would otherwise record a
    # backward node.
    y_pred = ops.stop_gradient(ops.convert_to_tensor(y_pred))
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.convert_to_tensor(y_true)
    num_columns = _check_prediction_shape(y_pred.shape)
    _check_label_shape(y_true.shape, y_pred.shape, sparse_y_true, num_columns)

    outputs = flatten(y_pred, num_columns)
    if sparse_y_true:
        labels = flatten(y_true)
    else:
        labels = ops.argmax(flatten(y_true, num_columns), axis=-1)
    weights = _flat_weights(sample_weight, y_pred)

    num_classes = max(num_columns, 2)
    label_is_valid = ops.logical_and(
        ops.greater_equal(labels, 0), ops.less(labels, num_classes)
    )
    if "int" not in keras.backend.standardize_dtype(labels.dtype):
        label_is_valid = ops.logical_and(
            label_is_valid, ops.equal(labels, ops.floor(labels))
        )
    if from_logits:
        # A -inf logit would give a probability of 0, but we treat any
        # non-finite value as a broken prediction, as for probabilities.
        prediction_is_valid = ops.all(ops.isfinite(outputs), axis=-1)
        if num_columns == 1:
            positive = ops.sigmoid(outputs)
            probabilities = ops.concatenate([1.0 - positive, positive], axis=-1)
        else:
            probabilities = ops.softmax(outputs, axis=-1)
    elif num_columns == 1:
        # NaN fails both comparisons, so it is flagged too.
        prediction_is_valid = ops.logical_and(
            ops.greater_equal(outputs[:, 0], 0.0),
            ops.less_equal(outputs[:, 0], 1.0),
        )
        probabilities = ops.concatenate([1.0 - outputs, outputs], axis=-1)
    else:
        # One reduction checks both the sum and finiteness: a NaN or Inf
        # anywhere in the row makes the comparison false.
        row_sums = ops.sum(outputs, axis=-1)
        prediction_is_valid = ops.less_equal(
            ops.abs(row_sums - 1.0), PROBABILITY_SUM_TOLERANCE
        )
        probabilities = outputs
    valid = ops.logical_and(label_is_valid, prediction_is_valid)

    if values_are_concrete(valid):
        if not bool(ops.convert_to_numpy(ops.all(valid))):
            raise_for_invalid_rows(
                ops.convert_to_numpy(labels),
                ops.convert_to_numpy(outputs),
                from_logits=from_logits,
                num_classes=num_classes,
            )
        # Every row is valid: no masking needed. (Eager ops cost tens of
        # microseconds each in a torch training step.)
        if keras.backend.standardize_dtype(labels.dtype) != "int32":
            labels = ops.cast(labels, "int32")
        return Batch(outputs, probabilities, labels, weights, valid=None)
    labels = ops.cast(ops.where(label_is_valid, labels, 0), "int32")
    weights = ops.where(valid, weights, 0.0)
    return Batch(outputs, probabilities, labels, weights, valid)


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


def invalid_row_count(valid):
    """Number of rows of a batch that `valid` rejects, or `None` eagerly.

    Only traced steps can meet such rows: eagerly, `prepare_batch` has
    already raised on them (and set `valid` to `None`).
    """
    if valid is None:
        return None
    return ops.sum(ops.cast(ops.logical_not(valid), "float32"))


def count_invalid_rows(variable, valid):
    """Adds `invalid_row_count(valid)` to `variable`, when traced."""
    count = invalid_row_count(valid)
    if count is not None:
        variable.assign_add(ops.cast(count, variable.dtype))


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


def log_probabilities(outputs, from_logits):
    """Log class probabilities of flat `outputs`, two columns for a sigmoid.

    From logits this is exact (no softmax underflow); probabilities are
    clipped to `[epsilon, 1]` first, as Keras's cross-entropy losses do.
    """
    if from_logits and outputs.shape[-1] == 1:
        return ops.concatenate(
            [ops.log_sigmoid(-outputs), ops.log_sigmoid(outputs)], axis=-1
        )
    if from_logits:
        return ops.log_softmax(outputs, axis=-1)
    if outputs.shape[-1] == 1:
        outputs = ops.concatenate([1.0 - outputs, outputs], axis=-1)
    return ops.log(ops.clip(outputs, keras.backend.epsilon(), 1.0))


def raise_for_invalid_rows(labels, outputs, from_logits, num_classes):
    """Raises a `ValueError` naming the first problem found in a batch.

    Args:
        labels: NumPy array of the flattened labels, shape `(rows,)`.
        outputs: NumPy array of the flattened predictions as given (logits
            or probabilities), shape `(rows, columns)`.
        from_logits: Whether `outputs` are logits.
        num_classes: Number of classes (2 for a sigmoid output).
    """
    non_finite_rows = np.flatnonzero(~np.all(np.isfinite(outputs), axis=-1))
    if non_finite_rows.size:
        row = non_finite_rows[0]
        raise ValueError(
            f"y_pred contains NaN or Inf in {non_finite_rows.size} row(s); "
            f"the first is row {row}: {outputs[row].tolist()[:10]}."
        )
    bad_labels = (labels != np.floor(labels)) | (labels < 0) | (labels >= num_classes)
    if np.any(bad_labels):
        row = np.flatnonzero(bad_labels)[0]
        raise ValueError(
            f"y_true holds label {labels[row]:g} at row {row}; labels must be "
            f"integers in [0, {num_classes}). For one-hot labels pass "
            "sparse_y_true=False."
        )
    if from_logits:
        return
    if outputs.shape[-1] == 1:
        bad_rows = np.flatnonzero((outputs[:, 0] < 0) | (outputs[:, 0] > 1))
        row = bad_rows[0]
        raise ValueError(
            f"y_pred holds {outputs[row, 0]:g} at row {row}, outside [0, 1]; "
            "a single-column prediction must be a sigmoid probability. If "
            "the model outputs logits, pass from_logits=True."
        )
    row_sums = outputs.sum(axis=-1)
    row = np.flatnonzero(np.abs(row_sums - 1.0) > PROBABILITY_SUM_TOLERANCE)[0]
    raise ValueError(
        f"The probabilities in row {row} of y_pred sum to {row_sums[row]:g}, "
        f"not 1 (tolerance {PROBABILITY_SUM_TOLERANCE:g}). If the model "
        "outputs logits, pass from_logits=True."
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


def _flat_weights(sample_weight, y_pred):
    """Weights of shape `(rows,)`: one per prediction, 1 when not given."""
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
