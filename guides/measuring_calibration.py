"""
Title: Measuring calibration
Author: keras-noisewarm developers
Date created: 2026-11-22
Last modified: 2026-11-22
Description: Streaming ECE, MCE, adaptive ECE, NLL and Brier score as Keras metrics, and reliability diagrams.
"""

"""
## Introduction

A classifier is *calibrated* when its confidence matches its accuracy: of all
the predictions it makes with 80% confidence, about 80% should be right.
Modern networks are usually *overconfident*, and the random-noise warm-up of
this package exists to fix that. To know whether it worked, you need to
measure calibration, and this guide shows how:

- `keras_noisewarm.metrics` holds calibration errors (ECE, MCE, adaptive
  ECE, classwise ECE, debiased L2) and proper scores (negative
  log-likelihood, Brier score). They are ordinary `keras.metrics.Metric`s:
  use them in `compile()`, in `evaluate()`, in callbacks, or on their own.
- `keras_noisewarm.plot` draws reliability diagrams and confidence
  histograms from the same numbers.

Every metric keeps a fixed-size histogram (a few sums per confidence bin),
so it streams over any number of batches in constant memory and gives the
same value however the data is batched.
"""

import os

import keras
import numpy as np

from keras_noisewarm import metrics
from keras_noisewarm import plot

# The guide's test runs it in a fast mode (KERAS_NOISEWARM_FAST=1).
FAST = os.environ.get("KERAS_NOISEWARM_FAST") == "1"
NUM_CLASSES = 10
NUM_TRAIN = 2_000 if FAST else 20_000
EPOCHS = 3 if FAST else 20

"""
## A small, overconfident classifier

We make a synthetic 10-class problem (no download needed): each class is a
Gaussian blob in 20 dimensions, close enough to its neighbours that the task
is not trivial. A wide MLP trained on few examples quickly becomes
overconfident.
"""

rng = np.random.default_rng(0)
centres = rng.normal(scale=0.5, size=(NUM_CLASSES, 20))


def make_data(num_examples):
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    features = centres[labels] + rng.normal(size=(num_examples, 20))
    return features.astype("float32"), labels


x_train, y_train = make_data(NUM_TRAIN)
x_val, y_val = make_data(NUM_TRAIN // 4)
x_test, y_test = make_data(NUM_TRAIN // 2)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((20,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(NUM_CLASSES, activation="softmax"),
    ]
)

"""
## Calibration metrics in `compile()`

The metrics take the same `y_true` / `y_pred` as Keras's accuracy metrics:
integer labels by default (`sparse_y_true=False` for one-hot), probabilities
by default (`from_logits=True` for logits). `ExpectedCalibrationError` uses
15 equal-width bins unless told otherwise; its name is `"ece"`, so the
validation value is logged as `val_ece`.
"""

model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="sparse_categorical_crossentropy",
    metrics=[
        "accuracy",
        metrics.ExpectedCalibrationError(),
        metrics.MaximumCalibrationError(),
        metrics.AdaptiveCalibrationError(),
        metrics.NegativeLogLikelihood(),
        metrics.BrierScore(),
    ],
)

"""
Calibration metrics know that lower is better, so `EarlyStopping` and
`ModelCheckpoint` can monitor them with the default `mode="auto"`. Here we
keep the weights of the best-calibrated epoch.
"""

history = model.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    epochs=EPOCHS,
    batch_size=64,
    verbose=0,
    callbacks=[
        keras.callbacks.EarlyStopping(
            monitor="val_ece", patience=5, restore_best_weights=True
        )
    ],
)
print("val_ece per epoch:", np.round(history.history["val_ece"], 4))

results = model.evaluate(x_test, y_test, batch_size=256, verbose=0, return_dict=True)
for name in ("accuracy", "ece", "mce", "adaptive_ece", "nll", "brier_score"):
    print(f"{name:>13s}: {results[name]:.4f}")

"""
## Standalone use and streaming

On its own a metric is fed batch by batch with `update_state` and read with
`result`. Its state is a few sums per bin, so the batch split does not
matter: one pass over the whole test set and many small batches give the
same number (up to float32 rounding).
"""

probabilities = model.predict(x_test, batch_size=256, verbose=0)

whole = metrics.ExpectedCalibrationError()
whole.update_state(y_test, probabilities)

