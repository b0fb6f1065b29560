"""Experiment data: subsets, normalisation and OOD sets in the in-distribution shape."""

import numpy as np
import pytest
from datafiles import write_tiny_datasets

from paper import data


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_tiny_datasets(tmp_path_factory.mktemp("data"), num_train=300, num_test=120)


def test_cifar_task_is_normalised_with_training_statistics_only(data_dir):
    task = data.load_task("cifar10", "mnist", train_size=250, test_size=100, data_dir=data_dir)
    assert task.x_train.shape == (250, 32, 32, 3) and task.x_test.shape == (100, 32, 32, 3)
    np.testing.assert_allclose(task.x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(task.x_train.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    assert task.num_classes == 10 and task.input_shape == (32, 32, 3)


def test_digits_as_ood_for_cifar_are_padded_and_repeated_over_channels(data_dir):
    task = data.load_task("cifar10", "mnist", train_size=250, test_size=100, data_dir=data_dir)
    assert task.x_ood.shape == (100, 32, 32, 3)
    # A 2-pixel zero border, then the same value in all three channels (after
    # each channel's own normalisation).
    raw = task.x_ood * task_std(data_dir) + task_mean(data_dir)
    np.testing.assert_allclose(raw[:, :2], 0.0, atol=1e-5)
    np.testing.assert_allclose(raw[..., 0], raw[..., 1], atol=1e-5)


def test_colour_images_as_ood_for_digits_are_grey_and_cropped(data_dir):
    task = data.load_task("mnist", "cifar10", train_size=250, test_size=100, data_dir=data_dir)
    assert task.x_train.shape == (250, 28, 28, 1)
    assert task.x_ood.shape == (100, 28, 28, 1)


def test_unknown_or_same_ood_set_is_refused(data_dir):
    with pytest.raises(ValueError, match="out-of-distribution set 'cifar10'"):
        data.load_task("cifar10", "cifar10", data_dir=data_dir)
    with pytest.raises(ValueError, match="Unknown dataset"):
        data.load_task("imagenet", data_dir=data_dir)


def test_asking_for_more_images_than_there_are_says_how_many_there_are(data_dir):
    with pytest.raises(ValueError, match="data has 300 and 120"):
        data.load_task("cifar10", "mnist", train_size=4000, test_size=100, data_dir=data_dir)


def task_mean(data_dir):
    from keras_noisewarm import datasets

    (x_train, _), _ = datasets.load_cifar10(data_dir / "cifar10-subset")
    return (x_train[:250] / 255.0).mean(axis=(0, 1, 2))


def task_std(data_dir):
    from keras_noisewarm import datasets

    (x_train, _), _ = datasets.load_cifar10(data_dir / "cifar10-subset")
    return (x_train[:250] / 255.0).std(axis=(0, 1, 2))
