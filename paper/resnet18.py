"""The paper's headline setting: a ResNet-18 trained from scratch on CIFAR-10.

Both arms of a seed start from the same Kaiming-initialised CIFAR ResNet-18
(`keras_noisewarm.models.cifar_resnet`) and see the same augmented images in
the same order; one is first warmed up with the authors' recipe
(`recipe="resnet"`: SGD 0.01, momentum 0.9, weight decay 0.01, batch 256, on
N(0, 1) noise in the normalised input space). Then both train with a fresh
SGD 0.1, momentum 0.9, weight decay 1e-4 (PyTorch's, translated, see
`paper.augmented_training.sgd`), cosine decay, batch 256, random crop (pad 4)
and horizontal flip, on per-channel normalised images.

Scales (`SCALES`):

- `"full"`: the authors' recipe, sized for a GPU: width 64, every training
  image found (50,000 with the official set; the local copy has 20,000), 50
  epochs, the 780-step warm-up; `python -m paper reproduce resnet18`.
- `"cpu"`: what this 2-core CPU measured in about an hour: width 8 (an
  eighth of the channels), 5,000 images, 10 epochs, a warm-up of 10% of
  the training's examples (the paper's ratio, 0.25M : 2.5M);
  `python -m paper reproduce resnet18_cpu` (`paper.resnet18_cpu`).
- `"quick"` (`--quick` with either target): a smoke run of minutes.

Held-out images: the local copy's stand-in test batch (official training
batch 5); out-of-distribution: MNIST test digits padded to 32x32x3
(`--ood`; SVHN, the paper's, is not available offline). Nothing is tuned:
every hyper-parameter is the authors'.
"""

import dataclasses
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import compare
from keras_noisewarm import datasets
from keras_noisewarm import plot
from keras_noisewarm.models import cifar_resnet
from paper import augmented_training
from paper import data
from paper import plots

