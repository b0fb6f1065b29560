import numpy as np
import pytest

import local_data
from datafiles import write_tiny_datasets
from datafiles import write_cifar_batch
from datafiles import write_idx

from keras_noisewarm import datasets


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


def test_loaders_without_a_path_read_the_environment_variable_folder(tmp_path, monkeypatch):
    write_tiny_datasets(tmp_path, num_train=30, num_test=20)
    monkeypatch.setenv("KERAS_NOISEWARM_DATA", str(tmp_path))
    (x_train, _), (x_test, _) = datasets.load_cifar10()
    assert x_train.shape == (30, 32, 32, 3) and x_test.shape == (20, 32, 32, 3)
    (x_train, _), _ = datasets.load_mnist()
    assert x_train.shape == (30, 28, 28)


def test_a_set_variable_without_the_dataset_is_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_NOISEWARM_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no mnist/ folder"):
        datasets.load_mnist()


def test_shared_cifar10_copy_loads_when_present():
    folder = local_data.local_copy("cifar10-subset")
    if folder is None:
        pytest.skip("no local CIFAR-10 copy on this machine")
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(folder)
    assert x_train.shape == (20000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert set(np.unique(y_train)) == set(range(10))


def write_svhn(path, images, digits):
    """A .mat file in SVHN's official format 2: X (32, 32, 3, N), y in 1..10."""
    from scipy import io

    io.savemat(path, {"X": images.transpose(1, 2, 3, 0),
                      "y": np.where(digits == 0, 10, digits).reshape(-1, 1).astype(np.uint8)})


def test_svhn_reads_format_2_with_label_10_as_digit_0(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    digits = np.array([0, 1, 9, 0, 5])
    write_svhn(tmp_path / "test_32x32.mat", images, digits)

    x_test, y_test = datasets.load_svhn(tmp_path, split="test")
    assert x_test.shape == (5, 32, 32, 3) and x_test.dtype == np.uint8
    np.testing.assert_array_equal(x_test, images)
    assert y_test.dtype == np.int64
    np.testing.assert_array_equal(y_test, digits)


def test_svhn_split_missing_says_which_file_to_put_where(tmp_path):
    write_svhn(tmp_path / "test_32x32.mat", np.zeros((1, 32, 32, 3), np.uint8), np.array([3]))
    # Only the test split is there: it loads, the training split is refused.
    assert datasets.load_svhn(tmp_path, split="test")[1].tolist() == [3]
    with pytest.raises(FileNotFoundError, match="SVHN not found at .*train_32x32.mat"):
        datasets.load_svhn(tmp_path, split="train")
    with pytest.raises(ValueError, match="Unknown SVHN split"):
        datasets.load_svhn(tmp_path, split="extra")
