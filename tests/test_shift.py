"""CIFAR-10-C corruptions (keras_noisewarm.shift) and calibration under them."""

import colorsys
import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf
from local_data import local_copy

from keras_noisewarm import compare
from keras_noisewarm import datasets
from keras_noisewarm import plot
from keras_noisewarm import shift
from keras_noisewarm.shift import corruptions as corruptions_lib
from keras_noisewarm.shift import evaluate as evaluate_lib


def _synthetic_images(count=8, size=32, seed=0):
    """Smooth random colour images with edges: blobs plus a few flat rectangles."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size] / size
    images = np.zeros((count, size, size, 3))
    for index in range(count):
        for channel in range(3):
            frequency = rng.uniform(1, 4, size=2)
            phase = rng.uniform(0, 2 * np.pi, size=2)
            images[index, :, :, channel] = 0.5 + 0.3 * np.sin(
                2 * np.pi * frequency[0] * rows + phase[0]) * np.cos(
                2 * np.pi * frequency[1] * columns + phase[1])
        top, left = rng.integers(0, size // 2, size=2)
        images[index, top:top + size // 3, left:left + size // 3] = rng.uniform(0, 1, size=3)
    return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def images():
    """32 CIFAR-10 images from the local copy, else synthetic ones."""
    folder = local_copy("cifar10-subset")
    if folder is None:
        return _synthetic_images(32)
    return datasets.load_cifar10(folder)[1][0][:32]


@pytest.mark.parametrize("corruption", shift.CORRUPTIONS)
def test_every_corruption_keeps_shape_dtype_and_range(corruption, images):
    for batch in (images[:4], images[:4].astype("float32") / 255, images[:2, :, :, :1],
                  images[:2, :20, :24].astype("float64") / 255):
        for severity in (1, 5):
            corrupted = shift.corrupt(batch, corruption, severity, seed=0)
            assert corrupted.shape == batch.shape and corrupted.dtype == batch.dtype
            high = 255 if batch.dtype == np.uint8 else 1.0
            assert corrupted.min() >= 0 and corrupted.max() <= high
            assert np.all(np.isfinite(corrupted))
    # The input is never changed in place.
    copy = images[:4].copy()
    shift.corrupt(copy, corruption, 3, seed=0)
    np.testing.assert_array_equal(copy, images[:4])


@pytest.mark.parametrize("corruption", shift.CORRUPTIONS)
def test_every_severity_changes_the_images_more_than_the_last(corruption, images):
    changes = [np.abs(shift.corrupt(images, corruption, severity, seed=1).astype(float)
                      - images).mean() for severity in shift.SEVERITIES]
    assert changes[0] > 0
    assert all(later > earlier for earlier, later in zip(changes, changes[1:])), changes


@pytest.mark.parametrize("corruption", shift.CORRUPTIONS)
def test_uint8_and_float_inputs_give_the_same_corruption(corruption, images):
    as_uint8 = shift.corrupt(images[:4], corruption, 3, seed=2).astype(float)
    as_float = shift.corrupt(images[:4].astype("float64") / 255, corruption, 3, seed=2) * 255
    # The same draws; uint8 output is the float result rounded (JPEG decodes
    # to uint8 either way, so it is exact).
    assert np.max(np.abs(as_uint8 - as_float)) <= 0.5 + 1e-9


def test_the_same_seed_gives_the_same_images_and_severities_are_nested(images):
    first = shift.corrupt(images, "gaussian_noise", 2, seed=5)
    np.testing.assert_array_equal(first, shift.corrupt(images, "gaussian_noise", 2, seed=5))
    assert not np.array_equal(first, shift.corrupt(images, "gaussian_noise", 2, seed=6))
    # Severity 5's noise is severity 1's scaled by 0.10 / 0.04 where nothing clips.
    x = images.astype("float64") / 255
    mild = shift.corrupt(x, "gaussian_noise", 1, seed=3) - x
    strong = shift.corrupt(x, "gaussian_noise", 5, seed=3) - x
    inside = (x > 0.3) & (x < 0.7) & (np.abs(strong) < 0.25)
    np.testing.assert_allclose(strong[inside], 2.5 * mild[inside], rtol=1e-9, atol=1e-12)
    # The impulse mask of severity 1 lies inside that of severity 5.
    changed = [shift.corrupt(images, "impulse_noise", severity, seed=3) != images
               for severity in (1, 5)]
    assert np.all(changed[1][changed[0]])


def test_brightness_follows_the_hsv_value():
    pixels = np.array([[[[0.2, 0.4, 0.1], [0.0, 0.0, 0.0], [0.9, 0.5, 0.8]]]])
    corrupted = shift.corrupt(pixels, "brightness", 2)  # value + 0.1
    for pixel, result in zip(pixels[0, 0], corrupted[0, 0]):
        hue, saturation, value = colorsys.rgb_to_hsv(*pixel)
        expected = colorsys.hsv_to_rgb(hue, saturation, min(value + 0.1, 1.0))
        np.testing.assert_allclose(result, expected, atol=1e-12)


def test_contrast_pulls_each_channel_towards_its_mean():
    image = np.zeros((1, 2, 2, 1))
    image[0, 0, 0, 0] = 0.8  # channel mean 0.2
    corrupted = shift.corrupt(image, "contrast", 2)  # factor 0.5
    np.testing.assert_allclose(corrupted[0, :, :, 0], [[0.5, 0.1], [0.1, 0.1]])


def test_hand_checked_kernels():
    # Radius 1 on the pixel grid: the centre and its four neighbours, equally;
    # the 3x3 smoothing of standard deviation 0.2 moves a share of e^-12.5.
    kernel = corruptions_lib.defocus_kernel(1.0, 0.2)
    np.testing.assert_allclose(kernel[1:4, 1:4], [[0, 0.2, 0], [0.2, 0.2, 0.2], [0, 0.2, 0]],
                               atol=1e-5)
    assert kernel.sum() == pytest.approx(1.0)
    rows, columns, weights = corruptions_lib.motion_kernel_taps(2, 1.0, angle=0.0)
    assert rows.tolist() == [0] * 5 and columns.tolist() == [0, 1, 2, 3, 4]
    expected = np.exp(-np.arange(5) ** 2 / 2.0)
    np.testing.assert_allclose(weights, expected / expected.sum())
    rows, columns, _ = corruptions_lib.motion_kernel_taps(2, 1.0, angle=45.0)
    assert rows.tolist() == columns.tolist() == [0, 1, 1, 2, 3]
    # Box resampling: 4 -> 2 averages pairs; 3 -> 2 splits the middle pixel.
    np.testing.assert_allclose(corruptions_lib.box_resampling_matrix(4, 2),
                               [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(corruptions_lib.box_resampling_matrix(3, 2),
                               [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])


def test_pixelate_keeps_flat_images_and_averages_blocks():
    flat = np.full((1, 32, 32, 3), 0.25)
    np.testing.assert_allclose(shift.corrupt(flat, "pixelate", 5), flat)
    stripes = np.zeros((1, 32, 32, 1))
    stripes[:, :, ::2] = 1.0
    # Severity 5 goes down to 20 columns: every small pixel averages about
    # 1.6 stripes, so no column is pure black or white any more.
    pixelated = shift.corrupt(stripes, "pixelate", 5)
    assert 0.05 < pixelated.min() and pixelated.max() < 0.95
    np.testing.assert_allclose(pixelated.mean(), 0.5, atol=0.02)


def test_clear_errors_for_inputs_it_cannot_read(images):
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        shift.corrupt(images.astype("float32"), "contrast", 1)  # floats in [0, 255]
    with pytest.raises(ValueError, match="must lie in"):
        shift.corrupt(images.astype("float32") / 127.5 - 1, "contrast", 1)  # normalised
    with pytest.raises(ValueError, match="uint8 in"):
        shift.corrupt(images.astype("int32"), "contrast", 1)
    with pytest.raises(ValueError, match="shape"):
        shift.corrupt(images[0], "contrast", 1)
    with pytest.raises(ValueError, match="shape"):
        shift.corrupt(images[..., :2], "contrast", 1)
    with pytest.raises(ValueError, match="NaN"):
        shift.corrupt(np.full((1, 4, 4, 3), np.nan), "contrast", 1)
    with pytest.raises(ValueError, match="severity"):
        shift.corrupt(images, "contrast", 6)
    with pytest.raises(ValueError, match="corruption"):
        shift.corrupt(images, "fog", 1)


def test_corrupt_dataset_gives_the_numpy_corruption_of_each_batch(images):
    dataset = tf.data.Dataset.from_tensor_slices((images[:10], np.arange(10))).batch(4)
    shifted = shift.corrupt_dataset(dataset, "shot_noise", 4, seed=7)
    for index, (batch, labels) in enumerate(shifted.as_numpy_iterator()):
        expected = shift.corrupt(images[:10][4 * index:4 * index + 4], "shot_noise", 4,
                                 seed=(7, index))
        np.testing.assert_array_equal(batch, expected)
        np.testing.assert_array_equal(labels, np.arange(10)[4 * index:4 * index + 4])
    assert shifted.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    # Every pass gives the same images; single images (rank 3) work too.
    again = [batch for batch, _ in shifted.as_numpy_iterator()]
    np.testing.assert_array_equal(again[0], next(iter(shifted.as_numpy_iterator()))[0])
    singles = shift.corrupt_dataset(tf.data.Dataset.from_tensor_slices(images[:2]),
                                    "contrast", 2)
    first = next(iter(singles.as_numpy_iterator()))
    np.testing.assert_array_equal(first, shift.corrupt(images[:1], "contrast", 2)[0])


def test_evaluate_shift_measures_every_corruption_and_severity(images):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(4)])
    labels = np.arange(len(images)) % 4

    def preprocess(batch):
        return (batch.astype("float32") / 255.0 - 0.5) * 4.0

    rows = shift.evaluate_shift(model, images, labels, corruptions=("contrast", "defocus_blur"),
                                severities=(1, 5), preprocess=preprocess, seed=3)
    assert [(row["corruption"], row["severity"]) for row in rows] == [
        ("clean", 0), ("contrast", 1), ("contrast", 5), ("defocus_blur", 1),
        ("defocus_blur", 5)]
    # Each row is compare.measure of the model on that corrupted set.
    index = shift.CORRUPTIONS.index("defocus_blur")
    corrupted = shift.corrupt(images, "defocus_blur", 5, seed=(3, index))
    expected = compare.measure(model.predict(preprocess(corrupted), verbose=0), labels)
    for name in shift.SHIFT_METRICS:
        assert rows[-1][name] == pytest.approx(expected[name], rel=1e-6)
    means = shift.severity_means(rows, "accuracy")
    assert sorted(means) == [0, 1, 5]
    assert means[5] == pytest.approx((rows[2]["accuracy"] + rows[4]["accuracy"]) / 2)
    # A plain callable works as the model too.
    same = shift.evaluate_shift(lambda batch: model.predict(batch, verbose=0), images, labels,
                                corruptions="contrast", severities=1, preprocess=preprocess,
                                seed=3, include_clean=False)
    assert same[0]["ece"] == pytest.approx(rows[1]["ece"])
    figure = plot.shift_boxplot({"model": rows, "again": rows}, metric="ece")
    assert len(figure.axes[0].get_xticklabels()) == 3
    assert figure.axes[0].get_ylabel() == "ECE"
    plot.pyplot().close(figure)
    with pytest.raises(ValueError, match="labels"):
        shift.evaluate_shift(model, images, labels[:3])


def test_docstring_examples():
    for module in (corruptions_lib, evaluate_lib):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
