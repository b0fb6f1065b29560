"""Per-epoch cost of the callbacks in `keras_noisewarm.callbacks`.

Trains the same MLP (Dense -> ReLU -> BatchNorm blocks, as in the paper) with
`model.fit` in several set-ups, side by side in one process, on the current
KERAS_BACKEND:

- plain: `fit` alone;
- keras validation: `fit(validation_data=...)`, Keras's own validation loss
  and accuracy on the held-out set, the usual reference for per-epoch
  evaluation cost;
- monitor: `fit` + `CalibrationMonitor` with default settings on the same
  held-out set (ECE, MCE, NLL, Brier, accuracy, confidence);
- monitor + OOD: the same with `ood_data` of the same size (AUROC);
- warm-up: `fit` + `NoiseWarmupCallback`. The warm-up runs once before the
  first epoch and is timed on its own; the epoch times show whether the
  callback costs anything afterwards.

An epoch is timed from its `on_epoch_begin` to the end of its
`on_epoch_end` (so the monitor's work is inside it), waiting for the
epoch's computation to finish; the first epoch of
every fit is left out (compilation). Set-ups run in interleaved rounds and
the median epoch time of each is compared with plain `fit`.

    python benchmarks/callback_overhead.py           # CIFAR-10-sized MLP
    python benchmarks/callback_overhead.py --quick   # tiny sizes, for CI
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_noisewarm.callbacks import CalibrationMonitor  # noqa: E402
from keras_noisewarm.callbacks import NoiseWarmupCallback  # noqa: E402

NUM_CLASSES = 10

if keras.backend.backend() == "torch":
    import torch

    # As in tests/conftest.py: torch's OpenMP workers spin-wait against the
    # tf.data threads of the warm-up's noise stream on a small machine.
    torch.set_num_threads(1)


class EpochTimer(keras.callbacks.Callback):
    """Put last: its epoch ends after every other callback's."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.fit_began = None
        self.first_epoch_began = None

    def on_train_begin(self, logs=None):
        self.fit_began = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()
        if self.first_epoch_began is None:
            self.first_epoch_began = self.started

    def on_epoch_end(self, epoch, logs=None):
        # Reading a weight waits for the epoch's computation: JAX dispatches
        # training steps asynchronously, and the clock must not stop early.
        np.asarray(keras.ops.convert_to_numpy(self.model.trainable_weights[-1].value))
        self.seconds.append(time.perf_counter() - self.started)


def build_mlp(input_dim, depth, width):
    layers = [keras.Input((input_dim,))]
    for _ in range(depth - 1):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(keras.layers.Dense(NUM_CLASSES, kernel_initializer="he_normal"))
    model = keras.Sequential(layers)
    model.compile(
        keras.optimizers.Adam(1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def make_data(count, input_dim, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, input_dim)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=count)
    return x, y


def run(sizes, with_ood=True):
    x, y = make_data(sizes["train"], sizes["input_dim"], seed=0)
    validation = make_data(sizes["validation"], sizes["input_dim"], seed=1)
    ood, _ = make_data(sizes["validation"], sizes["input_dim"], seed=2)
    setups = {
        "plain": lambda: ({}, []),
        "keras validation": lambda: ({"validation_data": validation}, []),
        "monitor": lambda: ({}, [CalibrationMonitor(validation)]),
        "monitor + OOD": lambda: ({}, [CalibrationMonitor(validation, ood_data=ood)]),
        "warm-up": lambda: (
            {}, [NoiseWarmupCallback(steps=sizes["warmup_steps"], seed=0, verbose=0)]
        ),
    }
    if not with_ood:
        del setups["monitor + OOD"]
    epoch_seconds = {name: [] for name in setups}
    warmup_seconds = []
    for _ in range(sizes["rounds"]):
        for name, make in setups.items():
            keras.utils.set_random_seed(0)
            model = build_mlp(sizes["input_dim"], sizes["depth"], sizes["width"])
            fit_kwargs, callbacks = make()
            timer = EpochTimer()
            model.fit(
                x, y, batch_size=128, epochs=sizes["epochs"], verbose=0,
                callbacks=callbacks + [timer], **fit_kwargs,
            )
            epoch_seconds[name] += timer.seconds[1:]
            if name == "warm-up":
                warmup_seconds.append(timer.first_epoch_began - timer.fit_began)
            keras.backend.clear_session()

    print(
        f"{sizes['train']:,} training and {sizes['validation']:,} held-out examples "
        f"x {sizes['input_dim']} inputs, {sizes['depth']}-layer MLP of width "
        f"{sizes['width']}, batch 128, backend {keras.backend.backend()}; "
        f"median of {len(epoch_seconds['plain'])} epochs per set-up"
    )
    medians = {name: statistics.median(times) for name, times in epoch_seconds.items()}
    for name, median in medians.items():
        spread = f"{min(epoch_seconds[name]) * 1e3:.0f}-{max(epoch_seconds[name]) * 1e3:.0f}"
        print(f"  {name:17s} {median * 1e3:8.1f} ms/epoch  (range {spread} ms)")
    print(
        f"  warm-up itself: {statistics.median(warmup_seconds):.2f} s for "
        f"{sizes['warmup_steps']} steps, once per fit, before the first epoch"
    )
    plain = medians["plain"]
    print(
        "ratio (epoch time / plain fit): "
        + "  ".join(f"{name} {medians[name] / plain:.2f}x" for name in setups if name != "plain")
    )
    print(
        "ratio (monitor / Keras's own validation on the same data): "
        f"{medians['monitor'] / medians['keras validation']:.2f}x"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.quick:
        # Compilation dominates here (a fresh model per set-up); the
        # numbers only show that everything runs.
        sizes = dict(train=512, validation=256, input_dim=32, depth=3, width=32,
                     epochs=3, rounds=1, warmup_steps=10)
        run(sizes, with_ood=False)
        return
    else:
        # The paper's six-layer MLP on a 4,000-image CIFAR-10 subset, with
        # 10,000 held-out images; 2,500 steps is the default warm-up.
        sizes = dict(train=4000, validation=10_000, input_dim=3072, depth=6,
                     width=256, epochs=6, rounds=1, warmup_steps=2500)
    run(sizes)


if __name__ == "__main__":
    main()
