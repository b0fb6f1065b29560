"""Structured noise: 1/f ("pink") noise, correlated over space or time.

Natural images have a power spectrum that falls off as `1/f^2` (amplitude
`1/f`); white Gaussian noise has a flat one. Pink noise sits between the
two: each channel of each example is white Gaussian noise whose Fourier
amplitudes are divided by `|f|^exponent`, so neighbouring pixels (or time
steps) are correlated, like the smooth blobs of real images. It is the
paper's "structured noise" in the form most used in the noise-pretraining
literature.
"""

import keras
import numpy as np

from keras_noisewarm.noise import base


@base.register_family("pink")
class PinkNoise(base.NoiseFamily):
    """Gaussian noise with a `1/f^exponent` amplitude spectrum, per channel.

    The spatial axes are those between the batch and the last (channel)
    axis: `(H, W)` for images `(H, W, C)`, `(L,)` for sequences `(L, C)`; a
    flat input `(D,)` is one channel of `D` steps. Every channel of every
    example is filtered in the Fourier domain (its mean removed), then
    normalised to mean 0 and standard deviation 1 and mapped to
    `mean + std * values`: each map has exactly the requested mean and
    standard deviation.

    Args:
        mean: Mean of each channel's values.
        std: Standard deviation of each channel's values (positive).
        exponent: Decay of the amplitude spectrum: 0 is white noise, 1
            (default) pink, 2 brown (smoother).

    Example:

    >>> noise = PinkNoise()
    >>> values = keras.ops.convert_to_numpy(
    ...     noise.step_sample((2, 16, 16, 3), keras.random.SeedGenerator(0), "float32"))
    >>> values.shape, round(float(values[0, :, :, 0].std()), 3)
    ((2, 16, 16, 3), 1.0)
    """

    def __init__(self, mean=0.0, std=1.0, exponent=1.0):
        self.mean = _finite("mean", mean)
        self.std = _finite("std", std, positive=True)
        self.exponent = _finite("exponent", exponent)
        if self.exponent < 0:
            raise ValueError(f"`exponent` must be non-negative, got {exponent!r}.")

    def check(self, shape, dtype):
        super().check(shape, dtype)
        if len(shape) > 3:
            raise ValueError(
                f"PinkNoise shapes noise over at most two spatial axes and a "
                f"channel axis; got an input of shape {shape}."
            )
        if int(np.prod(_spatial_shape(shape))) < 2:
            raise ValueError(
                f"PinkNoise needs at least two positions to correlate; the input "
                f"of shape {shape} has one per channel."
            )

    def stream_sample(self, shape, seed, dtype):
        import tensorflow as tf

        white = base.stream_standard_normal(shape, seed, "float32")
        maps, restore = _as_maps(white, shape, tf.transpose, tf.reshape)
        spectrum = tf.signal.fft2d(tf.complex(maps, tf.zeros_like(maps)))
        amplitude = tf.constant(_amplitude_filter(maps.shape[-2:], self.exponent), tf.complex64)
        filtered = tf.math.real(tf.signal.ifft2d(spectrum * amplitude))
        mean = tf.reduce_mean(filtered, axis=(-2, -1), keepdims=True)
        std = tf.math.reduce_std(filtered, axis=(-2, -1), keepdims=True)
        values = self.mean + self.std * (filtered - mean) / tf.maximum(std, 1e-12)
        return base.stream_cast(restore(values), dtype)

    def step_sample(self, shape, seed, dtype):
        ops = keras.ops
        white = keras.random.normal(shape, dtype="float32", seed=seed)
        maps, restore = _as_maps(white, shape, ops.transpose, ops.reshape)
        real, imaginary = ops.fft2((maps, ops.zeros_like(maps)))
        amplitude = ops.convert_to_tensor(_amplitude_filter(maps.shape[-2:], self.exponent), "float32")
        filtered, _ = ops.ifft2((real * amplitude, imaginary * amplitude))
        mean = ops.mean(filtered, axis=(-2, -1), keepdims=True)
        std = ops.std(filtered, axis=(-2, -1), keepdims=True)
        values = self.mean + self.std * (filtered - mean) / ops.maximum(std, 1e-12)
        return base.step_cast(restore(values), dtype)

    def get_config(self):
        return {"mean": self.mean, "std": self.std, "exponent": self.exponent}


def _spatial_shape(example_shape):
    if len(example_shape) == 1:
        return (1, example_shape[0])
    if len(example_shape) == 2:
        return (1, example_shape[0])
    return tuple(example_shape[:2])


def _as_maps(values, full_shape, transpose, reshape):
    """Noise `(B,) + example_shape` as `(B, C, H, W)` maps, and the way back."""
    batch, example = full_shape[0], tuple(full_shape[1:])
    if len(example) == 1:
        maps = reshape(values, (batch, 1, 1, example[0]))
        return maps, lambda maps: reshape(maps, full_shape)
    if len(example) == 2:
        length, channels = example
        maps = reshape(transpose(values, (0, 2, 1)), (batch, channels, 1, length))
        return maps, lambda maps: transpose(reshape(maps, (batch, channels, length)), (0, 2, 1))
    maps = transpose(values, (0, 3, 1, 2))
    return maps, lambda maps: transpose(maps, (0, 2, 3, 1))


def _amplitude_filter(spatial_shape, exponent):
    """`|f|^-exponent` on the FFT grid, 0 at the zero frequency."""
    height, width = (int(dim) for dim in spatial_shape)
    frequency_y = np.fft.fftfreq(height)[:, None]
    frequency_x = np.fft.fftfreq(width)[None, :]
    radius = np.sqrt(frequency_y**2 + frequency_x**2)
    with np.errstate(divide="ignore"):
        amplitude = np.where(radius > 0, radius ** -float(exponent), 0.0)
    return amplitude.astype("float32")


def _finite(name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"`{name}` must be a {'positive ' if positive else ''}finite number, got {value!r}.")
    return value
