"""The noise stream: fresh random inputs paired with uninformative targets.

Everything here runs inside the `tf.data` graph with stateless random ops, so
a stream is a pure function of its seed: batch `i` of a stream seeded with
`s` is the same on every run, every backend and every machine, and no Python
code runs per batch.
"""

import numpy as np

from keras_noisewarm import shapes as shapes_lib
from keras_noisewarm import validation
from keras_noisewarm.noise import base

# Which noise a seed gives. Bumped whenever the same seed starts to give other
# noise (2: the vectorised Box-Muller transform), so that stored experiment
# runs made with different noise are never mixed.
STREAM_VERSION = 2


def noise_dataset(
    input_shape,
    num_classes=None,
    batch_size=128,
    noise=None,
    one_hot=False,
    label_shape=(),
    seed=None,
    dtype="float32",
    tasks=None,
    distribution=None,
    mean=None,
    std=None,
):
    """An infinite `tf.data.Dataset` of noise batches with random targets.

    Each element is a pair `(inputs, targets)`. Inputs are drawn afresh for
    every batch (there is no fixed noise set) from the noise family `noise`
    (`Gaussian()`, the paper's `N(0, 1)`, by default). Targets are, for a
    classifier, independent uniform class ids in `[0, num_classes)`; with
    `tasks`, those of each output's task (`keras_noisewarm.tasks`).

    Args:
        input_shape: Shape of one example, without the batch dimension, e.g.
            `(32, 32, 3)`. For a model with several inputs, a list/tuple of
            shapes (the stream then yields a tuple of tensors) or a dict of
            shapes (it yields a dict with the same keys).
        num_classes: Number of classes `K` (at least 2) of a classifier's
            labels; leave it out when giving `tasks`.
        batch_size: Examples per batch.
        noise: A noise family (`keras_noisewarm.noise.Gaussian(mean, std)`,
            `Uniform`, `PinkNoise`, `DataMatched`, `Tokens`, `Custom`), a
            name (`"gaussian"`, `"uniform"`, `"pink"`), or one per input (a
            list or dict like `input_shape`). `None` is `Gaussian()`.
        one_hot: If `True`, labels are one-hot `float32` vectors of length
            `num_classes`; otherwise `int32` class ids.
        label_shape: Shape of the labels of one example, without the batch and
            class dimensions: `()` for a classifier, `(H, W)` for a per-pixel
            (segmentation) head.
        seed: Integer seed. `None` draws one from NumPy's global generator, so
            `keras.utils.set_random_seed` makes the stream reproducible.
        dtype: Dtype of the inputs (one, or one per input).
        tasks: Instead of `num_classes`, `one_hot` and `label_shape`: a list
            of `(task, target_shape)` pairs, one per model output; the
            targets are then a tuple (a single target for one output).
        distribution: Deprecated, use `noise=`: `"gaussian"` or `"uniform"`.
        mean: Deprecated, use `noise=Gaussian(mean, std)`.
        std: Deprecated, use `noise=Gaussian(mean, std)`.

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
    example_shapes = shapes_lib.example_shapes(input_shape)
    families = input_families(example_shapes, noise, distribution, mean, std)
    dtypes = [_dtype_name(value) for value in shapes_lib.matching(dtype, example_shapes, "dtype")]
    leaves, pack = shapes_lib.flatten(example_shapes)
    for family, shape, input_dtype in zip(families, leaves, dtypes):
        if not family.samples_in_stream:
            raise ValueError(
                f"{family.describe()} cannot be drawn in the tf.data stream; draw it in "
                "the train step (NoiseWarmup(noise_source='device'))."
            )
        family.check(shape, input_dtype)
    targets = _targets(tasks, num_classes, one_hot, label_shape)
    validation.check_int("batch_size", batch_size)

    def make_inputs(seeds):
        return pack([
            family.stream_sample((batch_size,) + shape, seeds[index], input_dtype)
            for index, (family, shape, input_dtype) in enumerate(zip(families, leaves, dtypes))
        ])

    return stream(make_inputs, len(leaves), targets, batch_size, seed)


def target_dataset(tasks, batch_size=128, seed=None):
    """The targets of a noise stream without its inputs.

    For warm-ups that draw the noise inputs on the device, inside the train
    step: each element is `(placeholder, targets)`, where the placeholder is
    a `(batch_size, 1)` float32 tensor of zeros that only carries the batch
    size, and `targets` are those of a one-input `noise_dataset` with these
    tasks.

    Args:
        tasks: A list of `(task, target_shape)` pairs, one per output.
        batch_size: Examples per batch.
        seed: Integer seed; `None` draws one from NumPy's global generator.

    Returns:
        An infinite `tf.data.Dataset`.
    """
    import tensorflow as tf

    def make_placeholder(seeds):
        return tf.zeros((batch_size, 1), tf.float32)

    return stream(make_placeholder, 1, _targets(tasks, None, False, ()), batch_size, seed)


def label_dataset(num_classes, batch_size=128, one_hot=False, label_shape=(), seed=None):
    """The class labels of a one-input `noise_dataset`, with a placeholder input.

    Args:
        num_classes: Number of classes `K` (at least 2).
        batch_size: Examples per batch.
        one_hot: One-hot `float32` labels instead of `int32` ids.
        label_shape: Label shape of one example without the class axis.
        seed: Integer seed; `None` draws one from NumPy's global generator.

    Returns:
        An infinite `tf.data.Dataset` of `(placeholder, labels)`.
    """
    import tensorflow as tf

    def make_placeholder(seeds):
        return tf.zeros((batch_size, 1), tf.float32)

    return stream(make_placeholder, 1, _targets(None, num_classes, one_hot, label_shape), batch_size, seed)


def stream(make_inputs, num_inputs, targets, batch_size, seed):
    """An infinite stream of `(make_inputs(seeds), targets)`, one seed per batch.

    Args:
        make_inputs: Callable from the batch's seeds (a `(num_inputs + 1, 2)`
            tensor) to its inputs.
        num_inputs: Number of model inputs.
        targets: A list of `(task, target_shape)` pairs, one per output.
        batch_size: Examples per batch.
        seed: Integer seed, or `None` for one from NumPy's global generator.
    """
    import tensorflow as tf

    validation.check_int("batch_size", batch_size)
    seed = validation.check_seed("seed", seed)
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))

    def make_batch(step):
        # One seed pair per batch, split into one per input plus one for the
        # targets, so that adding an input never changes the targets.
        batch_seed = tf.stack([tf.constant(seed, tf.int64), step])
        seeds = tf.random.experimental.stateless_split(batch_seed, num=num_inputs + 1)
        if len(targets) == 1:
            task, shape = targets[0]
            batch_targets = task.stream_targets((batch_size,) + shape, seeds[-1])
        else:
            target_seeds = tf.random.experimental.stateless_split(seeds[-1], num=len(targets))
            batch_targets = tuple(
                task.stream_targets((batch_size,) + shape, target_seeds[index])
                for index, (task, shape) in enumerate(targets)
            )
        return make_inputs(seeds), batch_targets

    return (
        tf.data.Dataset.counter(dtype=tf.int64)
        .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def input_families(example_shapes, noise=None, distribution=None, mean=None, std=None):
    """One noise family per input, from `noise` or the deprecated arguments.

    Args:
        example_shapes: Normalised shapes (`keras_noisewarm.shapes`).
        noise: A family, a name, `None`, or one per input.
        distribution: Deprecated `"gaussian"` / `"uniform"`.
        mean: Deprecated mean of that distribution.
        std: Deprecated standard deviation of that distribution.

    Returns:
        A flat list of `NoiseFamily`, in the order of the flattened inputs.
    """
    legacy = (distribution, mean, std) != (None, None, None)
    if legacy:
        if noise is not None:
            raise ValueError(
                "Give `noise=` (a family such as keras_noisewarm.noise.Gaussian(mean, "
                "std)) or the older `distribution`, `mean` and `std`, not both."
            )
        noise = legacy_family(distribution, mean, std)
    return [base.get(value) for value in shapes_lib.matching(noise, example_shapes, "noise")]


def legacy_family(distribution=None, mean=None, std=None):
    """The family of the older `distribution=`, `mean=`, `std=` arguments."""
    from keras_noisewarm.noise import continuous

    distribution = "gaussian" if distribution is None else distribution
    families = {"gaussian": continuous.Gaussian, "uniform": continuous.Uniform}
    if distribution not in families:
        raise ValueError(
            f"Unknown noise distribution {distribution!r}: expected one of "
            f"{tuple(families)}, or a family passed as noise= "
            "(keras_noisewarm.noise.Gaussian, Uniform, PinkNoise, DataMatched, "
            "Tokens, Custom)."
        )
    return families[distribution](0.0 if mean is None else mean, 1.0 if std is None else std)


def _targets(tasks, num_classes, one_hot, label_shape):
    if tasks is not None:
        if num_classes is not None:
            raise ValueError("Give `num_classes` (a classifier's labels) or `tasks`, not both.")
        return list(tasks)
    from keras_noisewarm.tasks import Classification

    if num_classes is None:
        raise ValueError("The noise stream needs `num_classes` (or `tasks`) for its labels.")
    validation.check_int("num_classes", num_classes, minimum=2)
    label_shape = shapes_lib.example_shape(label_shape, "label_shape", allow_empty=True)
    task = Classification(num_classes, one_hot=one_hot)
    shape = label_shape + ((num_classes,) if one_hot else ())
    return [(task, shape)]


def _dtype_name(dtype):
    import keras

    return keras.backend.standardize_dtype(dtype)
