"""Where the warm-up's noise is cheapest to draw, per backend and device.

The noise can come from the `tf.data` stream (`noise_dataset`: generated on
the host, in parallel with the train step, then copied in) or be drawn by
the backend's own generator inside the train step, on the device. On an
accelerator the device wins: host generation and the copy would starve it.
On a CPU it depends on the backend's generator, measured on a 2-core x86_64
machine (docs/BENCHMARKS.md): torch's `randn` costs 3 ms per 128 x 32x32x3
batch against 6-8 ms for TensorFlow's stateless Philox stream, so torch
draws in the step; JAX's threefry costs 13 ms and TensorFlow's in-step draw
would block the step, so both keep the stream.
"""

import keras


def has_accelerator():
    """Whether the current Keras backend computes on a GPU or TPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available() or torch.backends.mps.is_available()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    return False


def default_noise_source():
    """`"device"` or `"stream"`: the faster place to draw warm-up noise here."""
    if has_accelerator() or keras.backend.backend() == "torch":
        return "device"
    return "stream"
