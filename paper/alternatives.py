"""Is warm-up the right choice? Warm-up beside the usual alternatives, and combined with them.

For the paper's six-layer MLP and for one small CNN, over paired seeds, this
trains (through `keras_noisewarm.compare_warmup`, so that both arms of a
seed start from the same weights and see the same batches) every method in
both arms, without and with the noise warm-up:

- plain training (cross-entropy),
- temperature scaling of the plain networks (fitted on held-out training
  images),
- label smoothing, focal loss and mixup (their strength chosen on held-out
  training images),
- Monte Carlo dropout (its rate chosen likewise; 10 stochastic passes),
- a deep ensemble of 5 plain networks (their mean probabilities),

and measures each on the held-out test images (accuracy, ECE, smooth ECE,
NLL, Brier score, AURC), on out-of-distribution images (AUROC of the maximum
softmax probability), on corrupted test images (`keras_noisewarm.shift`,
every corruption at severities 1-5), and its training time relative to
plain training.

Nothing is chosen on the test images: temperatures and hyper-parameters
are fitted on CIFAR-10 training images 15,000-19,999, which no network is
trained on (the networks train on the first 4,000; the warm-up defaults were
chosen on images 10,000-14,999).

The MLP trains under JAX and the CNN under TensorFlow (the faster backend
for each on CPU, docs/BENCHMARKS.md); each architecture is trained by a process of
its own (`python -m paper.alternatives train ...`) into the cache, and the
report is made from the stored outputs. `--quick` trains both in this
process, with the current backend.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import keras
import numpy as np

from keras_noisewarm import compare
from keras_noisewarm import noise
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import plot
from keras_noisewarm import posthoc
from keras_noisewarm import selective
from keras_noisewarm import shift
from keras_noisewarm import smooth_calibration
from keras_noisewarm import statistics
from paper import data
from paper import models
from paper import plots
from paper import runs

ARCHITECTURES = ("mlp", "cnn")
TRAINING_BACKENDS = {"mlp": "jax", "cnn": "tensorflow"}
ARMS = compare.ARMS
SEEDS = (0, 1, 2, 3, 4)
QUICK_SEEDS = (0, 1)
# Member j of seed s's ensemble is the plain network of seed s + 100 j.
MEMBER_SEED_STRIDE = 100
# The seed of the networks that choose the hyper-parameters, apart from all others.
TUNING_SEED = 1000
# The seed of the networks trained only to time the methods.
TIMING_SEED = 2000
TIMING_ROUNDS = 3
TIMING_FILE = "training_time.json"
HOLDOUT = (15_000, 20_000)
NUM_BINS = runs.NUM_BINS
PREDICT_BATCH_SIZE = 1000

# (name, title) of every method, in the order of the tables.
METHODS = (
    ("plain", "plain training"),
    ("temperature", "temperature scaling"),
    ("label_smoothing", "label smoothing"),
    ("focal", "focal loss"),
    ("mixup", "mixup"),
    ("mc_dropout", "MC dropout"),
    ("ensemble", "deep ensemble"),
)
METHOD_TITLES = dict(METHODS)
# The methods that train networks of their own; temperature scaling and the
# ensemble are made from the plain networks.
TRAINED_METHODS = ("plain", "label_smoothing", "focal", "mixup", "mc_dropout")
# method: (name of its hyper-parameter, candidates)
GRIDS = (
    ("label_smoothing", "smoothing", (0.05, 0.1, 0.2)),
    ("focal", "gamma", (1.0, 2.0, 3.0)),
    ("mixup", "alpha", (0.1, 0.2, 0.4)),
    ("mc_dropout", "rate", (0.1, 0.2, 0.3)),
)
# For the MLP the first grid's best held-out NLL lay at its strongest
# candidate for label smoothing, focal loss and mixup (0.2, 3, 0.4), so their
# grids go further (chosen on the held-out training images only).
MLP_GRIDS = (
    ("label_smoothing", "smoothing", (0.1, 0.2, 0.3, 0.4)),
    ("focal", "gamma", (2.0, 3.0, 4.0, 5.0)),
    ("mixup", "alpha", (0.2, 0.4, 0.8, 1.0)),
    ("mc_dropout", "rate", (0.1, 0.2, 0.3)),
)
QUICK_GRIDS = (
    ("label_smoothing", "smoothing", (0.1,)),
    ("focal", "gamma", (2.0,)),
    ("mixup", "alpha", (0.2,)),
    ("mc_dropout", "rate", (0.1, 0.3)),
)
# (name, title, lower is better) of the numbers compared in the tables.
METRICS = (
    ("accuracy", "accuracy", False),
    ("ece", "ECE", True),
    ("smooth_ece", "smooth ECE", True),
    ("nll", "NLL", True),
    ("brier", "Brier", True),
    ("ood_auroc", "OOD AUROC", False),
    ("shift_ece", "ECE under shift", True),
    ("shift_accuracy", "accuracy under shift", False),
    ("aurc", "AURC", True),
    ("e_aurc", "E-AURC", True),
)
COMPARED = ("ece", "nll", "accuracy", "ood_auroc", "shift_ece", "aurc")
METRIC_TITLES = {name: title for name, title, _ in METRICS}
LOWER_IS_BETTER = {name: lower for name, _, lower in METRICS}
SHIFT_FIGURE = "alternatives_shift_ece.png"
BOXPLOT_FIGURE = "alternatives_shift_boxplot.png"
RISK_FIGURE = "alternatives_risk_coverage.png"


@dataclasses.dataclass(frozen=True)
class Setting:
    """Everything that defines the runs of one architecture but the seeds."""

    architecture: str
    depth: int
    width: int
    train_size: int = 4000
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-4
    warmup_examples: int = 320_000
    warmup_learning_rate: float = 1e-4
    test_size: int = 10_000
    ood_size: int = 5_000
    # The first `shift_size` test images are corrupted.
    shift_size: int = 500
    corruptions: tuple = shift.CORRUPTIONS
    severities: tuple = shift.SEVERITIES
    holdout: tuple = HOLDOUT
    ensemble_size: int = 5
    mc_samples: int = 10
    grids: tuple = GRIDS
    ood: str = "mnist"

    def warmup(self):
        """The paper's MLP warm-up recipe (`paper.runs.RunSpec.warmup`) at this length."""
        return runs.RunSpec(warmup_examples=self.warmup_examples,
                            warmup_learning_rate=self.warmup_learning_rate).warmup()

    def key(self, backend):
        return json.loads(json.dumps(dict(dataclasses.asdict(self), backend=backend,
                                          noise_stream=noise.STREAM_VERSION)))

    def folder(self, cache, backend):
        digest = hashlib.sha1(json.dumps(self.key(backend), sort_keys=True).encode()).hexdigest()
        return (pathlib.Path(cache) / "alternatives"
                / f"{self.architecture}{self.depth}x{self.width}-{backend}-{digest[:10]}")

    def describe(self):
        network = (f"{self.depth}-layer MLP of width {self.width}" if self.architecture == "mlp"
                   else f"CNN of {self.depth - 1} convolutional blocks from {self.width} "
                        f"channels (`paper.models.build_cnn(depth={self.depth}, "
                        f"width={self.width})`)")
        return (f"{network}, {self.train_size:,} CIFAR-10 training images, {self.epochs} "
                f"epochs of Adam {self.learning_rate:g} (batch {self.batch_size}); warm-up: "
                f"{self.warmup_examples:,} Gaussian noise examples, Adam "
                f"{self.warmup_learning_rate:g} (batch 128)")


