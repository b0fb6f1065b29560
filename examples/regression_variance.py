"""Noise warm-up for a regression model that predicts its own variance.

scikit-learn's bundled diabetes data (442 patients, 10 features, a disease
progression score; `sklearn.datasets.load_diabetes`, no download). An MLP
outputs a mean and a variance (`y_pred[..., 0]` and `y_pred[..., 1]`, the
layout of `keras_noisewarm.metrics.regression`) and is trained with the
Gaussian negative log-likelihood defined here (`GaussianNLL`, a registered
Keras loss). With and without a noise warm-up from the same initial
weights, for paired seeds: the warm-up gets
`Regression.from_targets(y_train, target_shape=(1,))`, so it draws targets
of the training targets' mean and spread and trains with the model's
compiled loss, which pulls the mean to the prior mean and the variance to
the prior variance on noise. Measured on held-out patients: RMSE, Gaussian
NLL, ENCE, coverage of the central 90% interval and the quantile
calibration error.

Calibrated, for this model, means that its stated uncertainty comes true:
90% of the targets fall inside its 90% intervals, and patients predicted
with a standard deviation sigma miss by sigma, root mean square.

    python examples/regression_variance.py           # 10 seeds, about 3 minutes on 2 CPU cores
    python examples/regression_variance.py --fast    # seconds
    python examples/regression_variance.py --select  # choose the settings on held-out training patients

The settings (`SETTINGS`) are set by hand, not by a finished `--select`
sweep (one was cut short); `--select` chooses them on patients held out
from the training split, never on the test split.
"""

import argparse
import dataclasses
import math
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import compare  # noqa: E402
from keras_noisewarm import metrics  # noqa: E402
from keras_noisewarm import paired_runs  # noqa: E402
from keras_noisewarm.tasks import Regression  # noqa: E402

METRICS = (
    ("rmse", "RMSE", True),
    ("nll", "Gaussian NLL", True),
    ("ence", "ENCE", True),
    ("coverage_error", "|90% coverage - 0.9|", True),
    ("qce", "quantile cal. error", True),
)
# Variances below this (in squared target units) are clipped: a variance
# head must never reach 0.
MIN_VARIANCE = 1e-2


