"""Gaussian and uniform noise, and noise matched to a sample of the user's data.

The mean and standard deviation of these families are numbers, or one value
per channel (the last axis of the input), so that noise can match data whose
channels differ in scale.
"""

import math

import keras
import numpy as np

from keras_noisewarm.noise import base

SQRT_3 = math.sqrt(3.0)


class _Moments(base.NoiseFamily):
    """A family given by its mean and standard deviation (numbers or per channel)."""

    def __init__(self, mean=0.0, std=1.0):
        self.mean = _moment("mean", mean)
        self.std = _moment("std", std, positive=True)

    def check(self, shape, dtype):
        super().check(shape, dtype)
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != shape[-1]:
                raise ValueError(
                    f"{type(self).__name__} has one `{name}` per channel "
                    f"({len(value)} values), but the input's last axis has "
                    f"{shape[-1]} (input shape {shape})."
                )

    def _affine(self, standard, ops_module):
        mean, std = self.mean, self.std
        if isinstance(mean, tuple) or isinstance(std, tuple):
            mean = ops_module.cast(np.asarray(mean, "float64"), standard.dtype)
            std = ops_module.cast(np.asarray(std, "float64"), standard.dtype)
        return mean + std * standard

    def get_config(self):
        return {"mean": _serialised(self.mean), "std": _serialised(self.std)}


@base.register_family("gaussian")
class Gaussian(_Moments):
    """Gaussian noise `N(mean, std**2)`: the paper's noise (`N(0, 1)`).

    In the stream the values come from a Box-Muller transform of Philox
    uniforms computed in float32 (float64 for float64 inputs), bounded at
    about 5.8 standard deviations; in a train step from `keras.random.normal`.

    Args:
        mean: Mean, a number or one per channel (last axis).
        std: Standard deviation (positive), a number or one per channel.

    Example:

    >>> import numpy as np
    >>> noise = Gaussian(mean=2.0, std=0.5)
    >>> values = keras.ops.convert_to_numpy(
    ...     noise.step_sample((10_000,), keras.random.SeedGenerator(0), "float32"))
    >>> round(float(values.mean()), 1), round(float(values.std()), 1)
    (2.0, 0.5)
    """

    def stream_sample(self, shape, seed, dtype):
        import tensorflow as tf

        standard = base.stream_standard_normal(shape, seed, base.work_dtype(dtype))
        return base.stream_cast(self._affine(standard, _TensorFlowOps(tf)), dtype)

    def step_sample(self, shape, seed, dtype):
        work = base.work_dtype(dtype)
        if isinstance(self.mean, tuple) or isinstance(self.std, tuple):
            standard = keras.random.normal(shape, dtype=work, seed=seed)
            values = self._affine(standard, keras.ops)
        else:
            values = keras.random.normal(shape, mean=self.mean, stddev=self.std, dtype=work, seed=seed)
        return base.step_cast(values, dtype)


@base.register_family("uniform")
class Uniform(_Moments):
    """Uniform noise with the given mean and standard deviation.

    The support is `[mean - sqrt(3) * std, mean + sqrt(3) * std]` (width
    `sqrt(12) * std`, as in the authors' code).

    Args:
        mean: Mean, a number or one per channel (last axis).
        std: Standard deviation (positive), a number or one per channel.

    Example:

    >>> noise = Uniform(mean=0.0, std=1.0)
    >>> values = keras.ops.convert_to_numpy(
    ...     noise.step_sample((10_000,), keras.random.SeedGenerator(0), "float32"))
    >>> bool(values.min() >= -3**0.5 and values.max() <= 3**0.5)
    True
    """

    def stream_sample(self, shape, seed, dtype):
        import tensorflow as tf

        work = base.work_dtype(dtype)
        if isinstance(self.mean, tuple) or isinstance(self.std, tuple):
            unit = tf.random.stateless_uniform(shape, seed=seed, minval=-SQRT_3, maxval=SQRT_3, dtype=work)
            values = self._affine(unit, _TensorFlowOps(tf))
        else:
            half_width = SQRT_3 * self.std
            values = tf.random.stateless_uniform(
                shape, seed=seed, minval=self.mean - half_width,
                maxval=self.mean + half_width, dtype=work,
            )
        return base.stream_cast(values, dtype)

    def step_sample(self, shape, seed, dtype):
        work = base.work_dtype(dtype)
        if isinstance(self.mean, tuple) or isinstance(self.std, tuple):
            unit = keras.random.uniform(shape, minval=-SQRT_3, maxval=SQRT_3, dtype=work, seed=seed)
            values = self._affine(unit, keras.ops)
        else:
            half_width = SQRT_3 * self.std
            values = keras.random.uniform(
                shape, minval=self.mean - half_width, maxval=self.mean + half_width,
                dtype=work, seed=seed,
            )
        return base.step_cast(values, dtype)


