"""The paper's ResNet-18 on CIFAR-10, with and without the noise warm-up.

The authors' recipe (Cheon & Paik 2026, their public code), in Keras:

1. a CIFAR ResNet-18 (3x3 stem, stride 1, no max-pool; Kaiming fan-in
   initialisation), `keras_noisewarm.models.cifar_resnet`;
2. the warm-up `recipe="resnet"`: SGD 0.01, momentum 0.9, weight decay 0.01,
   batch 256, 780 steps of N(0, 1) noise in the normalised input space, with
   labels drawn uniformly;
3. then a fresh SGD 0.1, momentum 0.9, weight decay 1e-4 (PyTorch's
   convention, which decays 1/(1 - momentum) times harder than Keras's of
   the same value: 1e-3 here), cosine decay over 50 epochs, batch 256, random
   crop (padding 4) and horizontal flip, per-channel normalisation.

Both networks start from the same initial weights and see the same batches;
the script prints accuracy, calibration (15-bin ECE), NLL and the mean
confidence on noise of each.

    python examples/cifar10_resnet18.py            # the full recipe: a GPU's work (hours on a CPU)
    python examples/cifar10_resnet18.py --quick    # width 8, 2,000 images, 3 epochs: minutes on a CPU

Data: `keras.datasets.cifar10` (downloads once), or a local copy of the
official python batches in `--data-dir` or `$KERAS_NOISEWARM_DATA/cifar10-subset`.
"""

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import datasets  # noqa: E402
from keras_noisewarm.models import cifar_resnet  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with the CIFAR-10 python batches")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: all)")
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=64, help="channels of the first stage (64)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help="warm-up steps (default: the recipe's 780)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="width 8, 2,000 images, 3 epochs, a 10%% warm-up: minutes on a CPU")
    args = parser.parse_args()
    if args.quick:
        args.width = 8 if args.width == 64 else args.width
        args.train_size = args.train_size or 2000
        args.test_size = min(args.test_size, 2000)
        args.epochs = 3 if args.epochs == 50 else args.epochs
    return args


def load_data(args):
    path = args.data_dir or (
        os.environ.get(datasets.DATA_DIR_VARIABLE) and
        os.path.join(os.environ[datasets.DATA_DIR_VARIABLE], "cifar10-subset")
    )
    print(f"CIFAR-10 from {path or 'keras.datasets (download)'}")
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(path or None)
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size].reshape(-1)
    x_test, y_test = x_test[: args.test_size], y_test[: args.test_size].reshape(-1)
    # Per-channel normalisation with training statistics: the warm-up's
    # N(0, 1) noise lives on the scale of the normalised images.
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2))
    return ((x_train - mean) / std, y_train), ((x_test - mean) / std, y_test)


def augmented(x, y, batch_size, seed):
    """Random crop (zero padding 4: the mean colour once normalised) and flip,
    reshuffled every epoch; the same batches for the same seed in both runs,
    since the shuffle is seeded and the augmentation stateless."""

    def augment(example, seeds):
        image, label = example
        image = tf.image.pad_to_bounding_box(image, 4, 4, 40, 40)
        image = tf.image.stateless_random_crop(image, (32, 32, 3), seed=seeds)
        return tf.image.stateless_random_flip_left_right(image, seed=seeds[::-1]), label

    images = (tf.data.Dataset.from_tensor_slices((x, y))
              .shuffle(len(x), seed=seed, reshuffle_each_iteration=True).repeat())
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    return (tf.data.Dataset.zip(images, seeds)
            .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


def training_optimizer(steps):
    # PyTorch's weight decay 1e-4 under momentum 0.9 shrinks weights as
    # Keras's decoupled weight decay 1e-3 does.
    schedule = keras.optimizers.schedules.CosineDecay(0.1, steps)
    return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=1e-4 / (1 - 0.9))


def evaluate(model, x_test, y_test):
    logits = model.predict(x_test, batch_size=500, verbose=0)
    values = keras_noisewarm.compare.measure(logits, y_test, from_logits=True)
    return {
        "accuracy": values["accuracy"],
        "ECE (15 bins)": values["ece"],
        "NLL": values["nll"],
        "mean confidence": values["mean_confidence"],
        "noise confidence": keras_noisewarm.noise_confidence(model).mean_confidence,
    }


def main():
    args = parse_args()
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    (x_train, y_train), (x_test, y_test) = load_data(args)
    batch_size = 256
    steps = math.ceil(len(x_train) / batch_size) * args.epochs
    warmup_length = {"steps": args.warmup_steps} if args.warmup_steps else (
        # A tenth of the training's examples, the paper's ratio, when scaled down.
        {"budget": 0.1, "training_examples": len(x_train) * args.epochs} if args.quick else {})
    print(f"{len(x_train)} training and {len(x_test)} held-out images; ResNet-18 of width "
          f"{args.width}, {args.epochs} epochs ({steps} steps of {batch_size})")

    results = {}
    for name in ("no warm-up", "noise warm-up"):
        keras.utils.set_random_seed(args.seed)
        model = cifar_resnet(18, num_classes=10, width=args.width)
        model.compile(optimizer=training_optimizer(steps),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        if name == "noise warm-up":
            history = keras_noisewarm.warmup(model, num_classes=10, recipe="resnet", seed=args.seed,
                                             **warmup_length)
            print(f"Warm-up: {history.params['steps']} steps; on noise now: "
                  f"{keras_noisewarm.noise_confidence(model)}")
        print(f"\nTraining the model with {name}:")
        model.fit(augmented(x_train, y_train, batch_size, args.seed), epochs=args.epochs,
                  steps_per_epoch=steps // args.epochs, verbose=2)
        results[name] = evaluate(model, x_test, y_test)

    print(f"\n{'':18}" + "".join(f"{name:>16}" for name in results))
    for metric in results["no warm-up"]:
        print(f"{metric:18}" + "".join(f"{row[metric]:16.3f}" for row in results.values()))
    print("\nECE: the gap between confidence and accuracy (lower is better).")


if __name__ == "__main__":
    main()
