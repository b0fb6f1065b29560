"""Minimising held-out negative log-likelihood over a few scaling parameters.

Post-hoc calibration fits a handful of numbers once, on a held-out set, on
the host: SciPy's L-BFGS-B with analytic gradients in float64 NumPy is exact,
fast and the same on every Keras backend. The fitted numbers then go into
Keras layers that apply them with `keras.ops`.
"""

import warnings

import keras
import numpy as np
import scipy.optimize

# L-BFGS-B stops when the projected gradient is below `pgtol`; a gradient
# larger than this at the returned point means the fit did not converge.
_GRADIENT_TOLERANCE = 1e-4
# Below this a float32 probability rounds to zero; the log stays finite.
_PROBABILITY_FLOOR = 1e-12


def validated_logits(outputs, from_logits):
    """Model outputs as float64 NumPy logits of shape `(N, K)`.

    Probabilities are turned into log-probabilities. They differ from the
    logits by one constant per example, which softmax ignores, so scaling
    log-probabilities calibrates exactly as scaling logits would.
    """
    if from_logits not in (True, False):
        raise ValueError(f"`from_logits` must be True or False, got {from_logits!r}.")
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2:
        raise ValueError(
            "Expected model outputs of shape (num_examples, num_classes) with at "
            f"least 2 classes, got shape {outputs.shape}."
        )
    if not np.all(np.isfinite(outputs)):
        raise ValueError("The model outputs contain NaN or Inf.")
    if from_logits:
        return outputs
    if np.any(outputs < 0) or not np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(
            "from_logits=False, but the outputs are not probabilities (they must "
            "be non-negative and sum to one over the class axis). Pass "
            "from_logits=True if they are logits."
        )
    return np.log(np.maximum(outputs, _PROBABILITY_FLOOR))


def validated_labels(labels, num_examples, num_classes):
    """Integer class ids of shape `(N,)` from integer or one-hot labels."""
    labels = np.asarray(keras.ops.convert_to_numpy(labels))
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        labels = labels.argmax(axis=1)
    elif labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (num_examples,):
        raise ValueError(
            f"Expected {num_examples} labels (integer class ids, or one-hot "
            f"rows of width {num_classes}), got an array of shape {labels.shape}."
        )
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ValueError("Labels must be integer class ids.")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Labels must lie in [0, {num_classes}), got values from "
            f"{labels.min()} to {labels.max()}."
        )
    return labels


def nll_and_gradient(logits, labels):
    """Mean negative log-likelihood of softmax(logits) and its logit gradient.

    Returns:
        `(nll, gradient)`: a float and an `(N, K)` array, the derivative of
        the mean NLL with respect to each logit.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_normaliser = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probabilities = shifted - log_normaliser
    rows = np.arange(len(labels))
    nll = -log_probabilities[rows, labels].mean()
    gradient = np.exp(log_probabilities)
    gradient[rows, labels] -= 1.0
    return nll, gradient / len(labels)


def minimize_nll(objective, initial, bounds, what, logits, labels):
    """Runs L-BFGS-B on `objective` and warns when the result is not trusted.

    Args:
        objective: Callable mapping a parameter vector to `(nll, gradient)`.
        initial: Starting parameter vector.
        bounds: L-BFGS-B bounds, one `(low, high)` pair per parameter.
        what: Name of the fit for the warning message.
        logits: The held-out logits being fitted, `(N, K)`.
        labels: Their integer labels, `(N,)`.

    Returns:
        The parameter vector found.
    """
    result = scipy.optimize.minimize(
        objective,
        np.asarray(initial, dtype=np.float64),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "gtol": 1e-8},
    )
    _, gradient = objective(result.x)
    problems = []
    accuracy = np.mean(logits.argmax(axis=1) == labels)
    if accuracy in (0.0, 1.0):
        # The NLL then has no finite minimum: it keeps falling as the logits
        # are sharpened (all right) or flattened (all wrong), and its
        # gradient vanishes long before, so the optimiser stops anywhere.
        problems.append(
            f"every held-out prediction is {'right' if accuracy else 'wrong'}, "
            "so the likelihood has no finite optimum"
        )
    if not result.success:
        problems.append(f"the optimiser stopped early ({result.message})")
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        problems.append("it reached a non-finite value")
    at_bound = [
        index
        for index, (low, high) in enumerate(bounds)
        if (low is not None and np.isclose(result.x[index], low))
        or (high is not None and np.isclose(result.x[index], high))
    ]
    if at_bound and not problems:
        problems.append(
            "the optimum lies on the search bound, so the likelihood keeps "
            "improving past it (this happens when the held-out predictions "
            "are all correct, or all wrong)"
        )
    elif not at_bound and np.max(np.abs(gradient)) > _GRADIENT_TOLERANCE:
        problems.append(
            f"the gradient is still {np.max(np.abs(gradient)):.2g} at the result"
        )
    if problems:
        warnings.warn(
            f"{what} did not converge: {'; '.join(problems)}. The fitted value "
            "is kept, but check the held-out set: use more examples, a split "
            "the model was not trained on, and make sure it holds mistakes.",
            RuntimeWarning,
            stacklevel=3,
        )
    return result.x
