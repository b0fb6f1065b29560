"""Per-epoch cost of watching calibration during `fit`, and of the callbacks.

Fits of the same model on the same in-memory data, timed epoch by epoch in
the same process, one after the other (the order alternates between
repeats). Each fit times one epoch, and the variants take turns for 10
rounds: this machine has slow spells of a few seconds, and timing several
epochs of one variant in a row let one spell move a variant's median by
up to 40%.

- plain: `compile(loss=...)` and `fit`;
- ECE metric: `ExpectedCalibrationError` compiled in as a metric;
- Keras accuracy: Keras's own `SparseCategoricalAccuracy` compiled in, for
  scale: what the cheapest built-in metric costs per step on this backend;
- monitor: `CalibrationMonitor(validation_data)` at its default settings;
- monitor + OOD: the same with `ood_data` as large as the held-out set
  (adds two inference passes: the OOD inputs and the held-out inputs' scores);
- warm-up callback: `NoiseWarmupCallback` (a short warm-up, timed on its own:
  it runs once before the first epoch; the epochs show whether it costs
  anything afterwards);
- Keras validation: `fit(validation_data=...)` on the same held-out data,
  for scale: what Keras's own per-epoch validation pass costs.

Targets: the metric adds < 3% to an epoch, the monitor < 10%. Epoch
ratios move by about 4% between runs, so the metric's cost per step is also
timed on its own (`metric_step_cost`) and compared with the plain step. The monitor's
cost is a forward pass over the held-out data each epoch, so it grows with
the size of the held-out set relative to the training set (here 1 : 5, as
CIFAR-10's test set to its training set).

The first epoch of every fit is left out (tracing, compilation, the
monitor's first evaluation, the warm-up); an epoch is timed from
`on_epoch_begin` to the end of `on_epoch_end` of every callback, the
monitor's included, and waits for the epoch's computation to finish.

    KERAS_BACKEND=jax python benchmarks/fit_overhead.py           # full
    KERAS_BACKEND=jax python benchmarks/fit_overhead.py --quick   # CI
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import print_machine  # noqa: E402

from keras_noisewarm import metrics  # noqa: E402
from keras_noisewarm.callbacks import CalibrationMonitor  # noqa: E402
from keras_noisewarm.callbacks import NoiseWarmupCallback  # noqa: E402

NUM_CLASSES = 10

if keras.backend.backend() == "torch":
    import torch

    # torch's OpenMP workers and TensorFlow's threads share this process's
    # cores (see benchmarks/warmup_throughput.py, which measures both
    # settings); one intra-op thread, as the tests use.
    torch.set_num_threads(1)


def mlp(input_shape, width=256, depth=3):
    """The paper's MLP blocks: Dense (He-normal) -> ReLU -> BatchNorm."""
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    for _ in range(depth):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(keras.layers.Dense(NUM_CLASSES, kernel_initializer="he_normal"))
    return keras.Sequential(layers)


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch; put it last, so that it waits for the others."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self.fit_began = None
        self.first_epoch_began = None

    def on_train_begin(self, logs=None):
        self.fit_began = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        if self.first_epoch_began is None:
            self.first_epoch_began = self.start

    def on_epoch_end(self, epoch, logs=None):
        # Reading a weight waits for the epoch's computation: JAX dispatches
        # training steps asynchronously, and the clock must not stop early.
        keras.ops.convert_to_numpy(self.model.trainable_weights[-1].value)
        self.seconds.append(time.perf_counter() - self.start)


class Variant:
    """One way of fitting: its own model (same initial weights as the
    others), compiled once, fitted again on every repeat."""

    def __init__(self, name, initial_weights, config, metric=None, monitor=False,
                 ood=False, warmup=False, keras_validation=False):
        self.name = name
        self.config = config
        self.model = mlp(config.input_shape)
        self.model.set_weights(initial_weights)
        self.model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[metric] if metric is not None else None,
        )
        self.monitor = monitor
        self.ood = ood
        self.warmup = warmup
        self.keras_validation = keras_validation
        self.epoch_seconds = []
        self.warmup_seconds = []

    def fit(self, data):
        (x, y), validation, ood_inputs = data
        callbacks = []
        if self.warmup:
            callbacks.append(NoiseWarmupCallback(
                num_classes=NUM_CLASSES, steps=self.config.warmup_steps, seed=0, verbose=0
            ))
        if self.monitor:
            callbacks.append(CalibrationMonitor(
                validation, ood_data=ood_inputs if self.ood else None, from_logits=True
            ))
        timer = EpochTimer()
        callbacks.append(timer)
        self.model.fit(
            x, y,
            batch_size=self.config.batch_size,
            epochs=1 + self.config.epochs,
            validation_data=validation if self.keras_validation else None,
            callbacks=callbacks,
            verbose=0,
        )
        self.epoch_seconds += timer.seconds[1:]
        self.warmup_seconds.append(timer.first_epoch_began - timer.fit_began)

    def median(self):
        return statistics.median(self.epoch_seconds)


class Config:
    def __init__(self, input_shape, train_size, validation_size, batch_size,
                 epochs, repeats, warmup_steps):
        self.warmup_steps = warmup_steps
        self.input_shape = input_shape
        self.train_size = train_size
        self.validation_size = validation_size
        self.batch_size = batch_size
        self.epochs = epochs
        self.repeats = repeats


