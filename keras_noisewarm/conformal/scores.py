"""Non-conformity scores of every class, for split conformal classification.

Each function maps class probabilities `(N, K)` to scores `(N, K)`: the
score of class `k` for example `i`, lower meaning that the label `k` is
more plausible. Calibration uses the score of the true label
(`label_scores`); the prediction set of a new input holds every class whose
score is at most the conformal quantile. Scoring the classes of calibration
and test inputs with the same function is what makes coverage hold.
"""

import keras


def lac_scores(probabilities):
    """LAC ("least ambiguous set-valued classifier", Sadinle et al., 2019): `1 - p_k`.

    Gives the smallest sets on average, but spreads coverage unevenly:
    hard inputs are under-covered and easy ones over-covered.

    Args:
        probabilities: Class probabilities, shape `(N, K)`.

    Returns:
        A tensor of shape `(N, K)`.

    Example:

    >>> import numpy as np
    >>> scores = lac_scores(np.array([[0.7, 0.2, 0.1]], "float32"))
    >>> np.round(keras.ops.convert_to_numpy(scores), 2)
    array([[0.3, 0.8, 0.9]], dtype=float32)
    """
    probabilities = keras.ops.convert_to_tensor(probabilities)
    return 1.0 - probabilities


def aps_scores(probabilities, randomized=True, seed=None):
    """APS (adaptive prediction sets, Romano et al., 2020).

    Sort the classes by probability, most likely first. The score of the
    class at rank `r` (1-based) is the probability mass ranked above it plus
    `u` times its own probability, `u ~ Uniform(0, 1)` drawn once per example
    (`u = 1` with `randomized=False`: the mass up to and including it). The
    random `u` makes the scores continuous, so coverage is exactly
    `1 - alpha` on average rather than at least.

    Args:
        probabilities: Class probabilities, shape `(N, K)`.
        randomized: Whether to draw `u` (default) or use `u = 1`.
        seed: Seed of `u`: an int, a `keras.random.SeedGenerator`, or `None`
            for Keras's global seed.

    Returns:
        A tensor of shape `(N, K)`.

    Example:

    >>> import numpy as np
    >>> scores = aps_scores(np.array([[0.2, 0.7, 0.1]], "float32"), randomized=False)
    >>> np.round(keras.ops.convert_to_numpy(scores), 2)
    array([[0.9, 0.7, 1. ]], dtype=float32)
    """
    return _adaptive_scores(probabilities, 0.0, 0, randomized, seed)


def raps_scores(probabilities, penalty=0.01, k_reg=1, randomized=True, seed=None):
    """RAPS (regularised APS, Angelopoulos et al., 2021).

    The APS score plus `penalty * max(0, r - k_reg)` for the class at rank
    `r` (1-based), so that unlikely classes far down the ranking rarely get
    into the set: smaller, more stable sets than APS for many classes.
    Angelopoulos et al. used `penalty=0.01`, `k_reg=5` for ImageNet;
    `k_reg` should be about the number of classes a typical input is
    confused between.

    Args:
        probabilities: Class probabilities, shape `(N, K)`.
        penalty: Non-negative cost `lambda` per rank beyond `k_reg`.
        k_reg: Non-negative integer, the number of ranks free of penalty.
        randomized: Whether to draw `u` (default) or use `u = 1`.
        seed: Seed of `u`: an int, a `keras.random.SeedGenerator`, or `None`.

    Returns:
        A tensor of shape `(N, K)`.

    Example:

    >>> import numpy as np
    >>> scores = raps_scores(np.array([[0.2, 0.7, 0.1]], "float32"),
    ...                      penalty=0.5, k_reg=1, randomized=False)
    >>> np.round(keras.ops.convert_to_numpy(scores), 2)
    array([[1.4, 0.7, 2. ]], dtype=float32)
    """
    if not (isinstance(penalty, (int, float)) and penalty >= 0):
        raise ValueError(f"`penalty` must be a non-negative number, got {penalty!r}.")
    if not (isinstance(k_reg, int) and k_reg >= 0):
        raise ValueError(f"`k_reg` must be a non-negative integer, got {k_reg!r}.")
    return _adaptive_scores(probabilities, penalty, k_reg, randomized, seed)


def label_scores(class_scores, labels):
    """The score of each example's true label, shape `(N,)`.

    Args:
        class_scores: Scores of every class, shape `(N, K)`.
        labels: Integer class ids, shape `(N,)`.

    Returns:
        A tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> scores = np.array([[0.1, 0.9], [0.4, 0.6]], "float32")
    >>> np.round(keras.ops.convert_to_numpy(label_scores(scores, [1, 0])), 2)
    array([0.9, 0.4], dtype=float32)
    """
    class_scores = keras.ops.convert_to_tensor(class_scores)
    labels = keras.ops.reshape(keras.ops.convert_to_tensor(labels, dtype="int32"), (-1, 1))
    return keras.ops.take_along_axis(class_scores, labels, axis=-1)[:, 0]


def _adaptive_scores(probabilities, penalty, k_reg, randomized, seed):
    if randomized not in (True, False):
        raise ValueError(f"`randomized` must be True or False, got {randomized!r}.")
    probabilities = keras.ops.convert_to_tensor(probabilities)
    num_classes = probabilities.shape[-1]
    order = keras.ops.argsort(-probabilities, axis=-1)
    sorted_probabilities = keras.ops.take_along_axis(probabilities, order, axis=-1)
    mass_above = keras.ops.cumsum(sorted_probabilities, axis=-1) - sorted_probabilities
    if randomized:
        batch_size = keras.ops.shape(probabilities)[0]
        u = keras.random.uniform((batch_size, 1), dtype=probabilities.dtype, seed=seed)
    else:
        u = 1.0
    rank = keras.ops.arange(1, num_classes + 1, dtype=probabilities.dtype)
    rank_penalty = penalty * keras.ops.relu(rank - k_reg)
    sorted_scores = mass_above + u * sorted_probabilities + rank_penalty
    # argsort of a permutation is its inverse: each class's position in `order`.
    rank_of_class = keras.ops.argsort(order, axis=-1)
    return keras.ops.take_along_axis(sorted_scores, rank_of_class, axis=-1)