def settings(context):
    """`{architecture: Setting}` of a full or a `--quick` run."""
    if context.quick:
        small = dict(train_size=200, epochs=2, learning_rate=1e-3, warmup_examples=384,
                     warmup_learning_rate=1e-3, test_size=200, ood_size=100, shift_size=40,
                     corruptions=("gaussian_noise", "jpeg_compression"), severities=(1, 5),
                     holdout=(200, 400), ensemble_size=2, mc_samples=2, grids=QUICK_GRIDS,
                     ood=context.ood)
        return {"mlp": Setting("mlp", depth=3, width=16, **small),
                "cnn": Setting("cnn", depth=2, width=4, **small)}
    main = runs.RunSpec()
    return {
        # The main job's setting (Fig. 2) and warm-up.
        "mlp": Setting("mlp", depth=main.depth, width=main.width, train_size=main.train_size,
                       epochs=main.epochs, batch_size=main.batch_size,
                       learning_rate=main.learning_rate, warmup_examples=main.warmup_examples,
                       warmup_learning_rate=main.warmup_learning_rate, grids=MLP_GRIDS,
                       ood=context.ood),
        # Sized for the 2-core CPU: 6 epochs at Adam 1e-3 (held-out accuracy
        # 0.32 after 6 epochs against 0.25 at 1e-4), and a warm-up of 200
        # steps, which brought the mean confidence on noise from 0.50 to
        # about 0.15 (chance: 0.10).
        "cnn": Setting("cnn", depth=4, width=16, epochs=6, learning_rate=1e-3,
                       warmup_examples=25_600, ood=context.ood),
    }


def seeds_of(context):
    return context.seeds_or(QUICK_SEEDS if context.quick else SEEDS)


def member_seeds(seed, setting):
    """The seeds of the plain networks in `seed`'s ensemble (`seed` first)."""
    return tuple(seed + MEMBER_SEED_STRIDE * member for member in range(setting.ensemble_size))


def training_backend(context, architecture):
    return keras.backend.backend() if context.quick else TRAINING_BACKENDS[architecture]


# ---------------------------------------------------------------- training


class MixupBatches(keras.utils.PyDataset):
    """Batches of mixup (Zhang et al., 2018): pairs of examples blended.

    Every epoch the examples are shuffled; each batch is blended with a
    shuffled copy of itself, `lam * x + (1 - lam) * x[perm]` (and the one-hot
    labels alike), one `lam ~ Beta(alpha, alpha)` per batch. The draws come
    from NumPy's global generator at the start of each epoch, which
    `compare_warmup` seeds before training: both arms of a seed see the same
    batches.
    """

    def __init__(self, x, y_one_hot, batch_size, alpha):
        super().__init__()
        self.x, self.y = x, y_one_hot
        self.batch_size, self.alpha = batch_size, alpha
        self.order = None

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def on_epoch_begin(self):
        self.order = np.random.permutation(len(self.x))
        self.mixing = np.random.beta(self.alpha, self.alpha, size=len(self))
        self.partners = [np.random.permutation(len(self._indices(index)))
                         for index in range(len(self))]

    def _indices(self, index):
        return self.order[index * self.batch_size:(index + 1) * self.batch_size]

    def __getitem__(self, index):
        if self.order is None:
            # Keras may read a first batch before the first epoch begins.
            self.on_epoch_begin()
        indices = self._indices(index)
        partners = indices[self.partners[index]]
        mixing = self.mixing[index]
        x = mixing * self.x[indices] + (1.0 - mixing) * self.x[partners]
        y = mixing * self.y[indices] + (1.0 - mixing) * self.y[partners]
        return x.astype("float32"), y.astype("float32")


def run_name(method, value):
    return method if value is None else f"{method}-{value:g}"


def _loss(method, value):
    if method == "label_smoothing":
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=value)
    if method == "focal":
        # alpha=1: the focal loss of Lin et al. (2017) and Mukhoti et al.
        # (2020), without Keras's default class weight of 0.25.
        return keras.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=value, from_logits=True)
    if method == "mixup":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_method_model(setting, task, method, value, run_eagerly=False):
    """A fresh compiled network of `method` (its weights from Keras's global seed)."""
    model = models.build_model(
        setting.architecture, task.input_shape, task.num_classes, setting.depth,
        setting.width, seed=None, dropout_rate=value if method == "mc_dropout" else None,
    )
    model.compile(optimizer=keras.optimizers.Adam(setting.learning_rate),
                  loss=_loss(method, value), run_eagerly=run_eagerly)
    return model


def training_data(setting, task, method, value):
    """`(train_data, fit_kwargs)` of `method`: `train_data` is `(x, y)` or a `PyDataset`."""
    one_hot = keras.utils.to_categorical(task.y_train, task.num_classes).astype("float32")
    fit_kwargs = {"epochs": setting.epochs}
    if method == "mixup":
        return MixupBatches(task.x_train, one_hot, setting.batch_size, value), fit_kwargs
    fit_kwargs.update(batch_size=setting.batch_size, shuffle=True)
    labels = one_hot if method in ("label_smoothing", "focal") else task.y_train
    return (task.x_train, labels), fit_kwargs


