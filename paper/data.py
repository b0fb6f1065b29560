"""In-distribution and out-of-distribution data for the experiments.

Images are scaled to [0, 1] and normalised per channel with training-set
statistics, so that they share the scale of the N(0, 1) warm-up noise, as in
the authors' code. They keep their image shape; the MLPs flatten them.
Out-of-distribution images are brought to the in-distribution image shape
(28x28 greyscale padded to 32x32 and repeated over 3 channels, or colour
images turned grey and cropped) and normalised with the same statistics.
"""

import dataclasses
import os
import pathlib

import numpy as np

from keras_noisewarm import datasets

# name: (loader, folder of the local copy)
_SOURCES = {
    "cifar10": (datasets.load_cifar10, "cifar10-subset"),
    "mnist": (datasets.load_mnist, "mnist"),
    "fashion_mnist": (datasets.load_fashion_mnist, "fashion-mnist"),
}
IN_DISTRIBUTION = tuple(_SOURCES)
OUT_OF_DISTRIBUTION = ("mnist", "fashion_mnist", "cifar10", "svhn", "gaussian")
# What the paper uses; SVHN is not available on machines without internet.
PAPER_OOD = "svhn"


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
    # Per-channel statistics of the training images in [0, 1], which
    # `normalise` applies; the test images as loaded (uint8), for
    # corrupting them (keras_noisewarm.shift); and the held-out training
    # images asked for with `holdout`, normalised, or `None`.
    mean: np.ndarray = None
    std: np.ndarray = None
    test_images: np.ndarray = None
    x_holdout: np.ndarray = None
    y_holdout: np.ndarray = None

    def normalise(self, images):
        """Images (uint8, or floats in [0, 1]) normalised as the task's inputs."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = _as_float_images(images)
        return ((images - self.mean) / self.std).astype("float32")

    @property
    def num_classes(self):
        return int(self.y_train.max()) + 1

    @property
    def input_shape(self):
        return self.x_train.shape[1:]


def load_task(dataset="cifar10", ood="mnist", train_size=4000, test_size=10000,
              ood_size=None, data_dir=None, image_size=None, holdout=None):
    """Loads a training subset, a test set and an out-of-distribution set.

    Args:
        dataset: In-distribution dataset: `"cifar10"`, `"mnist"` or
            `"fashion_mnist"`.
        ood: Out-of-distribution set: `"svhn"` (the paper's choice, test
            split), `"mnist"`, `"fashion_mnist"` or `"cifar10"` (test
            images, brought to the shape of `dataset`; never the
            in-distribution set itself), or `"gaussian"` (N(0, 1) noise in
            the normalised space, a trivial control).
        train_size: Number of training images (the first ones).
        test_size: Number of test images (the first ones).
        ood_size: Number of OOD images (default: `test_size`).
        image_size: Side to shrink the images to by averaging blocks of
            pixels (it must divide the side), or `None` to keep them.
        data_dir: Folder holding local copies (`cifar10-subset/`, `mnist/`,
            `fashion-mnist/`, `svhn/` in the official formats); default:
            found with `local_data_dir`, else the loaders download.
        holdout: `(start, stop)`: also load training images `start` to
            `stop - 1` as a held-out set (`x_holdout`, `y_holdout`), to fit
            or choose things on without touching the test images. It must
            not overlap the first `train_size` images.

    Returns:
        A `Task`.
    """
    if dataset not in IN_DISTRIBUTION:
        raise ValueError(f"Unknown dataset {dataset!r}: expected one of {IN_DISTRIBUTION}.")
    if ood not in OUT_OF_DISTRIBUTION or ood == dataset:
        choices = tuple(name for name in OUT_OF_DISTRIBUTION if name != dataset)
        raise ValueError(
            f"Unknown out-of-distribution set {ood!r} for {dataset}: expected one "
            f"of {choices}."
        )
    ood_size = test_size if ood_size is None else ood_size
    (x_train, y_train), (x_test, y_test) = _load(dataset, data_dir)
    if train_size > len(x_train) or test_size > len(x_test):
        raise ValueError(
            f"Asked for {train_size} training and {test_size} test images of "
            f"{dataset}; the data has {len(x_train)} and {len(x_test)}."
        )
    x_holdout = y_holdout = None
    if holdout is not None:
        start, stop = holdout
        if not train_size <= start < stop <= len(x_train):
            raise ValueError(
                f"The held-out training images {start}..{stop - 1} must follow the "
                f"{train_size} training images and lie within the {len(x_train)} "
                f"training images of {dataset}."
            )
        x_holdout, y_holdout = _as_float_images(x_train[start:stop]), y_train[start:stop]
    x_train = _as_float_images(x_train[:train_size])
    y_train, x_test, y_test = y_train[:train_size], x_test[:test_size], y_test[:test_size]
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2))

    def normalise(images):
        return ((images - mean) / std).astype("float32")

    if ood == "gaussian":
        rng = np.random.default_rng(0)
        x_ood = rng.standard_normal((ood_size,) + x_train.shape[1:]).astype("float32")
    else:
        x_ood = _load_test_images(ood, data_dir)
        if ood_size > len(x_ood):
            raise ValueError(f"Asked for {ood_size} {ood} images; the data has {len(x_ood)}.")
        x_ood = normalise(_to_shape(_as_float_images(x_ood[:ood_size]), x_train.shape[1:]))
    task = Task(
        name=dataset,
        x_train=normalise(x_train),
        y_train=y_train,
        x_test=normalise(_as_float_images(x_test)),
        y_test=y_test,
        x_ood=x_ood,
        ood_name=ood,
        mean=mean,
        std=std,
        test_images=x_test if x_test.ndim == 4 else x_test[..., None],
        x_holdout=None if x_holdout is None else normalise(x_holdout),
        y_holdout=y_holdout,
    )
    if image_size is not None and image_size != task.x_train.shape[1]:
        for name in ("x_train", "x_test", "x_ood", "x_holdout"):
            if getattr(task, name) is not None:
                setattr(task, name, shrunk(getattr(task, name), image_size))
    return task


def shrunk(images, side):
    """`(N, H, W, C)` images averaged down to `(N, side, side, C)`."""
    height, width = images.shape[1:3]
    if height % side or width % side:
        raise ValueError(f"Cannot shrink {height}x{width} images to {side}x{side}: it must divide.")
    blocks = images.reshape(len(images), side, height // side, side, width // side, images.shape[-1])
    return blocks.mean(axis=(2, 4)).astype("float32")


def _load(name, data_dir):
    loader, folder = _SOURCES[name]
    return loader(_local(folder, data_dir))


def _load_test_images(name, data_dir):
    if name == "svhn":
        return datasets.load_svhn(_local("svhn", data_dir), split="test")[0]
    return _load(name, data_dir)[1][0]


def _as_float_images(images):
    """uint8 images as float32 in [0, 1], with a channel axis."""
    images = images.astype("float32") / 255.0
    return images[..., None] if images.ndim == 3 else images


def _to_shape(images, shape):
    """Brings (N, H, W, C) images to `shape` (H, W, C): pad/crop, grey/colour."""
    height, width, channels = shape
    if images.shape[-1] != channels:
        images = (
            images.mean(axis=-1, keepdims=True)
            if channels == 1
            else np.repeat(images, channels, axis=-1)
        )
    images = _fit_axis(images, axis=1, size=height)
    return _fit_axis(images, axis=2, size=width)


def _fit_axis(images, axis, size):
    """Zero-pads or centre-crops one spatial axis to `size`."""
    excess = images.shape[axis] - size
    if excess < 0:
        padding = [(0, 0)] * images.ndim
        padding[axis] = (-excess // 2, -excess - (-excess // 2))
        return np.pad(images, padding)
    start = excess // 2
    return np.take(images, np.arange(start, start + size), axis=axis)


def _local(name, data_dir):
    if data_dir is None:
        data_dir = local_data_dir()
    if data_dir is None:
        return None
    return pathlib.Path(data_dir) / name


def local_data_dir():
    """The folder of local dataset copies on our machines, or `None`.

    `$KERAS_NOISEWARM_DATA` when set; else `shared/data` beside the checkout,
    the layout of our offline CI machines. (The library itself knows only
    the variable; this lookup belongs to the reproduction.)
    """
    root = os.environ.get(datasets.DATA_DIR_VARIABLE)
    if root:
        return pathlib.Path(root)
    shared = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return shared if shared.is_dir() else None
