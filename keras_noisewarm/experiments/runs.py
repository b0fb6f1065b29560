"""One run of the paper's protocol, and the store of finished runs.

A run builds a network from a seed, trains it in one *arm* — directly
(`"baseline"`) or after the noise warm-up (`"warmup"`) — and measures it on
held-out and on out-of-distribution images. Both arms of a seed start from
the same initial weights and see the training batches in the same order, so
they can be compared pair by pair.

Every finished run is saved at once (a JSON file of numbers and an `.npz` of
the test and OOD logits) in a folder named after its settings and backend:
an interrupted experiment resumes where it stopped, and runs made with other
settings are never mixed in.
"""

import dataclasses
import hashlib
import json
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import metrics
from keras_noisewarm import noise
from keras_noisewarm.experiments import data
from keras_noisewarm.experiments import models
from keras_noisewarm.ood import metrics as ood_metrics
from keras_noisewarm.ood import scores as ood_scores

ARMS = ("baseline", "warmup")
ARM_TITLES = {"baseline": "no warm-up", "warmup": "noise warm-up"}
NUM_BINS = 15
# (name, title, lower is better) of the numbers `measure` returns.
METRICS = (
    ("accuracy", "accuracy", False),
    ("ece", "ECE (15 bins)", True),
    ("mce", "MCE (15 bins)", True),
    ("nll", "NLL", True),
    ("brier", "Brier score", True),
    ("ood_confidence", "mean OOD confidence", True),
    ("ood_auroc", "OOD AUROC (max softmax)", False),
)
# `--quick`: the same experiments at sizes that take minutes on 2 CPU cores.
QUICK_SIZES = dict(train_size=500, test_size=500, epochs=3, width=64, warmup_examples=128 * 40)
# Offsets that give the warm-up noise and the data order seeds of their own.
WARMUP_SEED_OFFSET = 10_000
DATA_ORDER_SEED_OFFSET = 20_000


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run but its seed and arm."""

    dataset: str = "cifar10"
    ood: str = "mnist"
    architecture: str = "mlp"
    train_size: int = 4000
    test_size: int = 10000
    depth: int = 6
    width: int = 256
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-4
    warmup_examples: int = 320_000
    warmup_learning_rate: float = 1e-4
    # Measure the test set before training and after every epoch (costs
    # one forward pass over it per epoch).
    track_epochs: bool = True

    def key(self, backend=None):
        """The settings, the backend (default: the current one) and the
        noise stream's version: what a stored run must match."""
        return dict(
            dataclasses.asdict(self),
            backend=backend or keras.backend.backend(),
            noise_stream=noise.STREAM_VERSION,
        )

    def folder_name(self, backend=None):
        backend = backend or keras.backend.backend()
        return (
            f"{self.dataset}-{self.architecture}{self.depth}x{self.width}-"
            f"n{self.train_size}-{backend}-{_digest(self.key(backend))}"
        )

    def warmup_folder_name(self):
        return (
            f"warmup-{self.dataset}-{self.architecture}{self.depth}x{self.width}-"
            f"{keras.backend.backend()}-{_digest(self.warmup_key())}"
        )

    def warmup_key(self):
        """The settings a warmed-up network depends on."""
        fields = ("dataset", "architecture", "depth", "width", "warmup_examples",
                  "warmup_learning_rate")
        return dict({name: getattr(self, name) for name in fields},
                    backend=keras.backend.backend(), noise_stream=noise.STREAM_VERSION)

    def describe(self):
        """One line for reports."""
        return (
            f"{self.depth}-layer {self.architecture.upper()} of width {self.width}, "
            f"{self.train_size:,} {self.dataset} training images, {self.epochs} "
            f"epochs of Adam {self.learning_rate:g} (batch {self.batch_size}); "
            f"warm-up: {self.warmup_examples:,} Gaussian noise examples, Adam "
            f"{self.warmup_learning_rate:g}"
        )


def _digest(settings):
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


