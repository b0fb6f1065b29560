"""Warm-up during fine-tuning: a pretrained keras-hub ResNet with a new head.

For each seed a keras-hub `ResNetBackbone` (built from constructor
arguments, ImageNet-style stem) is pretrained on CIFAR-10 classes 0-4 and
saved as a keras-hub preset (`save_to_preset`, the cache). Then, for each
arm, the backbone is loaded back with `keras_hub.models.Backbone.from_preset`,
given a new Dense head for classes 5-9 (the same initial head in every arm
of a seed), and fine-tuned end to end on a small set of classes 5-9:

- `"baseline"`: no warm-up;
- `"warmup"`: the whole network warmed up on noise first;
- `"warmup_head"`: only the new head warmed up (`freeze=backbone`), the
  backbone kept exactly as pretrained.

The warm-up is `recipe="resnet"` (SGD 0.01, momentum 0.9, weight decay
0.01, batch 256, N(0, 1) noise in the normalised input space) for 10% of
the fine-tuning's examples, the paper's ratio; it is not tuned. The
fine-tuning learning rate is chosen on held-out *training* images
(`choose_learning_rate`), never on the test images.

    python -m paper reproduce finetune --output docs --cache outputs/reproduce-runs

Held-out: the stand-in test batch's classes 5-9 (in distribution); OOD:
MNIST test digits padded to 32x32x3 (far) and the test batch's classes 0-4,
which the backbone was pretrained on but the fine-tuned head never saw
(near).
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
from keras_noisewarm import statistics
from paper import augmented_training
from paper import data
from paper import plots

ARMS = ("baseline", "warmup", "warmup_head")
TITLES = {"baseline": "no warm-up", "warmup": "whole network warmed up",
          "warmup_head": "new head warmed up (backbone frozen)"}
NUM_BINS = 15
VERSION = 1
# (name, title, lower is better): compare's metrics, and the near-OOD set's.
METRICS = (
    ("accuracy", "accuracy", False),
    ("ece", "ECE (15 bins)", True),
    ("nll", "NLL", True),
    ("brier", "Brier score", True),
    ("ood_auroc", "OOD AUROC, MNIST (far)", False),
    ("near_ood_auroc", "OOD AUROC, classes 0-4 (near)", False),
    ("ood_confidence", "mean confidence, MNIST", True),
)


@dataclasses.dataclass(frozen=True)
class Scale:
    """The sizes of the fine-tuning experiment."""

    name: str
    pretrain_size: int
    pretrain_epochs: int
    finetune_size: int
    finetune_epochs: int
    test_size: int  # per in-distribution and near-OOD half
    ood_size: int
    seeds: tuple
    stack_filters: tuple = (64, 128, 256)
    batch_size: int = 128
    pretrain_learning_rate: float = 0.1
    learning_rates: tuple = (0.01, 0.03, 0.1)  # fine-tuning candidates, chosen on validation
    validation_size: int = 2000
    warmup_budget: float = 0.1
    version: int = VERSION


SCALES = {
    "full": Scale("full", pretrain_size=5000, pretrain_epochs=10, finetune_size=1000, finetune_epochs=15,
                  test_size=5000, ood_size=5000, seeds=(0, 1, 2, 3, 4)),
    "quick": Scale("quick", pretrain_size=256, pretrain_epochs=1, finetune_size=128, finetune_epochs=2,
                   test_size=128, ood_size=128, seeds=(0, 1), stack_filters=(64, 64), batch_size=64,
                   learning_rates=(0.01, 0.03), validation_size=128),
}
FIGURE = "finetune_{scale}_paired.png"
# Training images from here on are held out for validation.
VALIDATION_START = 15_000


@dataclasses.dataclass
class Splits:
    pretrain: tuple
    pretrain_validation: tuple
    finetune: tuple
    validation: tuple
    test: tuple
    near_ood: np.ndarray
    far_ood: np.ndarray


def load(scale, context):
    """The splits, normalised with the pretraining images' per-channel statistics."""
    folder = pathlib.Path(context.data_dir) if context.data_dir else data.local_data_dir()
    (x, y), (x_test, y_test) = datasets.load_cifar10(folder / "cifar10-subset" if folder else None)
    y, y_test = y.reshape(-1), y_test.reshape(-1)
    first, second = np.arange(len(x)) < VALIDATION_START, np.arange(len(x)) >= VALIDATION_START
    pretrain = np.flatnonzero(first & (y < 5))[:scale.pretrain_size]
    finetune = np.flatnonzero(first & (y >= 5))[:scale.finetune_size]
    validation = np.flatnonzero(second & (y >= 5))[:scale.validation_size]
    test = np.flatnonzero(y_test >= 5)[:scale.test_size]
    near = np.flatnonzero(y_test < 5)[:scale.test_size]
    pixels = x[pretrain].astype("float32") / 255.0
    mean, std = pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2))

    def normalise(images):
        return ((images.astype("float32") / 255.0 - mean) / std).astype("float32")

    # MNIST digits padded to 32x32 and repeated over 3 channels, as paper.data does.
    digits = datasets.load_mnist(folder / "mnist" if folder else None)[1][0][:scale.ood_size]
    far_images = np.repeat(np.pad(digits, ((0, 0), (2, 2), (2, 2)))[..., None], 3, axis=-1)
    pretrain_validation = np.flatnonzero(second & (y < 5))[:scale.validation_size]
    return Splits(
        pretrain=(normalise(x[pretrain]), y[pretrain]),
        pretrain_validation=(normalise(x[pretrain_validation]), y[pretrain_validation]),
        finetune=(normalise(x[finetune]), y[finetune] - 5),
        validation=(normalise(x[validation]), y[validation] - 5),
        test=(normalise(x_test[test]), y_test[test] - 5),
        near_ood=normalise(x_test[near]),
        far_ood=normalise(far_images),
    )


