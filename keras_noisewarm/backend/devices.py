"""Where the warm-up's noise is cheapest to draw, per backend and device.

The noise can come from the `tf.data` stream (`noise_dataset`: generated on
the host, in parallel with the train step, then copied in) or be drawn by
the backend's own generator inside the train step, on the device. On an
accelerator the device wins: host generation and the copy would starve it.
On a CPU it depends on the backend's generator and on where it runs,
measured on a 2-core x86_64 machine (benchmarks/noise_generators.py,
docs/BENCHMARKS.md): the stream's Box-Muller transform costs 2.8 ms per
128 x 32x32x3 batch on one core, torch's `randn` 1.0 ms and JAX's threefry
3.8 ms. Inside the step the draw
is on the critical path, beside it (the stream) it competes for the cores:
torch's in-step `randn` is about as fast as the stream and avoids the
per-batch conversion, so torch draws in the step; JAX's and TensorFlow's
in-step draws are slower than their streams (the MLP warm-up at 0.55 and
0.75 of `fit`, against 0.78 and 0.83), so both keep the stream.
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
