"""Feedback alignment with noise pretraining (the companion paper, NeurIPS 2024).

Three arms per seed, all from the same initial forward weights: an MLP
trained by backpropagation (`backprop`), its feedback-alignment twin
(`fa`, fixed random feedback matrices), and the same twin after noise
pretraining through the warm-up API (`fa_noise`: `keras_noisewarm.warmup`
on Gaussian noise with random labels, which trains through the feedback
matrices too). The two feedback-alignment arms of a seed share their
feedback matrices; all arms see the training batches in the same order.

The paper's directions, tested here: with noise pretraining, feedback
alignment converges faster than without and closer to backpropagation; the
angle between forward and feedback weights falls during the noise
pretraining; the effective rank of the weights falls. Calibration (ECE) and
the confidence on out-of-distribution images are measured beside them.

The data learning rate (for plain feedback alignment, so that the choice
does not favour the noise arm) and the noise pretraining's length and
learning rate are chosen on held-out *training* images, never on the test
images, with seeds of their own.
"""

import dataclasses
import hashlib
import json
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import compare
from keras_noisewarm import plot
from keras_noisewarm import statistics
from keras_noisewarm.callbacks import FeedbackAlignmentMonitor
from keras_noisewarm.feedback_alignment import diagnostics
from keras_noisewarm.feedback_alignment import to_feedback_alignment
from keras_noisewarm.noise import stream as stream_lib
from paper import data
from paper import plots

FIGURE = "feedback_alignment.png"
ARMS = ("backprop", "fa", "fa_noise")
ARM_TITLES = {"backprop": "backprop", "fa": "FA", "fa_noise": "FA + noise pretraining"}
ARM_COLORS = {"backprop": "tab:gray", "fa": "tab:blue", "fa_noise": "tab:orange"}
NUM_BINS = 15
# Offsets giving the feedback matrices, the noise and the data order seeds
# of their own; selection runs use seeds of their own too.
FEEDBACK_SEED_OFFSET = 1_000
WARMUP_SEED_OFFSET = 10_000
DATA_ORDER_SEED_OFFSET = 20_000
SELECTION_SEEDS = (100, 101)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# Out-of-distribution set of each dataset.
OOD_OF = {"mnist": "fashion_mnist", "fashion_mnist": "mnist", "digits": "gaussian"}
DATASET_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "digits": "8x8 digits",
                  "gaussian": "Gaussian-noise"}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One dataset's experiment: data sizes, network, training, candidates."""

    dataset: str = "mnist"
    train_size: int = 20_000
    # Held-out training images (the last ones of the training set) on which
    # the learning rates and the noise pretraining are chosen.
    validation_size: int = 10_000
    test_size: int = 10_000
    hidden_layers: int = 3
    width: int = 256
    epochs: int = 10
    batch_size: int = 128
    # Epochs to this test accuracy measure convergence speed (fixed in advance).
    target_accuracy: float = 0.95
    # Training images on which the update angles are measured.
    angle_batch: int = 512
    warmup_batch_size: int = 128
    # Times the angles are measured during the noise pretraining.
    warmup_checkpoints: int = 10
    learning_rates: tuple = (3e-4, 1e-3, 3e-3)
    warmup_learning_rates: tuple = (1e-4, 1e-3, 1e-2)
    warmup_steps: tuple = (250, 1000, 4000)
    # Epochs of data training after each noise candidate; the score is the
    # mean held-out accuracy over them (early learning speed).
    selection_epochs: int = 3

    def key(self):
        return dict(dataclasses.asdict(self), backend=keras.backend.backend(),
                    noise_stream=stream_lib.STREAM_VERSION)

    def folder(self, cache):
        digest = hashlib.sha1(json.dumps(self.key(), sort_keys=True).encode()).hexdigest()[:10]
        return (pathlib.Path(cache) / "feedback_alignment"
                / f"{self.dataset}-{keras.backend.backend()}-{digest}")

    def describe(self):
        return (
            f"MLP of {self.hidden_layers} hidden ReLU layers of width {self.width} "
            f"(He-normal, no BatchNorm), {self.train_size:,} "
            f"{DATASET_TITLES[self.dataset]} training images, {self.epochs} epochs of "
            f"Adam (batch {self.batch_size})"
        )


