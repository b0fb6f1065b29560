"""Model outputs: logits or probabilities, told apart by one rule.

Every object of the package that reads a classifier's outputs (metrics,
post-hoc layers, OOD scores, conformal sets, the warm-up, the monitor) takes
`from_logits` and applies the same rule:

- `from_logits=None` (the default everywhere): detect. Outputs hold
  probabilities when every value lies in `[0, 1]` and, with two or more
  classes, every row sums to one within the tolerance of their dtype
  (`probability_tolerance`); they hold logits when some value lies outside
  `[0, 1]`. Values inside `[0, 1]` whose rows do not sum to one are neither
  (independent sigmoids of a multi-label model, say) and are refused. A
  single column is a sigmoid output, read as the two classes `[1 - p, p]`.
  Detection looks at a whole batch (in a metric) or a whole held-out set (in
  a fit).
- `from_logits=True`: the outputs are logits, as stated. Outputs that look
  like probabilities (two or more classes, the test above) are reported: a
  warning where values can be read, a count where they cannot (inside a
  compiled step).
- `from_logits=False`: the outputs are probabilities. Rows that are not are
  an error where values can be read; inside a compiled step they are left
  out and counted.

Probabilities become logits by their logarithm (floored at
`PROBABILITY_FLOOR`): it differs from the true logits by one constant per
row, which softmax ignores, so scaling or scoring it gives what the logits
would.

The NumPy functions here (`resolve_from_logits`, `probabilities_of`,
`logits_of`) run on the host in float64, for fits and diagnostics; the
tensor functions (`probabilities`, `logits`, `summarise_rows` and the row
checks that read it)
run inside models and metrics with `keras.ops`.
"""

import collections
import warnings

import keras
import numpy as np
from keras import ops

# Below this a float32 probability is zero; its logarithm stays finite.
PROBABILITY_FLOOR = 1e-12
# float32 softmax rows sum to one within a few ulps; the floor leaves room
# for the last layer's rounding. Lower-precision dtypes get a multiple of
# their machine epsilon: bfloat16 rows of 100 classes were seen to sum to
# 0.998.
_TOLERANCE_FLOOR = 1e-3
_TOLERANCE_EPSILONS = 4


def probability_tolerance(dtype):
    """How far from one a row of probabilities of `dtype` may sum.

    Args:
        dtype: The dtype the probabilities were computed in (before any
            cast to float32).

    Returns:
        A float: `max(1e-3, 4 * eps)`, where `eps` is the dtype's machine
        epsilon (1e-3 for float32 and float64, 3.9e-3 for float16, 0.031
        for bfloat16).

    Example:

    >>> probability_tolerance("float32"), round(probability_tolerance("bfloat16"), 4)
    (0.001, 0.0312)
    """
    name = keras.backend.standardize_dtype(dtype)
    if name == "bfloat16":
        epsilon = 2.0**-7
    elif "float" in name:
        epsilon = float(np.finfo(name).eps)
    else:
        epsilon = 0.0
    return max(_TOLERANCE_FLOOR, _TOLERANCE_EPSILONS * epsilon)


# ----------------------------------------------------------------------------
# Host side: NumPy arrays of a whole set.