def make_data(config):
    """A learnable task: the class is the argmax of a fixed random projection."""
    rng = np.random.default_rng(0)
    size = config.train_size + config.validation_size
    x = rng.standard_normal((size,) + config.input_shape, dtype=np.float32)
    projection = rng.standard_normal((int(np.prod(config.input_shape)), NUM_CLASSES))
    y = np.argmax(x.reshape(size, -1) @ projection, axis=-1).astype("int32")
    split = config.train_size
    ood_inputs = rng.uniform(-3, 3, size=(config.validation_size,) + config.input_shape)
    return (x[:split], y[:split]), (x[split:], y[split:]), ood_inputs.astype("float32")


def run(config):
    data = make_data(config)
    initial_weights = mlp(config.input_shape).get_weights()
    variants = [
        Variant("plain", initial_weights, config),
        Variant("ECE metric", initial_weights, config,
                metric=metrics.ExpectedCalibrationError(from_logits=True)),
        Variant("Keras accuracy", initial_weights, config,
                metric=keras.metrics.SparseCategoricalAccuracy()),
        Variant("monitor", initial_weights, config, monitor=True),
        Variant("monitor + OOD", initial_weights, config, monitor=True, ood=True),
        Variant("warm-up callback", initial_weights, config, warmup=True),
        Variant("Keras validation", initial_weights, config, keras_validation=True),
    ]
    for repeat in range(config.repeats):
        for variant in variants if repeat % 2 == 0 else reversed(variants):
            variant.fit(data)

    steps = -(-config.train_size // config.batch_size)
    print(
        f"\nMLP on {config.input_shape}: {config.train_size:,} training examples "
        f"({steps} steps of {config.batch_size}), {config.validation_size:,} "
        f"held-out; median of {config.repeats * config.epochs} epochs each"
    )
    plain = variants[0].median()
    for variant in variants:
        print(
            f"  {variant.name:18s} {variant.median() * 1e3:9.1f} ms/epoch  "
            f"{(variant.median() / plain - 1) * 100:+6.1f}%"
        )
    targets = {"ECE metric": 1.03, "monitor": 1.10}
    for variant in variants[1:]:
        ratio = variant.median() / plain
        target = targets.get(variant.name)
        verdict = (
            "" if target is None
            else f"  [{'meets' if ratio < target else 'MISSES'} the target of < {target:.2f}x]"
        )
        print(f"ratio (epoch time, {variant.name} / plain): {ratio:.3f}x{verdict}")
    by_name = {variant.name: variant for variant in variants}
    print(f"ratio (epoch time, monitor / Keras validation): "
          f"{by_name['monitor'].median() / by_name['Keras validation'].median():.3f}x")
    print(f"ratio (epoch time, ECE metric / Keras accuracy): "
          f"{by_name['ECE metric'].median() / by_name['Keras accuracy'].median():.3f}x")
    warmup_seconds = by_name["warm-up callback"].warmup_seconds
    print(f"warm-up callback itself: {statistics.median(warmup_seconds):.2f} s for "
          f"{config.warmup_steps} steps, once per fit, before the first epoch")
    return plain * 1e3 / steps


def compiled_like_fit(function):
    """`function` run the way this backend's trainer runs a train step."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if backend == "jax":
        import jax

        return jax.jit(function)
    return function  # torch: the trainer runs its step eagerly


def metric_step_cost(batch_size, calls=300, repeats=5):
    """Milliseconds that the ECE's `update_state` + `result` add to a step.

    Epoch ratios cannot resolve a few percent on this machine (a variant's
    median moves by about 4% between runs), so the metric is also timed on
    its own: a batch of logits through a compiled (TensorFlow, JAX) or eager
    (torch) function with and without the metric, best of `repeats`.
    """
    rng = np.random.default_rng(0)
    logits = keras.ops.convert_to_tensor(
        rng.normal(size=(batch_size, NUM_CLASSES)).astype("float32"))
    labels = keras.ops.convert_to_tensor(
        rng.integers(0, NUM_CLASSES, batch_size).astype("int32"))
    metric = metrics.ExpectedCalibrationError(from_logits=True)

    def without_metric(variables):
        return variables, keras.ops.sum(keras.ops.softmax(logits))

    if keras.backend.backend() == "torch":
        def with_metric(variables):
            # As the torch trainer does: stateful, eager.
            metric.update_state(labels, logits)
            return variables, metric.result()
    else:
        def with_metric(variables):
            variables = metric.stateless_update_state(variables, labels, logits)
            return variables, metric.stateless_result(variables)

    best = {}
    for name, function in (("without", without_metric), ("with", with_metric)):
        step = compiled_like_fit(function)
        variables = [variable.value for variable in metric.variables]
        variables, value = step(variables)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                variables, value = step(variables)
            keras.ops.convert_to_numpy(value)
            times.append((time.perf_counter() - start) / calls)
        best[name] = min(times)
    return (best["with"] - best["without"]) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    print_machine()
    if args.quick:
        config = Config((8, 8, 3), 512, 128, batch_size=64, epochs=1, repeats=1,
                        warmup_steps=5)
    else:
        config = Config((32, 32, 3), 10_000, 2_000, batch_size=128, epochs=1,
                        repeats=10, warmup_steps=200)
    plain_step_ms = run(config)
    cost = metric_step_cost(config.batch_size, calls=20 if args.quick else 300)
    print(f"ECE update + result on its own: {cost:.3f} ms per step of "
          f"{config.batch_size}, {plain_step_ms:.2f} ms per plain step")
    print(f"ratio (step time, ECE metric on its own / plain step): "
          f"{1 + cost / plain_step_ms:.3f}x")


if __name__ == "__main__":
    main()