streamed = metrics.ExpectedCalibrationError()
for start in range(0, len(y_test), 100):
    streamed.update_state(y_test[start : start + 100], probabilities[start : start + 100])

print(f"ECE in one batch: {float(whole.result()):.6f}")
print(f"ECE in batches of 100: {float(streamed.result()):.6f}")

"""
## Which ECE?

Papers differ in small choices that change the number, so say which one you
report:

- **Bins.** 15 equal-width bins by default; the warm-up paper's figures use
  10. Bins are `[a, b)` with the last bin closed, so a confidence of exactly
  1.0 (a saturated softmax) is counted, in the last bin.
- **Bin confidence.** The standard ECE (Guo et al., 2017) compares each
  bin's accuracy with the *mean confidence* of its predictions. The warm-up
  paper's code compares it with the *bin centre*: use
  `bin_confidence="center"` (and `num_bins=10`) to reproduce their numbers.
- **Norm.** `norm="l2"` gives the root-mean-square calibration error,
  `norm="max"` the maximum calibration error (also
  `MaximumCalibrationError`).
- **Adaptive bins.** `AdaptiveCalibrationError` uses bins holding equally
  many predictions, which resolves the crowded high-confidence region.
- **Debiased L2.** With few predictions per bin even a perfectly calibrated
  model shows gaps from sampling noise; `DebiasedL2CalibrationError`
  subtracts that noise (Kumar et al., 2019).
- **Binary models.** A sigmoid model is measured on its top label by
  default, like any classifier; `binary_confidence="positive_class"` bins
  `P(y = 1)` instead.
"""

variants = {
    "ECE, 15 bins, mean confidence": metrics.ExpectedCalibrationError(),
    "ECE, 10 bins, bin centre (paper's code)": metrics.ExpectedCalibrationError(
        num_bins=10, bin_confidence="center"
    ),
    "RMS calibration error": metrics.ExpectedCalibrationError(norm="l2"),
    "debiased L2 calibration error": metrics.DebiasedL2CalibrationError(),
    "adaptive ECE": metrics.AdaptiveCalibrationError(),
    "classwise ECE": metrics.ClasswiseCalibrationError(NUM_CLASSES),
}
for label, metric in variants.items():
    metric.update_state(y_test, probabilities)
    print(f"{label:>40s}: {float(metric.result()):.4f}")

"""
## Reliability diagrams

`plot.reliability_diagram` draws each bin's accuracy (blue), the gap to the
bin's confidence (hatched red) and the number of predictions in the bin. It
reads the metric's own state, so the ECE in the legend is exactly the
count-weighted mean height of the gap bars. Pass a metric, or arrays (which
fill a fresh `ExpectedCalibrationError`; metric options go as keywords).
"""

figure = plot.reliability_diagram(metric=whole, title="Test set, 15 bins")
figure.savefig("reliability_diagram.png", dpi=100)

figure = plot.reliability_diagram(
    metric=variants["adaptive ECE"], title="Test set, equal-mass bins"
)
figure.savefig("reliability_diagram_adaptive.png", dpi=100)

figure = plot.confidence_histogram(y_test, probabilities)
figure.savefig("confidence_histogram.png", dpi=100)

"""
A model is overconfident where the red gap bars rise above the blue ones:
its confidence is higher than its accuracy. In the histogram, the mean
confidence then lies to the right of the accuracy.

## Inside compiled steps

In `fit` and `evaluate` the metrics run inside a compiled step (`jax.jit`
or a `tf.function`) where Python cannot look at values. Shapes are always
checked. Values (labels in range, finite predictions, probabilities summing
to one) are checked in eager execution, raising a `ValueError` that says
what is wrong, for example to pass `from_logits=True`. Inside a compiled
step invalid predictions are left out of the bins and counted, and the
metric's result becomes NaN, so a broken input never yields a plausible
number.

On their own, outside `fit` and `evaluate`, the calibration metrics run
eagerly, and under TensorFlow and JAX they compile their arithmetic the
second time they meet a shape of batch: a loop of `update_state` over
equal batches of a large evaluation then runs compiled (about 0.15 s of
compiling once per shape), while a single `update_state` on a whole test
set does not wait for a compiler. The checks are the same either way.
"""

try:
    metrics.ExpectedCalibrationError().update_state(y_test[:2], [[2.0] * 10] * 2)
except ValueError as error:
    print("ValueError:", error)
