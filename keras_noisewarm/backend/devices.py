"""Where the warm-up's noise is cheapest to draw, per backend and device.

The noise can come from the `tf.data` stream (`noise_dataset`: generated on
the host, in parallel with the train step, then copied in) or be drawn by
the backend's own generator inside the train step, on the device. On an
accelerator the device wins: host generation and the copy would starve it.
On a CPU it depends on the backend's generator and on where it runs
(benchmarks/noise_generators.py and benchmarks/warmup_throughput.py, results
in docs/BENCHMARKS.md): inside the step the draw is on the critical path,
beside it (the stream) it competes for the cores. torch's in-step `randn`
is cheaper than the stream's generation and avoids the per-batch
conversion, so torch draws in the step; JAX's and TensorFlow's in-step
draws made the warm-up slower than their streams, so both keep the stream.
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
