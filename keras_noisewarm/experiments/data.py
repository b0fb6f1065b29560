"""In-distribution and out-of-distribution data for the experiments.

Images are scaled to [0, 1], normalised per channel with training-set
statistics (so that they share the scale of the N(0, 1) warm-up noise) and
flattened for the MLPs.
"""

import dataclasses

import numpy as np

from keras_noisewarm import datasets

IN_DISTRIBUTION = ("cifar10",)
OUT_OF_DISTRIBUTION = ("mnist", "fashion_mnist", "gaussian")


@dataclasses.dataclass
class Task:
    """Arrays of one experiment, ready for `fit` and `predict`."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray
    ood_name: str

    @property
    def num_classes(self):
        return int(self.y_train.max()) + 1


def load_task(dataset="cifar10", ood="mnist", train_size=4000, test_size=10000,
              ood_size=None, data_dir=None):
    """Loads a training subset, a test set and an OOD set.

    Args:
        dataset: In-distribution dataset; `"cifar10"`.
        ood: Out-of-distribution set: `"mnist"` or `"fashion_mnist"` (digits or
            clothes padded to 32x32 and repeated over 3 channels; CIFAR-10
            models never see them) or `"gaussian"` (N(0, 1) noise in the
            normalised space, a trivial control). SVHN, the paper's choice, is
            not available offline.
        train_size: Number of training images (the first ones).
        test_size: Number of test images.
        ood_size: Number of OOD images (default: `test_size`).
        data_dir: Folder holding local copies (`cifar10-subset/`, `mnist/`,
            `fashion-mnist/` in the official formats); default: found with
            `datasets.find_local_copy`, else `keras.datasets` downloads.

    Returns:
        A `Task`.
    """
    if dataset not in IN_DISTRIBUTION:
        raise ValueError(f"Unknown dataset {dataset!r}: expected one of {IN_DISTRIBUTION}.")
    if ood not in OUT_OF_DISTRIBUTION:
        raise ValueError(f"Unknown OOD set {ood!r}: expected one of {OUT_OF_DISTRIBUTION}.")
    ood_size = test_size if ood_size is None else ood_size
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(
        _local("cifar10-subset", data_dir)
    )
    if train_size > len(x_train) or test_size > len(x_test):
        raise ValueError(
            f"Asked for {train_size} training and {test_size} test images; the "
            f"data has {len(x_train)} and {len(x_test)}."
        )
    x_train, y_train = x_train[:train_size], y_train[:train_size]
    x_test, y_test = x_test[:test_size], y_test[:test_size]
    x_train = x_train.astype("float32") / 255.0
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2))

    def normalise(images):
        return ((images - mean) / std).reshape(len(images), -1).astype("float32")

    if ood == "gaussian":
        rng = np.random.default_rng(0)
        x_ood = rng.standard_normal((ood_size, x_train[0].size)).astype("float32")
    else:
        x_ood = normalise(_digits_as_cifar(ood, ood_size, data_dir))
    return Task(
        name=dataset,
        x_train=normalise(x_train),
        y_train=y_train,
        x_test=normalise(x_test.astype("float32") / 255.0),
        y_test=y_test,
        x_ood=x_ood,
        ood_name=ood,
    )


def _digits_as_cifar(name, count, data_dir):
    """28x28 grey test images, padded to 32x32 and repeated over 3 channels."""
    loader = {"mnist": datasets.load_mnist, "fashion_mnist": datasets.load_fashion_mnist}
    folder = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}[name]
    _, (images, _) = loader[name](_local(folder, data_dir))
    images = images[:count].astype("float32") / 255.0
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(images[..., None], 3, axis=-1)


def _local(name, data_dir):
    if data_dir is not None:
        return f"{data_dir}/{name}"
    return datasets.find_local_copy(name)
