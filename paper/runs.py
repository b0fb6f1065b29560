"""The paper's runs: settings, the store of finished runs, and running them.

A run builds a network from a seed, trains it in one *arm* — directly
(`"baseline"`) or after the noise warm-up (`"warmup"`) — and measures it on
held-out and on out-of-distribution images. The runs are made by the
library's own A/B test, `keras_noisewarm.compare_warmup`: both arms of a
seed start from the same initial weights and see the training batches in the
same order. Every finished run is kept in a folder named after its settings
and backend, so an interrupted experiment resumes where it stopped and runs
made with other settings are never mixed in; warmed-up networks are kept
beside them and reused by every run of the same network and seed.
"""

import dataclasses
import hashlib
import json
import pathlib

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import compare
from keras_noisewarm import noise
from paper import data
from paper import models

ARMS = compare.ARMS
ARM_TITLES = compare.ARM_TITLES
NUM_BINS = 15
# (name, title, lower is better) of the numbers every run reports.
METRICS = tuple(
    (name, "ECE (15 bins)" if name == "ece" else "MCE (15 bins)" if name == "mce"
     else "OOD AUROC (max softmax)" if name == "ood_auroc" else title, lower)
    for name, title, lower in compare.METRICS
)
# `--quick`: a small setting that shows the effect in about a minute on 2 CPU
# cores: a six-layer MLP of width 128 overfitting 500 CIFAR-10 images shrunk
# to 8x8, after a warm-up of 750 steps. It was chosen on held-out training
# images (see tests/test_claim.py, whose quick check is the same setting).
QUICK_SIZES = dict(image_size=8, train_size=500, test_size=1000, epochs=60, width=128,
                   warmup_examples=128 * 750)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run but its seed and arm."""

    dataset: str = "cifar10"
    ood: str = "mnist"
    architecture: str = "mlp"
    # Side the images are shrunk to (None: their own, 32 for CIFAR-10).
    image_size: int = None
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
        """The folder of warmed-up networks, shared by every data size."""
        fields = ("dataset", "architecture", "depth", "width", "warmup_examples",
                  "warmup_learning_rate")
        settings = dict({name: getattr(self, name) for name in fields},
                        backend=keras.backend.backend(), noise_stream=noise.STREAM_VERSION)
        return (
            f"warmup-{self.dataset}-{self.architecture}{self.depth}x{self.width}-"
            f"{keras.backend.backend()}-{_digest(settings)}"
        )

    def warmup(self):
        """The paper's MLP warm-up recipe at this spec's length (Adam, batch 128,
        BatchNorm statistics updated on the noise as in the authors' code)."""
        return keras_noisewarm.NoiseWarmup(
            recipe="mlp",
            num_examples=self.warmup_examples,
            learning_rate=self.warmup_learning_rate,
            noise=keras_noisewarm.noise.Gaussian(0.0, 1.0),
            batchnorm="update",
            verbose=0,
        )

    def describe(self):
        """One line for reports."""
        images = f"{self.dataset} training images" + (
            f" shrunk to {self.image_size}x{self.image_size}" if self.image_size else "")
        return (
            f"{self.depth}-layer {self.architecture.upper()} of width {self.width}, "
            f"{self.train_size:,} {images}, {self.epochs} "
            f"epochs of Adam {self.learning_rate:g} (batch {self.batch_size}); "
            f"warm-up: {self.warmup_examples:,} Gaussian noise examples, Adam "
            f"{self.warmup_learning_rate:g}"
        )


def _digest(settings):
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]