def train_method(setting, task, folder, method, value, seeds, arms=ARMS, validation=None,
                 ood=True, keep_models=True, verbose=0, run_eagerly=False):
    """Trains (or resumes) one method over `seeds` with `compare_warmup`.

    `run_eagerly` (for `--quick`) skips compiling the train and predict
    steps, which takes longer than training a tiny network.

    Returns:
        The `keras_noisewarm.compare.WarmupComparison`.
    """
    train_data, fit_kwargs = training_data(setting, task, method, value)
    validation = validation or (task.x_test, task.y_test)
    name = run_name(method, value)
    directory = folder / ("tuning" if validation[0] is not task.x_test else "runs") / name
    return compare.compare_warmup(
        lambda: build_method_model(setting, task, method, value, run_eagerly),
        train_data, validation,
        ood_data=task.x_ood if ood else None,
        seeds=tuple(seeds), warmup=setting.warmup(), fit_kwargs=fit_kwargs,
        directory=directory, warmup_directory=folder, arms=arms, num_bins=NUM_BINS,
        key=dict(setting.key(keras.backend.backend()), method=method, value=value,
                 validation="test" if validation[0] is task.x_test else "holdout"),
        verbose=verbose, keep_models=keep_models,
    )


def time_training(setting, task, values, rounds, run_eagerly=False, verbose=0):
    """Wall time of training each method and of the warm-up, side by side.

    The stored runs were made hours apart, some beside other work, so their
    wall times do not compare. This trains every method afresh in this
    process, one after another, `rounds` times (each round starting one
    method later, so that no method always runs first), without validation;
    after each plain `fit` it also times what temperature scaling adds
    (predicting the held-out images, fitting T), and it times the warm-up
    of a fresh plain network on its own.

    Args:
        values: `{method: hyper-parameter or None}` of `TRAINED_METHODS`.

    Returns:
        `{"fit": {method: [seconds per round]}, "temperature": [...],
        "warmup": [...], "load_average": [before, after]}`.
    """
    jobs = list(TRAINED_METHODS) + ["warmup"]
    timings = {"fit": {method: [] for method in TRAINED_METHODS}, "temperature": [],
               "warmup": [], "rounds": rounds, "load_average": [os.getloadavg()[0]]}
    for round_index in range(rounds):
        shift_by = round_index % len(jobs)
        for job in jobs[shift_by:] + jobs[:shift_by]:
            keras.utils.set_random_seed(TIMING_SEED + round_index)
            if job == "warmup":
                model = build_method_model(setting, task, "plain", None, run_eagerly)
                start = time.perf_counter()
                setting.warmup().run(model)
                seconds = time.perf_counter() - start
                timings["warmup"].append(seconds)
            else:
                model = build_method_model(setting, task, job, values[job], run_eagerly)
                train_data, fit_kwargs = training_data(setting, task, job, values[job])
                start = time.perf_counter()
                if isinstance(train_data, tuple):
                    model.fit(*train_data, verbose=0, **fit_kwargs)
                else:
                    model.fit(train_data, verbose=0, **fit_kwargs)
                seconds = time.perf_counter() - start
                timings["fit"][job].append(seconds)
            if job == "plain":
                start = time.perf_counter()
                posthoc.fit_temperature(_predict(model, task.x_holdout), task.y_holdout,
                                        from_logits=True)
                timings["temperature"].append(time.perf_counter() - start)
            if verbose:
                print(f"timing round {round_index + 1}/{rounds}: {job} {seconds:.1f} s",
                      flush=True)
    timings["load_average"].append(os.getloadavg()[0])
    return timings


def relative_costs(timings, ensemble_size):
    """`{method: {arm: training time / plain fit}}` from `time_training`'s medians.

    Temperature scaling costs a plain fit plus its own step; the ensemble
    trains `ensemble_size` plain networks (each warmed up in the warm-up
    arm); MC dropout's extra test-time passes are not training and are
    counted apart.
    """
    fits = {method: _median(seconds) for method, seconds in timings["fit"].items()}
    warmup = _median(timings["warmup"])
    seconds = {method: fits[method] for method in TRAINED_METHODS}
    seconds["temperature"] = fits["plain"] + _median(timings["temperature"])
    seconds["ensemble"] = ensemble_size * fits["plain"]
    members = {method: ensemble_size if method == "ensemble" else 1 for method in seconds}
    return {method: {"baseline": value / fits["plain"],
                     "warmup": (value + members[method] * warmup) / fits["plain"]}
            for method, value in seconds.items()}


def mc_dropout_outputs(model, inputs, samples, batch_size=PREDICT_BATCH_SIZE, chunk=2000):
    """Log of the mean softmax over `samples` stochastic passes of `model`.

    The layers before the first `MonteCarloDropout` are deterministic, so
    they run once per input; the rest runs `samples` times.
    """
    layers = model.layers
    first = next(index for index, layer in enumerate(layers)
                 if isinstance(layer, models.MonteCarloDropout))
    trunk = keras.Sequential(layers[:first]) if first else None
    head = keras.Sequential(layers[first:])
    results = []
    for start in range(0, len(inputs), chunk):
        batch = inputs[start:start + chunk]
        features = batch if trunk is None else trunk.predict(batch, batch_size=batch_size,
                                                              verbose=0)
        total = 0.0
        for _ in range(samples):
            logits = head.predict(features, batch_size=batch_size, verbose=0)
            total = total + outputs_lib.probabilities_of(np.asarray(logits, "float64"), True)
        results.append(total / samples)
    return mean_log_probabilities(np.concatenate(results))


def mean_log_probabilities(probabilities):
    """Probabilities as float32 logits (their logarithms, kept finite)."""
    return np.log(np.maximum(probabilities, np.finfo("float32").tiny)).astype("float32")