FULL_SETTINGS = (
    Setting("mnist", target_accuracy=0.95),
    Setting("fashion_mnist", target_accuracy=0.84),
)
FULL_SEEDS = tuple(range(8))
# Fashion-MNIST is trained with the recipe chosen on MNIST's held-out
# training images: choosing again would cost a third of the experiment's
# time on 2 CPU cores.
RECIPE_SOURCE = {"fashion_mnist": "mnist"}
# `--quick`: scikit-learn's 8x8 digits, a fixed recipe (no selection).
# Batches divide the training set: a partial last batch would compile a
# second train step, most of the time of these tiny runs.
QUICK_SETTING = Setting(
    "digits", train_size=1000, validation_size=297, test_size=500, hidden_layers=2, width=32,
    epochs=2, batch_size=100, target_accuracy=0.8, angle_batch=100, warmup_batch_size=100,
    warmup_checkpoints=1, learning_rates=(3e-3,), warmup_learning_rates=(1e-3,),
    warmup_steps=(30,), selection_epochs=1,
)
QUICK_SEEDS = (0, 1)


@dataclasses.dataclass
class Split:
    """Training, held-out training, test and OOD arrays of one setting."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray
    ood_name: str

    @property
    def num_classes(self):
        return int(self.y_train.max()) + 1


def load_split(setting, data_dir=None):
    """The arrays of `setting`; the held-out images are training images."""
    if setting.dataset == "digits":
        return _load_digits(setting)
    ood = OOD_OF[setting.dataset]
    task = data.load_task(setting.dataset, ood=ood, train_size=60_000,
                          test_size=setting.test_size, data_dir=data_dir)
    if setting.train_size + setting.validation_size > len(task.x_train):
        raise ValueError("The training and held-out images overlap.")
    return Split(
        task.x_train[:setting.train_size], task.y_train[:setting.train_size],
        task.x_train[-setting.validation_size:], task.y_train[-setting.validation_size:],
        task.x_test, task.y_test, task.x_ood, ood,
    )


def _load_digits(setting):
    from sklearn import datasets as sklearn_datasets

    digits = sklearn_datasets.load_digits()
    images = digits.images.astype("float32")[..., None] / 16.0
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], digits.target[order].astype("int64")
    train_end = setting.train_size
    validation_end = train_end + setting.validation_size
    test_end = validation_end + setting.test_size
    if test_end > len(images):
        raise ValueError(f"The digits have {len(images)} images, {test_end} were asked for.")
    mean, std = images[:train_end].mean(), images[:train_end].std()
    images = (images - mean) / std
    # No second small-image set ships with scikit-learn: Gaussian noise in the
    # normalised space stands in as the out-of-distribution control.
    x_ood = np.random.default_rng(1).standard_normal(
        (setting.test_size,) + images.shape[1:]).astype("float32")
    return Split(images[:train_end], labels[:train_end],
                 images[train_end:validation_end], labels[train_end:validation_end],
                 images[validation_end:test_end], labels[validation_end:test_end],
                 x_ood, "gaussian")


def build_model(setting, input_shape, num_classes, seed, arm):
    """The arm's network; every arm of a seed has the same forward weights."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    # Fixed names: the per-layer values of every run are keyed alike.
    layers += [keras.layers.Dense(setting.width, activation="relu", kernel_initializer="he_normal",
                                  name=f"hidden_{index + 1}")
               for index in range(setting.hidden_layers)]
    layers.append(keras.layers.Dense(num_classes, kernel_initializer="he_normal", name="output"))
    model = keras.Sequential(layers, name="mlp")
    if arm == "backprop":
        return model
    return to_feedback_alignment(model, seed=seed + FEEDBACK_SEED_OFFSET)


def compiled(model, learning_rate):
    model.compile(keras.optimizers.Adam(learning_rate), LOSS)
    return model


class NoiseTrace(keras.callbacks.Callback):
    """Measures a feedback-alignment model at checkpoints of its noise pretraining.

    Passed to the warm-up, whose `fit` trains a wrapper sharing `model`'s
    layers; reading `self.model` first brings the wrapper's (JAX) state into
    the shared variables.
    """

    def __init__(self, model, angle_data, steps, checkpoints):
        super().__init__()
        self.monitor = FeedbackAlignmentMonitor(data=angle_data, loss=LOSS)
        self.monitor.set_model(model)
        self.checkpoints = sorted({round(steps * k / checkpoints) for k in range(1, checkpoints + 1)})
        self.rows = [dict(step=0, **self.monitor.measure())]

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in self.checkpoints:
            self.model  # noqa: B018 (syncs the trained state, see above)
            self.rows.append(dict(step=batch + 1, **self.monitor.measure()))


