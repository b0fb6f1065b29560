"""The base of the noise families, and `get` to build one from a name.

A noise family is a distribution of warm-up inputs, in the style of
`keras.initializers`: a small object with a `get_config`, that samples a
tensor of a given shape and dtype in two places:

- `stream_sample(shape, seed, dtype)`: inside the `tf.data` noise stream,
  with TensorFlow's stateless random ops and a `(2,)` int64 seed, so that a
  stream is a pure function of its seed on every backend;
- `step_sample(shape, seed, dtype)`: inside a train step, with
  `keras.random` and a `keras.random.SeedGenerator`, on the device.

`check(shape, dtype)` says, before anything runs, whether the family fits an
input of that shape and dtype.
"""

import keras
import numpy as np

_REGISTRY = {}


def register_family(name):
    """Class decorator: a family findable by `get(name)` and serialisable."""

    def register(cls):
        _REGISTRY[name] = cls
        cls.registered_name = name
        return keras.saving.register_keras_serializable(package="keras_noisewarm")(cls)

    return register


class NoiseFamily:
    """A distribution of noise inputs; see the module docstring.

    Subclasses implement `stream_sample` and `step_sample` (or only one of
    them, saying so with `samples_in_stream` / `samples_in_step`), `check`
    and `get_config`.
    """

    registered_name = None
    samples_in_stream = True
    samples_in_step = True

    def check(self, shape, dtype):
        """Raises `ValueError` if the family cannot sample inputs of this kind.

        Args:
            shape: Shape of one example (a tuple of ints).
            dtype: The input's dtype name.
        """
        if not _is_floating(dtype):
            raise ValueError(
                f"{type(self).__name__} noise needs a floating dtype (or uint8 "
                f"images, whose noise is rounded into [0, 255]), got {dtype}. "
                "Integer inputs such as token ids need noise=Tokens(vocabulary_size)."
            )

    def stream_sample(self, shape, seed, dtype):
        """A tensor of noise inside `tf.data` (TensorFlow ops, stateless seed)."""
        raise NotImplementedError

    def step_sample(self, shape, seed, dtype):
        """A tensor of noise inside a train step (`keras.random`, any backend)."""
        raise NotImplementedError

    def describe(self):
        """A short description for logs, e.g. `"Gaussian(mean=0, std=1)"`."""
        arguments = ", ".join(f"{k}={_short(v)}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(type(self).__name__)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def get(identifier):
    """A noise family from a name, a config dict, a family or `None`.

    Args:
        identifier: `None` or `"gaussian"` for `Gaussian()`, another
            registered name (`"uniform"`, `"pink"`), a dict from
            `keras.saving.serialize_keras_object`, or a `NoiseFamily`
            (returned as is).

    Returns:
        A `NoiseFamily`.

    Example:

    >>> get("uniform")
    Uniform(mean=0.0, std=1.0)
    """
    if identifier is None:
        identifier = "gaussian"
    if isinstance(identifier, NoiseFamily):
        return identifier
    if isinstance(identifier, dict):
        family = keras.saving.deserialize_keras_object(identifier)
        if not isinstance(family, NoiseFamily):
            raise ValueError(f"The config {identifier!r} does not describe a noise family.")
        return family
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]()
    raise ValueError(
        f"Unknown noise {identifier!r}: pass a family such as "
        "keras_noisewarm.noise.Gaussian(mean, std), or one of the names "
        f"{sorted(_REGISTRY)}."
    )


def stream_standard_normal(shape, seed, dtype):
    """Standard Gaussian noise in `tf.data`, by a vectorised Box-Muller transform.

    `tf.random.stateless_normal` uses the same transform of the same Philox
    uniforms but evaluates it one pair at a time; written as whole-tensor ops
    it costs about half as much (benchmarks/noise_generators.py), and the
    stream's generation competes with the train step for the CPU. Like
    TensorFlow's kernel it works in float32 below float64, which bounds the
    noise at about 5.8 standard deviations (a probability of 1e-8 under the
    Gaussian).

    Args:
        shape: Full shape, batch included.
        seed: A `(2,)` int64 stateless seed tensor.
        dtype: A floating dtype name or `tf.DType`.
    """
    import math

    import tensorflow as tf

    dtype = tf.as_dtype(dtype)
    work = tf.float64 if dtype == tf.float64 else tf.float32
    size = math.prod(shape)
    num_pairs = (size + 1) // 2
    uniform = tf.random.stateless_uniform((2, num_pairs), seed=seed, dtype=work)
    # 1 - u lies in (0, 1], so the logarithm is finite.
    radius = tf.sqrt(-2.0 * tf.math.log1p(-uniform[0]))
    angle = (2.0 * math.pi) * uniform[1]
    pairs = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=0)
    return tf.cast(tf.reshape(pairs[:size], shape), dtype)


def stream_cast(values, dtype):
    """Noise in the input's dtype inside `tf.data`; uint8 is rounded into [0, 255]."""
    import tensorflow as tf

    if _is_floating(dtype) and dtype != "uint8":
        return tf.cast(values, dtype)
    return tf.cast(tf.clip_by_value(tf.round(values), 0.0, 255.0), dtype)


def step_cast(values, dtype):
    """Noise in the input's dtype inside a train step; uint8 is rounded into [0, 255]."""
    if _is_floating(dtype) and dtype != "uint8":
        return keras.ops.cast(values, dtype)
    return keras.ops.cast(keras.ops.clip(keras.ops.round(values), 0.0, 255.0), dtype)


def work_dtype(dtype):
    """The floating dtype noise is computed in for an input of `dtype`."""
    return dtype if "float" in dtype else "float32"


def _is_floating(dtype):
    return "float" in dtype or dtype == "uint8"


def _short(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, np.ndarray)):
        values = np.asarray(value).ravel()
        if values.size > 4:
            return f"[{', '.join(f'{v:.3g}' for v in values[:3])}, ... ({values.size} values)]"
        return "[" + ", ".join(f"{v:.3g}" for v in values) + "]"
    return repr(value)