def shifted_inputs(task, setting):
    """The corrupted test images, normalised: `(names, array (sets, n, ...))`."""
    names, sets = [], []
    images = task.test_images[:setting.shift_size]
    for corruption, severity, corrupted in shift.shifted_sets(
            images, setting.corruptions, setting.severities, seed=0):
        names.append((corruption, severity))
        sets.append(task.normalise(corrupted))
    return names, np.stack(sets)


def _predict(model, inputs):
    return np.asarray(model.predict(inputs, batch_size=PREDICT_BATCH_SIZE, verbose=0), "float32")


def save_outputs(path, comparison, method, seed, arm, task, shifted, setting, with_holdout):
    """Predicts a trained run's test, OOD, shifted (and held-out) images once."""
    if path.is_file():
        return
    start = time.perf_counter()
    model = comparison.load_model(seed, arm)
    arrays = {}
    if method == "mc_dropout":
        arrays["test"] = mc_dropout_outputs(model, task.x_test, setting.mc_samples)
        arrays["ood"] = mc_dropout_outputs(model, task.x_ood, setting.mc_samples)
        flat = shifted.reshape((-1,) + shifted.shape[2:])
        arrays["shift"] = mc_dropout_outputs(model, flat, setting.mc_samples).reshape(
            shifted.shape[:2] + (-1,))
    else:
        stored = comparison.arrays(seed, arm)
        arrays["test"], arrays["ood"] = stored["validation_outputs"], stored["ood_outputs"]
        flat = shifted.reshape((-1,) + shifted.shape[2:])
        arrays["shift"] = _predict(model, flat).reshape(shifted.shape[:2] + (-1,))
    if with_holdout:
        holdout_start = time.perf_counter()
        arrays["holdout"] = _predict(model, task.x_holdout)
        arrays["holdout_seconds"] = np.float64(time.perf_counter() - holdout_start)
    arrays["seconds"] = np.float64(time.perf_counter() - start)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial.npz")
    np.savez(temporary, **arrays)
    temporary.replace(path)


def choose_hyperparameters(setting, task, folder, verbose=0, run_eagerly=False):
    """Chooses each method's hyper-parameter by held-out NLL (training images).

    One network per candidate (seed `TUNING_SEED`, no warm-up) is trained and
    measured on the held-out training images; MC dropout's NLL is that of
    its mean over `mc_samples` passes. A single candidate is taken as is.

    Returns:
        `{method: {"name", "value", "nll": {candidate: NLL or None}}}`.
    """
    choices = {}
    for method, parameter, candidates in setting.grids:
        scores = {}
        for value in candidates:
            if len(candidates) == 1:
                scores[value] = None
                continue
            comparison = train_method(setting, task, folder, method, value, (TUNING_SEED,),
                                      arms=("baseline",), validation=(task.x_holdout,
                                                                      task.y_holdout),
                                      ood=False, keep_models=method == "mc_dropout",
                                      verbose=verbose, run_eagerly=run_eagerly)
            if method != "mc_dropout":
                scores[value] = comparison.runs["baseline"][0]["nll"]
                continue
            path = folder / "tuning" / run_name(method, value) / "mc_nll.json"
            if not path.is_file():
                model = comparison.load_model(TUNING_SEED, "baseline")
                mean = mc_dropout_outputs(model, task.x_holdout, setting.mc_samples)
                nll = compare.measure(mean, task.y_holdout, num_bins=NUM_BINS,
                                      from_logits=True)["nll"]
                path.write_text(json.dumps({"nll": nll}))
            scores[value] = json.loads(path.read_text())["nll"]
        known = {value: nll for value, nll in scores.items() if nll is not None}
        chosen = min(known, key=known.get) if known else candidates[0]
        choices[method] = {"name": parameter, "value": chosen,
                           "nll": {f"{value:g}": nll for value, nll in scores.items()}}
    return choices