class EpochTrace(keras.callbacks.Callback):
    """Test accuracy, ECE and NLL, with the alignment values, before training
    and after every epoch."""

    def __init__(self, x, y, monitor=None):
        super().__init__()
        self.x, self.y, self.monitor = x, y, monitor
        self.rows = []

    def _record(self, values):
        logits = self.model.predict(self.x, batch_size=1000, verbose=0)
        measured = compare.measure(logits, self.y, num_bins=NUM_BINS, from_logits=True)
        row = {name: measured[name] for name in ("accuracy", "ece", "nll", "mean_confidence")}
        if self.monitor is None:
            ranks = diagnostics.weight_effective_ranks(self.model)
            values = {"fa_effective_rank": float(np.mean(list(ranks.values())))}
        self.rows.append(dict(row, **{k: v for k, v in values.items() if k.startswith("fa_")}))

    def on_train_begin(self, logs=None):
        self._record(self.monitor.initial if self.monitor is not None else {})

    def on_epoch_end(self, epoch, logs=None):
        self._record(logs or {})


def noise_pretrain(model, setting, steps, learning_rate, seed, angle_data, snapshots=()):
    """Warms `model` up on noise through the library's API, tracing its angles.

    Returns:
        `(trace rows, {step: weights})` with the weights at `snapshots`.
    """
    trace = NoiseTrace(model, angle_data, steps, setting.warmup_checkpoints)
    saved = {}

    class Snapshots(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 in snapshots:
                self.model  # noqa: B018 (syncs the trained state)
                saved[batch + 1] = model.get_weights()

    keras_noisewarm.warmup(
        model, num_classes=int(model.output_shape[-1]), steps=steps,
        batch_size=setting.warmup_batch_size, optimizer="adam",
        learning_rate=learning_rate, noise=keras_noisewarm.noise.Gaussian(0.0, 1.0),
        seed=seed, verbose=0, callbacks=[trace, Snapshots()],
    )
    return trace.rows, saved


def run(split, setting, recipe, seed, arm):
    """One run of one arm: (noise pretraining), training, measurements."""
    start = time.perf_counter()
    input_shape = split.x_train.shape[1:]
    model = build_model(setting, input_shape, split.num_classes, seed, arm)
    angle_data = (split.x_train[:setting.angle_batch], split.y_train[:setting.angle_batch])
    result = {"seed": seed, "arm": arm}
    if arm == "fa_noise":
        result["noise_trace"], _ = noise_pretrain(
            model, setting, recipe["warmup_steps"], recipe["warmup_learning_rate"],
            seed + WARMUP_SEED_OFFSET, angle_data,
        )
    compiled(model, recipe["learning_rate"])
    monitor = None if arm == "backprop" else FeedbackAlignmentMonitor(data=angle_data)
    trace = EpochTrace(split.x_test, split.y_test, monitor)
    keras.utils.set_random_seed(seed + DATA_ORDER_SEED_OFFSET)
    model.fit(split.x_train, split.y_train, epochs=setting.epochs,
              batch_size=setting.batch_size, shuffle=True, verbose=0,
              callbacks=[c for c in (monitor, trace) if c is not None])
    result["epochs"] = trace.rows
    logits = model.predict(split.x_test, batch_size=1000, verbose=0)
    ood_logits = model.predict(split.x_ood, batch_size=1000, verbose=0)
    result["final"] = compare.measure(logits, split.y_test, ood_logits, num_bins=NUM_BINS,
                                      from_logits=True)
    result["effective_ranks"] = diagnostics.weight_effective_ranks(model)
    if arm != "backprop":
        result["weight_angles"] = diagnostics.weight_feedback_angles(model)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def heldout_curve(model, split, setting, learning_rate, epochs, seed):
    """Held-out (training-image) accuracy after each of `epochs` epochs."""
    compiled(model, learning_rate)
    keras.utils.set_random_seed(seed + DATA_ORDER_SEED_OFFSET)
    accuracies = []
    for _ in range(epochs):
        model.fit(split.x_train, split.y_train, epochs=1, batch_size=setting.batch_size,
                  shuffle=True, verbose=0)
        logits = model.predict(split.x_validation, batch_size=1000, verbose=0)
        accuracies.append(float(np.mean(logits.argmax(-1) == split.y_validation)))
    return accuracies


def choose_recipe(split, setting, folder, verbose=1):
    """Chooses the learning rates and the noise pretraining on held-out training images.

    1. The data learning rate: the best final held-out accuracy of plain
       feedback alignment after `epochs` epochs.
    2. The noise pretraining (learning rate, steps): the best mean held-out
       accuracy over the first `selection_epochs` epochs of feedback
       alignment after it, at the chosen data learning rate. Shorter
       pretrainings are snapshots of the longest one (Adam at a constant
       learning rate: the first k steps of a long run are a k-step run).

    Returns:
        The recipe dict, with the candidates' scores under `"scores"`.
    """
    path = folder / "recipe.json"
    if path.is_file():
        return json.loads(path.read_text())
    input_shape, classes = split.x_train.shape[1:], split.num_classes
    if len(setting.learning_rates) == 1 and len(setting.warmup_learning_rates) == 1 \
            and len(setting.warmup_steps) == 1:
        recipe = {"learning_rate": setting.learning_rates[0],
                  "warmup_learning_rate": setting.warmup_learning_rates[0],
                  "warmup_steps": setting.warmup_steps[0], "scores": None}
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recipe, indent=1))
        return recipe
    lr_scores = {}
    for learning_rate in setting.learning_rates:
        finals = []
        for seed in SELECTION_SEEDS:
            model = build_model(setting, input_shape, classes, seed, "fa")
            finals.append(heldout_curve(model, split, setting, learning_rate, setting.epochs,
                                        seed)[-1])
        lr_scores[f"{learning_rate:g}"] = float(np.mean(finals))
        if verbose:
            print(f"  FA data lr {learning_rate:g}: held-out accuracy {np.mean(finals):.4f}",
                  flush=True)
    learning_rate = float(max(lr_scores, key=lr_scores.get))
    noise_scores = {}
    for seed in SELECTION_SEEDS:
        baseline = build_model(setting, input_shape, classes, seed, "fa")
        noise_scores.setdefault("none", []).append(float(np.mean(heldout_curve(
            baseline, split, setting, learning_rate, setting.selection_epochs, seed))))
        for warmup_lr in setting.warmup_learning_rates:
            model = build_model(setting, input_shape, classes, seed, "fa")
            angle_data = (split.x_train[:setting.angle_batch], split.y_train[:setting.angle_batch])
            _, saved = noise_pretrain(model, setting, max(setting.warmup_steps), warmup_lr,
                                      seed + WARMUP_SEED_OFFSET, angle_data,
                                      snapshots=setting.warmup_steps)
            for steps in setting.warmup_steps:
                model.set_weights(saved[steps])
                score = float(np.mean(heldout_curve(
                    model, split, setting, learning_rate, setting.selection_epochs, seed)))
                noise_scores.setdefault(f"{warmup_lr:g}/{steps}", []).append(score)
    noise_means = {name: float(np.mean(values)) for name, values in noise_scores.items()}
    if verbose:
        for name, value in noise_means.items():
            print(f"  noise lr/steps {name}: held-out accuracy {value:.4f}", flush=True)
    best = max((name for name in noise_means if name != "none"), key=noise_means.get)
    warmup_lr, steps = best.split("/")
    recipe = {"learning_rate": learning_rate, "warmup_learning_rate": float(warmup_lr),
              "warmup_steps": int(steps),
              "scores": {"learning_rate": lr_scores, "noise": noise_means}}
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recipe, indent=1))
    return recipe


