"""Warm-up and calibration metrics under data-parallel training.

TensorFlow and JAX: tests/distributed_checks.py runs in a process of its own
with two logical CPU devices (device configuration must precede the
backend's start) and reports the same computations on one device and on
both, which the tests here compare. PyTorch: Keras has no data-parallel
`fit` there; the checks are those a `torch.distributed` user relies on
(every rank warms up alike, metric states add up), and a two-rank gloo run
behind --run-slow.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import metrics

CHECKS = pathlib.Path(__file__).with_name("distributed_checks.py")
BACKEND = keras.backend.backend()
data_parallel_backend = pytest.mark.skipif(
    BACKEND == "torch", reason="Keras has no data-parallel fit under PyTorch"
)


def run_checks(backend, folder):
    result = folder / f"{backend}.json"
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    environment.pop("XLA_FLAGS", None)
    completed = subprocess.run(
        [sys.executable, str(CHECKS), backend, str(result)],
        capture_output=True, text=True, env=environment, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(result.read_text())


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory):
    return run_checks(BACKEND, tmp_path_factory.mktemp("distributed"))


@data_parallel_backend
def test_warmup_trains_on_both_devices(two_devices):
    assert two_devices["num_devices"] == 2
    for run in two_devices["warmup"].values():
        one_device, both = run["devices"]
        assert one_device in (0, 1)  # JAX without a distribution reports 0
        assert both == 2


@data_parallel_backend
@pytest.mark.parametrize("noise_source", ["stream", "device"])
def test_warmup_gives_one_devices_noise_confidence(two_devices, noise_source):
    run = two_devices["warmup"][noise_source]
    fall = run["before"] - run["single"]
    assert fall > 0.02, run  # the warm-up did something to compare
    # Two devices change the result by less than a tenth of what the warm-up did.
    assert abs(run["distributed"] - run["single"]) < 0.1 * fall, run


@data_parallel_backend
def test_warmup_weights_match_one_device(two_devices):
    # Without BatchNorm the replicas' summed gradients are one device's
    # gradient of the same global batch: equal up to float32 rounding, for
    # noise drawn in the stream or in the step (each replica takes its slice
    # of one global draw).
    assert two_devices["warmup"]["device"]["batch_norm"] is False
    assert two_devices["warmup"]["device"]["largest_weight_difference"] < 1e-6
    if BACKEND == "jax":
        # One SPMD program over the global batch: BatchNorm too sees all of it.
        assert two_devices["warmup"]["stream"]["largest_weight_difference"] < 1e-6


@data_parallel_backend
def test_calibration_metrics_across_replicas_equal_one_device(two_devices):
    single, distributed = two_devices["metrics"]["single"], two_devices["metrics"]["distributed"]
    # Counts are sums of ones, exact in float32 below 2**24.
    assert distributed["bin_counts"] == single["bin_counts"]
    # Sums of confidences, log-likelihoods and squared errors are added in
    # another order (per replica, then across replicas): equal to float32
    # rounding, not bit for bit.
    for name in ("ece", "nll", "brier"):
        np.testing.assert_allclose(
            distributed["evaluate"][name], single["evaluate"][name], rtol=1e-6
        )
        assert distributed["eager"][name] == single["eager"][name]
        assert single["evaluate"][name] == pytest.approx(single["eager"][name], rel=1e-6)


def test_metric_states_of_two_halves_add_up_to_the_whole():
    # What all_reduce(SUM) does to the metric variables of each worker
    # (torch.distributed, or any multi-process set-up without a strategy).
    rng = np.random.default_rng(0)
    logits = (3.0 * rng.normal(size=(400, 5))).astype("float32")
    labels = rng.integers(0, 5, size=400)
    for make in (
        lambda: metrics.ExpectedCalibrationError(from_logits=True),
        lambda: metrics.NegativeLogLikelihood(from_logits=True),
        lambda: metrics.BrierScore(from_logits=True),
    ):
        whole, first, second = make(), make(), make()
        for part in (slice(0, 200), slice(200, 400)):
            whole.update_state(labels[part], logits[part])
        first.update_state(labels[:200], logits[:200])
        second.update_state(labels[200:], logits[200:])
        for a, b in zip(first.variables, second.variables):
            a.assign(keras.ops.add(a, b))
        assert float(first.result()) == pytest.approx(float(whole.result()), rel=1e-6)


def test_every_rank_warms_up_alike():
    # Under torch.distributed each rank runs its own warm-up: with one seed
    # the ranks hold the same weights, as DistributedDataParallel expects.
    copies = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
        keras_noisewarm.warmup(model, num_classes=4, steps=3, batch_size=16,
                               learning_rate=1e-3, seed=0, verbose=0)
        copies.append(model.get_weights())
    for a, b in zip(*copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(BACKEND != "torch", reason="a fact about Keras's PyTorch backend")
def test_keras_distribution_is_missing_under_torch():
    # Keras 3.15 implements keras.distribution for JAX (and partly for
    # TensorFlow), not for PyTorch: DataParallel cannot even list devices.
    with pytest.raises(AttributeError):
        keras.distribution.DataParallel()


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "torch", reason="torch.distributed ranks")
def test_two_torch_ranks_warm_up_alike_and_reduce_metrics(tmp_path):
    result = run_checks("torch", tmp_path)
    assert result["weights_equal_across_ranks"]
    for name, (whole, reduced) in result["metrics"].items():
        assert reduced == pytest.approx(whole, rel=1e-6), name
