"""Writers of tiny datasets in the official file formats, for the tests.

The tests never download: they write the files the real loaders read.
"""

import gzip
import pickle

import numpy as np


def write_cifar_batch(path, images, labels):
    """One batch in the official CIFAR-10 python format (channel-major rows)."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as handle:
        pickle.dump(
            {b"data": rows, b"labels": list(labels), b"batch_label": b"test"}, handle
        )


def write_idx(path, array, compress=True):
    """An IDX file of unsigned bytes, gzipped by default."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_tiny_datasets(folder, num_train=400, num_test=200, seed=0):
    """Random CIFAR-10, MNIST and Fashion-MNIST copies laid out like shared/data.

    CIFAR-10 images carry their class in the mean brightness of one channel,
    so a network can learn something in a few steps.

    Returns:
        `folder`, for `--data-dir`.
    """
    rng = np.random.default_rng(seed)
    cifar = folder / "cifar10-subset" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name, count in (("data_batch_1", num_train), ("test_batch", num_test)):
        labels = rng.integers(0, 10, size=count)
        images = rng.integers(0, 128, size=(count, 32, 32, 3))
        images[..., 0] += 12 * labels[:, None, None]
        write_cifar_batch(cifar / name, images.astype(np.uint8), labels)
    for name in ("mnist", "fashion-mnist"):
        digits = folder / name
        digits.mkdir()
        for stem, count in (("train", num_train), ("t10k", num_test)):
            write_idx(digits / f"{stem}-images-idx3-ubyte.gz",
                      rng.integers(0, 256, size=(count, 28, 28)))
            write_idx(digits / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, size=count))
    return folder
