"""The noise stream: fresh random inputs paired with uniformly random labels.

Everything here runs inside the `tf.data` graph with stateless random ops, so a
stream is a pure function of its seed: batch `i` of a stream seeded with `s` is
the same on every run, every backend and every machine, and no Python code runs
per batch.
"""

import math

import numpy as np
import tensorflow as tf

DISTRIBUTIONS = ("gaussian", "uniform")

# Which noise a seed gives. Bumped whenever the same seed starts to give other
# noise (2: the vectorised Box-Muller transform), so that stored experiment
# runs made with different noise are never mixed (experiments/runs.py).
STREAM_VERSION = 2


def noise_dataset(
    input_shape,
    num_classes,
    batch_size=128,
    distribution="gaussian",
    mean=0.0,
    std=1.0,
    one_hot=False,
    label_shape=(),
    seed=None,
    dtype="float32",
):
    """An infinite `tf.data.Dataset` of noise batches with random labels.

    Each element is a pair `(inputs, labels)`. Inputs are drawn afresh for
    every batch (there is no fixed noise set), either from a Gaussian
    `N(mean, std**2)` or from a uniform distribution of the same mean and
    standard deviation, i.e. on `[mean - sqrt(3) * std, mean + sqrt(3) * std]`
    (width `sqrt(12) * std`, as in the authors' code). Labels are independent
    uniform integers in `[0, num_classes)`. Gaussian values come from the
    Box-Muller transform of Philox uniforms, as in `tf.random.normal`,
    computed in float32 (float64 for float64 inputs), so they stay within
    about 5.8 standard deviations of the mean.

    Args:
        input_shape: Shape of one example, without the batch dimension, e.g.
            `(32, 32, 3)`. For a model with several inputs, a list/tuple of
            shapes (the stream then yields a tuple of tensors) or a dict of
            shapes (it yields a dict with the same keys).
        num_classes: Number of classes `K` (at least 2).
        batch_size: Examples per batch.
        distribution: `"gaussian"` (the paper's default) or `"uniform"`.
        mean: Mean of the noise.
        std: Standard deviation of the noise (positive).
        one_hot: If `True`, labels are one-hot `float32` vectors of length
            `num_classes`; otherwise `int32` class indices.
        label_shape: Shape of the labels of one example, without the batch and
            class dimensions: `()` for a classifier, `(H, W)` for a per-pixel
            (segmentation) head.
        seed: Integer seed. `None` draws one from NumPy's global generator, so
            `keras.utils.set_random_seed` makes the stream reproducible.
        dtype: Floating dtype of the inputs.

    Returns:
        A `tf.data.Dataset` that never ends; pass `steps_per_epoch` to
        `model.fit`. Batches are generated in parallel (in a deterministic
        order) and prefetched.

    Example:

    >>> stream = noise_dataset((28, 28, 1), num_classes=10, batch_size=4, seed=0)
    >>> images, labels = next(iter(stream))
    >>> tuple(images.shape), tuple(labels.shape)
    ((4, 28, 28, 1), (4,))
    """
    shapes = _validated_shapes(input_shape)
    _check_noise_family(distribution, mean, std, dtype)
    flat_shapes, pack = _flatten_shapes(shapes)
    dtype = tf.as_dtype(dtype)

    def make_inputs(seeds):
        return pack([
            _sample(distribution, (batch_size,) + shape, seeds[i], mean, std, dtype)
            for i, shape in enumerate(flat_shapes)
        ])

    return _stream(make_inputs, len(flat_shapes), num_classes, batch_size,
                   one_hot, label_shape, seed)


def label_dataset(num_classes, batch_size=128, one_hot=False, label_shape=(), seed=None):
    """The labels of `noise_dataset` without its inputs.

    For warm-ups that draw the noise inputs on the device, inside the train
    step: each element is `(placeholder, labels)`, where the placeholder is
    a `(batch_size, 1)` float32 tensor of zeros that only carries the batch
    size, and `labels` are those `noise_dataset` pairs with one input.

    Args:
        num_classes: Number of classes `K` (at least 2).
        batch_size: Examples per batch.
        one_hot: One-hot `float32` labels instead of `int32` indices.
        label_shape: Label shape of one example without the class axis.
        seed: Integer seed; `None` draws one from NumPy's global generator.

    Returns:
        An infinite `tf.data.Dataset`.
    """

    def make_placeholder(seeds):
        return tf.zeros((batch_size, 1), tf.float32)

    return _stream(make_placeholder, 1, num_classes, batch_size, one_hot, label_shape, seed)


def sample_noise(shape, distribution="gaussian", mean=0.0, std=1.0, seed=None,
                 dtype="float32"):
    """One tensor of noise from the Keras backend's own random generator.

    The same families as `noise_dataset`, drawn with `keras.random`, so that
    it runs inside a compiled train step on any backend and device.

    Args:
        shape: Full shape of the tensor, batch dimension included.
        distribution: `"gaussian"` or `"uniform"` (same mean and standard
            deviation, width `sqrt(12) * std`).
        mean: Mean of the noise.
        std: Standard deviation of the noise.
        seed: An integer or a `keras.random.SeedGenerator` (use one inside
            compiled code, so that every call draws fresh noise).
        dtype: Floating dtype of the result.

    Returns:
        A backend tensor of `shape`.
    """
    import keras

    _check_noise_family(distribution, mean, std, dtype)
    if distribution == "gaussian":
        return keras.random.normal(shape, mean=mean, stddev=std, dtype=dtype, seed=seed)
    half_width = math.sqrt(3.0) * std
    return keras.random.uniform(
        shape, minval=mean - half_width, maxval=mean + half_width, dtype=dtype, seed=seed
    )