class RunStore:
    """Finished runs on disk: `<folder>/<settings>/seed<k>_<arm>.json|.npz`.

    Warmed-up weights are kept beside them, in
    `<folder>/warmup-<network>/seed<k>.weights.h5`.
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def _path(self, spec, seed, arm, suffix, backend=None):
        return self.folder / spec.folder_name(backend) / f"seed{seed}_{arm}{suffix}"

    def has(self, spec, seed, arm, backend=None):
        return self._path(spec, seed, arm, ".json", backend).is_file()

    def load(self, spec, seed, arm, backend=None):
        """The result dict of a finished run (raises if it is missing).

        `backend` names the Keras backend the run was made with (default:
        the current one).
        """
        path = self._path(spec, seed, arm, ".json", backend)
        result = json.loads(path.read_text())
        if result["spec"] != spec.key(backend):
            raise ValueError(f"{path} holds a run of other settings; delete it to start over.")
        return result

    def load_arrays(self, spec, seed, arm):
        """The run's `test_logits`, `test_labels` and `ood_logits`."""
        with np.load(self._path(spec, seed, arm, ".npz")) as arrays:
            return dict(arrays)

    def save(self, spec, seed, arm, result, arrays):
        folder = self.folder / spec.folder_name()
        folder.mkdir(parents=True, exist_ok=True)
        settings = folder / "spec.json"
        if not settings.exists():
            settings.write_text(json.dumps(spec.key(), indent=1))
        # Arrays first: a JSON file marks a complete run.
        np.savez(self._path(spec, seed, arm, ".npz"), **arrays)
        self._path(spec, seed, arm, ".json").write_text(json.dumps(result, indent=1))

    def warmup_path(self, spec, seed, suffix):
        return self.folder / spec.warmup_folder_name() / f"seed{seed}{suffix}"

    def has_warmup(self, spec, seed):
        return self.warmup_path(spec, seed, ".json").is_file()

    def save_warmup(self, spec, seed, model, noise_confidence):
        """Saves a warmed-up network's weights and its noise confidence."""
        self.warmup_path(spec, seed, "").parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(self.warmup_path(spec, seed, ".weights.h5"))
        self.warmup_path(spec, seed, ".json").write_text(json.dumps(noise_confidence))


def run_all(store, jobs, data_dir=None, verbose=1):
    """Trains every `(spec, seed, arm)` of `jobs` not yet in `store`.

    Args:
        store: A `RunStore`.
        jobs: Iterable of `(spec, seed, arm)`.
        data_dir: Folder of local dataset copies (see `data.load_task`).
        verbose: 1 for a progress bar over the runs still to do.

    Returns:
        The result dicts of all `jobs`, in their order.
    """
    jobs = list(jobs)
    todo = [job for job in jobs if not store.has(*job)]
    if todo and verbose:
        print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already done; training {len(todo)}.")
    progress = keras.utils.Progbar(len(todo), unit_name="run") if todo and verbose else None
    tasks = {}
    for index, (spec, seed, arm) in enumerate(todo):
        task_key = (spec.dataset, spec.ood, spec.train_size, spec.test_size)
        if task_key not in tasks:
            tasks[task_key] = data.load_task(*task_key, data_dir=data_dir)
        result, arrays = run_one(tasks[task_key], spec, seed, arm, store)
        store.save(spec, seed, arm, result, arrays)
        if progress is not None:
            progress.update(index + 1, values=[("ece", result["ece"])])
    return [store.load(*job) for job in jobs]


