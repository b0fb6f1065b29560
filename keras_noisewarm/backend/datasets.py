"""Held-out arrays in the form each backend's `evaluate` reads fastest.

`model.evaluate(x, y)` on NumPy arrays builds a new input pipeline on every
call. Under TensorFlow that pipeline is a fresh `tf.data` graph over a copy
of the arrays, and evaluating from a batched `tf.data.Dataset` built once was
about twice as fast for the monitor's held-out set (benchmarks/fit_overhead.py
times the monitor). Under JAX and PyTorch, Keras slices NumPy arrays
directly and a `tf.data` dataset is slower, so arrays stay arrays there.
"""

import keras
import numpy as np


def reusable_evaluation_data(inputs, labels, sample_weight, batch_size):
    """A dataset to evaluate on again and again, or `None` to keep the arrays.

    Args:
        inputs: Model inputs.
        labels: Labels, or `None` for inputs to `predict` on.
        sample_weight: Per-example weights, or `None`.
        batch_size: Batch size of the returned dataset.

    Returns:
        Under TensorFlow, when `inputs`, `labels` and `sample_weight` (those
        given) are NumPy arrays: a batched `tf.data.Dataset` of
        `(inputs, labels[, sample_weight])`, or of `inputs` alone without
        labels, kept in memory. `predict` reads only the inputs of either.
        Otherwise `None`: pass the data to `evaluate` or `predict` as it is.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    parts = tuple(part for part in (inputs, labels, sample_weight) if part is not None)
    if not all(isinstance(part, np.ndarray) for part in parts):
        return None
    import tensorflow as tf

    elements = parts if len(parts) > 1 else inputs
    return tf.data.Dataset.from_tensor_slices(elements).batch(batch_size).cache()
