"""Noise warm-up for semantic segmentation: synthetic shapes, per-pixel softmax.

Images of discs and squares on a textured background are built here from a
seed (no download). Every pixel is labelled background (0), disc (1) or
square (2); the pixels on a shape's outline are labelled 255 and ignored,
by the loss and by the metrics, as the unlabelled borders of real
segmentation masks (PASCAL VOC) are. A small fully convolutional network
with per-pixel logits (the softmax is in the loss) is trained with and without a noise warm-up
from the same initial weights, for several paired seeds; the warm-up infers
a per-pixel classification from the `(H, W, 3)` output and draws one random
class per pixel. Measured on held-out images: per-pixel ECE and NLL (the
ignore label left out), pixel accuracy and mean IoU; medians, quartiles,
seeds improved and the paired Wilcoxon p.

    python examples/segmentation.py           # 5 seeds, about 6 minutes on 2 CPU cores
    python examples/segmentation.py --fast    # seconds: tiny sizes
    python examples/segmentation.py --select  # choose the settings on held-out training images

The settings (`SETTINGS`) are set by hand, not by a finished `--select`
sweep (one was cut short); `--select` chooses them on images held out
from the training set, never on the test images.
"""

import argparse
import dataclasses
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy import special  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import compare  # noqa: E402
from keras_noisewarm import metrics  # noqa: E402
from keras_noisewarm import paired_runs  # noqa: E402

NUM_CLASSES = 3
IGNORE_LABEL = 255
# (name, title, lower is better) of each run's numbers.
METRICS = (
    ("ece", "per-pixel ECE", True),
    ("nll", "per-pixel NLL", True),
    ("accuracy", "pixel accuracy", False),
    ("miou", "mean IoU", False),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes, training and warm-up of one comparison."""

    image_size: int = 24
    train_size: int = 400
    validation_size: int = 200
    test_size: int = 500
    width: int = 24
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    warmup_learning_rate: float = 1e-3
    seeds: tuple = (0, 1, 2, 3, 4)


SETTINGS = Settings()
FAST = dataclasses.replace(SETTINGS, image_size=16, train_size=48, validation_size=16, test_size=32,
                           width=8, epochs=2, batch_size=16, warmup_steps=3, seeds=(0,))
# What --select tries, on held-out training images.
SELECTION_GRID = {"warmup_steps": (50, 200), "warmup_learning_rate": (1e-4, 1e-3)}
SELECTION_EPOCHS = (8, 16)
SELECTION_SEEDS = (100, 101, 102)


def make_images(num_images, size, seed):
    """Discs and squares on a textured background; labels with outlines ignored.

    Returns:
        float32 images `(N, size, size, 3)` and uint8 labels `(N, size, size)`.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size].astype("float32")
    images = np.empty((num_images, size, size, 3), "float32")
    labels = np.zeros((num_images, size, size), "uint8")
    for index in range(num_images):
        # Background: two random stripe patterns and pixel noise, in a colour
        # drawn from the same range as the shapes', so colour alone does not
        # tell a shape from the background.
        image = np.empty((size, size, 3), "float32")
        base = rng.uniform(0.2, 0.8, size=3)
        texture = np.zeros((size, size), "float32")
        for _ in range(2):
            angle, frequency, phase = rng.uniform(0, np.pi), rng.uniform(0.3, 1.2), rng.uniform(0, 6.3)
            texture += np.sin(frequency * (np.cos(angle) * columns + np.sin(angle) * rows) + phase)
        image[:] = base + 0.12 * texture[..., None]
        label = np.zeros((size, size), "uint8")
        for _ in range(rng.integers(1, 4)):
            kind = rng.integers(1, NUM_CLASSES)
            extent = rng.uniform(0.12, 0.25) * size
            center = rng.uniform(extent, size - extent, size=2)
            if kind == 1:
                inside = (rows - center[0]) ** 2 + (columns - center[1]) ** 2 <= extent**2
            else:
                inside = (np.abs(rows - center[0]) <= extent) & (np.abs(columns - center[1]) <= extent)
            image[inside] = rng.uniform(0.0, 1.0, size=3)
            label[inside] = kind
        image += rng.normal(0.0, 0.08, size=image.shape)
        # Pixels whose 4-neighbourhood holds another class are the outlines.
        outline = np.zeros((size, size), bool)
        for axis in (0, 1):
            for shift in (1, -1):
                outline |= label != np.roll(label, shift, axis=axis)
        outline[0, :] = outline[-1, :] = outline[:, 0] = outline[:, -1] = False
        label[outline] = IGNORE_LABEL
        images[index], labels[index] = image, label
    return images, labels


def load_data(settings, seed=0):
    """Training, held-out training (validation) and test images, normalised.

    The per-channel mean and standard deviation come from the training
    images, so images and the N(0, 1) warm-up noise share one scale.
    """
    total = settings.train_size + settings.validation_size
    x, y = make_images(total, settings.image_size, seed)
    x_test, y_test = make_images(settings.test_size, settings.image_size, seed + 1)
    x_train, y_train = x[: settings.train_size], y[: settings.train_size]
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2))

    def normalise(images):
        return ((images - mean) / std).astype("float32")

    return {
        "train": (normalise(x_train), y_train),
        "validation": (normalise(x[settings.train_size:]), y[settings.train_size:]),
        "test": (normalise(x_test), y_test),
    }