@base.register_family("data_matched")
class DataMatched(_Moments):
    """Noise with the per-channel mean and standard deviation of a data sample.

    Pass a sample of the training inputs, in the form the model takes them
    (raw pixels for a model that rescales them itself, normalised features
    for one that does not): the noise then has the data's scale in every
    channel (the last axis), as the paper's `N(0, 1)` noise has for
    normalised images. Only the two moments are kept, never the data, so
    the family serialises in a few numbers.

    Args:
        sample: An array of inputs, shape `(N,) + example_shape`; or `None`
            with `mean` and `std` given (as `from_config` does).
        distribution: `"gaussian"` (default) or `"uniform"`, of those
            moments.
        mean: Per-channel means, when no sample is given.
        std: Per-channel standard deviations, when no sample is given.

    Example:

    >>> import numpy as np
    >>> pixels = np.stack([np.full((10, 8, 8), 60.0), np.full((10, 8, 8), 200.0),
    ...                    np.tile([0.0, 100.0], (10, 8, 4))], axis=-1)
    >>> noise = DataMatched(pixels)
    >>> noise.mean, noise.std[2]
    ((60.0, 200.0, 50.0), 50.0)
    """

    def __init__(self, sample=None, distribution="gaussian", mean=None, std=None):
        if distribution not in ("gaussian", "uniform"):
            raise ValueError(
                f"`distribution` must be 'gaussian' or 'uniform', got {distribution!r}."
            )
        if sample is not None:
            if mean is not None or std is not None:
                raise ValueError("Give a data `sample` or `mean` and `std`, not both.")
            mean, std = channel_moments(sample)
        elif mean is None or std is None:
            raise ValueError(
                "DataMatched needs a sample of the training inputs (or `mean` and "
                "`std` per channel)."
            )
        super().__init__(mean=_as_tuple(mean), std=_as_tuple(std))
        self.distribution = distribution
        self._family = (Gaussian if distribution == "gaussian" else Uniform)(self.mean, self.std)

    def stream_sample(self, shape, seed, dtype):
        return self._family.stream_sample(shape, seed, dtype)

    def step_sample(self, shape, seed, dtype):
        return self._family.step_sample(shape, seed, dtype)

    def get_config(self):
        return {"distribution": self.distribution, **super().get_config()}


def channel_moments(sample):
    """Mean and standard deviation of every channel (last axis) of a sample.

    Args:
        sample: An array of shape `(N, ..., C)` (or `(N,)`, one channel).

    Returns:
        Two float64 NumPy arrays of shape `(C,)`. A constant channel gets a
        standard deviation of 1e-6 of the largest one (noise needs a
        positive spread).
    """
    values = np.asarray(keras.ops.convert_to_numpy(sample), dtype=np.float64)
    if values.size == 0 or values.ndim == 0:
        raise ValueError("The data sample is empty.")
    if not np.all(np.isfinite(values)):
        raise ValueError("The data sample contains NaN or Inf.")
    if values.ndim == 1:
        values = values[:, None]
    flat = values.reshape(-1, values.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    floor = max(float(std.max()), 1.0) * 1e-6
    return mean, np.maximum(std, floor)


class _TensorFlowOps:
    """The two `keras.ops` names `_Moments._affine` needs, as TensorFlow ops."""

    def __init__(self, tf):
        self.tf = tf

    def cast(self, value, dtype):
        return self.tf.cast(value, dtype)


def _moment(name, value, positive=False):
    if isinstance(value, (list, tuple, np.ndarray)):
        values = np.asarray(value, dtype=np.float64).ravel()
        if values.size == 0:
            raise ValueError(f"`{name}` is empty.")
        return tuple(_moment(name, float(v), positive) for v in values)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number or one number per channel, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        what = "a positive finite number" if positive else "a finite number"
        raise ValueError(f"`{name}` must be {what}, got {value!r}.")
    return value


def _as_tuple(value):
    values = np.asarray(value, dtype=np.float64).ravel()
    return tuple(float(v) for v in values)


def _serialised(value):
    return list(value) if isinstance(value, tuple) else value
