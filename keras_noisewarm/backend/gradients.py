"""Gradients of a scalar function with respect to its (input) tensor.

`keras.ops` has no backend-agnostic `grad`, so each backend gets a few lines
with its own autodiff: `tf.GradientTape`, `jax.grad` and `torch.autograd`.
The backend frameworks are imported lazily, so the package imports without
the frameworks it does not use.
"""

import keras


def input_gradient(function, inputs):
    """Gradient of a scalar-valued `function` at `inputs`.

    Model weights are treated as constants: only `inputs` is differentiated.
    To get one gradient per example from a batch, let `function` return the
    sum of per-example losses; with the model in inference mode the examples
    do not interact, so the gradient of the sum holds each example's own
    gradient.

    Args:
        function: A callable taking one tensor shaped like `inputs` and
            returning a scalar tensor, written with `keras.ops` (it may call
            Keras models and layers).
        inputs: A floating NumPy array or backend tensor.

    Returns:
        A backend tensor of the same shape and dtype as `inputs`.

    Example:

    >>> import numpy as np
    >>> gradient = input_gradient(
    ...     lambda x: keras.ops.sum(x**2), np.array([1.0, -2.0], "float32"))
    >>> keras.ops.convert_to_numpy(gradient).tolist()
    [2.0, -4.0]
    """
    inputs = keras.ops.convert_to_tensor(inputs)
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"Gradients need floating inputs, got dtype {dtype}. Cast the "
            "inputs (e.g. `x.astype('float32')`) before asking for a gradient."
        )
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow_input_gradient(function, inputs)
    if backend == "jax":
        return _jax_input_gradient(function, inputs)
    if backend == "torch":
        return _torch_input_gradient(function, inputs)
    raise NotImplementedError(
        f"Input gradients are implemented for the tensorflow, jax and torch "
        f"backends, not for {backend!r}."
    )


def _check_scalar(value):
    if len(value.shape) != 0:
        raise ValueError(
            "`function` must return a scalar (e.g. the sum of per-example "
            f"losses), got a tensor of shape {tuple(value.shape)}."
        )


def _tensorflow_input_gradient(function, inputs):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(inputs)
        value = function(inputs)
    _check_scalar(value)
    return tape.gradient(value, inputs)


def _jax_input_gradient(function, inputs):
    import jax

    def checked(x):
        value = function(x)
        _check_scalar(value)
        return value

    return jax.grad(checked)(inputs)


def _torch_input_gradient(function, inputs):
    import torch

    inputs = inputs.detach().requires_grad_(True)
    with torch.enable_grad():
        value = function(inputs)
        _check_scalar(value)
        (gradient,) = torch.autograd.grad(value, inputs)
    return gradient
