"""Prediction sets from class scores and a conformal quantile, and how to judge them."""

import keras


def prediction_sets(class_scores, quantile):
    """Every class whose score is at most the conformal quantile.

    Args:
        class_scores: Non-conformity scores of every class, shape `(N, K)`,
            from the same score function as the calibration scores.
        quantile: The conformal quantile of the calibration scores (a
            number or scalar tensor); `inf` gives every class.

    Returns:
        A boolean tensor of shape `(N, K)`: `sets[i, k]` says whether class
        `k` is in the prediction set of example `i`. A set may be empty.

    Example:

    >>> import numpy as np
    >>> sets = prediction_sets(np.array([[0.3, 0.8, 0.9]]), quantile=0.85)
    >>> keras.ops.convert_to_numpy(sets).tolist()
    [[True, True, False]]
    """
    class_scores = keras.ops.convert_to_tensor(class_scores)
    quantile = keras.ops.cast(quantile, class_scores.dtype)
    return keras.ops.less_equal(class_scores, quantile)


def coverage(sets, labels):
    """The share of examples whose true label is in their prediction set.

    Args:
        sets: Boolean prediction sets, shape `(N, K)`.
        labels: Integer class ids, shape `(N,)`.

    Returns:
        A Python float in `[0, 1]`; split conformal prediction promises at
        least `1 - alpha` on average over calibration sets.

    Example:

    >>> coverage([[True, True, False], [False, False, True]], [1, 0])
    0.5
    """
    sets = keras.ops.convert_to_tensor(sets, dtype="bool")
    labels = keras.ops.reshape(keras.ops.convert_to_tensor(labels, dtype="int32"), (-1, 1))
    if labels.shape[0] != sets.shape[0]:
        raise ValueError(
            f"Got {sets.shape[0]} prediction sets but {labels.shape[0]} labels."
        )
    covered = keras.ops.take_along_axis(sets, labels, axis=-1)
    return float(keras.ops.mean(keras.ops.cast(covered, "float32")))


def average_set_size(sets):
    """The mean number of classes per prediction set (smaller is sharper).

    Args:
        sets: Boolean prediction sets, shape `(N, K)`.

    Returns:
        A Python float in `[0, K]`.

    Example:

    >>> average_set_size([[True, True, False], [False, False, True]])
    1.5
    """
    sets = keras.ops.convert_to_tensor(sets, dtype="bool")
    sizes = keras.ops.sum(keras.ops.cast(sets, "float32"), axis=-1)
    return float(keras.ops.mean(sizes))
