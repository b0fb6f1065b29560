"""Reductions of a batch of predictions that are slow through `keras.ops`.

`top_label` gives each row's largest probability and its class. Through
`keras.ops` that is `max` plus `argmax`: two passes, and Keras's argmax on
TensorFlow and JAX first rewrites every -0.0 (a workaround for flush-to-zero
CPUs) before a slow variadic reduction, several times slower than NumPy on
wide rows. Each backend has a faster way, all returning the first index on
ties as `argmax` does:

- TensorFlow: eagerly, `tf.math.top_k(k=1)`, whose order is stable; traced
  (XLA), `reduce_max` and argmax, or from `ARITHMETIC_ARGMAX_MIN_CLASSES`
  classes on the first index of the mask `probabilities == maximum`, since
  inside XLA top_k is the slowest of the three and the mask the fastest for
  wide rows.
- PyTorch: `torch.max(dim=-1)`, one pass for values and indices.
- JAX: compiled with `jax.jit`. XLA's CPU argmax is a variadic reduction
  that does not vectorise; so is any reduction over a comparison or
  `where`. For wide rows the first index of the maximum is found with
  arithmetic only, which XLA does vectorise: see `_first_maximum_index`.
  For narrow rows argmax is faster.

`detected_top_label` does the same for a batch that may be logits, decided
inside a compiled step.

The -0.0 workaround does not matter here: probabilities have a maximum of
at least `1 / num_classes`, so the sign of a zero never decides which entry
is largest; the logits that `detected_top_label` reads directly under
TensorFlow are compared with `argmax` or `==` inside XLA, where -0.0 and
0.0 tie as their softmax probabilities do, and the first index wins.

`bin_sums` sums a batch's histogram entries per bin, as
`keras.ops.segment_sum` does, except under PyTorch: there Keras's
segment_sum replicates the bin indices across the columns and scatters,
an order of magnitude slower than `torch.bincount` (see
benchmarks/metric_throughput.py for the metric these serve).
"""

import functools

import keras
from keras import ops