def train(context, architecture):
    """Trains (or finds) every run of one architecture and predicts its images.

    Everything goes to the cache; `report` reads it back.
    """
    setting = settings(context)[architecture]
    backend = keras.backend.backend()
    folder = setting.folder(context.cache, backend)
    folder.mkdir(parents=True, exist_ok=True)
    task = data.load_task("cifar10", setting.ood, setting.train_size, setting.test_size,
                          ood_size=setting.ood_size, data_dir=context.data_dir,
                          holdout=setting.holdout)
    verbose = context.verbose
    if verbose:
        print(f"{architecture} ({backend}): {setting.describe()}", flush=True)
    choices = choose_hyperparameters(setting, task, folder, verbose=verbose,
                                     run_eagerly=context.quick)
    (folder / "choices.json").write_text(json.dumps(choices, indent=1))
    _, shifted = shifted_inputs(task, setting)
    seeds = seeds_of(context)
    values = chosen_values(choices)
    for method in TRAINED_METHODS:
        value = values[method]
        method_seeds = list(seeds)
        if method == "plain":
            method_seeds += [member for seed in seeds for member in member_seeds(seed, setting)
                             if member not in method_seeds]
        if verbose:
            print(f"{architecture}: {run_name(method, value)}, seeds {method_seeds}", flush=True)
        comparison = train_method(setting, task, folder, method, value, method_seeds,
                                  verbose=verbose, run_eagerly=context.quick)
        for seed in method_seeds:
            for arm in ARMS:
                save_outputs(outputs_path(folder, method, value, seed, arm), comparison, method,
                             seed, arm, task, shifted, setting,
                             with_holdout=method == "plain" and seed in seeds)
    timing_path = folder / TIMING_FILE
    if not timing_path.is_file():
        timings = time_training(setting, task, values, 1 if context.quick else TIMING_ROUNDS,
                                run_eagerly=context.quick, verbose=verbose)
        timings["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        timing_path.write_text(json.dumps(timings, indent=1))


def chosen_values(choices):
    """`{method: its chosen hyper-parameter, or None}` of every trained method."""
    return {method: choices[method]["value"] if method in choices else None
            for method in TRAINED_METHODS}


def outputs_path(folder, method, value, seed, arm):
    return folder / "outputs" / run_name(method, value) / f"seed{seed}_{arm}.npz"


def train_everything(context):
    """Trains both architectures, each under its backend (in its own process).

    The architectures trained by another process go first, so that a
    failure there shows early.
    """
    current = keras.backend.backend()
    for architecture in sorted(ARCHITECTURES,
                               key=lambda name: training_backend(context, name) == current):
        backend = training_backend(context, architecture)
        if backend == current:
            train(context, architecture)
            continue
        from paper import cli

        command = [sys.executable, "-m", "paper.alternatives", "train", architecture,
                   "--cache", str(context.cache), "--ood", context.ood,
                   "--seeds", ",".join(map(str, seeds_of(context)))]
        if context.data_dir:
            command += ["--data-dir", str(context.data_dir)]
        if not context.verbose:
            command.append("--quiet")
        environment = cli.with_checkout_on_path(dict(os.environ, KERAS_BACKEND=backend))
        if context.verbose:
            print(f"{architecture}: training under {backend} in a process of its own", flush=True)
        subprocess.run(command, env=environment, check=True)


# ---------------------------------------------------------------- measuring


def _load(path):
    with np.load(path) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _scaled(arrays, temperature):
    return {name: arrays[name] / temperature for name in ("test", "ood", "shift")}


def _ensemble(members):
    mean = {name: np.mean([outputs_lib.probabilities_of(member[name].astype("float64"), True)
                           for member in members], axis=0)
            for name in ("test", "ood", "shift")}
    return {name: mean_log_probabilities(value) for name, value in mean.items()}


def measure_outputs(arrays, test_labels, shift_labels, set_names):
    """The numbers of one method, seed and arm from its outputs."""
    values = compare.measure(arrays["test"], test_labels, arrays["ood"], num_bins=NUM_BINS,
                             from_logits=True)
    result = {name: values[name] for name in ("accuracy", "ece", "nll", "brier", "ood_auroc")}
    result["smooth_ece"] = smooth_calibration.smooth_ece(test_labels, arrays["test"],
                                                         from_logits=True)
    result["aurc"] = selective.aurc(test_labels, arrays["test"], from_logits=True)
    result["e_aurc"] = selective.excess_aurc(test_labels, arrays["test"], from_logits=True)
    rows = []
    for (corruption, severity), outputs in zip(set_names, arrays["shift"]):
        shifted = compare.measure(outputs, shift_labels, num_bins=NUM_BINS, from_logits=True)
        rows.append(dict({"corruption": corruption, "severity": severity},
                         **{name: shifted[name] for name in shift.SHIFT_METRICS}))
    clean = compare.measure(arrays["test"][:len(shift_labels)], shift_labels, num_bins=NUM_BINS,
                            from_logits=True)
    rows.insert(0, dict({"corruption": "clean", "severity": 0},
                        **{name: clean[name] for name in shift.SHIFT_METRICS}))
    result["shift_rows"] = rows
    shifted_rows = rows[1:]
    result["shift_ece"] = float(np.mean([row["ece"] for row in shifted_rows]))
    result["shift_accuracy"] = float(np.mean([row["accuracy"] for row in shifted_rows]))
    result["shift_nll"] = float(np.mean([row["nll"] for row in shifted_rows]))
    return result


def measure_architecture(context, architecture):
    """Every method's numbers: `{method: {arm: [result per seed]}}`, and more.

    Returns:
        `(results, info)`: the results, and a dict with the setting, the
        hyper-parameter choices, the temperatures and the compute spent.
    """
    setting = settings(context)[architecture]
    backend = training_backend(context, architecture)
    folder = setting.folder(context.cache, backend)
    choices = json.loads((folder / "choices.json").read_text())
    task = data.load_task("cifar10", setting.ood, setting.train_size, setting.test_size,
                          ood_size=setting.ood_size, data_dir=context.data_dir,
                          holdout=setting.holdout)
    set_names = [(corruption, severity) for corruption in setting.corruptions
                 for severity in setting.severities]
    test_labels = task.y_test
    shift_labels = task.y_test[:setting.shift_size]
    seeds = seeds_of(context)
    values = chosen_values(choices)

    def run_record(method, seed, arm):
        directory = folder / "runs" / run_name(method, values[method])
        return json.loads((directory / f"seed{seed}_{arm}.json").read_text())

    def outputs(method, seed, arm):
        return _load(outputs_path(folder, method, values[method], seed, arm))

    results = {method: {arm: [] for arm in ARMS} for method, _ in METHODS}
    temperatures = {arm: [] for arm in ARMS}
    compute_seconds = 0.0
    for seed in seeds:
        for arm in ARMS:
            plain = outputs("plain", seed, arm)
            per_method = {method: plain if method == "plain" else outputs(method, seed, arm)
                          for method in TRAINED_METHODS}
            temperature = posthoc.fit_temperature(plain["holdout"], task.y_holdout,
                                                  from_logits=True)
            temperatures[arm].append(temperature)
            per_method["temperature"] = _scaled(plain, temperature)
            per_method["ensemble"] = _ensemble([outputs("plain", member, arm)
                                                for member in member_seeds(seed, setting)])
            for method, arrays in per_method.items():
                result = measure_outputs(arrays, test_labels, shift_labels, set_names)
                result["seed"] = seed
                results[method][arm].append(result)
    for method in TRAINED_METHODS:
        method_seeds = set(seeds)
        if method == "plain":
            method_seeds |= {m for seed in seeds for m in member_seeds(seed, setting)}
        for seed in method_seeds:
            for arm in ARMS:
                record = run_record(method, seed, arm)
                compute_seconds += record["seconds"]
                compute_seconds += float(outputs(method, seed, arm)["seconds"])
    timings = json.loads((folder / TIMING_FILE).read_text())
    noise_confidence = [
        (run_record("plain", seed, "warmup").get("noise_confidence_before"),
         run_record("plain", seed, "warmup").get("noise_confidence_after")) for seed in seeds]
    info = {"setting": setting, "choices": choices, "temperatures": temperatures,
            "compute_minutes": compute_seconds / 60, "backend": backend,
            "noise_confidence": noise_confidence, "num_sets": len(set_names),
            "num_ood": len(task.x_ood), "test_labels": test_labels, "folder": folder,
            "values": values, "timings": timings,
            "costs": relative_costs(timings, setting.ensemble_size),
            "passes": dict({method: 1 for method, _ in METHODS}, ensemble=setting.ensemble_size,
                           mc_dropout=setting.mc_samples)}
    return results, info


# ---------------------------------------------------------------- reporting


def reproduce(context):
    """Trains (or loads) everything, measures it and writes the section.

    Returns:
        The markdown section.
    """
    train_everything(context)
    measured = {architecture: measure_architecture(context, architecture)
                for architecture in ARCHITECTURES}
    _draw_shift(context, measured)
    _draw_boxplot(context, measured)
    _draw_risk_coverage(context, measured)
    seeds = seeds_of(context)
    lines = [
        "## Alternatives — warm-up beside temperature scaling, label smoothing, focal loss, "
        "mixup, MC dropout and deep ensembles",
        "",
        f"Command: `{context.command}`",
        "",
        f"Seeds: {', '.join(map(str, seeds))}; each method is trained without and with "
        "the noise warm-up by `keras_noisewarm.compare_warmup` (both arms of a seed start "
        "from the same initial weights and see the same batches; the methods of a seed "
        "share those initial weights too, except MC dropout, whose network has dropout "
        "layers). Temperature scaling is fitted on the held-out training images "
        f"{HOLDOUT[0]:,}-{HOLDOUT[1] - 1:,} for each plain network (both arms); the deep "
        "ensemble of a seed averages the probabilities of the plain network of that seed "
        f"and of seeds +{MEMBER_SEED_STRIDE}, +{2 * MEMBER_SEED_STRIDE}, ...; with warm-up, "
        "every member is warmed up.",
        "",
        "Measured on: the held-out test images (accuracy, ECE with 15 bins, smooth ECE, NLL, "
        f"Brier score; AURC and E-AURC of the maximum softmax probability); {context.ood} "
        "test images padded to 32x32x3 as out-of-distribution inputs (AUROC of the maximum "
        "softmax probability); the first test images (see each setting) under every "
        "corruption of `keras_noisewarm.shift` at each of its severities (*ECE under shift*, *accuracy under "
        "shift*: means over every corruption and severity). Training time: wall time of "
        "the warm-up and of `fit` over that of plain training's `fit`, each the median of "
        "rounds in which every method was trained afresh one after another in one process "
        "(`paper.alternatives.time_training`; the stored runs were made hours apart under "
        "different loads, so their own wall times do not compare). The ensemble trains "
        "all its members (and warms each up); temperature scaling adds predicting the "
        "held-out images and fitting T; MC dropout's extra cost is at test time (its "
        "passes column).",
        "",
    ]
    for architecture in ARCHITECTURES:
        lines += _architecture_section(context, architecture, *measured[architecture])
    lines += [
        "### ECE under increasing shift",
        "",
        context.figure_link(SHIFT_FIGURE, "ECE under increasing shift, one line per method"),
        "",
        "Median over seeds of the ECE, averaged over the corruptions, at each severity "
        "(0: the same test images uncorrupted); dashed lines: with warm-up.",
        "",
        context.figure_link(BOXPLOT_FIGURE, "ECE per severity, plain training without and "
                            "with warm-up"),
        "",
        "`keras_noisewarm.plot.shift_boxplot` of plain training without and with warm-up: "
        "each box spans the corruptions (and seeds) at one severity.",
        "",
        context.figure_link(RISK_FIGURE, "risk-coverage curves"),
        "",
        f"Risk-coverage curves (`keras_noisewarm.plot.risk_coverage_plot`) of seed "
        f"{seeds[0]} on the test images.",
        "",
    ]
    lines += _verdict(measured, len(seeds))
    return "\n".join(lines) + "\n"


def _median(values):
    return float(np.median(values))


def architecture_title(setting):
    """`"6-layer MLP"` or `"small CNN"`, for headings."""
    return f"{setting.depth}-layer MLP" if setting.architecture == "mlp" else "small CNN"


def _architecture_section(context, architecture, results, info):
    setting = info["setting"]
    seeds = seeds_of(context)
    title = architecture_title(setting)
    lines = [
        f"### {title[0].upper()}{title[1:]}",
        "",
        f"Setting: {setting.describe()}; trained under {info['backend']}. Test: the "
        f"{setting.test_size:,} held-out CIFAR-10 images; OOD: {info['num_ood']:,} "
        f"{setting.ood} images; shift: the first {setting.shift_size:,} test images under "
        f"{len(setting.corruptions)} corruptions x {len(setting.severities)} severities. "
        f"Training and predicting took {info['compute_minutes']:.0f} minutes in all (sum "
        f"of the stored runs). {timing_text(info['timings'])}",
        "",
    ]
    before = [value for value, _ in info["noise_confidence"] if value is not None]
    after = [value for _, value in info["noise_confidence"] if value is not None]
    if before:
        lines += [f"Mean confidence on fresh noise: {np.median(before):.3f} before the "
                  f"warm-up, {np.median(after):.3f} after (median over seeds; chance 0.100).",
                  ""]
    grids = {method: candidates for method, _, candidates in setting.grids}
    chosen = [choice_text(method, choice, grids[method])
             for method, choice in info["choices"].items()]
    temperatures = {arm: np.median(info["temperatures"][arm]) for arm in ARMS}
    lines += [
        "Hyper-parameters, chosen by the held-out NLL of one network without warm-up (seed "
        f"{TUNING_SEED}) on the held-out training images: " + "; ".join(chosen) + ". "
        f"Fitted temperatures: median {temperatures['baseline']:.3f} without warm-up, "
        f"{temperatures['warmup']:.3f} with it.",
        "",
        "| method | warm-up | " + " | ".join(title for _, title, _ in METRICS)
        + " | training time | test-time passes |",
        "|---|---|" + "---|" * (len(METRICS) + 2),
    ]
    for method, method_title in METHODS:
        for arm in ARMS:
            arm_results = results[method][arm]
            cells = [f"{_median([r[name] for r in arm_results]):.4f}" for name, _, _ in METRICS]
            cost = info["costs"][method][arm]
            lines.append(f"| {method_title} | {'yes' if arm == 'warmup' else 'no'} | "
                         + " | ".join(cells) + f" | {cost:.2f}x | {info['passes'][method]} |")
    lines += [
        "",
        f"Medians over {len(seeds)} seeds. Quartiles of every number are in the comparisons "
        "below, which are paired by seed.",
        "",
        f"**Noise warm-up against each alternative** ({title}): warm-up alone (plain "
        "training after the warm-up) minus the alternative alone. Each cell: median of the "
        "paired differences (warm-up minus alternative), seeds where warm-up is better, and "
        "the paired two-sided Wilcoxon p.",
        "",
        _comparison_header(),
    ]
    for method, method_title in METHODS[1:]:
        lines.append(_comparison_row(method_title, results[method]["baseline"],
                                     results["plain"]["warmup"]))
    lines += [
        "",
        f"**Adding the warm-up to each method** ({title}): the method with warm-up minus the "
        "method without.",
        "",
        _comparison_header(),
    ]
    for method, method_title in METHODS:
        lines.append(_comparison_row(method_title, results[method]["baseline"],
                                     results[method]["warmup"]))
    lines += ["", f"**Plain training under each corruption** ({title}): ECE averaged over the "
              "severities, median over seeds.", "",
              "| corruption | no warm-up | warm-up | warm-up better | Wilcoxon p |",
              "|---|---|---|---|---|"]
    for corruption in setting.corruptions:
        per_arm = {arm: [{"ece": float(np.mean([row["ece"] for row in r["shift_rows"]
                                                 if row["corruption"] == corruption]))}
                         for r in results["plain"][arm]] for arm in ARMS}
        _, wins, count, p_value = paired(per_arm["baseline"], per_arm["warmup"], "ece")
        lines.append(f"| {corruption} | {_median([r['ece'] for r in per_arm['baseline']]):.4f} | "
                     f"{_median([r['ece'] for r in per_arm['warmup']]):.4f} | {wins}/{count} | "
                     f"{p_value:.2g} |")
    lines += ["", "Quartiles over seeds (25th-75th percentile) of each method's numbers:", "",
              "| method | warm-up | " + " | ".join(METRIC_TITLES[name] for name in COMPARED)
              + " |", "|---|---|" + "---|" * len(COMPARED)]
    for method, method_title in METHODS:
        for arm in ARMS:
            cells = []
            for name in COMPARED:
                summary = statistics.summarize([r[name] for r in results[method][arm]])
                cells.append(f"{summary.q25:.4f}-{summary.q75:.4f}")
            lines.append(f"| {method_title} | {'yes' if arm == 'warmup' else 'no'} | "
                         + " | ".join(cells) + " |")
    lines.append("")
    return lines


def timing_text(timings):
    """One sentence on how the training-time column was measured."""
    plain = timings["fit"]["plain"]
    spread = ", ".join(
        f"{METHOD_TITLES[method]} {min(seconds):.1f}-{max(seconds):.1f}"
        for method, seconds in timings["fit"].items())
    return (f"Training times: {timings['rounds']} side-by-side round(s) on {timings['date']} "
            f"(1-minute load average {timings['load_average'][0]:.1f} before, "
            f"{timings['load_average'][1]:.1f} after); `fit` took (s, min-max over rounds) "
            f"{spread}; the warm-up {min(timings['warmup']):.1f}-{max(timings['warmup']):.1f}; "
            f"plain training's median `fit`, the unit of the column: {_median(plain):.1f} s.")


def choice_text(method, choice, candidates):
    """The chosen hyper-parameter, its held-out NLLs, and whether it lies at a grid end."""
    title = f"{METHOD_TITLES[method]} {choice['name']} = {choice['value']:g}"
    if len(candidates) == 1:
        return f"{title} (the only candidate)"
    scores = ", ".join(f"{value}: {nll:.4f}" for value, nll in choice["nll"].items())
    end = ""
    if choice["value"] == min(candidates):
        end = "; the weakest candidate, so a weaker one might do better still"
    elif choice["value"] == max(candidates):
        end = "; the strongest candidate, so a stronger one might do better still"
    return f"{title} (held-out NLL {scores}{end})"


def _comparison_header():
    return ("| against | " + " | ".join(METRIC_TITLES[name] for name in COMPARED) + " |\n"
            + "|---|" + "---|" * len(COMPARED))


def paired(first, second, name):
    """Median difference (second - first), wins of `second`, Wilcoxon p."""
    a = np.array([r[name] for r in first], dtype=np.float64)
    b = np.array([r[name] for r in second], dtype=np.float64)
    return (float(np.median(b - a)), statistics.wins(a, b, LOWER_IS_BETTER[name]), len(a),
            statistics.paired_wilcoxon(a, b))


def _comparison_row(title, first, second):
    cells = []
    for name in COMPARED:
        difference, wins, count, p_value = paired(first, second, name)
        cells.append(f"{difference:+.4f} ({wins}/{count}, p={p_value:.2g})")
    return f"| {title} | " + " | ".join(cells) + " |"


def outcome(first, second, name):
    """`"wins"`, `"loses"` or `"ties"`: is `second` better than `first` on `name`?

    Better means better in every one of at least 5 seeds (with 5 seeds the
    smallest two-sided Wilcoxon p is 0.0625, so this is the strongest
    evidence they can give) or a Wilcoxon p below 0.05 (possible from 6
    seeds) with more seeds in its favour; worse likewise; else a tie.
    """
    _, wins, count, p_value = paired(first, second, name)
    _, losses, _, _ = paired(second, first, name)
    if (wins == count and count >= 5) or (p_value < 0.05 and wins > losses):
        return "wins"
    if (losses == count and count >= 5) or (p_value < 0.05 and losses > wins):
        return "loses"
    return "ties"


def _verdict(measured, num_seeds):
    lines = ["### Verdict", "",
             f"Better means better in all {num_seeds} seeds (with 5 seeds the smallest possible "
             "two-sided Wilcoxon p is 0.0625) or p < 0.05; everything else counts as a tie.", ""]
    claim = []
    for architecture in ARCHITECTURES:
        results, info = measured[architecture]
        title = architecture_title(info["setting"])
        lines.append(f"**{title[0].upper()}{title[1:]}.** Warm-up alone against each "
                     "alternative:")
        lines.append("")
        for method, method_title in METHODS[1:]:
            verdict = {kind: [] for kind in ("wins", "ties", "loses")}
            for name in COMPARED:
                verdict[outcome(results[method]["baseline"], results["plain"]["warmup"],
                                name)].append(METRIC_TITLES[name])
            lines.append(f"- against {method_title}: " + "; ".join(
                f"{kind} on {', '.join(names)}" for kind, names in verdict.items() if names)
                + ".")
        lines += ["", "Adding the warm-up to a method:", ""]
        for method, method_title in METHODS:
            verdict = {kind: [] for kind in ("wins", "ties", "loses")}
            for name in COMPARED:
                verdict[outcome(results[method]["baseline"], results[method]["warmup"],
                                name)].append(METRIC_TITLES[name])
            lines.append(f"- {method_title} + warm-up vs {method_title}: " + "; ".join(
                f"{'helps' if kind == 'wins' else 'hurts' if kind == 'loses' else 'no consistent change'}"
                f" on {', '.join(names)}" for kind, names in verdict.items() if names) + ".")
        lines.append("")
        plain_ece = outcome(results["plain"]["baseline"], results["plain"]["warmup"], "ece")
        temperature_ece = outcome(results["temperature"]["baseline"],
                                  results["plain"]["warmup"], "ece")
        combined = outcome(results["temperature"]["baseline"],
                           results["temperature"]["warmup"], "ece")
        shifted = outcome(results["plain"]["baseline"], results["plain"]["warmup"], "shift_ece")
        claim.append(
            f"{title}: ECE {_word(plain_ece)} with warm-up, under shift {_word(shifted)}; "
            f"warm-up alone against temperature scaling {_word(temperature_ece, 'vs')}; "
            f"warm-up added to temperature scaling {_word(combined)}")
    lines += [
        "Paper's claim (warm-up improves calibration, also under distribution shift, and "
        "combines with temperature scaling): " + "; ".join(claim) + ".",
        "",
    ]
    return lines


def _word(kind, style="change"):
    if style == "vs":
        return {"wins": "better", "loses": "worse", "ties": "no consistent difference"}[kind]
    return {"wins": "lower (better)", "loses": "higher (worse)",
            "ties": "no consistent change"}[kind]


# ---------------------------------------------------------------- figures

METHOD_COLORS = {
    "plain": "tab:gray", "temperature": "tab:blue", "label_smoothing": "tab:green",
    "focal": "tab:purple", "mixup": "tab:brown", "mc_dropout": "tab:pink",
    "ensemble": "tab:olive",
}


def _draw_shift(context, measured):
    plt = plot.pyplot()
    figure, axes = plt.subplots(1, len(ARCHITECTURES), figsize=(13, 5), layout="constrained",
                                squeeze=False)
    for ax, architecture in zip(axes[0], ARCHITECTURES):
        results, info = measured[architecture]
        for method, method_title in METHODS:
            for arm in ARMS:
                per_seed = [list(shift.severity_means(r["shift_rows"]).items())
                            for r in results[method][arm]]
                severities = [severity for severity, _ in per_seed[0]]
                values = np.median([[value for _, value in seed] for seed in per_seed], axis=0)
                ax.plot(severities, values, "-" if arm == "baseline" else "--", marker="o",
                        markersize=3, color=METHOD_COLORS[method],
                        label=f"{method_title}{' + warm-up' if arm == 'warmup' else ''}")
        name = architecture_title(info["setting"])
        ax.set(xlabel="corruption severity (0 = clean)", ylabel="ECE (15 bins), mean over corruptions",
               title=f"{name}: ECE under increasing shift (median of {len(results['plain']['baseline'])} seeds)")
        ax.set_xticks(severities)
        ax.grid(alpha=0.3)
        ax.title.set_fontsize(10)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    plot.save_figure(figure, context.figure_path(SHIFT_FIGURE))


def _draw_boxplot(context, measured):
    plt = plot.pyplot()
    figure, axes = plt.subplots(1, len(ARCHITECTURES), figsize=(12, 4.5), layout="constrained",
                                squeeze=False)
    for ax, architecture in zip(axes[0], ARCHITECTURES):
        results, info = measured[architecture]
        rows = {compare.ARM_TITLES[arm]: [row for r in results["plain"][arm]
                                          for row in r["shift_rows"]] for arm in ARMS}
        name = architecture_title(info["setting"])
        plot.shift_boxplot(rows, metric="ece", ax=ax, title=f"{name}: plain training")
    plot.save_figure(figure, context.figure_path(BOXPLOT_FIGURE))


def _draw_risk_coverage(context, measured):
    plt = plot.pyplot()
    figure, axes = plt.subplots(1, len(ARCHITECTURES), figsize=(12, 4.8), layout="constrained",
                                squeeze=False)
    seed = seeds_of(context)[0]
    for ax, architecture in zip(axes[0], ARCHITECTURES):
        _, info = measured[architecture]
        for method in ("plain", "mc_dropout"):
            for arm in ARMS:
                arrays = _load(outputs_path(info["folder"], method, info["values"][method], seed,
                                            arm))
                plot.risk_coverage_plot(
                    info["test_labels"], arrays["test"], from_logits=True, ax=ax,
                    label=f"{METHOD_TITLES[method]}{' + warm-up' if arm == 'warmup' else ''}",
                    color=METHOD_COLORS[method],
                    linestyle="-" if arm == "baseline" else "--",
                    show_optimal=method == "plain" and arm == "baseline")
        ax.set_title(f"{architecture_title(info['setting'])}, seed {seed}")
    plot.save_figure(figure, context.figure_path(RISK_FIGURE))


# ---------------------------------------------------------------- command line


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m paper.alternatives",
        description="Train one architecture's runs of `python -m paper reproduce "
                    "alternatives` into the cache (the backend is $KERAS_BACKEND).")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("train")
    command.add_argument("architecture", choices=ARCHITECTURES)
    command.add_argument("--cache", required=True)
    command.add_argument("--seeds", required=True)
    command.add_argument("--ood", default="mnist")
    command.add_argument("--data-dir")
    command.add_argument("--quick", action="store_true")
    command.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from paper import context as context_lib

    context = context_lib.Context(
        output=pathlib.Path(args.cache), cache=pathlib.Path(args.cache), quick=args.quick,
        seeds=tuple(int(seed) for seed in args.seeds.split(",")), data_dir=args.data_dir,
        ood=args.ood, verbose=0 if args.quiet else 1)
    train(context, args.architecture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
