"""CIFAR-10 from keras.datasets or from the official "python version" batches."""

import pathlib
import pickle

import numpy as np

from keras_noisewarm.datasets.paths import local_folder
from keras_noisewarm.datasets.paths import missing_dataset_error


def load_cifar10(path=None):
    """Loads CIFAR-10 as `(x_train, y_train), (x_test, y_test)`.

    Args:
        path: `None` to read `$KERAS_NOISEWARM_DATA/cifar10-subset` when that
            variable is set, else `keras.datasets.cifar10.load_data()`
            (downloads on first use); or a folder holding the official python batches
            (`data_batch_*` and `test_batch`, pickled dicts of `b"data"`:
            N x 3072 uint8 channel-major, and `b"labels"`), either directly or
            in a `cifar-10-batches-py` subfolder. Whatever training batches
            are present are used: a partial copy works.

    Returns:
        Images as uint8 arrays of shape `(N, 32, 32, 3)`, labels as int64
        arrays of shape `(N,)`.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_cifar10("cifar-10-batches-py")
    ... # doctest: +SKIP
    """
    path = local_folder("cifar10-subset", path)
    if path is None:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        return (x_train, y_train.reshape(-1).astype(np.int64)), (
            x_test,
            y_test.reshape(-1).astype(np.int64),
        )
    folder = pathlib.Path(path)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    train_files = sorted(folder.glob("data_batch_*"))
    test_file = folder / "test_batch"
    if not train_files or not test_file.is_file():
        raise missing_dataset_error(
            "CIFAR-10", folder, "data_batch_1 ... data_batch_5 and test_batch"
        )
    train = [_read_batch(file) for file in train_files]
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return (x_train, y_train), _read_batch(test_file)


def _read_batch(file):
    with open(file, "rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8)
    images = images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return images, labels