def hub_backbone(scale):
    import keras_hub

    filters = list(scale.stack_filters)
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=filters,
        stackwise_num_blocks=[1] * len(filters), stackwise_num_strides=[1] + [2] * (len(filters) - 1),
        block_type="basic_block", image_shape=(32, 32, 3))


def with_head(backbone, num_classes, name):
    inputs = keras.Input((32, 32, 3))
    features = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, name=name)(features))


def pretrained_backbone(scale, splits, seed, store):
    """The backbone of `seed` pretrained on classes 0-4, from its cached preset
    (`Backbone.from_preset`; pretrained and saved first if missing)."""
    import keras_hub

    preset = store.path(f"pretrained_seed{seed}", suffix="")
    if not (preset / "config.json").is_file():
        keras.utils.set_random_seed(seed)
        model = with_head(hub_backbone(scale), 5, "pretraining_head")
        x, y = splits.pretrain
        steps = augmented_training.steps_per_epoch(len(x), scale.batch_size) * scale.pretrain_epochs
        model.compile(optimizer=augmented_training.sgd(scale.pretrain_learning_rate, steps),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        seconds, losses = augmented_training.train(model, x, y, scale.pretrain_epochs, scale.batch_size,
                                                   seed + 777)
        x_validation, y_validation = splits.pretrain_validation
        accuracy = float(np.mean(augmented_training.predict(model, x_validation).argmax(-1) == y_validation))
        preset.parent.mkdir(parents=True, exist_ok=True)
        model.layers[1].save_to_preset(str(preset))
        store.save(f"pretrained_seed{seed}", {"seconds": round(seconds, 3), "train_loss": losses,
                                              "validation_accuracy": accuracy})
    return keras_hub.models.Backbone.from_preset(str(preset))


def finetune(scale, splits, seed, arm, learning_rate, store, evaluate_on="test"):
    """One fine-tuning run; returns its result dict."""
    backbone = pretrained_backbone(scale, splits, seed, store)
    keras.utils.set_random_seed(seed)  # the same new head in every arm
    model = with_head(backbone, 5, "new_head")
    x, y = splits.finetune
    steps = augmented_training.steps_per_epoch(len(x), scale.batch_size) * scale.finetune_epochs
    model.compile(optimizer=augmented_training.sgd(learning_rate, steps),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    result = {"seed": seed, "arm": arm, "learning_rate": learning_rate, "warmup_seconds": 0.0,
              "warmup_steps": 0}
    if arm != "baseline":
        warmup = keras_noisewarm.NoiseWarmup(
            num_classes=5, recipe="resnet", budget=scale.warmup_budget,
            training_examples=len(x) * scale.finetune_epochs, seed=seed + compare.WARMUP_SEED_OFFSET,
            freeze=backbone if arm == "warmup_head" else None, verbose=0)
        start = time.perf_counter()
        history = warmup.run(model)
        result["warmup_seconds"] = round(time.perf_counter() - start, 3)
        result["warmup_steps"] = int(history.params["steps"])
        result["noise_confidence_after_warmup"] = keras_noisewarm.noise_confidence(model).mean_confidence
    result["start_confidence"] = augmented_training.training_mode_confidence(model, (32, 32, 3))
    seconds, losses = augmented_training.train(model, x, y, scale.finetune_epochs, scale.batch_size, seed)
    result["fit_seconds"] = round(seconds, 3)
    result["train_loss"] = losses
    if evaluate_on == "validation":
        result.update(compare.measure(augmented_training.predict(model, splits.validation[0]),
                                      splits.validation[1], num_bins=NUM_BINS, from_logits=True))
        return result
    x_test, y_test = splits.test
    outputs = augmented_training.predict(model, x_test)
    result.update(compare.measure(outputs, y_test, augmented_training.predict(model, splits.far_ood),
                                  num_bins=NUM_BINS, from_logits=True))
    near = compare.measure(outputs, y_test, augmented_training.predict(model, splits.near_ood),
                           num_bins=NUM_BINS, from_logits=True)
    result["near_ood_auroc"] = near["ood_auroc"]
    result["near_ood_confidence"] = near["ood_confidence"]
    return result


def choose_learning_rate(scale, splits, store, seed=0):
    """The fine-tuning learning rate of the best validation accuracy (no warm-up, one seed).

    Returns:
        `(learning_rate, {learning_rate: validation result})`.
    """
    results = {}
    for learning_rate in scale.learning_rates:
        name = f"validation_lr{learning_rate:g}"
        if not store.has(name):
            store.save(name, finetune(scale, splits, seed, "baseline", learning_rate, store, "validation"))
        results[learning_rate] = store.load(name)
    best = max(results, key=lambda rate: (results[rate]["accuracy"], -results[rate]["nll"]))
    return best, results


def runs(scale, context):
    seeds = context.seeds_or(scale.seeds)
    store = augmented_training.RunFiles(context.cache, f"finetune-{scale.name}",
                                        dict(dataclasses.asdict(scale), seeds=None))
    splits = load(scale, context)
    learning_rate, validation = choose_learning_rate(scale, splits, store)
    for seed in seeds:
        for arm in ARMS:
            name = f"seed{seed}_{arm}"
            if not store.has(name):
                store.save(name, finetune(scale, splits, seed, arm, learning_rate, store))
                if context.verbose:
                    print(f"  finetune {scale.name}: seed {seed} {arm} done", flush=True)
    results = {arm: [store.load(f"seed{seed}_{arm}") for seed in seeds] for arm in ARMS}
    pretraining = [store.load(f"pretrained_seed{seed}") for seed in seeds]
    return seeds, results, learning_rate, validation, pretraining, splits


def draw(context, results, figure_name):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(11, 6.4), layout="constrained")
    for row, arm in zip(axes, ARMS[1:]):
        titles = {"baseline": "no warm-up", "warmup": "whole" if arm == "warmup" else "head only"}
        for ax, (name, label) in zip(row, (("ece", "ECE (15 bins)"), ("nll", "NLL"),
                                           ("near_ood_auroc", "near-OOD AUROC"))):
            baseline = [run[name] for run in results["baseline"]]
            warmed = [run[name] for run in results[arm]]
            plots.paired_plot(ax, baseline, warmed, label, statistics.paired_wilcoxon(baseline, warmed), titles)
    plot.save_figure(figure, context.figure_path(figure_name))


def reproduce(context):
    scale = SCALES["quick" if context.quick else "full"]
    seeds, results, learning_rate, validation, pretraining, splits = runs(scale, context)
    figure_name = FIGURE.format(scale=scale.name)
    draw(context, results, figure_name)
    fit = np.median([run["fit_seconds"] for arm in ARMS for run in results[arm]])
    lines = [
        "## Warm-up during fine-tuning: a pretrained keras-hub ResNet, a new head",
        "",
        f"Command: `{context.command}`",
        "",
        f"Backbone: keras-hub `ResNetBackbone` (ImageNet-style 7x7 stride-2 stem and max-pool, "
        f"BasicBlock stacks of {', '.join(map(str, scale.stack_filters))} filters, one block each), "
        f"pretrained per seed on {scale.pretrain_size:,} CIFAR-10 training images of classes 0-4 "
        f"({scale.pretrain_epochs} epochs, SGD {scale.pretrain_learning_rate:g} with the authors' "
        "momentum, weight decay, cosine decay, crop and flip), saved with `save_to_preset` and loaded "
        "back with `keras_hub.models.Backbone.from_preset`. Fine-tuning: a new Dense head for classes "
        f"5-9, the whole network trained on {scale.finetune_size:,} images of classes 5-9 for "
        f"{scale.finetune_epochs} epochs (batch {scale.batch_size}, SGD {learning_rate:g}, momentum "
        "0.9, weight decay 1e-4 PyTorch-style, cosine decay, crop and flip). The learning rate was "
        f"chosen among {', '.join(f'{rate:g}' for rate in scale.learning_rates)} by the validation "
        f"accuracy of seed 0 without warm-up on {len(splits.validation[0]):,} "
        "held-out *training* images of classes 5-9 ("
        + ", ".join(f"{rate:g}: accuracy {result['accuracy']:.3f}, NLL {result['nll']:.3f}"
                    for rate, result in validation.items())
        + "). Warm-up: `recipe=\"resnet\"` for 10% of the fine-tuning's examples "
        f"({int(np.median([run['warmup_steps'] for run in results['warmup']]))} steps of 256), "
        "whole network or head only (`freeze=backbone`), BatchNorm re-estimated on noise "
        "(the default; with the backbone frozen its statistics are not touched).",
        "",
        f"Seeds {', '.join(map(str, seeds))} (one pretrained backbone each; the three arms of a seed "
        f"share it, the new head's initial weights and the images' order). Held-out: "
        f"{len(splits.test[0]):,} images of classes 5-9 from the stand-in "
        f"test batch; OOD: {len(splits.far_ood):,} MNIST test digits padded to 32x32x3 (far) and "
        f"{len(splits.near_ood):,} test-batch images of classes 0-4 (near: the pretraining classes).",
        "",
    ]
    for arm in ARMS[1:]:
        rows = compare.comparison_rows({"baseline": results["baseline"], "warmup": results[arm]},
                                       metrics=METRICS)
        warm = np.median([run["warmup_seconds"] for run in results[arm]])
        after = np.median([run["noise_confidence_after_warmup"] for run in results[arm]])
        lines += [
            f"### {TITLES[arm]} vs no warm-up",
            "",
            compare.markdown_table(rows),
            "",
            f"Mean confidence on noise after this warm-up {after:.3f} (chance 0.2); at the start of "
            f"fine-tuning, BatchNorm on batch statistics: "
            f"{np.median([run['start_confidence'] for run in results['baseline']]):.3f} without, "
            f"{np.median([run['start_confidence'] for run in results[arm]]):.3f} with warm-up. "
            f"Warm-up cost: {warm:.1f} s against {fit:.0f} s of fine-tuning (medians): "
            f"**{warm / fit:.1%}** of the fine-tuning's wall time.",
            "",
            verdict(rows, arm),
            "",
        ]
    pretrain_seconds = np.median([run["seconds"] for run in pretraining])
    pretrain_accuracy = np.median([run["validation_accuracy"] for run in pretraining])
    lines += [
        f"Pretrained backbones: accuracy {pretrain_accuracy:.3f} (median) on {len(splits.pretrain_validation[0]):,} "
        "held-out training images of classes 0-4. "
        f"Pretraining took {pretrain_seconds:.0f} s per seed (median), once per seed, cached as a "
        f"preset. With {len(seeds)} seeds the smallest two-sided Wilcoxon p possible is "
        f"{2 / 2 ** len(seeds):.3g}.",
        "",
        context.figure_link(figure_name, "paired ECE, NLL and near-OOD AUROC per seed, each warm-up"),
        "",
    ]
    return "\n".join(lines)


def verdict(rows, arm):
    rows = {row["metric"]: row for row in rows}
    ece, nll, accuracy = rows["ece"], rows["nll"], rows["accuracy"]
    better = ece["warmup"].median < ece["baseline"].median and ece["wins"] == ece["seeds"]
    return (
        f"Paper's claim (warm-up also helps during fine-tuning after pretraining), {TITLES[arm]}: "
        f"ECE {ece['baseline'].median:.3f} -> {ece['warmup'].median:.3f} ({ece['wins']}/{ece['seeds']} "
        f"seeds lower, p = {ece['p_value']:.2g}), NLL {nll['baseline'].median:.3f} -> "
        f"{nll['warmup'].median:.3f}, accuracy {accuracy['baseline'].median:.3f} -> "
        f"{accuracy['warmup'].median:.3f}: **{'ECE lower in every seed' if better else 'ECE not lower in every seed'}**."
    )
