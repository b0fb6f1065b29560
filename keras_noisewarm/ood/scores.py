"""Out-of-distribution scores computed from a classifier's logits.

Convention for every score in this package: **higher means more
in-distribution**. A detector accepts an input as in-distribution when its
score is at least a threshold and flags it as out-of-distribution otherwise.
"""

import keras


def max_softmax_probability(logits, temperature=1.0):
    """Maximum softmax probability, the baseline score (Hendrycks & Gimpel, 2017).

    `max_k softmax(logits / T)_k`. With `T = 1` this is the model's
    confidence, the score the paper uses.

    Args:
        logits: Tensor of shape `(N, K)`. Log-probabilities work too: they
            differ from the logits by a constant per example, which softmax
            ignores.
        temperature: Positive temperature `T`.

    Returns:
        A tensor of shape `(N,)` with values in `[1/K, 1]`.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [0.0, 0.0]], "float32")
    >>> np.round(keras.ops.convert_to_numpy(max_softmax_probability(logits)), 4)
    array([0.8808, 0.5   ], dtype=float32)
    """
    _check_temperature(temperature)
    logits = keras.ops.convert_to_tensor(logits)
    return keras.ops.max(keras.ops.softmax(logits / temperature, axis=-1), axis=-1)


def max_logit(logits):
    """Maximum logit (Hendrycks et al., 2022): `max_k logits_k`.

    Needs true logits: a model ending in softmax gives log-probabilities,
    whose maximum is just the log of the maximum softmax probability.

    Args:
        logits: Tensor of shape `(N, K)`.

    Returns:
        A tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(max_logit(np.array([[2.0, -1.0]]))).tolist()
    [2.0]
    """
    return keras.ops.max(keras.ops.convert_to_tensor(logits), axis=-1)


def energy_score(logits, temperature=1.0):
    """Negative free energy (Liu et al., 2020): `T * logsumexp(logits / T)`.

    Liu et al. define the energy `E(x) = -T * logsumexp(f(x) / T)` and detect
    with `-E(x)`, which this returns, so that higher means more
    in-distribution like every score here. Needs true logits: on
    log-probabilities it is constant (zero at `T = 1`).

    Args:
        logits: Tensor of shape `(N, K)`.
        temperature: Positive temperature `T` (1 in Liu et al.).

    Returns:
        A tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[0.0, 0.0]], "float32")
    >>> np.round(keras.ops.convert_to_numpy(energy_score(logits)), 4)  # ln 2
    array([0.6931], dtype=float32)
    """
    _check_temperature(temperature)
    logits = keras.ops.convert_to_tensor(logits)
    return temperature * keras.ops.logsumexp(logits / temperature, axis=-1)


def _check_temperature(temperature):
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ValueError(f"`temperature` must be a positive number, got {temperature!r}.")
