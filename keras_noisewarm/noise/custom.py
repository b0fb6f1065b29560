"""Noise from a function the user writes."""

import keras

from keras_noisewarm.noise import base


@base.register_family("custom")
class Custom(base.NoiseFamily):
    """Noise drawn by user-supplied functions.

    A train step and a `tf.data` graph run different code, so the two places
    take a function each; give one or both. The warm-up draws where a
    function is given (`noise_source="auto"` picks it).

    - `step_function(shape, seed, dtype)` runs inside the train step on any
      backend: write it with `keras.random` (pass `seed`, a
      `keras.random.SeedGenerator`, to every draw) and `keras.ops`.
    - `stream_function(shape, seed, dtype)` runs inside the `tf.data` noise
      stream: write it with TensorFlow's stateless ops
      (`tf.random.stateless_uniform(shape, seed=seed, ...)`); `seed` is a
      `(2,)` int64 tensor, so the stream stays a function of its seed.

    To save the family in a config, register the functions with
    `keras.saving.register_keras_serializable`.

    Args:
        step_function: Callable, or `None`.
        stream_function: Callable, or `None`.

    Example:

    >>> def laplace(shape, seed, dtype):
    ...     u = keras.random.uniform(shape, -0.5, 0.5, dtype=dtype, seed=seed)
    ...     return -keras.ops.sign(u) * keras.ops.log1p(-2 * keras.ops.abs(u))
    >>> noise = Custom(step_function=laplace)
    >>> tuple(noise.step_sample((3, 4), keras.random.SeedGenerator(0), "float32").shape)
    (3, 4)
    """

    def __init__(self, step_function=None, stream_function=None):
        if step_function is None and stream_function is None:
            raise ValueError("Custom noise needs a `step_function`, a `stream_function`, or both.")
        for name, function in (("step_function", step_function), ("stream_function", stream_function)):
            if function is not None and not callable(function):
                raise ValueError(f"`{name}` must be callable, got {function!r}.")
        self.step_function = step_function
        self.stream_function = stream_function
        self.samples_in_step = step_function is not None
        self.samples_in_stream = stream_function is not None

    def check(self, shape, dtype):
        # The user's function decides which dtypes it can draw.
        return

    def stream_sample(self, shape, seed, dtype):
        if self.stream_function is None:
            raise ValueError("This Custom noise has no `stream_function`; draw it in the train step.")
        return self.stream_function(shape, seed, dtype)

    def step_sample(self, shape, seed, dtype):
        if self.step_function is None:
            raise ValueError("This Custom noise has no `step_function`; draw it in the stream.")
        return self.step_function(shape, seed, dtype)

    def get_config(self):
        return {
            "step_function": _serialise(self.step_function),
            "stream_function": _serialise(self.stream_function),
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            step_function=_deserialise(config["step_function"]),
            stream_function=_deserialise(config["stream_function"]),
        )


def _serialise(function):
    return None if function is None else keras.saving.serialize_keras_object(function)


def _deserialise(config):
    return None if config is None else keras.saving.deserialize_keras_object(config)
