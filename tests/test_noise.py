import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_noisewarm import noise
from keras_noisewarm import noise_dataset


def take_batches(dataset, count):
    return [tf.nest.map_structure(np.asarray, batch) for batch in dataset.take(count)]


def test_batches_have_requested_shapes_and_dtypes():
    inputs, labels = take_batches(
        noise_dataset((8, 8, 3), num_classes=5, batch_size=16, seed=0), 1
    )[0]
    assert inputs.shape == (16, 8, 8, 3)
    assert inputs.dtype == np.float32
    assert labels.shape == (16,)
    assert labels.dtype == np.int32


def test_one_hot_labels_are_float_vectors_with_a_single_one():
    _, labels = take_batches(
        noise_dataset((4,), num_classes=7, batch_size=32, one_hot=True, seed=0), 1
    )[0]
    assert labels.shape == (32, 7)
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels.sum(axis=1), np.ones(32))
    assert set(np.unique(labels)) == {0.0, 1.0}


def test_input_dtype_follows_request():
    inputs, _ = take_batches(
        noise_dataset((4,), num_classes=2, batch_size=8, dtype="float16", seed=0), 1
    )[0]
    assert inputs.dtype == np.float16


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (2.0, 3.0), (-1.0, 0.5)])
def test_gaussian_noise_has_requested_moments(mean, std):
    batches = take_batches(
        noise_dataset((64,), 10, batch_size=256, mean=mean, std=std, seed=1), 20
    )
    values = np.concatenate([inputs.ravel() for inputs, _ in batches])
    # 327,680 draws: the standard error of the mean is std / 572.
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)
    assert abs(values.std() / std - 1.0) < 0.01
    assert abs(stats.skew(values)) < 0.02
    assert abs(stats.kurtosis(values)) < 0.05


def test_gaussian_noise_follows_the_normal_distribution_in_every_tail():
    (inputs, _), = take_batches(noise_dataset((1000,), 10, batch_size=200, seed=3), 1)
    values = inputs.ravel().astype(np.float64)
    # Kolmogorov-Smirnov: 1.63 / sqrt(n) is the 1% critical distance.
    assert stats.kstest(values, "norm").statistic < 1.63 / math.sqrt(values.size)
    for threshold in (2.0, 3.0, 4.0):
        expected = 2 * stats.norm.sf(threshold) * values.size
        observed = np.sum(np.abs(values) > threshold)
        assert abs(observed - expected) < 5 * math.sqrt(expected)


def test_gaussian_values_drawn_together_are_independent():
    # The Box-Muller transform makes the values in pairs, one from each half
    # of the batch; a wrong transform shows as dependence between them.
    (inputs, _), = take_batches(noise_dataset((1000,), 10, batch_size=200, seed=4), 1)
    first, second = np.split(inputs.ravel().astype(np.float64), 2)
    bound = 5 / math.sqrt(first.size)
    assert abs(np.corrcoef(first, second)[0, 1]) < bound
    assert abs(np.corrcoef(first**2, second**2)[0, 1]) < bound


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_gaussian_noise_of_an_odd_size_is_finite_in_every_dtype(dtype):
    (inputs, _), = take_batches(
        noise_dataset((3, 5), 2, batch_size=7, dtype=dtype, seed=0), 1
    )
    assert inputs.shape == (7, 3, 5) and inputs.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(inputs)) and np.unique(inputs).size > 90


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (1.5, 2.0)])
def test_uniform_noise_has_requested_moments_and_support(mean, std):
    batches = take_batches(
        noise_dataset(
            (64,), 10, batch_size=256, distribution="uniform", mean=mean, std=std,
            seed=2,
        ),
        20,
    )
    values = np.concatenate([inputs.ravel() for inputs, _ in batches])
    half_width = math.sqrt(3.0) * std
    assert values.min() >= mean - half_width
    assert values.max() <= mean + half_width
    # The sample nearly fills the support (width sqrt(12) * std).
    assert values.max() - values.min() > 0.999 * 2 * half_width
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(values.size)
    assert abs(values.std() / std - 1.0) < 0.01


def test_labels_are_uniform_over_classes():
    num_classes = 10
    batches = take_batches(noise_dataset((2,), num_classes, batch_size=500, seed=3), 40)
    labels = np.concatenate([labels for _, labels in batches])
    assert labels.min() == 0 and labels.max() == num_classes - 1
    counts = np.bincount(labels, minlength=num_classes)
    # A chi-square goodness-of-fit test against the uniform distribution
    # (fixed seed, so the outcome is deterministic).
    assert stats.chisquare(counts).pvalue > 0.01
    np.testing.assert_allclose(counts / counts.sum(), 0.1, atol=0.01)