def resolve_from_logits(outputs, from_logits, what="the outputs"):
    """Applies the `from_logits` rule to concrete outputs.

    Args:
        outputs: NumPy array (or tensor) of shape `(..., K)`.
        from_logits: `True`, `False` or `None` (detect).
        what: How to name the outputs in messages.

    Returns:
        `True` if the outputs are to be read as logits, `False` for
        probabilities.

    Raises:
        ValueError: With `from_logits=False` on outputs that are not
            probabilities, and with `None` on outputs in `[0, 1]` whose rows
            do not sum to one.

    Example:

    >>> resolve_from_logits(np.array([[0.2, 0.8]]), None)
    False
    >>> resolve_from_logits(np.array([[2.0, -1.0]]), None)
    True
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    dtype = outputs.dtype
    outputs = outputs.astype(np.float64)
    if outputs.ndim == 0 or outputs.shape[-1] is None:
        raise ValueError(f"{what} need a class axis last, got shape {outputs.shape}.")
    in_unit_interval = bool(np.all((outputs >= 0.0) & (outputs <= 1.0)))
    single_column = outputs.shape[-1] == 1
    sums_to_one = single_column or bool(
        np.all(np.abs(outputs.sum(axis=-1) - 1.0) <= probability_tolerance(dtype))
    )
    looks_like_probabilities = in_unit_interval and sums_to_one
    if from_logits is None:
        if in_unit_interval and not sums_to_one and np.any(outputs != 0):
            raise ValueError(
                f"Cannot tell whether {what} are logits or probabilities: every "
                "value lies in [0, 1] but the rows do not sum to one, as "
                "independent sigmoids (a multi-label model) give. Pass "
                "from_logits=True if they are logits."
            )
        return not looks_like_probabilities
    if from_logits is False and not looks_like_probabilities:
        rule = "lie in [0, 1]" if single_column else "lie in [0, 1] and sum to one"
        raise ValueError(
            f"from_logits=False, but {what} do not {rule}, so they are not "
            "probabilities. Pass from_logits=True (or None to detect it)."
        )
    if from_logits is True and looks_like_probabilities and not single_column:
        warnings.warn(
            f"from_logits=True, but {what} look like probabilities (they lie in "
            "[0, 1] and every row sums to one); they are treated as logits, as "
            "asked. Pass from_logits=False (or None to detect it) if they are "
            "probabilities.",
            stacklevel=3,
        )
    return bool(from_logits)


def probabilities_of(outputs, from_logits):
    """Class probabilities of concrete outputs, float64, class axis last.

    A single column becomes two, `[1 - p, p]`.

    Args:
        outputs: NumPy array of shape `(..., K)`.
        from_logits: Whether `outputs` are logits (a resolved `bool`).

    Returns:
        A float64 NumPy array of shape `(..., max(K, 2))`.

    Example:

    >>> probabilities_of(np.array([[0.0, 0.0]]), from_logits=True).tolist()
    [[0.5, 0.5]]
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if outputs.shape[-1] == 1:
        positive = 1.0 / (1.0 + np.exp(-outputs)) if from_logits else outputs
        return np.concatenate([1.0 - positive, positive], axis=-1)
    if not from_logits:
        return outputs
    shifted = outputs - outputs.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def logits_of(outputs, from_logits):
    """Logits of concrete outputs, float64: probabilities become log-probabilities.

    Args:
        outputs: NumPy array of shape `(..., K)`, `K >= 2`.
        from_logits: Whether `outputs` are logits (a resolved `bool`).

    Returns:
        A float64 NumPy array of the same shape.
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if from_logits:
        return outputs
    return np.log(np.maximum(outputs, PROBABILITY_FLOOR))


# ----------------------------------------------------------------------------
# Inside models and metrics: tensors, `keras.ops`.


RowSummary = collections.namedtuple("RowSummary", ["minimum", "maximum", "total"])
RowSummary.__doc__ = """Per-row minimum, maximum and sum of flat outputs; see `summarise_rows`."""


def summarise_rows(outputs):
    """The three row reductions every check of outputs reads.

    The checks below read only these, so that a batch is read three times
    whatever is checked, instead of once per elementwise test.

    Args:
        outputs: Float tensor of shape `(rows, K)`.

    Returns:
        A `RowSummary` of tensors of shape `(rows,)`.
    """
    return RowSummary(ops.min(outputs, axis=-1), ops.max(outputs, axis=-1),
                      ops.sum(outputs, axis=-1))


def finite_rows(summary):
    """Per row: no NaN or Inf, from a `RowSummary`.

    A NaN always makes the sum NaN, whereas XLA's minimum and maximum under
    TensorFlow skip it; an Inf makes an extreme infinite. A sum that
    overflowed on finite values is infinite but not NaN, with finite
    extremes.

    Example:

    >>> rows = keras.ops.convert_to_tensor([[1.0, float("nan")], [2e38, 2e38],
    ...                                     [0.0, float("inf")]])
    >>> keras.ops.convert_to_numpy(finite_rows(summarise_rows(rows))).tolist()
    [False, True, False]
    """
    extremes_finite = ops.logical_and(
        ops.isfinite(summary.minimum), ops.isfinite(summary.maximum)
    )
    return ops.logical_or(
        ops.isfinite(summary.total),
        ops.logical_and(ops.logical_not(ops.isnan(summary.total)), extremes_finite),
    )


def rows_in_unit_interval(summary):
    """Per row: every value in `[0, 1]`, from a `RowSummary`.

    Rows holding a NaN may pass under TensorFlow's XLA (its extremes skip
    NaN): combine with `finite_rows` or a sum test.
    """
    return ops.logical_and(
        ops.greater_equal(summary.minimum, 0.0), ops.less_equal(summary.maximum, 1.0)
    )


def rows_look_like_probabilities(summary, tolerance, num_columns):
    """Per row: values in `[0, 1]` and (two or more columns) a sum of one.

    A NaN or Inf anywhere in a row makes it `False`.

    Args:
        summary: The `RowSummary` of outputs of shape `(rows, num_columns)`.
        tolerance: Allowed distance of a row sum from one.
        num_columns: The number of columns of the outputs.

    Returns:
        A boolean tensor of shape `(rows,)`.

    Example:

    >>> rows = keras.ops.convert_to_tensor([[0.25, 0.75], [0.5, 0.6], [-0.5, 1.5]])
    >>> summary = summarise_rows(rows)
    >>> keras.ops.convert_to_numpy(rows_look_like_probabilities(summary, 1e-3, 2)).tolist()
    [True, False, False]
    """
    in_unit_interval = rows_in_unit_interval(summary)
    if num_columns == 1:
        return ops.logical_and(in_unit_interval, finite_rows(summary))
    # A NaN makes the sum NaN, and the comparison false.
    sums_to_one = ops.less_equal(ops.abs(summary.total - 1.0), tolerance)
    return ops.logical_and(in_unit_interval, sums_to_one)


def probabilities(outputs, from_logits):
    """Class probabilities of a tensor of outputs, class axis last.

    Args:
        outputs: Float tensor of shape `(..., K)`.
        from_logits: Whether `outputs` are logits (a resolved `bool`).

    Returns:
        A tensor of shape `(..., max(K, 2))`: softmax of logits (sigmoid as
        `[1 - p, p]` for one column), probabilities as they are.
    """
    if outputs.shape[-1] == 1:
        positive = ops.sigmoid(outputs) if from_logits else outputs
        return ops.concatenate([1.0 - positive, positive], axis=-1)
    return ops.softmax(outputs, axis=-1) if from_logits else outputs


def at_least_float32(tensor):
    """`tensor` as a tensor, float16 and bfloat16 widened to float32.

    Scores and fitted layers compute from low-precision outputs in float32:
    widening is exact, and reductions over classes done in bfloat16 round
    every score to 8 bits (most maximum softmax probabilities of a batch
    then tie).

    Example:

    >>> half = keras.ops.cast(keras.ops.ones((2,)), "bfloat16")
    >>> keras.backend.standardize_dtype(at_least_float32(half).dtype)
    'float32'
    """
    tensor = ops.convert_to_tensor(tensor)
    if keras.backend.standardize_dtype(tensor.dtype) in ("float16", "bfloat16"):
        return ops.cast(tensor, "float32")
    return tensor


def logits(outputs, from_logits):
    """Logits of a tensor of outputs: probabilities become log-probabilities.

    Args:
        outputs: Float tensor of shape `(..., K)`.
        from_logits: Whether `outputs` are logits (a resolved `bool`).

    Returns:
        A tensor of the same shape and dtype.

    Example:

    >>> values = logits(keras.ops.convert_to_tensor([[1.0, 0.0]]), False)
    >>> bool(keras.ops.convert_to_numpy(values)[0, 1] < -20)
    True
    """
    if from_logits:
        return outputs
    floor = ops.cast(_probability_floor(outputs.dtype), outputs.dtype)
    return ops.log(ops.maximum(outputs, floor))


def _probability_floor(dtype):
    # PROBABILITY_FLOOR is 0 in float16: floor there at its smallest
    # positive value instead, so that a zero probability stays finite.
    name = keras.backend.standardize_dtype(dtype)
    if name == "float16":
        return max(PROBABILITY_FLOOR, float(np.finfo(np.float16).smallest_subnormal))
    return PROBABILITY_FLOOR


def log_probabilities(outputs, from_logits):
    """Log class probabilities of flat outputs `(rows, K)`, two columns for one.

    From logits this is exact (no softmax underflow); probabilities are
    clipped to `[keras.backend.epsilon(), 1]` first, as Keras's
    cross-entropy losses do.
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
