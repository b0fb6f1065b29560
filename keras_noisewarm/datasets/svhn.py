"""SVHN (cropped digits, "format 2") from the official MATLAB files."""

import pathlib

import numpy as np

from keras_noisewarm.datasets.paths import DATA_DIR_VARIABLE
from keras_noisewarm.datasets.paths import local_folder
from keras_noisewarm.datasets.paths import missing_dataset_error

ORIGIN = "http://ufldl.stanford.edu/housenumbers/"
SPLITS = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def load_svhn(path=None, split="test"):
    """Loads one split of SVHN as `(x, y)`.

    The official "format 2" files hold `X`, uint8 images of shape
    `(32, 32, 3, N)`, and `y`, labels of shape `(N, 1)` in 1..10, where 10
    stands for the digit 0. They are returned in the layout of
    `keras.datasets`: images `(N, 32, 32, 3)` and digits 0..9. The
    out-of-distribution experiments need the test split only, so each split
    loads on its own and a copy may hold just `test_32x32.mat`.

    Args:
        path: `None` to read `$KERAS_NOISEWARM_DATA/svhn` when that variable
            is set, else to download the official file into
            `~/.keras/datasets` (with `keras.utils.get_file`) on first use;
            or a folder holding
            `train_32x32.mat` / `test_32x32.mat`.
        split: `"test"` (26,032 images) or `"train"` (73,257).

    Returns:
        `(images, labels)`: uint8 `(N, 32, 32, 3)` and int64 `(N,)`.

    Example:

    >>> x_ood, _ = load_svhn("svhn", split="test")  # doctest: +SKIP
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown SVHN split {split!r}: expected one of {tuple(SPLITS)}.")
    filename = SPLITS[split]
    path = local_folder("svhn", path)
    if path is None:
        import keras

        try:
            file = keras.utils.get_file(
                filename, ORIGIN + filename, cache_subdir="datasets/svhn"
            )
        except Exception as error:
            raise FileNotFoundError(
                f"SVHN could not be downloaded from {ORIGIN + filename} ({error}). "
                f"Put {filename} in a folder and pass path=..., or set "
                f"${DATA_DIR_VARIABLE} to a folder whose svhn/ subfolder holds it."
            ) from error
    else:
        file = pathlib.Path(path) / filename
        if not file.is_file():
            raise missing_dataset_error("SVHN", pathlib.Path(path), filename)
    from scipy import io

    contents = io.loadmat(file)
    images = np.ascontiguousarray(np.transpose(contents["X"], (3, 0, 1, 2)), dtype=np.uint8)
    labels = np.asarray(contents["y"], dtype=np.int64).reshape(-1) % 10
    if len(images) != len(labels):
        raise ValueError(f"{file} holds {len(images)} images but {len(labels)} labels.")
    return images, labels