def _stream(make_inputs, num_inputs, num_classes, batch_size, one_hot, label_shape, seed):
    """An infinite stream of `(make_inputs(seeds), labels)`, one seed per batch."""
    _check_positive_int("num_classes", num_classes, minimum=2)
    _check_positive_int("batch_size", batch_size)
    label_shape = _validated_shape(label_shape, "label_shape", allow_empty=True)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    labels_full_shape = (batch_size,) + label_shape

    def make_batch(step):
        # One seed pair per batch, split into one per input plus one for the
        # labels, so that adding an input never changes the labels.
        batch_seed = tf.stack([tf.constant(seed, tf.int64), step])
        seeds = tf.random.experimental.stateless_split(batch_seed, num=num_inputs + 1)
        labels = tf.random.stateless_uniform(
            labels_full_shape,
            seed=seeds[-1],
            minval=0,
            maxval=num_classes,
            dtype=tf.int32,
        )
        if one_hot:
            labels = tf.one_hot(labels, num_classes, dtype=tf.float32)
        return make_inputs(seeds), labels

    return (
        tf.data.Dataset.counter(dtype=tf.int64)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def _check_noise_family(distribution, mean, std, dtype):
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"Unknown noise distribution {distribution!r}: expected one of "
            f"{DISTRIBUTIONS}."
        )
    if not (isinstance(std, (int, float)) and math.isfinite(std) and std > 0):
        raise ValueError(f"`std` must be a positive finite number, got {std!r}.")
    if not (isinstance(mean, (int, float)) and math.isfinite(mean)):
        raise ValueError(f"`mean` must be a finite number, got {mean!r}.")
    if not tf.as_dtype(dtype).is_floating:
        raise ValueError(
            f"Noise inputs must have a floating dtype, got {tf.as_dtype(dtype).name}. "
            "Models with integer inputs (token ids, ...) need a noise family of "
            "their own."
        )


def _sample(distribution, shape, seed, mean, std, dtype):
    if distribution == "gaussian":
        return mean + std * _standard_normal(shape, seed, dtype)
    half_width = math.sqrt(3.0) * std
    return tf.random.stateless_uniform(
        shape, seed=seed, minval=mean - half_width, maxval=mean + half_width,
        dtype=dtype,
    )


def _standard_normal(shape, seed, dtype):
    """Standard Gaussian noise by the Box-Muller transform, vectorised.

    `tf.random.stateless_normal` uses the same transform of the same Philox
    uniforms, but evaluates it one pair at a time; written as whole-tensor
    ops it costs half as much (2.8 ms against 5.8 ms for a 128x32x32x3
    batch on one core, benchmarks/noise_generators.py), and the stream's generation
    competes with the train step for the CPU. Like TensorFlow's kernel it
    works in float32 below float64, which bounds the noise at about 5.8
    standard deviations (a probability of 1e-8 under the Gaussian).
    """
    work_dtype = tf.float64 if dtype == tf.float64 else tf.float32
    size = math.prod(shape)
    num_pairs = (size + 1) // 2
    uniform = tf.random.stateless_uniform((2, num_pairs), seed=seed, dtype=work_dtype)
    # 1 - u lies in (0, 1], so the logarithm is finite.
    radius = tf.sqrt(-2.0 * tf.math.log1p(-uniform[0]))
    angle = (2.0 * math.pi) * uniform[1]
    pairs = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=0)
    return tf.cast(tf.reshape(pairs[:size], shape), dtype)


def _flatten_shapes(shapes):
    """Flat list of shapes and the function that packs tensors back alike.

    `tf.nest` cannot be used here: it would see a shape tuple as a structure.
    """
    if isinstance(shapes, dict):
        names = list(shapes)
        return [shapes[name] for name in names], lambda flat: dict(zip(names, flat))
    if isinstance(shapes[0], tuple):
        return list(shapes), tuple
    return [shapes], lambda flat: flat[0]


def _validated_shapes(input_shape):
    """Normalises one shape, a list of shapes or a dict of shapes."""
    if isinstance(input_shape, dict):
        if not input_shape:
            raise ValueError("`input_shape` is an empty dict.")
        return {
            name: _validated_shape(shape, f"input_shape[{name!r}]")
            for name, shape in input_shape.items()
        }
    if _is_single_shape(input_shape):
        return _validated_shape(input_shape, "input_shape")
    if isinstance(input_shape, (list, tuple)) and input_shape:
        return tuple(
            _validated_shape(shape, f"input_shape[{index}]")
            for index, shape in enumerate(input_shape)
        )
    raise ValueError(
        "`input_shape` must be the shape of one example without the batch "
        "dimension, e.g. (32, 32, 3), or a list/dict of such shapes for a "
        f"multi-input model. Got {input_shape!r}."
    )


def _is_single_shape(value):
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(dim, (int, np.integer)) or dim is None for dim in value
    )


def _validated_shape(shape, name, allow_empty=False):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)) or (not shape and not allow_empty):
        raise ValueError(
            f"`{name}` must be a non-empty tuple of positive integers "
            f"(without the batch dimension), got {shape!r}."
        )
    for dim in shape:
        if dim is None:
            raise ValueError(
                f"`{name}` has an unknown dimension: {tuple(shape)!r}. Noise "
                "needs a fixed shape; pass the full shape of one example, "
                "e.g. input_shape=(32, 32, 3)."
            )
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(
                f"`{name}` must contain positive integers, got {tuple(shape)!r}."
            )
    return tuple(int(dim) for dim in shape)


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