def build_model(settings):
    """A small fully convolutional network: dilated 3x3 convolutions, per-pixel logits."""
    inputs = keras.Input((settings.image_size, settings.image_size, 3))
    x = inputs
    for dilation in (1, 2, 4, 8):
        x = keras.layers.Conv2D(settings.width, 3, padding="same", dilation_rate=dilation,
                                kernel_initializer="he_normal")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    # Per-pixel logits, the softmax in the loss: under torch, Keras's backward
    # pass through a softmax layer on a convolution's channels fails
    # ("grad_input must be contiguous").
    outputs = keras.layers.Conv2D(NUM_CLASSES, 1)(x)
    model = keras.Model(inputs, outputs, name="fcn")
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL),
    )
    return model


def measure(probabilities, labels):
    """Per-pixel calibration and accuracy of probabilities `(N, H, W, K)`."""
    values = {}
    for name, metric in (
        ("ece", metrics.ExpectedCalibrationError(num_bins=15, ignore_label=IGNORE_LABEL)),
        ("nll", metrics.NegativeLogLikelihood(ignore_label=IGNORE_LABEL)),
    ):
        metric.update_state(labels, probabilities)
        values[name] = float(metric.result())
    kept = labels != IGNORE_LABEL
    predicted = probabilities.argmax(axis=-1)[kept]
    truth = labels[kept].astype("int64")
    values["accuracy"] = float(np.mean(predicted == truth))
    intersections = np.bincount(truth[predicted == truth], minlength=NUM_CLASSES)
    unions = (np.bincount(predicted, minlength=NUM_CLASSES) + np.bincount(truth, minlength=NUM_CLASSES)
              - intersections)
    values["miou"] = float(np.mean(intersections / np.maximum(unions, 1)))
    return values


def run(settings, data, seed, arm, evaluate_on="test", epochs=None):
    """Trains one network (warmed up or not) and measures it.

    Both arms of a seed start from the same weights and see the training
    images in the same order.

    Returns:
        `(numbers, probabilities)` on the `evaluate_on` split.
    """
    keras.utils.set_random_seed(seed)
    model = build_model(settings)
    numbers = {"seed": seed, "arm": arm}
    if arm == "warmup":
        keras_noisewarm.warmup(
            model, steps=settings.warmup_steps, learning_rate=settings.warmup_learning_rate,
            batch_size=32, seed=seed + compare.WARMUP_SEED_OFFSET, verbose=0,
        )
    numbers["noise_confidence"] = keras_noisewarm.noise_confidence(model, num_examples=64).mean_confidence
    keras.utils.set_random_seed(seed + compare.DATA_ORDER_SEED_OFFSET)
    x_train, y_train = data["train"]
    model.fit(x_train, y_train, batch_size=settings.batch_size, epochs=epochs or settings.epochs,
              verbose=0)
    x, y = data[evaluate_on]
    logits = model.predict(x, batch_size=256, verbose=0)
    probabilities = special.softmax(logits.astype("float64"), axis=-1)
    numbers.update(measure(probabilities, y))
    return numbers, probabilities


def compare_arms(settings, data, output=None, verbose=True):
    """Both arms for every seed; the runs and the rows of `comparison_rows`."""

    def run_pair_member(seed, arm):
        numbers, probabilities = run(settings, data, seed, arm)
        return numbers, {"probabilities": probabilities, "labels": data["test"][1]}

    runs = paired_runs.run_arms(run_pair_member, settings.seeds, output, verbose)
    return runs, compare.comparison_rows(runs, metrics=METRICS)


def select(settings, verbose=True):
    """Chooses the epochs, then the warm-up, by held-out validation NLL.

    Nothing here sees the test images.
    """
    data = load_data(settings)

    def validation_nll(changes, arm):
        chosen = dataclasses.replace(settings, **changes)
        return [run(chosen, data, seed, arm, evaluate_on="validation")[0]["nll"]
                for seed in SELECTION_SEEDS]

    return paired_runs.choose_on_validation(validation_nll, SELECTION_EPOCHS, SELECTION_GRID, verbose)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes: seconds")
    parser.add_argument("--select", action="store_true",
                        help="choose epochs and warm-up on held-out training images")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5, 1 with --fast)")
    parser.add_argument("--output", help="folder for each run's test predictions and runs.json")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = FAST if args.fast else SETTINGS
    if args.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(range(args.seeds)))
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    if args.select:
        chosen, _ = select(settings)
        print(f"chosen on validation: {chosen}")
        return
    print(f"settings: {settings}")
    if args.output:
        pathlib.Path(args.output).mkdir(parents=True, exist_ok=True)
    data = load_data(settings)
    ignored = np.mean(data["test"][1] == IGNORE_LABEL)
    print(f"{len(data['train'][0])} training and {len(data['test'][0])} test images of "
          f"{settings.image_size}x{settings.image_size}; {ignored:.1%} of test pixels ignored")
    runs, rows = compare_arms(settings, data, args.output)
    print()
    print(compare.format_table(rows))
    noise = {arm: np.median([run["noise_confidence"] for run in runs[arm]]) for arm in runs}
    print(f"\nmean confidence on noise before training (median): no warm-up "
          f"{noise['baseline']:.3f}, warm-up {noise['warmup']:.3f} (chance {1 / NUM_CLASSES:.3f})")
    print("\n".join(paired_runs.verdict_lines(rows)))

if __name__ == "__main__":
    main()