def run_one(task, spec, seed, arm, store=None):
    """Builds the seed's network, trains it in one arm and measures it.

    The warm-up depends on the network and its seed, not on the training
    data: with a `store`, warmed-up weights are saved there and reused by
    every run of the same network and seed (a depth x data-size grid warms
    each network up once).

    Returns:
        `(result, arrays)`: a JSON-able dict of the settings, the final
        numbers of `measure` (and, with `spec.track_epochs`, their values
        before training and after each epoch under `"epochs"`), and a dict of
        the final test and OOD logits.
    """
    if arm not in ARMS:
        raise ValueError(f"Unknown arm {arm!r}: expected one of {ARMS}.")
    start = time.time()
    model = models.build_model(
        spec.architecture, task.input_shape, task.num_classes, spec.depth,
        spec.width, seed,
    )
    result = {"seed": seed, "arm": arm, "spec": spec.key(), "num_classes": task.num_classes}
    if arm == "warmup":
        result.update(_warm_up(model, task, spec, seed, store))
    result["warmup_seconds"] = round(time.time() - start, 2)
    model.compile(
        optimizer=keras.optimizers.Adam(spec.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tracker = _EpochTracker(task) if spec.track_epochs else None
    # The data order is seeded too, so that both arms see the same batches.
    keras.utils.set_random_seed(seed + DATA_ORDER_SEED_OFFSET)
    history = model.fit(
        task.x_train, task.y_train, batch_size=spec.batch_size, epochs=spec.epochs,
        verbose=0, shuffle=True, callbacks=[tracker] if tracker else None,
    )
    result["train_loss"] = [float(value) for value in history.history["loss"]]
    test_logits = _predict(model, task.x_test)
    ood_logits = _predict(model, task.x_ood)
    result.update(measure(test_logits, task.y_test, ood_logits))
    if tracker is not None:
        result["epochs"] = tracker.epochs
    result["seconds"] = round(time.time() - start, 2)
    arrays = {
        "test_logits": test_logits,
        "test_labels": np.asarray(task.y_test, "int64"),
        "ood_logits": ood_logits,
    }
    return result, arrays


def _warm_up(model, task, spec, seed, store):
    """Warms `model` up, or loads its warmed-up weights from `store`.

    Returns:
        The model's mean confidence on noise before and after the warm-up.
    """
    if store is not None and store.has_warmup(spec, seed):
        model.load_weights(store.warmup_path(spec, seed, ".weights.h5"))
        return json.loads(store.warmup_path(spec, seed, ".json").read_text())
    confidence = {
        "noise_confidence_before": keras_noisewarm.noise_confidence(model).mean_confidence
    }
    keras_noisewarm.warmup(
        model,
        num_classes=task.num_classes,
        num_examples=spec.warmup_examples,
        learning_rate=spec.warmup_learning_rate,
        seed=seed + WARMUP_SEED_OFFSET,
        verbose=0,
    )
    confidence["noise_confidence_after"] = keras_noisewarm.noise_confidence(
        model
    ).mean_confidence
    if store is not None:
        store.save_warmup(spec, seed, model, confidence)
    return confidence


def measure(test_logits, test_labels, ood_logits=None):
    """Accuracy, calibration and (given OOD logits) OOD numbers of logits.

    Returns:
        A dict with `accuracy`, `ece`, `mce`, `nll`, `brier`,
        `mean_confidence` and, with `ood_logits`, `ood_confidence`,
        `ood_auroc` (max softmax probability, in-distribution positive),
        `ood_aupr_in`, `ood_aupr_out` and `ood_fpr95`.
    """
    values = {}
    for name, metric in [
        ("ece", metrics.ExpectedCalibrationError(NUM_BINS, from_logits=True)),
        ("mce", metrics.MaximumCalibrationError(NUM_BINS, from_logits=True)),
        ("nll", metrics.NegativeLogLikelihood(from_logits=True)),
        ("brier", metrics.BrierScore(from_logits=True)),
    ]:
        metric.update_state(test_labels, test_logits)
        values[name] = float(metric.result())
    test_confidence = confidences(test_logits)
    values["accuracy"] = float(np.mean(np.argmax(test_logits, axis=1) == test_labels))
    values["mean_confidence"] = float(np.mean(test_confidence))
    if ood_logits is not None:
        ood_confidence = confidences(ood_logits)
        values["ood_confidence"] = float(np.mean(ood_confidence))
        values["ood_auroc"] = ood_metrics.auroc(test_confidence, ood_confidence)
        values["ood_aupr_in"] = ood_metrics.aupr_in(test_confidence, ood_confidence)
        values["ood_aupr_out"] = ood_metrics.aupr_out(test_confidence, ood_confidence)
        values["ood_fpr95"] = ood_metrics.fpr_at_95_tpr(test_confidence, ood_confidence)
    return values


def confidences(logits):
    """Maximum softmax probability of each row of `logits`, as NumPy."""
    return keras.ops.convert_to_numpy(ood_scores.max_softmax_probability(logits))


def _predict(model, inputs):
    return np.asarray(model.predict(inputs, batch_size=1000, verbose=0), "float32")


class _EpochTracker(keras.callbacks.Callback):
    """Measures the test set before training and after every epoch."""

    def __init__(self, task):
        super().__init__()
        self.task = task
        self.epochs = []

    def _record(self):
        logits = _predict(self.model, self.task.x_test)
        self.epochs.append(measure(logits, self.task.y_test))

    def on_train_begin(self, logs=None):
        self._record()

    def on_epoch_end(self, epoch, logs=None):
        self._record()
