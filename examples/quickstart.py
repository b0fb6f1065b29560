"""Warm a classifier up on noise, then train it on CIFAR-10: with and without.

The main job of the README. Two copies of the paper's six-layer MLP start from
the same initial weights; one is warmed up on Gaussian noise with random
labels, then both are trained the same way on 4,000 CIFAR-10 images. The
script prints each model's confidence on noise, and its accuracy, mean
confidence and calibration error (15-bin ECE) on held-out images.

    python examples/quickstart.py                 # about 3 minutes on 2 CPU cores
    python examples/quickstart.py --quick         # tiny sizes, seconds

Data: `keras.datasets.cifar10` (downloads once), or a local copy of the
official python batches in `--data-dir` or `$KERAS_NOISEWARM_DATA/cifar10-subset`.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import datasets  # noqa: E402


def build_mlp(num_inputs, num_classes, depth, width, seed):
    """The paper's MLP: blocks Dense (He-normal) -> ReLU -> BatchNorm, logits out."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((num_inputs,))]
    for _ in range(depth - 1):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(keras.layers.Dense(num_classes, kernel_initializer="he_normal"))
    return keras.Sequential(layers)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with the CIFAR-10 python batches")
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--depth", type=int, default=6, help="number of Dense layers")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--warmup-examples", type=int, default=None,
                        help="noise examples (default: the package default, 320,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.train_size, args.test_size, args.epochs = 500, 500, 2
        args.warmup_examples = args.warmup_examples or 128 * 50
    return args


def load_data(args):
    path = args.data_dir or (
        os.environ.get(datasets.DATA_DIR_VARIABLE) and
        os.path.join(os.environ[datasets.DATA_DIR_VARIABLE], "cifar10-subset")
    )
    print(f"CIFAR-10 from {path or 'keras.datasets (download)'}")
    (x_train, y_train), (x_test, y_test) = datasets.load_cifar10(path or None)
    x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]
    x_test, y_test = x_test[: args.test_size], y_test[: args.test_size]
    # Per-channel normalisation with training statistics, as in the paper,
    # so images and the N(0, 1) warm-up noise live on the same scale.
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0
    mean, std = x_train.mean(axis=(0, 1, 2)), x_train.std(axis=(0, 1, 2))
    flatten = lambda images: ((images - mean) / std).reshape(len(images), -1)  # noqa: E731
    return (flatten(x_train), y_train), (flatten(x_test), y_test)


def evaluate(model, x_test, y_test):
    logits = model.predict(x_test, batch_size=1000, verbose=0)
    ece = keras_noisewarm.metrics.ExpectedCalibrationError(num_bins=15, from_logits=True)
    ece.update_state(y_test, logits)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    return {
        "accuracy": float((probabilities.argmax(axis=1) == y_test).mean()),
        "mean confidence": float(probabilities.max(axis=1).mean()),
        "ECE (15 bins)": float(ece.result()),
        "noise confidence": keras_noisewarm.noise_confidence(model).mean_confidence,
    }


def main():
    args = parse_args()
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    (x_train, y_train), (x_test, y_test) = load_data(args)
    print(f"{len(x_train)} training and {len(x_test)} held-out images, "
          f"{args.depth}-layer MLP of width {args.width}, {args.epochs} epochs")

    results = {}
    for name in ("no warm-up", "noise warm-up"):
        model = build_mlp(x_train.shape[1], 10, args.depth, args.width, args.seed)
        if name == "noise warm-up":
            before = keras_noisewarm.noise_confidence(model)
            print(f"\nUntrained model on noise: {before}")
            keras_noisewarm.warmup(
                model, num_classes=10, num_examples=args.warmup_examples,
                seed=args.seed,
            )
            print(f"After warm-up on noise:   {keras_noisewarm.noise_confidence(model)}")
        model.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        print(f"\nTraining the model with {name}:")
        model.fit(x_train, y_train, batch_size=128, epochs=args.epochs,
                  verbose=2 if args.epochs <= 5 else 0, shuffle=True)
        results[name] = evaluate(model, x_test, y_test)

    print(f"\n{'':18}" + "".join(f"{name:>16}" for name in results))
    for metric in results["no warm-up"]:
        print(f"{metric:18}" + "".join(f"{row[metric]:16.3f}" for row in results.values()))
    print("\nCalibration: ECE is the gap between confidence and accuracy (lower is better).")


if __name__ == "__main__":
    main()