ARMS = ("baseline", "warmup")
TITLES = {"baseline": "no warm-up", "warmup": "noise warm-up"}
NUM_BINS = 15
VERSION = 1  # bump when a run's protocol changes


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of one from-scratch comparison."""

    name: str
    width: int
    train_size: int  # None: every training image found
    test_size: int
    ood_size: int
    epochs: int
    seeds: tuple
    batch_size: int = 256
    learning_rate: float = 0.1
    warmup_steps: int = None  # None: `warmup_budget` of the training's examples
    warmup_budget: float = None
    version: int = VERSION

    def describe(self, train_size):
        warmup = (f"{self.warmup_steps} steps" if self.warmup_steps
                  else f"{self.warmup_budget:.0%} of the training's examples")
        return (f"CIFAR ResNet-18 of width {self.width} (the paper: 64), {train_size:,} training "
                f"images, {self.epochs} epochs, batch {self.batch_size}; warm-up `recipe=\"resnet\"` "
                f"for {warmup}")


SCALES = {
    "full": Scale("full", width=64, train_size=None, test_size=10_000, ood_size=10_000, epochs=50,
                  seeds=(0, 1, 2, 3, 4), warmup_steps=780),
    "cpu": Scale("cpu", width=8, train_size=5000, test_size=5000, ood_size=5000, epochs=10,
                 seeds=(0, 1, 2, 3, 4), warmup_budget=0.1),
    "quick": Scale("quick", width=4, train_size=512, test_size=256, ood_size=256, epochs=2,
                   seeds=(0, 1), batch_size=128, warmup_steps=8),
}
FIGURE = "resnet18_{scale}_paired.png"


def load(scale, context):
    """The normalised CIFAR-10 task of `scale` (`paper.data.load_task`)."""
    train_size = scale.train_size
    if train_size is None:
        folder = pathlib.Path(context.data_dir) if context.data_dir else data.local_data_dir()
        (x_train, _), _ = datasets.load_cifar10(folder / "cifar10-subset" if folder else None)
        train_size = len(x_train)
    return data.load_task("cifar10", ood=context.ood, train_size=train_size,
                          test_size=scale.test_size, ood_size=scale.ood_size, data_dir=context.data_dir)


def warmup_of(scale, task, seed):
    length = ({"steps": scale.warmup_steps} if scale.warmup_steps else
              {"budget": scale.warmup_budget, "training_examples": len(task.x_train) * scale.epochs})
    return keras_noisewarm.NoiseWarmup(
        num_classes=task.num_classes, recipe="resnet", seed=seed + compare.WARMUP_SEED_OFFSET,
        verbose=0, **length)


def run(task, scale, seed, arm):
    """One network of one arm: (warm up,) train, measure. Returns its result dict."""
    keras.utils.set_random_seed(seed)
    model = cifar_resnet(18, num_classes=task.num_classes, width=scale.width, input_shape=task.input_shape)
    steps = augmented_training.steps_per_epoch(len(task.x_train), scale.batch_size) * scale.epochs
    model.compile(optimizer=augmented_training.sgd(scale.learning_rate, steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = {"seed": seed, "arm": arm, "warmup_seconds": 0.0, "warmup_steps": 0}
    if arm == "warmup":
        start = time.perf_counter()
        history = warmup_of(scale, task, seed).run(model)
        result["warmup_seconds"] = round(time.perf_counter() - start, 3)
        result["warmup_steps"] = int(history.params["steps"])
        result["noise_confidence_after_warmup"] = keras_noisewarm.noise_confidence(model).mean_confidence
    result["start_confidence"] = augmented_training.training_mode_confidence(model, task.input_shape)
    seconds, losses = augmented_training.train(model, task.x_train, task.y_train, scale.epochs,
                                               scale.batch_size, seed)
    result["fit_seconds"] = round(seconds, 3)
    result["train_loss"] = losses
    result.update(compare.measure(augmented_training.predict(model, task.x_test), task.y_test,
                                  augmented_training.predict(model, task.x_ood), num_bins=NUM_BINS,
                                  from_logits=True))
    result["noise_confidence_trained"] = keras_noisewarm.noise_confidence(model).mean_confidence
    return result


def runs(scale, context):
    """Every run of `scale` (trained now or read from the cache), `{arm: [per seed]}`."""
    seeds = context.seeds_or(scale.seeds)
    store = augmented_training.RunFiles(context.cache, f"resnet18-{scale.name}",
                                        dict(dataclasses.asdict(scale), seeds=None, ood=context.ood))
    task = None
    for seed in seeds:
        for arm in ARMS:
            name = f"seed{seed}_{arm}"
            if store.has(name):
                continue
            task = task or load(scale, context)
            store.save(name, dict(run(task, scale, seed, arm), train_size=len(task.x_train)))
            if context.verbose:
                print(f"  resnet18 {scale.name}: seed {seed} {arm} done", flush=True)
    return seeds, {arm: [store.load(f"seed{seed}_{arm}") for seed in seeds] for arm in ARMS}


def cost_line(results):
    warm = np.median([run["warmup_seconds"] for run in results["warmup"]])
    fit = np.median([run["fit_seconds"] for run in results["warmup"] + results["baseline"]])
    steps = int(np.median([run["warmup_steps"] for run in results["warmup"]]))
    return (f"Warm-up cost: {steps} steps, {warm:.0f} s against {fit:.0f} s of data training per "
            f"network (medians): **{warm / fit:.1%}** of the training's wall time (this CPU, TensorFlow "
            "unless the footer says otherwise; the warm-up time includes the BatchNorm "
            "re-estimation).")


def verdict(rows, scale):
    ece, accuracy, auroc = rows["ece"], rows["accuracy"], rows["ood_auroc"]
    holds = ece["warmup"].median < ece["baseline"].median and ece["wins"] == ece["seeds"]
    return (
        f"Paper's claim (ResNet-18 from scratch: lower ECE, accuracy not worse, higher OOD AUROC), "
        f"at the `{scale.name}` scale: ECE {ece['baseline'].median:.3f} -> {ece['warmup'].median:.3f} "
        f"(lower in {ece['wins']}/{ece['seeds']} seeds, p = {ece['p_value']:.2g}), accuracy "
        f"{accuracy['baseline'].median:.3f} -> {accuracy['warmup'].median:.3f}, OOD AUROC "
        f"{auroc['baseline'].median:.3f} -> {auroc['warmup'].median:.3f} (p = {auroc['p_value']:.2g}): "
        f"**{'ECE lower in every seed' if holds else 'ECE not lower in every seed'}**."
    )


def draw(context, results, figure_name):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
    for ax, (name, label) in zip(axes, (("ece", "ECE (15 bins)"), ("nll", "NLL"),
                                        ("ood_auroc", "OOD AUROC (max softmax)"))):
        baseline = [run[name] for run in results["baseline"]]
        warmup = [run[name] for run in results["warmup"]]
        plots.paired_plot(ax, baseline, warmup, label,
                          keras_noisewarm.statistics.paired_wilcoxon(baseline, warmup), TITLES)
    plot.save_figure(figure, context.figure_path(figure_name))


def section(context, scale, title, extra_lines=()):
    """Runs (or resumes) `scale` and returns its markdown section."""
    seeds, results = runs(scale, context)
    rows = {row["metric"]: row for row in compare.comparison_rows(results)}
    figure_name = FIGURE.format(scale=scale.name)
    draw(context, results, figure_name)
    train_size = results["baseline"][0]["train_size"]
    after = [run["noise_confidence_after_warmup"] for run in results["warmup"]]
    start = {arm: np.median([run["start_confidence"] for run in results[arm]]) for arm in ARMS}
    trained = {arm: np.median([run["noise_confidence_trained"] for run in results[arm]]) for arm in ARMS}
    lines = [
        f"## {title}",
        "",
        f"Command: `{context.command}`",
        "",
        f"{scale.describe(train_size)}. Then a fresh SGD {scale.learning_rate:g}, momentum 0.9, "
        "weight decay 1e-4 (PyTorch's convention; 1e-3 in Keras's, see `paper/augmented_training.py`), "
        "cosine decay, random crop (pad 4) and horizontal flip, per-channel normalisation. Seeds "
        f"{', '.join(map(str, seeds))}: both arms of a seed start from the same weights and see the "
        f"same images in the same order. Measured on {scale.test_size:,} images of the stand-in test "
        f"batch; OOD: {scale.ood_size:,} {context.ood} test images "
        f"({'MNIST digits padded to 32x32x3' if context.ood == 'mnist' else context.ood}, normalised "
        "alike; SVHN is not available offline).",
        *extra_lines,
        "",
        compare.markdown_table(list(rows.values())),
        "",
        f"With {len(seeds)} seeds the smallest two-sided Wilcoxon p possible is "
        f"{2 / 2 ** len(seeds):.3g}.",
        "",
        f"Mean confidence on N(0, 1) noise (chance 0.1): at the start of data training, with "
        f"BatchNorm on batch statistics, {start['baseline']:.3f} without warm-up and "
        f"{start['warmup']:.3f} after it ({np.median(after):.3f} in inference mode after the "
        f"warm-up); after training {trained['baseline']:.3f} and {trained['warmup']:.3f} "
        "(inference mode; medians over seeds).",
        "",
        cost_line(results),
        "",
        context.figure_link(figure_name, "paired ECE, NLL and OOD AUROC per seed"),
        "",
        verdict(rows, scale),
        "",
    ]
    return "\n".join(lines)


def reproduce(context):
    """The authors' full recipe (a GPU's work); `--quick`: a smoke run."""
    scale = SCALES["quick" if context.quick else "full"]
    return section(context, scale, "ResNet-18 from scratch on CIFAR-10: the authors' recipe")
