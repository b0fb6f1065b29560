"""MNIST and Fashion-MNIST from keras.datasets or from official IDX files."""

import gzip
import pathlib

import numpy as np

from keras_noisewarm.datasets.paths import local_folder
from keras_noisewarm.datasets.paths import missing_dataset_error

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def load_mnist(path=None):
    """Loads MNIST as `(x_train, y_train), (x_test, y_test)`.

    Args:
        path: `None` to read `$KERAS_NOISEWARM_DATA/mnist` when that variable
            is set, else `keras.datasets.mnist.load_data()` (downloads on
            first use); or a folder holding the official IDX files
            (`train-images-idx3-ubyte.gz`, ..., gzipped or not).

    Returns:
        Images as uint8 arrays of shape `(N, 28, 28)`, labels as int64 arrays.
    """
    path = local_folder("mnist", path)
    if path is None:
        import keras

        return _with_int64_labels(keras.datasets.mnist.load_data())
    return _load_idx_folder("MNIST", path)


def load_fashion_mnist(path=None):
    """Loads Fashion-MNIST as `(x_train, y_train), (x_test, y_test)`.

    Args:
        path: `None` to read `$KERAS_NOISEWARM_DATA/fashion-mnist` when that
            variable is set, else `keras.datasets.fashion_mnist.load_data()`
            (downloads on first use); or a folder holding the official IDX
            files, gzipped or not.

    Returns:
        Images as uint8 arrays of shape `(N, 28, 28)`, labels as int64 arrays.
    """
    path = local_folder("fashion-mnist", path)
    if path is None:
        import keras

        return _with_int64_labels(keras.datasets.fashion_mnist.load_data())
    return _load_idx_folder("Fashion-MNIST", path)


def read_idx(file):
    """Reads one IDX file (gzipped or not) into a NumPy array.

    The format: two zero bytes, a type code (0x08 = uint8), the number of
    dimensions, one big-endian uint32 per dimension, then the data.
    """
    opener = gzip.open if str(file).endswith(".gz") else open
    with opener(file, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{file} is not an IDX file of unsigned bytes.")
    num_dims = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(num_dims)
    )
    offset = 4 + 4 * num_dims
    array = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if array.size != int(np.prod(shape)):
        raise ValueError(
            f"{file} is truncated: header says {shape}, found {array.size} values."
        )
    return array.reshape(shape)


def _load_idx_folder(name, path):
    folder = pathlib.Path(path)
    arrays = {}
    for key, stem in _IDX_FILES.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((file for file in candidates if file.is_file()), None)
        if found is None:
            raise missing_dataset_error(
                name, folder, ", ".join(f"{stem}.gz" for stem in _IDX_FILES.values())
            )
        arrays[key] = read_idx(found)
    return _with_int64_labels(
        ((arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]))
    )


def _with_int64_labels(splits):
    (x_train, y_train), (x_test, y_test) = splits
    return (x_train, np.asarray(y_train, np.int64)), (x_test, np.asarray(y_test, np.int64))
