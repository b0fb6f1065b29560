"""Warm-up and calibration metrics on two devices against one, in a fresh process.

Run by tests/test_distribution.py as `python tests/distributed_checks.py
tensorflow|jax|torch RESULT.json`. Devices must be configured before the
backend starts, so each backend gets a process of its own with two logical
CPU devices: TensorFlow through `tf.config.set_logical_device_configuration`,
JAX through `XLA_FLAGS=--xla_force_host_platform_device_count=2`. The same
computations then run on one device and data-parallel over both
(`tf.distribute.MirroredStrategy`, `keras.distribution.DataParallel`), and
the numbers of both go to RESULT.json for the test to compare.

Keras has no data-parallel `fit` under PyTorch; there the process starts
two `torch.distributed` ranks (gloo, CPU), as `torchrun` would: each warms
up its own copy of the model, and each updates the metrics on its half of
the predictions, whose states are then summed with `all_reduce`.
"""

import contextlib
import json
import os
import sys

BACKEND = sys.argv[1]
os.environ["KERAS_BACKEND"] = BACKEND
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
elif BACKEND == "tensorflow":
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import metrics  # noqa: E402

NUM_CLASSES = 5
NUM_FEATURES = 16
# The authors' BatchNorm handling: 30 steps move the statistics only part of the
# way, which this check does not need (it compares one device with two).
WARMUP = dict(steps=30, batch_size=128, learning_rate=1e-3, seed=0, verbose=0, batchnorm="update")


def data_parallel():
    """The two-device set-up: a context to build and train in, and its size."""
    if BACKEND == "jax":
        import jax

        distribution = keras.distribution.DataParallel(devices=jax.devices())
        return distribution.scope, len(jax.devices())
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    return strategy.scope, strategy.num_replicas_in_sync


class RecordsTheDistribution(keras.callbacks.Callback):
    """Notes how the warm-up's own trainer was distributed."""

    def on_train_begin(self, logs=None):
        if BACKEND == "jax":
            distribution = keras.distribution.distribution()
            sharding = self.model.trainable_variables[0].value.sharding
            self.devices = 0 if distribution is None else len(sharding.device_set)
        else:
            self.devices = self.model.distribute_strategy.num_replicas_in_sync


def build(batch_norm):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((NUM_FEATURES,)), keras.layers.Dense(32, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(NUM_CLASSES))
    return keras.Sequential(layers)


def warmed_up(scope, batch_norm, noise_source, measure_before=False):
    with scope():
        model = build(batch_norm)
        before = keras_noisewarm.noise_confidence(model, num_examples=1024) if measure_before else None
        recorder = RecordsTheDistribution()
        keras_noisewarm.warmup(
            model, num_classes=NUM_CLASSES, noise_source=noise_source,
            callbacks=[recorder], **WARMUP,
        )
        after = keras_noisewarm.noise_confidence(model, num_examples=1024)
    return {
        "before": before and before.mean_confidence,
        "after": after.mean_confidence,
        "devices": recorder.devices,
        "weights": [np.asarray(w, "float64") for w in model.get_weights()],
    }


def calibration_metrics(scope, logits, labels):
    """ECE, NLL and Brier from `evaluate` and from eager updates, in `scope`."""

    def chosen():
        return [
            metrics.ExpectedCalibrationError(from_logits=True, name="ece"),
            metrics.NegativeLogLikelihood(from_logits=True, name="nll"),
            metrics.BrierScore(from_logits=True, name="brier"),
        ]

    with scope():
        # The model returns its inputs: both set-ups score the same logits.
        model = keras.Sequential([keras.Input((NUM_CLASSES,)), keras.layers.Identity()])
        compiled = chosen()
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=compiled
        )
        evaluated = model.evaluate(logits, labels, batch_size=100, verbose=0, return_dict=True)
        eager = {}
        for metric in chosen():
            for start in range(0, len(labels), 100):
                metric.update_state(labels[start : start + 100], logits[start : start + 100])
            eager[metric.name] = float(metric.result())
    return {
        "evaluate": {name: float(evaluated[name]) for name in ("ece", "nll", "brier")},
        "eager": eager,
        "bin_counts": keras.ops.convert_to_numpy(compiled[0].bin_counts).tolist(),
    }


def main(result_path):
    if BACKEND == "torch":
        return torch_main(result_path)
    distributed, num_devices = data_parallel()
    single = contextlib.nullcontext
    result = {"num_devices": num_devices, "warmup": {}}
    # BatchNorm normalises each replica's own batch under tf.distribute, so
    # only the model without it can match one device's weights there.
    for noise_source, batch_norm in (("stream", True), ("device", False)):
        one = warmed_up(single, batch_norm, noise_source, measure_before=True)
        two = warmed_up(distributed, batch_norm, noise_source)
        result["warmup"][noise_source] = {
            "batch_norm": batch_norm,
            "before": one["before"],
            "single": one["after"],
            "distributed": two["after"],
            "devices": [one["devices"], two["devices"]],
            "largest_weight_difference": max(
                float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], two["weights"])
            ),
        }
    rng = np.random.default_rng(0)
    logits = (3.0 * rng.normal(size=(1000, NUM_CLASSES))).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, size=1000)
    result["metrics"] = {
        "single": calibration_metrics(single, logits, labels),
        "distributed": calibration_metrics(distributed, logits, labels),
    }
    with open(result_path, "w") as file:
        json.dump(result, file, indent=1)


def torch_rank(rank, result_path, store_path):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=2)
    model = build(batch_norm=True)
    keras_noisewarm.warmup(model, num_classes=NUM_CLASSES, noise_source="stream", **WARMUP)
    flat = torch.cat([torch.as_tensor(w).flatten() for w in model.get_weights()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)

    rng = np.random.default_rng(0)
    logits = (3.0 * rng.normal(size=(1000, NUM_CLASSES))).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, size=1000)
    results = {}
    for metric in (
        metrics.ExpectedCalibrationError(from_logits=True, name="ece"),
        metrics.NegativeLogLikelihood(from_logits=True, name="nll"),
        metrics.BrierScore(from_logits=True, name="brier"),
    ):
        whole = type(metric).from_config(metric.get_config())
        for start in range(0, 1000, 100):
            whole.update_state(labels[start : start + 100], logits[start : start + 100])
        # This rank's half of every batch, as a distributed sampler deals them.
        for start in range(rank * 50, 1000, 100):
            metric.update_state(labels[start : start + 50], logits[start : start + 50])
        for variable in metric.variables:
            total = variable.value.detach().clone()
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            variable.assign(total)
        results[metric.name] = [float(whole.result()), float(metric.result())]
    if rank == 0:
        with open(result_path, "w") as file:
            json.dump({
                "weights_equal_across_ranks": bool(torch.equal(gathered[0], gathered[1])),
                "metrics": results,
            }, file, indent=1)
    dist.destroy_process_group()


def torch_main(result_path):
    import tempfile

    import torch.multiprocessing

    with tempfile.TemporaryDirectory() as folder:
        torch.multiprocessing.spawn(
            torch_rank, args=(result_path, os.path.join(folder, "store")), nprocs=2
        )


if __name__ == "__main__":
    main(sys.argv[2])