def test_every_batch_is_fresh_noise():
    (first, first_labels), (second, second_labels) = take_batches(
        noise_dataset((32,), 10, batch_size=64, seed=0), 2
    )
    assert not np.allclose(first, second)
    assert not np.array_equal(first_labels, second_labels)


def test_same_seed_gives_identical_stream_and_other_seed_differs():
    def stream(seed):
        return take_batches(noise_dataset((16,), 10, batch_size=8, seed=seed), 3)

    for (a_inputs, a_labels), (b_inputs, b_labels) in zip(stream(7), stream(7)):
        np.testing.assert_array_equal(a_inputs, b_inputs)
        np.testing.assert_array_equal(a_labels, b_labels)
    other_inputs, _ = stream(8)[0]
    assert not np.allclose(stream(7)[0][0], other_inputs)


def test_unseeded_stream_follows_numpy_global_seed():
    np.random.seed(0)
    first, _ = take_batches(noise_dataset((4,), 3, batch_size=4), 1)[0]
    np.random.seed(0)
    again, _ = take_batches(noise_dataset((4,), 3, batch_size=4), 1)[0]
    np.testing.assert_array_equal(first, again)


def test_stream_is_infinite():
    assert noise_dataset((2,), 2, seed=0).cardinality() == tf.data.INFINITE_CARDINALITY


def test_multi_input_list_gives_one_noise_tensor_per_input():
    (images, features), labels = take_batches(
        noise_dataset([(8, 8, 1), (5,)], 3, batch_size=4, seed=0), 1
    )[0]
    assert images.shape == (4, 8, 8, 1)
    assert features.shape == (4, 5)
    assert labels.shape == (4,)


def test_multi_input_dict_keeps_names():
    inputs, _ = take_batches(
        noise_dataset({"image": (4, 4, 3), "meta": (2,)}, 3, batch_size=2, seed=0), 1
    )[0]
    assert set(inputs) == {"image", "meta"}
    assert inputs["image"].shape == (2, 4, 4, 3)
    assert inputs["meta"].shape == (2, 2)


def test_label_shape_gives_per_pixel_labels():
    _, labels = take_batches(
        noise_dataset((6, 6, 3), 4, batch_size=2, label_shape=(6, 6), seed=0), 1
    )[0]
    assert labels.shape == (2, 6, 6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(input_shape=(None, 3)), "unknown dimension"),
        (dict(input_shape=(0, 3)), "positive integers"),
        (dict(input_shape=()), "non-empty"),
        (dict(input_shape="32x32"), "shape of one example"),
        (dict(num_classes=1), "num_classes"),
        (dict(num_classes=0), "num_classes"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=-4), "batch_size"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(std=0.0), "std"),
        (dict(std=-1.0), "std"),
        (dict(distribution="laplace"), "laplace"),
        (dict(dtype="int32"), "floating dtype"),
    ],
)
def test_invalid_arguments_raise_a_clear_error(kwargs, message):
    arguments = dict(input_shape=(4,), num_classes=3, batch_size=8)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        noise_dataset(**arguments)


@pytest.mark.parametrize("distribution", ["gaussian", "uniform"])
def test_sample_noise_has_the_family_mean_and_std_on_the_backend(distribution):
    values = keras.ops.convert_to_numpy(
        noise.sample_noise((200_000,), distribution, mean=0.5, std=2.0, seed=0)
    )
    assert values.mean() == pytest.approx(0.5, abs=0.02)
    assert values.std() == pytest.approx(2.0, rel=0.01)
    if distribution == "uniform":
        half_width = np.sqrt(3.0) * 2.0
        assert values.min() >= 0.5 - half_width and values.max() <= 0.5 + half_width


def test_sample_noise_with_a_seed_generator_draws_fresh_noise_each_call():
    generator = keras.random.SeedGenerator(0)
    first = keras.ops.convert_to_numpy(noise.sample_noise((4, 3), seed=generator))
    second = keras.ops.convert_to_numpy(noise.sample_noise((4, 3), seed=generator))
    assert not np.allclose(first, second)


def test_label_dataset_gives_the_labels_of_the_noise_stream():
    labels_only = next(iter(noise.label_dataset(7, batch_size=16, seed=3)))
    with_inputs = next(iter(noise.noise_dataset((5,), 7, batch_size=16, seed=3)))
    assert tuple(labels_only[0].shape) == (16, 1)
    np.testing.assert_array_equal(labels_only[1].numpy(), with_inputs[1].numpy())