def results_of(setting, seeds, context, recipe=None):
    """Runs (or loads) every arm of every seed: `(recipe, {arm: [result]})`.

    Args:
        recipe: The recipe chosen for another dataset, or `None` to choose
            one on this dataset's held-out training images.
    """
    folder = setting.folder(context.cache)
    split = load_split(setting, context.data_dir)
    if recipe is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "recipe.json").write_text(json.dumps(recipe, indent=1))
    else:
        if context.verbose and not (folder / "recipe.json").is_file():
            print(f"{DATASET_TITLES[setting.dataset]}: choosing the recipe on held-out "
                  "training images", flush=True)
        recipe = dict(choose_recipe(split, setting, folder, verbose=context.verbose),
                      chosen_on=setting.dataset)
    results = {arm: [] for arm in ARMS}
    for seed in seeds:
        for arm in ARMS:
            path = folder / f"seed{seed}_{arm}.json"
            if path.is_file():
                result = json.loads(path.read_text())
            else:
                result = run(split, setting, recipe, seed, arm)
                path.write_text(json.dumps(result))
                if context.verbose:
                    print(f"  seed {seed} {arm}: test accuracy "
                          f"{result['final']['accuracy']:.4f} ({result['seconds']:.0f} s)",
                          flush=True)
            results[arm].append(result)
    return recipe, results


def epochs_to(accuracies, target):
    """Epochs (interpolated linearly) until `accuracies` first reach `target`.

    `accuracies[0]` is before training. NaN if never reached.
    """
    accuracies = np.asarray(accuracies, dtype="float64")
    reached = np.flatnonzero(accuracies >= target)
    if reached.size == 0:
        return float("nan")
    index = int(reached[0])
    if index == 0:
        return 0.0
    before, after = accuracies[index - 1], accuracies[index]
    return float(index - 1 + (target - before) / (after - before))