class RunStore:
    """Finished runs under one folder: `<folder>/<settings>/seed<k>_<arm>.json|.npz`.

    The files are `keras_noisewarm.compare.RunStore`'s; this reads them back
    by spec, also those of other backends (for `reproduce backends`).
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)

    def directory(self, spec, backend=None):
        return self.folder / spec.folder_name(backend)

    def _path(self, spec, seed, arm, suffix, backend=None):
        return self.directory(spec, backend) / f"seed{seed}_{arm}{suffix}"

    def has(self, spec, seed, arm, backend=None):
        return self._path(spec, seed, arm, ".json", backend).is_file()

    def load(self, spec, seed, arm, backend=None):
        """The result dict of a finished run (raises if it is missing).

        `backend` names the Keras backend the run was made with (default:
        the current one).
        """
        settings = json.loads((self.directory(spec, backend) / "settings.json").read_text())
        if settings.get("key") != spec.key(backend):
            raise ValueError(
                f"{self.directory(spec, backend)} holds runs of other settings; delete it "
                "to start over."
            )
        return json.loads(self._path(spec, seed, arm, ".json", backend).read_text())

    def load_arrays(self, spec, seed, arm):
        """The run's `test_logits`, `test_labels` and `ood_logits`."""
        with np.load(self._path(spec, seed, arm, ".npz")) as arrays:
            return {
                "test_logits": arrays["validation_outputs"],
                "test_labels": arrays["validation_labels"],
                "ood_logits": arrays["ood_outputs"],
            }


def comparison(task, spec, seeds, store, arms=ARMS, verbose=0):
    """Runs (or resumes) `compare_warmup` for one spec.

    Args:
        task: The `data.Task` of the spec.
        spec: A `RunSpec`.
        seeds: The seeds.
        store: A `RunStore`.
        arms: The arms to run.
        verbose: 1 for a progress bar over the runs still to do.

    Returns:
        The `keras_noisewarm.compare.WarmupComparison`.
    """

    def build_model():
        model = models.build_model(
            spec.architecture, task.input_shape, task.num_classes, spec.depth,
            spec.width, seed=None,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(spec.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    return compare.compare_warmup(
        build_model,
        (task.x_train, task.y_train),
        (task.x_test, task.y_test),
        ood_data=task.x_ood,
        seeds=tuple(seeds),
        warmup=spec.warmup(),
        fit_kwargs={"epochs": spec.epochs, "batch_size": spec.batch_size, "shuffle": True},
        directory=store.directory(spec),
        warmup_directory=store.folder / spec.warmup_folder_name(),
        arms=arms,
        track_epochs=spec.track_epochs,
        num_bins=NUM_BINS,
        key=spec.key(),
        verbose=verbose,
    )


def run_all(store, jobs, data_dir=None, verbose=1):
    """Trains every `(spec, seed, arm)` of `jobs` not yet in `store`.

    Jobs of one spec are run by one `comparison`, in the order of their
    first appearance.

    Returns:
        The result dicts of all `jobs`, in their order.
    """
    jobs = list(jobs)
    by_spec = {}
    for spec, seed, arm in jobs:
        seeds, arms = by_spec.setdefault(spec, ([], []))
        if seed not in seeds:
            seeds.append(seed)
        if arm not in arms:
            arms.append(arm)
    todo = sum(not store.has(*job) for job in jobs)
    if todo and verbose:
        print(f"{len(jobs) - todo} of {len(jobs)} runs already done; training {todo}.", flush=True)
    tasks = {}
    for spec, (seeds, arms) in by_spec.items():
        if all(store.has(spec, seed, arm) for seed in seeds for arm in arms):
            continue
        task_key = (spec.dataset, spec.ood, spec.train_size, spec.test_size)
        if task_key + (spec.image_size,) not in tasks:
            tasks[task_key + (spec.image_size,)] = data.load_task(
                *task_key, data_dir=data_dir, image_size=spec.image_size
            )
        comparison(tasks[task_key + (spec.image_size,)], spec, seeds, store,
                   arms=tuple(arm for arm in ARMS if arm in arms), verbose=verbose)
    return [store.load(*job) for job in jobs]


def measure(test_logits, test_labels, ood_logits=None):
    """The numbers of a run, from its logits (`keras_noisewarm.compare.measure`)."""
    return compare.measure(test_logits, test_labels, ood_logits, num_bins=NUM_BINS,
                           from_logits=True)


def confidences(logits):
    """Maximum softmax probability of each row of `logits`, as NumPy."""
    return keras_noisewarm.outputs.probabilities_of(logits, from_logits=True).max(axis=-1)