@keras.saving.register_keras_serializable(package="keras_noisewarm_examples")
class GaussianNLL(keras.losses.Loss):
    """Gaussian negative log-likelihood of `y_pred = [mean, variance]`.

    `0.5 * (log(2 pi variance) + (y - mean)^2 / variance)` per example.
    """

    def __init__(self, name="gaussian_nll", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
        mean, variance = y_pred[:, 0], ops.maximum(y_pred[:, 1], MIN_VARIANCE)
        return 0.5 * (math.log(2 * math.pi) + ops.log(variance) + (y_true - mean) ** 2 / variance)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Network, training and warm-up of one comparison."""

    num_features: int = 10
    width: int = 64
    depth: int = 2
    epochs: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    warmup_learning_rate: float = 1e-3
    seeds: tuple = tuple(range(10))


SETTINGS = Settings()
FAST = dataclasses.replace(SETTINGS, width=16, epochs=3, warmup_steps=5, seeds=(0, 1))
SELECTION_GRID = {"warmup_steps": (50, 200, 800), "warmup_learning_rate": (1e-4, 1e-3, 1e-2)}
SELECTION_EPOCHS = (3, 5, 10, 20)
SELECTION_SEEDS = (100, 101, 102, 103, 104)
TEST_FRACTION = 0.3
VALIDATION_FRACTION = 0.2  # of the training split, for --select


def load_data(settings=None, seed=0):
    """Train / held-out train / test patients, features standardised on the training part.

    Args:
        settings: Unused (the data has one size); there for the examples'
            common signature.
        seed: Seed of the random split.

    Returns:
        A dict of `(features, targets)` splits: `"fit"` and `"validation"`
        (the training split cut in two, for `--select`), `"train"` (all of
        it) and `"test"`.
    """
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    num_test = int(round(TEST_FRACTION * len(x)))
    test, train = order[:num_test], order[num_test:]
    num_validation = int(round(VALIDATION_FRACTION * len(train)))
    validation, fit = train[:num_validation], train[num_validation:]

    def split(indices, reference):
        mean, std = x[reference].mean(axis=0), x[reference].std(axis=0)
        return ((x[indices] - mean) / std).astype("float32"), y[indices].astype("float32")

    return {
        "fit": split(fit, fit),
        "validation": split(validation, fit),
        "train": split(train, train),
        "test": split(test, train),
    }


def build_model(settings, targets):
    """An MLP with a mean head and a softplus variance head, `[mean, variance]` out.

    The heads work in units of the training targets' spread (`targets`):
    their outputs are rescaled to the targets' mean and variance, so that
    the model predicts (and is scored) in the targets' own units.
    """
    mean_of_targets, std_of_targets = float(np.mean(targets)), float(np.std(targets))
    inputs = keras.Input((settings.num_features,))
    x = inputs
    for _ in range(settings.depth):
        x = keras.layers.Dense(settings.width, activation="relu", kernel_initializer="he_normal")(x)
    mean = keras.layers.Dense(1, name="mean")(x)
    mean = keras.layers.Rescaling(std_of_targets, offset=mean_of_targets)(mean)
    variance = keras.layers.Dense(1, activation="softplus", name="variance")(x)
    variance = keras.layers.Rescaling(std_of_targets**2)(variance)
    outputs = keras.layers.Concatenate(name="mean_and_variance")([mean, variance])
    model = keras.Model(inputs, outputs, name="variance_mlp")
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=GaussianNLL())
    return model


def measure(predictions, targets):
    """RMSE, Gaussian NLL and calibration of `[mean, variance]` predictions `(N, 2)`."""
    y_pred = np.asarray(predictions, "float64").copy()
    y_pred[:, 1] = np.maximum(y_pred[:, 1], MIN_VARIANCE)
    y_true = np.asarray(targets, "float64")
    values = {"rmse": float(np.sqrt(np.mean((y_true - y_pred[:, 0]) ** 2)))}
    # Whole arrays, so ENCE is the exact one (the streaming metric's
    # histogram keeps predictions of nearly equal std in one bin).
    values["ence"] = metrics.expected_normalized_calibration_error(y_true, y_pred, num_bins=5)
    for name, metric in (
        ("nll", metrics.GaussianNegativeLogLikelihood()),
        ("coverage", metrics.IntervalCoverage(level=0.9)),
        ("qce", metrics.QuantileCalibrationError()),
    ):
        metric.update_state(y_true, y_pred)
        values[name] = float(metric.result())
    values["coverage_error"] = abs(values["coverage"] - 0.9)
    return values


def run(settings, data, seed, arm, fit_on="train", evaluate_on="test", epochs=None):
    """Trains one model (warmed up or not) from the seed's weights; measures it."""
    x_fit, y_fit = data[fit_on]
    keras.utils.set_random_seed(seed)
    model = build_model(settings, y_fit)
    numbers = {"seed": seed, "arm": arm}
    if arm == "warmup":
        keras_noisewarm.warmup(
            model, task=Regression.from_targets(y_fit, target_shape=(1,)),
            steps=settings.warmup_steps, learning_rate=settings.warmup_learning_rate,
            batch_size=32, seed=seed + compare.WARMUP_SEED_OFFSET, verbose=0,
        )
    keras.utils.set_random_seed(seed + compare.DATA_ORDER_SEED_OFFSET)
    model.fit(x_fit, y_fit, batch_size=settings.batch_size, epochs=epochs or settings.epochs,
              verbose=0)
    x, y = data[evaluate_on]
    predictions = model.predict(x, batch_size=512, verbose=0)
    numbers.update(measure(predictions, y))
    return numbers, predictions


def compare_arms(settings, data, output=None, verbose=True):
    """Both arms for every seed; the runs and the rows of `comparison_rows`."""

    def run_pair_member(seed, arm):
        numbers, predictions = run(settings, data, seed, arm)
        return numbers, {"predictions": predictions, "targets": data["test"][1]}

    runs = paired_runs.run_arms(run_pair_member, settings.seeds, output, verbose)
    return runs, compare.comparison_rows(runs, metrics=METRICS)


def select(settings, verbose=True):
    """Chooses the epochs, then the warm-up, by NLL on held-out training patients."""
    data = load_data(settings)

    def validation_nll(changes, arm):
        chosen = dataclasses.replace(settings, **changes)
        return [run(chosen, data, seed, arm, fit_on="fit", evaluate_on="validation")[0]["nll"]
                for seed in SELECTION_SEEDS]

    return paired_runs.choose_on_validation(validation_nll, SELECTION_EPOCHS, SELECTION_GRID, verbose)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes: seconds")
    parser.add_argument("--select", action="store_true",
                        help="choose epochs and warm-up on held-out training patients")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 10, 2 with --fast)")
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
    print(f"{len(data['train'][0])} training and {len(data['test'][0])} test patients; "
          f"target standard deviation {np.std(data['train'][1]):.1f}")
    runs, rows = compare_arms(settings, data, args.output)
    print()
    print(compare.format_table(rows))
    coverage = {arm: np.median([run["coverage"] for run in runs[arm]]) for arm in runs}
    print(f"\n90% interval coverage (median): no warm-up {coverage['baseline']:.3f}, "
          f"warm-up {coverage['warmup']:.3f}")
    print("\n".join(paired_runs.verdict_lines(rows)))

if __name__ == "__main__":
    main()
