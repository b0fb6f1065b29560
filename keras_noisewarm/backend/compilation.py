"""Compiling a metric's batch arithmetic when eager calls repeat.

A metric used on its own (`metric.update_state(...)` in a loop over
batches) runs eagerly, one dispatch per op. Under TensorFlow each eager op
costs Python time, and kernels that XLA fuses into one pass run as separate
passes over the batch: compiled with XLA the ECE's update runs several times
faster (benchmarks/metric_throughput.py). Under JAX eager dispatch is
cheaper, and compiling still helps.

But compiling costs a fraction of a second per input shape, and a one-off
call on a test set (`update_state(y_test, model.predict(x_test))`) would pay that for
nothing. So a call runs eagerly the first time its input signature (shapes
and dtypes) is met, and compiled from the second time on: a shape that
comes back is a stream of batches, which repays the compilation within a
few calls. Under PyTorch, and inside `jit` or a `tf.function` (a compiled
train step, where the arithmetic is compiled with the step), the function
always runs as it is.

The compiled function is shared by every caller that passes the same
`key`, so that a new metric with the configuration of an old one (one per
epoch, say) does not compile again.
"""

import collections

import keras
from keras import ops
from keras.src.backend.common import symbolic_scope
from keras.src.utils import backend_utils
from keras.src.utils import jax_utils

COMPILING_BACKENDS = ("tensorflow", "jax")

# Bounds the compiled executables kept per function; later signatures run
# eagerly. Batches of a stream have one shape, or two with a last short
# batch that rarely repeats.
MAX_COMPILED_SIGNATURES = 16

_compilers = {}


def values_are_concrete(tensor):
    """Whether Python can read `tensor`'s values (False while tracing)."""
    # Keras's own tests for "inside a tf.function" and "inside jax.jit", and
    # its symbolic scope, where the torch backend infers shapes by running
    # the metric on tensors of ones. Otherwise the torch backend runs
    # eagerly (torch.compile breaks the graph at a Python branch on a value).
    return not (
        backend_utils.in_tf_graph()
        or jax_utils.is_in_jax_tracing_scope(tensor)
        or symbolic_scope.in_symbolic_scope()
    )


def compile_repeated_calls(key, function):
    """The callable that runs `function`, compiled once its calls repeat.

    Args:
        key: Hashable name of the computation; calls with the same key
            share one compiled function. Two functions given the same key
            must compute the same thing (the first one given is kept).
        function: Pure function of tensors (or `None`s) returning a tuple of
            tensors. It must not read values in Python: under compilation
            its arguments are symbolic.

    Returns:
        A callable with the signature of `function`.

    Example:

    >>> def total(values):
    ...     return (keras.ops.sum(values),)
    >>> summed = compile_repeated_calls("example.total", total)
    >>> [float(summed(keras.ops.ones((4,)))[0]) for _ in range(3)]
    [4.0, 4.0, 4.0]
    """
    compiler = _compilers.get(key)
    if compiler is None:
        compiler = _compilers[key] = _RepeatedCallCompiler(function)
    return compiler


class _RepeatedCallCompiler:
    def __init__(self, function):
        self.function = function
        self.calls = collections.Counter()
        self.compiled = {}

    def __call__(self, *arguments):
        backend = keras.backend.backend()
        if backend not in COMPILING_BACKENDS:
            return self.function(*arguments)
        tensors = [
            None if argument is None else ops.convert_to_tensor(argument)
            for argument in arguments
        ]
        if not all(tensor is None or values_are_concrete(tensor) for tensor in tensors):
            return self.function(*arguments)
        signature = tuple(
            None
            if tensor is None
            else (tuple(tensor.shape), keras.backend.standardize_dtype(tensor.dtype))
            for tensor in tensors
        )
        compiled = self.compiled.get(signature)
        if compiled is None:
            self.calls[signature] += 1
            if (
                self.calls[signature] < 2
                or len(self.compiled) >= MAX_COMPILED_SIGNATURES
            ):
                return self.function(*tensors)
            compiled = self.compiled[signature] = _compile(backend, self.function)
        return compiled(*tensors)


def _compile(backend, function):
    if backend == "tensorflow":
        import tensorflow as tf

        # Autograph rewrites Python control flow on tensors, which these
        # functions do not have; with it, the first compiled call took
        # several times longer.
        return tf.function(function, jit_compile=True, autograph=False)
    import jax

    return jax.jit(function)
