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

from keras_noisewarm import outputs as outputs_lib

# L-BFGS-B stops when the projected gradient is below `pgtol`; a gradient
# larger than this at the returned point means the fit did not converge.
_GRADIENT_TOLERANCE = 1e-4


def held_out_logits(outputs, from_logits):
    """Held-out model outputs as float64 NumPy logits of shape `(N, K)`.

    Probabilities become log-probabilities (`keras_noisewarm.outputs`).

    Args:
        outputs: Model outputs `(N, K)`, `K >= 2`.
        from_logits: Whether they are logits (a resolved `bool`).
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0:
        raise ValueError(
            "Expected held-out model outputs of shape (num_examples, num_classes) "
            f"with at least one example and 2 classes, got shape {outputs.shape}."
        )
    if not np.all(np.isfinite(outputs)):
        raise ValueError("The held-out model outputs contain NaN or Inf.")
    return outputs_lib.logits_of(outputs, from_logits)


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
