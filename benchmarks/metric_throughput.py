"""Throughput and memory of the streaming ECE against its peers.

Measures predictions per second of `update_state` over all batches plus one
`result()`, for our `ExpectedCalibrationError` (on the current
KERAS_BACKEND), a vectorised NumPy ECE that keeps every confidence (the
usual full-batch approach), and torchmetrics' `MulticlassCalibrationError`
when it is installed (it is not a dependency). All peers compute the
15-bin L1 ECE of the same softmax predictions, fed batch by batch, each in
its own array type (converted before timing, as a model's outputs would
be); one untimed batch first warms up each peer. Under TensorFlow and JAX
our metric compiles its update the second time it meets a batch shape, so
its first timed pass includes compiling; that pass is printed too. Each peer is timed
`--repeats` times, the order of the peers alternating between repeats, and
the median rate counts: one pass over 1M x 10 takes only 50-200 ms, and
single passes moved by 1.5x between runs. Memory is the state a peer keeps
between batches: ours is fixed, the others grow with N.

    python benchmarks/metric_throughput.py           # 1M x 10 and 1M x 1000
    python benchmarks/metric_throughput.py --quick   # tiny sizes, for CI
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import print_machine  # noqa: E402

from keras_noisewarm.metrics import ExpectedCalibrationError  # noqa: E402

NUM_BINS = 15
# Distinct batches generated; longer runs cycle through them, so that the
# data never needs N x K floats in memory at once.
POOL_SIZE = 10


def make_pool(num_classes, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(POOL_SIZE):
        logits = 2.0 * rng.normal(size=(batch_size, num_classes)).astype("float32")
        probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        # Labels from tempered predictions: an overconfident model.
        tempered = np.cumsum(np.sqrt(probabilities), axis=-1)
        draws = rng.uniform(size=(batch_size, 1)) * tempered[:, -1:]
        labels = np.minimum((tempered < draws).sum(axis=-1), num_classes - 1)
        pool.append((probabilities, labels.astype("int32")))
    return pool


class OurMetric:
    name = "keras_noisewarm"

    def __init__(self, num_classes):
        self.metric = ExpectedCalibrationError(num_bins=NUM_BINS)

    def convert(self, probabilities, labels):
        return keras.ops.convert_to_tensor(probabilities), keras.ops.convert_to_tensor(labels)

    def update(self, probabilities, labels):
        self.metric.update_state(labels, probabilities)

    def result(self):
        return float(self.metric.result())

    def state_bytes(self):
        return sum(
            int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
            for variable in self.metric.variables
        )


class NumpyFullBatch:
    """Keeps every confidence and correctness, bins them at the end."""

    name = "numpy"

    def __init__(self, num_classes):
        self.confidences, self.correct = [], []

    def convert(self, probabilities, labels):
        return probabilities, labels

    def update(self, probabilities, labels):
        self.confidences.append(probabilities.max(axis=-1))
        self.correct.append(probabilities.argmax(axis=-1) == labels)

    def result(self):
        confidences = np.concatenate(self.confidences)
        correct = np.concatenate(self.correct)
        edges = np.linspace(0, 1, NUM_BINS + 1, dtype=confidences.dtype)
        bins = np.searchsorted(edges[1:-1], confidences, side="right")
        counts = np.bincount(bins, minlength=NUM_BINS)
        confidence_sums = np.bincount(bins, weights=confidences, minlength=NUM_BINS)
        correct_sums = np.bincount(bins, weights=correct, minlength=NUM_BINS)
        return float(np.abs(correct_sums - confidence_sums).sum() / counts.sum())

    def state_bytes(self):
        return sum(array.nbytes for array in self.confidences + self.correct)


class TorchMetrics:
    name = "torchmetrics"

    def __init__(self, num_classes):
        import torchmetrics

        self.metric = torchmetrics.classification.MulticlassCalibrationError(
            num_classes=num_classes, n_bins=NUM_BINS, norm="l1"
        )

    def convert(self, probabilities, labels):
        import torch

        return torch.from_numpy(probabilities), torch.from_numpy(labels).long()

    def update(self, probabilities, labels):
        self.metric.update(probabilities, labels)

    def result(self):
        return float(self.metric.compute())

    def state_bytes(self):
        total = 0
        for name in self.metric._defaults:
            state = getattr(self.metric, name)
            for tensor in state if isinstance(state, list) else [state]:
                total += tensor.numel() * tensor.element_size()
        return total


def torchmetrics_available():
    try:
        import torchmetrics  # noqa: F401
    except ImportError:
        return False
    return True


def measure(peer_class, pool, num_batches, num_classes):
    peer = peer_class(num_classes)
    batches = [peer.convert(*batch) for batch in pool]
    warm_up = peer_class(num_classes)
    warm_up.update(*batches[0])
    warm_up.result()
    start = time.perf_counter()
    for step in range(num_batches):
        peer.update(*batches[step % len(batches)])
    value = peer.result()
    seconds = time.perf_counter() - start
    return value, seconds, peer.state_bytes()


def human_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024


def run(num_examples, num_classes, batch_size, repeats):
    num_batches = num_examples // batch_size
    pool = make_pool(num_classes, batch_size)[:num_batches]
    peers = [OurMetric, NumpyFullBatch]
    if torchmetrics_available():
        peers.append(TorchMetrics)
    print(
        f"\n{num_batches * batch_size:,} predictions x {num_classes} classes, "
        f"batches of {batch_size:,}, backend {keras.backend.backend()}"
    )
    seconds = {peer_class.name: [] for peer_class in peers}
    values, states = {}, {}
    for repeat in range(repeats):
        for peer_class in peers if repeat % 2 == 0 else reversed(peers):
            value, elapsed, state = measure(peer_class, pool, num_batches, num_classes)
            seconds[peer_class.name].append(elapsed)
            values[peer_class.name], states[peer_class.name] = value, state
    rates = {}
    for peer_class in peers:
        name = peer_class.name
        median = statistics.median(seconds[name])
        rates[name] = num_batches * batch_size / median
        print(
            f"  {name:16s} ECE {values[name]:.6f}  {median:7.3f} s (median of "
            f"{repeats}; first pass {seconds[name][0]:.3f} s)  "
            f"{rates[name]:14,.0f} predictions/s  state {human_bytes(states[name])}"
        )
    spread = max(values.values()) - min(values.values())
    print(f"  largest difference between the ECEs: {spread:.2e}")
    ours = rates[OurMetric.name]
    ratios = "  ".join(
        f"ours/{name} {ours / rate:.2f}x" for name, rate in rates.items() if name != OurMetric.name
    )
    if not torchmetrics_available():
        ratios += "  ours/torchmetrics n/a (not installed)"
    print(f"ratio (throughput, K={num_classes}): {ratios}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed passes per peer (default 7, 1 with --quick)")
    args = parser.parse_args()
    print_machine()
    if not torchmetrics_available():
        print("note: torchmetrics is not installed; skipping that peer.")
    repeats = args.repeats or (1 if args.quick else 7)
    if args.quick:
        run(num_examples=20_000, num_classes=10, batch_size=5_000, repeats=repeats)
        run(num_examples=20_000, num_classes=100, batch_size=5_000, repeats=repeats)
    else:
        run(num_examples=1_000_000, num_classes=10, batch_size=100_000, repeats=repeats)
        run(num_examples=1_000_000, num_classes=1000, batch_size=10_000, repeats=repeats)


if __name__ == "__main__":
    main()