def summaries(setting, results):
    """Per-run numbers of the tables: `{arm: {name: array over seeds}}`."""
    table = {}
    for arm in ARMS:
        runs = results[arm]
        accuracy = np.array([[row["accuracy"] for row in r["epochs"]] for r in runs])
        reached = np.array([epochs_to(row, setting.target_accuracy) for row in accuracy])
        values = {
            "final_accuracy": np.array([r["final"]["accuracy"] for r in runs]),
            "mean_accuracy": accuracy[:, 1:].mean(axis=1),
            "epochs_to_target": np.where(np.isnan(reached), setting.epochs + 1, reached),
            "reached": np.isfinite(reached),
            "ece": np.array([r["final"]["ece"] for r in runs]),
            "nll": np.array([r["final"]["nll"] for r in runs]),
            "ood_confidence": np.array([r["final"]["ood_confidence"] for r in runs]),
            "ood_auroc": np.array([r["final"]["ood_auroc"] for r in runs]),
            "effective_rank": np.array([np.mean(list(r["effective_ranks"].values())) for r in runs]),
            "effective_rank_start": np.array([r["epochs"][0]["fa_effective_rank"] for r in runs]),
        }
        if arm != "backprop":
            values["weight_angle_start"] = np.array([r["epochs"][0]["fa_weight_angle"] for r in runs])
            values["weight_angle_end"] = np.array([r["epochs"][-1]["fa_weight_angle"] for r in runs])
            values["update_angle_start"] = np.array([r["epochs"][0]["fa_update_angle"] for r in runs])
            values["update_angle_end"] = np.array([r["epochs"][-1]["fa_update_angle"] for r in runs])
        if arm == "fa_noise":
            values["weight_angle_before_noise"] = np.array(
                [r["noise_trace"][0]["fa_weight_angle"] for r in runs])
            values["effective_rank_before_noise"] = np.array(
                [r["noise_trace"][0]["fa_effective_rank"] for r in runs])
        table[arm] = values
    return table


# (name, title, lower is better) of the table rows.
ROWS = (
    ("final_accuracy", "test accuracy after training", False),
    ("mean_accuracy", "mean test accuracy over epochs (learning speed)", False),
    ("epochs_to_target", "epochs to the target accuracy", True),
    ("ece", "ECE (15 bins)", True),
    ("nll", "NLL", True),
    ("ood_confidence", "mean confidence on OOD images", True),
    ("ood_auroc", "OOD AUROC (max softmax)", False),
    ("effective_rank", "effective rank of the weights (mean over layers)", True),
    ("weight_angle_start", "angle W vs B when data training starts (deg)", True),
    ("weight_angle_end", "angle W vs B after training (deg)", True),
    ("update_angle_start", "angle FA update vs true gradient, start (deg)", True),
    ("update_angle_end", "angle FA update vs true gradient, end (deg)", True),
)


def _summary(values):
    return str(statistics.summarize(values)) if len(values) else "—"


