"""Gradients of a scalar function with respect to its tensor arguments.

`keras.ops` has no backend-agnostic `grad`, so each backend gets a few lines
with its own autodiff: `tf.GradientTape`, `jax.grad` and `torch.autograd`.
`input_gradient` differentiates with respect to one tensor (a model's
inputs, for ODIN); `gradients` with respect to a list of them (a model's
weight values, given to `stateless_call`).
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


def gradients(function, values):
    """Gradients of a scalar-valued `function` at a list of tensors.

    Args:
        function: A callable taking a list of tensors shaped like `values`
            and returning a scalar tensor, written with `keras.ops` (e.g.
            a loss of `model.stateless_call(values, ...)`).
        values: A list of floating tensors, NumPy arrays or Keras variables
            (whose current values are taken; the variables stay as they are).

    Returns:
        A list of backend tensors, one per value; zeros for a value the
        function does not depend on.

    Example:

    >>> import numpy as np
    >>> first, second = gradients(
    ...     lambda v: keras.ops.sum(v[0] * v[1]),
    ...     [np.array([1.0, 2.0], "float32"), np.array([3.0, 4.0], "float32")])
    >>> keras.ops.convert_to_numpy(first).tolist(), keras.ops.convert_to_numpy(second).tolist()
    ([3.0, 4.0], [1.0, 2.0])
    """
    # A copy, not the variable: TensorFlow would watch the variable itself.
    values = [
        keras.ops.copy(value) if isinstance(value, keras.Variable)
        else keras.ops.convert_to_tensor(value)
        for value in values
    ]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(values)
            value = function(values)
        _check_scalar(value)
        found = tape.gradient(value, values)
    elif backend == "jax":
        import jax

        def checked(arguments):
            value = function(arguments)
            _check_scalar(value)
            return value

        found = jax.grad(checked)(values)
    elif backend == "torch":
        import torch

        values = [value.detach().requires_grad_(True) for value in values]
        with torch.enable_grad():
            value = function(values)
            _check_scalar(value)
            found = torch.autograd.grad(value, values, allow_unused=True)
    else:
        raise NotImplementedError(
            f"Gradients are implemented for the tensorflow, jax and torch backends, "
            f"not for {backend!r}."
        )
    return [
        keras.ops.zeros_like(value) if gradient is None else gradient
        for value, gradient in zip(values, found)
    ]