def top_label(probabilities):
    """Largest probability of each row and the index of its (first) class.

    Args:
        probabilities: Float tensor of shape `(rows, classes)`.

    Returns:
        A tuple `(confidences, predicted)`: float tensor of shape `(rows,)`
        with each row's maximum, and int32 tensor of shape `(rows,)` with
        the index of its first occurrence.

    Example:

    >>> confidences, predicted = top_label(
    ...     keras.ops.convert_to_tensor([[0.2, 0.8], [0.5, 0.5]]))
    >>> keras.ops.convert_to_numpy(predicted).tolist()
    [1, 0]
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_top_label(probabilities)
    if backend == "torch":
        return _torch_top_label(probabilities)
    if backend == "jax":
        return _jax_top_label()(probabilities)
    return ops.max(probabilities, axis=-1), ops.cast(
        ops.argmax(probabilities, axis=-1), "int32"
    )


def detected_top_label(outputs, is_logits):
    """`top_label` of the softmax of `outputs` if `is_logits`, else of `outputs`.

    For a batch whose reading is detected inside a compiled step.

    Args:
        outputs: Float tensor of shape `(rows, classes)`, at least 2 classes.
        is_logits: Traced boolean scalar: whether `outputs` are logits.

    Returns:
        `(confidences, predicted)` as `top_label` returns them.
    """
    if keras.backend.backend() == "tensorflow":
        return _tensorflow_detected_top_label(outputs, is_logits)
    # A conditional over the two returned columns only: one that returned the
    # probabilities would copy the whole tensor and stop its reductions from
    # fusing.
    return ops.cond(is_logits, lambda: top_label(ops.softmax(outputs, axis=-1)),
                    lambda: top_label(outputs))


def _tensorflow_detected_top_label(outputs, is_logits):
    # Under XLA the row reductions ran at half their speed inside a
    # conditional (docs/BENCHMARKS.md, section 4), so they stay outside it:
    # softmax keeps each row's order, so the class is that of `outputs`
    # either way, and the largest softmax probability of a row of logits is
    # 1 / sum(exp(outputs - maximum)); only that sum is conditional.
    maximum, predicted = _tensorflow_top_label(outputs)
    confidences = ops.cond(
        is_logits,
        lambda: 1.0 / ops.sum(ops.exp(outputs - ops.expand_dims(maximum, -1)), axis=-1),
        lambda: maximum,
    )
    return confidences, predicted


def _tensorflow_top_label(probabilities):
    import tensorflow as tf

    if tf.executing_eagerly():
        values, indices = tf.math.top_k(probabilities, k=1, sorted=True)
        return values[:, 0], tf.cast(indices[:, 0], "int32")
    # Traced, and compiled with XLA in a Keras train step, top_k is the
    # slowest choice, and for wide rows the equality mask the fastest.
    maximum = tf.reduce_max(probabilities, axis=-1, keepdims=True)
    if probabilities.shape[-1] < ARITHMETIC_ARGMAX_MIN_CLASSES:
        predicted = tf.argmax(probabilities, axis=-1, output_type="int32")
    else:
        is_maximum = tf.cast(tf.equal(probabilities, maximum), probabilities.dtype)
        predicted = tf.cast(_first_nonzero_index(ops, is_maximum), "int32")
    return maximum[:, 0], predicted


def _torch_top_label(probabilities):
    import torch

    values, indices = torch.max(probabilities, dim=-1)
    return values, indices.to(torch.int32)


@functools.cache
def _jax_top_label():
    import jax
    import jax.numpy as jnp

    # Inside an outer jit this is inlined; eagerly, it runs the reductions
    # as one compiled call instead of one dispatch per op.
    @jax.jit
    def top_label(probabilities):
        maximum = jnp.max(probabilities, axis=-1, keepdims=True)
        if probabilities.shape[-1] < ARITHMETIC_ARGMAX_MIN_CLASSES:
            predicted = jnp.argmax(probabilities, axis=-1)
        else:
            predicted = _first_maximum_index(jnp, probabilities, maximum)
        return maximum[:, 0], predicted.astype("int32")

    return top_label


# Where the arithmetic first-maximum beats argmax: measured on a 2-core x86
# CPU, argmax was faster at 16 classes and slower at 32 under JAX.
ARITHMETIC_ARGMAX_MIN_CLASSES = 32


def _first_maximum_index(numpy_like, probabilities, maximum):
    """Index of the first entry equal to each row's `maximum`, exactly.

    For a row with maximum `m > 0`, `1 + (p - m) * 2**25 / m` is exactly 1
    where `p == m`, and at most -1 where `p < m`: the relative gap between
    two distinct float32 values is at least 2**-24, so the scaled gap is at
    least 2 (roundings change it by a few parts in 2**24). Clipped at 0,
    this is a 0/1 mask of the maxima built without a comparison, whose first
    nonzero entry is the same answer as argmax, ties included.

    Rows of valid probabilities always have `m >= 1 / num_classes > 0`; rows
    with NaN, Inf or a zero maximum give a meaningless index, and the metric
    masks those rows out.
    """
    scale = 2.0**25 / maximum
    is_maximum = numpy_like.maximum(1.0 + (probabilities - maximum) * scale, 0.0)
    return _first_nonzero_index(numpy_like, is_maximum)


def _first_nonzero_index(numpy_like, mask):
    """Index of the first 1 in each row of a float 0/1 `mask`, as a float.

    The mask times `num_classes - index` is largest at the first 1: a
    maximum, which XLA vectorises, where argmax is a slower reduction over
    (value, index) pairs. A row without a 1 gives `num_classes`.
    """
    num_classes = mask.shape[-1]
    countdown = num_classes - numpy_like.arange(num_classes, dtype="float32")
    return num_classes - numpy_like.max(mask * countdown, axis=-1)


def bin_sums(columns, bins, num_bins):
    """Sums of each column's entries that fall in each bin.

    Args:
        columns: List of float tensors of shape `(rows,)`, of one dtype.
        bins: Int tensor of shape `(rows,)` with values in `[0, num_bins)`.
        num_bins: Number of bins.

    Returns:
        Tensor of shape `(num_bins, len(columns))` and the columns' dtype.

    Example:

    >>> sums = bin_sums(
    ...     [keras.ops.convert_to_tensor([1.0, 3.0, 5.0]),
    ...      keras.ops.convert_to_tensor([2.0, 4.0, 6.0])],
    ...     keras.ops.convert_to_tensor([0, 2, 0]),
    ...     num_bins=3,
    ... )
    >>> keras.ops.convert_to_numpy(sums).tolist()
    [[6.0, 8.0], [0.0, 0.0], [3.0, 4.0]]
    """
    if keras.backend.backend() == "torch":
        return _torch_bin_sums(columns, bins, num_bins)
    return ops.segment_sum(ops.stack(columns, axis=-1), bins, num_segments=num_bins)


def _torch_bin_sums(columns, bins, num_bins):
    import torch

    sums = [
        torch.bincount(bins, weights=column, minlength=num_bins) for column in columns
    ]
    return torch.stack(sums, dim=-1).to(columns[0].dtype)