def dataset_section(setting, recipe, results, seeds):
    """Table and verdict lines of one dataset; returns `(lines, verdicts)`."""
    table = summaries(setting, results)
    fa, noise, bp = table["fa"], table["fa_noise"], table["backprop"]
    n = len(seeds)
    title = DATASET_TITLES[setting.dataset]
    lines = [
        f"### {title}",
        "",
        f"{setting.describe()}; out-of-distribution: "
        f"{DATASET_TITLES[OOD_OF[setting.dataset]]} images "
        f"({setting.test_size:,}), in-distribution: {setting.test_size:,} test images. "
        f"Target accuracy {setting.target_accuracy:g} (fixed in advance; a run that never "
        f"reaches it counts as {setting.epochs + 1} epochs). Seeds {', '.join(map(str, seeds))}.",
        "",
        _recipe_line(setting, recipe),
        "",
        "| metric | backprop | FA | FA + noise | noise better (of FA pairs) | Wilcoxon p (FA vs FA + noise) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row_title, lower in ROWS:
        if name not in fa:
            continue
        wins = statistics.wins(fa[name], noise[name], lower_is_better=lower)
        p_value = statistics.paired_wilcoxon(fa[name], noise[name])
        lines.append(
            f"| {row_title} | {_summary(bp.get(name, []))} | {_summary(fa[name])} | "
            f"{_summary(noise[name])} | {wins}/{n} | {p_value:.2g} |"
        )
    lines += ["", "Angle between W and B per layer (median over seeds, degrees):", "",
              "| layer | FA+noise: before noise | after noise | after training | FA: after training |",
              "|---|---|---|---|---|"]
    trace_rows = [run["noise_trace"] for run in results["fa_noise"]]
    for name in _layer_names(results):
        key = f"fa_weight_angle_{name}"
        before = np.median([rows[0][key] for rows in trace_rows])
        after = np.median([rows[-1][key] for rows in trace_rows])
        end_noise = np.median([run["epochs"][-1][key] for run in results["fa_noise"]])
        end_fa = np.median([run["epochs"][-1][key] for run in results["fa"]])
        label = f"{name} (B unused)" if name == _layer_names(results)[0] else name
        lines.append(f"| {label} | {before:.2f} | {after:.2f} | {end_noise:.2f} | {end_fa:.2f} |")
    reached = {arm: int(table[arm]["reached"].sum()) for arm in ARMS}
    lines += [
        "",
        "Median [25th, 75th percentile] over seeds. Runs reaching the target accuracy: "
        + ", ".join(f"{ARM_TITLES[arm]} {reached[arm]}/{n}" for arm in ARMS) + ".",
        "",
    ]
    verdicts = {}
    speed_wins = statistics.wins(fa["mean_accuracy"], noise["mean_accuracy"], lower_is_better=False)
    speed_p = statistics.paired_wilcoxon(fa["mean_accuracy"], noise["mean_accuracy"])
    epochs_p = statistics.paired_wilcoxon(fa["epochs_to_target"], noise["epochs_to_target"])
    faster = (np.median(noise["mean_accuracy"]) > np.median(fa["mean_accuracy"])
              and speed_p < 0.05)
    verdicts["faster"] = (
        f"{title} {_word(faster)}: mean test accuracy over the {setting.epochs} epochs "
        f"{np.median(fa['mean_accuracy']):.4f} -> {np.median(noise['mean_accuracy']):.4f} "
        f"(higher in {speed_wins}/{n} seeds, p = {speed_p:.2g}); epochs to "
        f"{setting.target_accuracy:g} {np.median(fa['epochs_to_target']):.2f} -> "
        f"{np.median(noise['epochs_to_target']):.2f} (p = {epochs_p:.2g})"
    )
    gap_fa = bp["mean_accuracy"] - fa["mean_accuracy"]
    gap_noise = bp["mean_accuracy"] - noise["mean_accuracy"]
    closed = np.where(gap_fa > 0, 1 - gap_noise / np.where(gap_fa > 0, gap_fa, 1), np.nan)
    closer_wins = statistics.wins(np.abs(gap_fa), np.abs(gap_noise))
    closer_p = statistics.paired_wilcoxon(np.abs(gap_fa), np.abs(gap_noise))
    closer = np.median(np.abs(gap_noise)) < np.median(np.abs(gap_fa)) and closer_p < 0.05
    verdicts["closer"] = (
        f"{title} {_word(closer)}: gap to backprop in mean test accuracy "
        f"{np.median(gap_fa):.4f} (FA) vs {np.median(gap_noise):.4f} (FA + noise), "
        f"smaller in {closer_wins}/{n} seeds, p = {closer_p:.2g}; median share of the "
        f"gap closed {np.nanmedian(closed):.0%}"
    )
    before, after = noise["weight_angle_before_noise"], noise["weight_angle_start"]
    angle_wins = statistics.wins(before, after)
    angle_p = statistics.paired_wilcoxon(before, after)
    fell = np.median(after) < np.median(before) and angle_p < 0.05
    names = _layer_names(results)
    falls = {name: np.median([rows[0][f"fa_weight_angle_{name}"] - rows[-1][f"fa_weight_angle_{name}"]
                              for rows in trace_rows]) for name in names[1:]}
    verdicts["angle"] = (
        f"{title} {_word(fell)}: mean angle between W and B (layers whose feedback is "
        f"used) {np.median(before):.2f}° before -> {np.median(after):.2f}° after the "
        f"noise pretraining (lower in {angle_wins}/{n} seeds, p = {angle_p:.2g}), most of it "
        f"in the output layer (median fall per layer: "
        + ", ".join(f"{name} {fall:.2f}°" for name, fall in falls.items())
        + f"); after training {np.median(fa['weight_angle_end']):.2f}° (FA) vs "
        f"{np.median(noise['weight_angle_end']):.2f}° (FA + noise)"
    )
    rank_wins = statistics.wins(fa["effective_rank"], noise["effective_rank"])
    rank_p = statistics.paired_wilcoxon(fa["effective_rank"], noise["effective_rank"])
    lower_rank = (np.median(noise["effective_rank"]) < np.median(fa["effective_rank"])
                  and rank_p < 0.05)
    verdicts["rank"] = (
        f"{title} {_word(lower_rank)}: effective rank after training "
        f"{np.median(fa['effective_rank']):.1f} (FA) -> {np.median(noise['effective_rank']):.1f} "
        f"(FA + noise; lower in {rank_wins}/{n} seeds, p = {rank_p:.2g}); backprop "
        f"{np.median(bp['effective_rank']):.1f}; during the noise pretraining "
        f"{np.median(noise['effective_rank_before_noise']):.1f} -> "
        f"{np.median(noise['effective_rank_start']):.1f}"
    )
    ece_p = statistics.paired_wilcoxon(fa["ece"], noise["ece"])
    ood_p = statistics.paired_wilcoxon(fa["ood_confidence"], noise["ood_confidence"])
    lines.append(
        f"Calibration and OOD (not a claim tested here): ECE {np.median(fa['ece']):.4f} (FA) "
        f"vs {np.median(noise['ece']):.4f} (FA + noise), p = {ece_p:.2g}; mean OOD "
        f"confidence {np.median(fa['ood_confidence']):.3f} vs "
        f"{np.median(noise['ood_confidence']):.3f}, p = {ood_p:.2g}; backprop ECE "
        f"{np.median(bp['ece']):.4f}, OOD confidence {np.median(bp['ood_confidence']):.3f}."
    )
    lines.append("")
    return lines, verdicts


def _layer_names(results):
    """The feedback layers' names, in order, as the runs logged them."""
    prefix = "fa_weight_angle_"
    return [name[len(prefix):] for name in results["fa_noise"][0]["noise_trace"][0]
            if name.startswith(prefix)]


def _word(holds):
    return "**holds**" if holds else "**does not hold**"


def _recipe_line(setting, recipe):
    text = (
        f"Recipe: data learning rate {recipe['learning_rate']:g}; noise pretraining "
        f"{recipe['warmup_steps']:,} steps of {setting.warmup_batch_size} Gaussian N(0, 1) "
        f"inputs with uniform random labels, Adam {recipe['warmup_learning_rate']:g}, through "
        "`keras_noisewarm.warmup` (so it trains through the feedback matrices)."
    )
    scores = recipe.get("scores")
    if not scores:
        return text + " (Fixed in the quick mode: no selection.)"
    learning = ", ".join(f"{lr}: {value:.4f}" for lr, value in scores["learning_rate"].items())
    noise = ", ".join(f"{name}: {value:.4f}" for name, value in scores["noise"].items())
    if recipe["chosen_on"] != setting.dataset:
        return (f"{text} The recipe chosen on {DATASET_TITLES[recipe['chosen_on']]}'s held-out "
                "training images, used unchanged (not chosen again on this dataset).")
    return (
        f"{text} Chosen on {setting.validation_size:,} held-out training images with seeds "
        f"{', '.join(map(str, SELECTION_SEEDS))}: data learning rate by plain FA's final "
        f"held-out accuracy ({learning}); noise learning rate/steps by FA's mean held-out "
        f"accuracy over the first {setting.selection_epochs} epochs after it ({noise}; "
        "`none`: no noise)."
    )


def reproduce(context):
    """Trains (or loads) the three arms on every dataset; draws the figure.

    Returns:
        The markdown section.
    """
    settings = (QUICK_SETTING,) if context.quick else FULL_SETTINGS
    seeds = context.seeds_or(QUICK_SEEDS if context.quick else FULL_SEEDS)
    everything, recipes = [], {}
    for setting in settings:
        source = recipes.get(RECIPE_SOURCE.get(setting.dataset))
        recipe, results = results_of(setting, seeds, context, recipe=source)
        recipes[setting.dataset] = recipe
        everything.append((setting, recipe, results))
    _draw(context, everything)
    lines = [
        "## Feedback alignment with noise pretraining (companion paper, NeurIPS 2024)",
        "",
        f"Command: `{context.command}`",
        "",
        "Arms, paired by seed (same initial forward weights; the two FA arms share their "
        "random feedback matrices B, drawn N(0, 2/fan_in); same data order): backprop; "
        "feedback alignment (FA, `FeedbackAlignmentDense` via `to_feedback_alignment`); FA "
        "after noise pretraining. Angles are measured with "
        "`keras_noisewarm.callbacks.FeedbackAlignmentMonitor`: between each layer's W and B "
        "(mean over the layers whose feedback is used, i.e. all but the first), and "
        f"between the FA update and the true gradient on the first {settings[0].angle_batch} "
        "training images (mean over the layers below the output); effective rank (Roy & Vetterli 2007) is the mean "
        "over all weight matrices. Paired two-sided Wilcoxon tests, FA vs FA + noise; a "
        "direction holds when the medians move the paper's way with p < 0.05. The noise "
        "pretraining sees no data, so for a given seed it yields the same network on both "
        "datasets (their 'when data training starts' angles coincide).",
        "",
        context.figure_link(FIGURE, "learning curves, angles and effective ranks"),
        "",
    ]
    verdicts = {}
    for setting, recipe, results in everything:
        section, found = dataset_section(setting, recipe, results, seeds)
        lines += section
        for name, text in found.items():
            verdicts.setdefault(name, []).append(text)
    claims = (
        ("faster", "FA + noise pretraining converges faster than FA alone"),
        ("closer", "FA + noise pretraining learns closer to backprop"),
        ("angle", "the angle between W and B falls during noise pretraining"),
        ("rank", "effective rank falls with noise pretraining"),
    )
    lines += ["### The paper's directions", ""]
    for name, claim in claims:
        lines.append(f"Paper's claim ({claim}): " + "; ".join(verdicts[name]) + ".")
        lines.append("")
    if context.quick:
        lines += ["Quick mode: tiny sizes on scikit-learn's 8x8 digits, a smoke run, not a "
                  "measurement.", ""]
    return "\n".join(lines)


def _draw(context, everything):
    plt = plot.pyplot()
    figure, axes = plt.subplots(len(everything), 5, figsize=(24, 4.4 * len(everything)),
                                layout="constrained", squeeze=False)
    for row, (setting, recipe, results) in zip(axes, everything):
        title = DATASET_TITLES[setting.dataset]
        epochs = np.arange(setting.epochs + 1)
        accuracy_ax, noise_ax, angle_ax, update_ax, rank_ax = row
        for arm in ARMS:
            curves = [[r["accuracy"] for r in run["epochs"]] for run in results[arm]]
            plots.median_band(accuracy_ax, epochs, curves, ARM_TITLES[arm], ARM_COLORS[arm])
            ranks = [[r["fa_effective_rank"] for r in run["epochs"]] for run in results[arm]]
            plots.median_band(rank_ax, epochs, ranks, ARM_TITLES[arm], ARM_COLORS[arm])
        accuracy_ax.axhline(setting.target_accuracy, color="black", linestyle=":", linewidth=1)
        accuracy_ax.set(xlabel="epoch", ylabel="test accuracy",
                        title=f"{title}: learning curves (target dotted)")
        low = min(np.min([r["accuracy"] for r in run["epochs"][1:]])
                  for arm in ARMS for run in results[arm])
        accuracy_ax.set_ylim(max(0.0, low - 0.02), None)
        steps = [r["step"] for r in results["fa_noise"][0]["noise_trace"]]
        layer_names = _layer_names(results)
        for index, name in enumerate(layer_names):
            values = [[r[f"fa_weight_angle_{name}"] for r in run["noise_trace"]]
                      for run in results["fa_noise"]]
            plots.median_band(noise_ax, steps, values, f"{name} (B unused)" if index == 0 else name,
                              plt.cm.viridis(index / max(1, len(layer_names) - 1)))
        noise_ax.set(xlabel="noise pretraining step", ylabel="angle W vs B (deg)",
                     title=f"{title}: W-B angle during noise pretraining")
        for arm in ("fa", "fa_noise"):
            weight = [[r["fa_weight_angle"] for r in run["epochs"]] for run in results[arm]]
            update = [[r["fa_update_angle"] for r in run["epochs"]] for run in results[arm]]
            plots.median_band(angle_ax, epochs, weight, ARM_TITLES[arm], ARM_COLORS[arm])
            plots.median_band(update_ax, epochs, update, ARM_TITLES[arm], ARM_COLORS[arm])
        angle_ax.set(xlabel="epoch", ylabel="mean angle W vs B (deg)",
                     title=f"{title}: W-B angle during training")
        update_ax.set(xlabel="epoch", ylabel="mean angle (deg)",
                      title=f"{title}: FA update vs true gradient")
        rank_ax.set(xlabel="epoch", ylabel="mean effective rank",
                    title=f"{title}: effective rank of the weights")
        for ax in row:
            ax.legend(fontsize=8)
            ax.title.set_fontsize(10)
    plot.save_figure(figure, context.figure_path(FIGURE))
