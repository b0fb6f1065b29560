import gzip
import pickle

import numpy as np
import pytest

from keras_noisewarm import datasets


def write_cifar_batch(path, images, labels):
    """One batch in the official CIFAR-10 python format (channel-major rows)."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as handle:
        pickle.dump(
            {b"data": rows, b"labels": list(labels), b"batch_label": b"test"}, handle
        )


def write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_cifar10_reads_official_batches_in_channels_last_layout(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    train_a = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    train_b = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    write_cifar_batch(folder / "data_batch_1", train_a, [0, 1, 2])
    write_cifar_batch(folder / "data_batch_2", train_b, [3, 4])
    write_cifar_batch(folder / "test_batch", test, [5, 6, 7, 8])

    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(tmp_path)

    np.testing.assert_array_equal(x_train, np.concatenate([train_a, train_b]))
    np.testing.assert_array_equal(y_train, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(x_test, test)
    np.testing.assert_array_equal(y_test, [5, 6, 7, 8])
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64


def test_cifar10_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="KERAS_NOISEWARM_DATA"):
        datasets.load_cifar10(tmp_path)


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("loader", [datasets.load_mnist, datasets.load_fashion_mnist])
def test_idx_loaders_read_official_files(tmp_path, compress, loader):
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, (5,)),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, (2,)),
    }
    for name, array in arrays.items():
        write_idx(tmp_path / (name + (".gz" if compress else "")), array, compress)

    (x_train, y_train), (x_test, y_test) = loader(tmp_path)

    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x_test, arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])
    assert y_train.dtype == np.int64


def test_truncated_idx_file_is_rejected(tmp_path):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(ValueError, match="truncated"):
        datasets.idx.read_idx(path)


def test_find_local_copy_prefers_the_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    monkeypatch.setenv("KERAS_NOISEWARM_DATA", str(tmp_path))
    assert datasets.find_local_copy("mnist") == tmp_path / "mnist"


def test_shared_cifar10_copy_loads_when_present():
    folder = datasets.find_local_copy("cifar10-subset")
    if folder is None:
        pytest.skip("no local CIFAR-10 copy on this machine")
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(folder)
    assert x_train.shape == (20000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert set(np.unique(y_train)) == set(range(10))
