"""How long should the warm-up be? Its length against the training it prepares.

For four settings (the main job's six-layer MLP on CIFAR-10, a small CNN on
Fashion-MNIST that rescales raw pixels itself, a small CNN with BatchNorm on
CIFAR-10, and a CIFAR ResNet-18 with BatchNorm), every seed's
network is trained without warm-up and after warm-ups of 1% to 300% of the
training examples, at one or two warm-up learning rates, and after a warm-up
that stops on its own (`keras_noisewarm.callbacks.WarmupStopping`). The
warm-ups of one seed and learning rate are prefixes of one long warm-up
(same noise, constant learning rate), saved at every length, so each
length costs one training. Every run is measured on held-out *training*
images (the validation split the default is chosen on) and on the test
split (which is only reported).

    python -m paper reproduce budget --output docs --cache outputs/reproduce-runs
    python -m paper.warmup_budget --settings mlp,fashion_cnn   # one stage, resumable
"""

import argparse
import dataclasses
import json
import pathlib
import time

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import compare
from keras_noisewarm import datasets
from keras_noisewarm import noise_warmup
from keras_noisewarm import paired_runs
from keras_noisewarm import plot
from keras_noisewarm import statistics
from keras_noisewarm.models import resnet
from paper import data
from paper import models

FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# The longest a warm-up with the stopping rule may take, as a fraction.
STOP_CAP = 3.0
SEEDS = (0, 1, 2, 3, 4)
# The longest default considered: the cost target, a tenth of the
# training, counted in examples (timed costs here run next to other work).
DEFAULT_MAX_FRACTION = 0.1
WARMUP_BATCH_SIZE = 128
FIGURE = "budget_ece_ratio.png"
VERSION = 1  # bump when a run's protocol changes, so old runs are not mixed in


@dataclasses.dataclass(frozen=True)
class Setting:
    """One architecture, its data and its training."""

    name: str
    title: str
    data: str
    architecture: str
    train_size: int
    epochs: int
    learning_rate: float
    warmup_learning_rates: tuple
    batch_size: int = 128
    validation_size: int = 5000
    test_size: int = 5000

    @property
    def training_examples(self):
        return self.train_size * self.epochs


SETTINGS = {
    "mlp": Setting("mlp", "six-layer MLP, 4,000 CIFAR-10 images, 30 epochs Adam 1e-4 (the main job)",
                   "cifar10_normalised", "mlp", 4000, 30, 1e-4, (1e-4, 1e-3)),
    "fashion_cnn": Setting("fashion_cnn", "small CNN with Rescaling(1/255), 3,000 Fashion-MNIST images, "
                           "10 epochs Adam 1e-3", "fashion_raw", "small_cnn", 3000, 10, 1e-3, (1e-4, 1e-3)),
    "cifar_cnn_bn": Setting("cifar_cnn_bn", "CNN with BatchNorm (3 conv blocks), 2,000 CIFAR-10 images, "
                            "8 epochs Adam 1e-3", "cifar10_normalised", "cnn_bn", 2000, 8, 1e-3, (1e-3,)),
    "resnet18": Setting("resnet18", "CIFAR ResNet-18 (keras_noisewarm.models.cifar_resnet, width 8, "
                        "BatchNorm), 1,500 CIFAR-10 images, 6 epochs Adam 1e-3",
                        "cifar10_normalised", "resnet18", 1500, 6, 1e-3, (1e-3,)),
}
# Measured once and dropped: MobileNetV2 (keras.applications, alpha 0.35, no
# pretrained weights, BatchNorm momentum 0.999, Rescaling inside) on 2,000 raw
# CIFAR-10 images for 6 epochs stayed at chance in inference mode (seed 0:
# accuracy 0.102, NLL 2.303, 109 s per training), so no calibration could be
# read off it. It stays runnable on its own:
# `python -m paper.warmup_budget --settings mobilenet`.
DROPPED_SETTINGS = {
    "mobilenet": Setting("mobilenet", "MobileNetV2 (alpha 0.35, no pretrained weights, BatchNorm momentum "
                         "0.999, Rescaling inside), 2,000 raw CIFAR-10 images, 6 epochs Adam 1e-3",
                         "cifar10_raw", "mobilenet", 2000, 6, 1e-3, (1e-3,)),
}
QUICK = {name: dataclasses.replace(setting, train_size=200, epochs=2, validation_size=200,
                                   test_size=200, warmup_learning_rates=setting.warmup_learning_rates[:1])
         for name, setting in SETTINGS.items()}
QUICK_FRACTIONS = (0.1, 1.0)
QUICK_SEEDS = (0, 1)


def load_data(setting, data_dir=None):
    """`(x_train, y_train), (x_validation, y_validation), (x_test, y_test)` of a setting.

    The validation images are training images the network never trains on.
    """
    folder = pathlib.Path(data_dir or data.local_data_dir() or ".")
    if setting.data.startswith("cifar10"):
        (x, y), (x_test, y_test) = datasets.load_cifar10(folder / "cifar10-subset")
        validation_start = 10_000
    else:
        (x, y), (x_test, y_test) = datasets.load_fashion_mnist(folder / "fashion-mnist")
        x, x_test = x[..., None], x_test[..., None]
        validation_start = 50_000
    x, x_test = x.astype("float32"), x_test.astype("float32")
    train = slice(0, setting.train_size)
    validation = slice(validation_start, validation_start + setting.validation_size)
    splits = [(x[train], y[train]), (x[validation], y[validation]),
              (x_test[:setting.test_size], y_test[:setting.test_size])]
    if setting.data.endswith("normalised"):
        pixels = splits[0][0] / 255.0
        mean, std = pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2))
        splits = [(((images / 255.0 - mean) / std).astype("float32"), labels) for images, labels in splits]
    return splits


def build_model(setting, input_shape):
    """A compiled network of `setting` (the global seed set by the caller)."""
    if setting.architecture == "mlp":
        model = models.build_mlp(input_shape, 10, depth=6, width=256, seed=None)
    elif setting.architecture == "cnn_bn":
        model = models.build_cnn(input_shape, 10, depth=4, width=16, seed=None)
    elif setting.architecture == "resnet18":
        model = resnet.cifar_resnet(depth=18, width=8, num_classes=10, input_shape=input_shape)
    elif setting.architecture == "small_cnn":
        model = keras.Sequential([
            keras.Input(input_shape),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ], name="small_cnn")
    else:
        inputs = keras.Input(input_shape)
        hidden = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
        backbone = keras.applications.MobileNetV2(
            weights=None, input_shape=input_shape, alpha=0.35, classes=10,
            classifier_activation=None, include_top=True,
        )
        model = keras.Model(inputs, backbone(hidden), name="mobilenet_v2")
    model.compile(keras.optimizers.Adam(setting.learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Checkpoints(keras.callbacks.Callback):
    """Keeps the wrapped model's weights and the elapsed time at given warm-up steps."""

    def __init__(self, model, steps):
        super().__init__()
        self.watched = model
        self.steps = set(steps)
        self.saved = {}

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in self.steps:
            _ = self.model  # the JAX trainer writes its state back to the variables
            self.saved[batch + 1] = ([w.copy() for w in self.watched.get_weights()],
                                     time.perf_counter() - self.start)


class Store:
    """One JSON file per finished run: `<folder>/<setting>/seed<k>_<variant>.json`."""

    def __init__(self, folder, setting):
        self.folder = pathlib.Path(folder) / f"budget-v{VERSION}-{setting.name}-{keras.backend.backend()}"
        self.setting = setting

    def path(self, seed, variant):
        return self.folder / f"seed{seed}_{variant}.json"

    def has(self, seed, variant):
        return self.path(seed, variant).is_file()

    def load(self, seed, variant):
        return json.loads(self.path(seed, variant).read_text())

    def save(self, seed, variant, result):
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / "setting.json"
        if not settings.exists():
            settings.write_text(json.dumps(dataclasses.asdict(self.setting), indent=1))
        elif json.loads(settings.read_text()) != json.loads(json.dumps(dataclasses.asdict(self.setting))):
            raise ValueError(f"{self.folder} holds runs of another setting; delete it to start over.")
        self.path(seed, variant).write_text(json.dumps(result, indent=1))


def variant_name(learning_rate, fraction=None):
    return f"stop_lr{learning_rate:g}" if fraction is None else f"lr{learning_rate:g}_f{fraction:g}"


def run_seed(setting, seed, splits, store, fractions, verbose=0):
    """Every run of one seed of one setting not yet in `store`."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = splits
    input_shape = x_train.shape[1:]

    def fresh_model(initial):
        keras.utils.set_random_seed(seed)
        model = build_model(setting, input_shape)
        model.set_weights(initial)
        return model

    keras.utils.set_random_seed(seed)
    initial = build_model(setting, input_shape).get_weights()

    def train_and_measure(model, extra):
        keras.utils.set_random_seed(seed + compare.DATA_ORDER_SEED_OFFSET)
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=setting.batch_size, epochs=setting.epochs,
                  shuffle=True, verbose=0)
        result = dict(extra, fit_seconds=round(time.perf_counter() - start, 3))
        for split, (inputs, labels) in (("validation", (x_val, y_val)), ("test", (x_test, y_test))):
            outputs = model.predict(inputs, batch_size=500, verbose=0)
            values = compare.measure(outputs, labels, from_logits=True)
            result[split] = {name: values[name] for name in ("accuracy", "ece", "nll", "brier")}
        return result

    if not store.has(seed, "baseline"):
        store.save(seed, "baseline", train_and_measure(fresh_model(initial), {}))
        if verbose:
            print(f"  {setting.name} seed {seed}: baseline", flush=True)
    warmup_seed = seed + compare.WARMUP_SEED_OFFSET
    for learning_rate in setting.warmup_learning_rates:
        steps_of = {fraction: max(1, round(fraction * setting.training_examples / WARMUP_BATCH_SIZE))
                    for fraction in fractions}
        todo = [f for f in fractions if not store.has(seed, variant_name(learning_rate, f))]
        if todo:
            model = fresh_model(initial)
            checkpoints = _Checkpoints(model, steps_of.values())
            warmup = keras_noisewarm.NoiseWarmup(
                num_classes=10, steps=max(steps_of.values()), batch_size=WARMUP_BATCH_SIZE,
                optimizer="adam", learning_rate=learning_rate, batchnorm="update",
                seed=warmup_seed, verbose=0, callbacks=[checkpoints],
            )
            spec = warmup.inspect(model)
            warmup.run(model)
            recalibration = [
                _noise(spec, WARMUP_BATCH_SIZE, 7919 * seed + index)
                for index in range(noise_warmup.RECALIBRATION_BATCHES)
            ]
            recalibrated = {}
            for fraction in todo:
                weights, _ = checkpoints.saved[steps_of[fraction]]
                model = fresh_model(initial)
                model.set_weights(weights)
                start = time.perf_counter()
                noise_warmup.recalibrate_batchnorm(model, recalibration)
                recalibrated[fraction] = (model.get_weights(), time.perf_counter() - start)
            # The first recalibration also traces the model: charge every
            # length the steady cost.
            recalibration_seconds = min(seconds for _, seconds in recalibrated.values())
            for fraction in todo:
                model = fresh_model(initial)
                model.set_weights(recalibrated[fraction][0])
                seconds = checkpoints.saved[steps_of[fraction]][1] + recalibration_seconds
                gap = _prior_gap(model, spec)
                result = train_and_measure(model, dict(
                    warmup_steps=steps_of[fraction], warmup_seconds=round(seconds, 3),
                    prior_gap=gap, noise=spec.noise_descriptions[0],
                ))
                store.save(seed, variant_name(learning_rate, fraction), result)
            if verbose:
                print(f"  {setting.name} seed {seed}: lr {learning_rate:g}, {len(todo)} lengths", flush=True)
        stop_variant = variant_name(learning_rate)
        if not store.has(seed, stop_variant):
            model = fresh_model(initial)
            start = time.perf_counter()
            history = keras_noisewarm.warmup(
                model, num_classes=10, budget=STOP_CAP, training_examples=setting.training_examples,
                batch_size=WARMUP_BATCH_SIZE, optimizer="adam", learning_rate=learning_rate,
                stop=True, seed=warmup_seed, verbose=0,
            )
            seconds = time.perf_counter() - start
            stopped = history.params.get("stopped_step") or history.params["steps"]
            spec = keras_noisewarm.NoiseWarmup(num_classes=10).inspect(model)
            store.save(seed, stop_variant, train_and_measure(model, dict(
                warmup_steps=int(stopped), warmup_seconds=round(seconds, 3),
                prior_gap=_prior_gap(model, spec), gaps=history.params.get("prior_gaps"),
            )))
            if verbose:
                print(f"  {setting.name} seed {seed}: lr {learning_rate:g}, stopped at {stopped}", flush=True)


def _noise(spec, batch_size, seed):
    generator = keras.random.SeedGenerator(seed)
    (family,), (shape,), (dtype,) = spec.families, [spec.input_shape], spec.input_dtypes
    return family.step_sample((batch_size,) + tuple(shape), generator, dtype)


def _prior_gap(model, spec):
    inputs = _noise(spec, 1024, 12345)
    return float(spec.tasks[0].prior_gap(np.asarray(model.predict(inputs, batch_size=512, verbose=0))))


def run(settings, seeds, cache, fractions=FRACTIONS, data_dir=None, verbose=1):
    """Runs (or resumes) every seed of every setting; returns `{setting: {variant: [runs]}}`."""
    results = {}
    for setting in settings:
        store = Store(cache, setting)
        splits = None
        for seed in seeds:
            variants = ["baseline"] + [variant_name(lr, f) for lr in setting.warmup_learning_rates
                                       for f in fractions] + [variant_name(lr) for lr in setting.warmup_learning_rates]
            if not all(store.has(seed, v) for v in variants):
                splits = splits or load_data(setting, data_dir)
                run_seed(setting, seed, splits, store, fractions, verbose)
        results[setting.name] = {
            variant: [store.load(seed, variant) for seed in seeds]
            for variant in ["baseline"] + [variant_name(lr, f) for lr in setting.warmup_learning_rates
                                           for f in fractions] + [variant_name(lr) for lr in setting.warmup_learning_rates]
        }
    return results


def ece_effects(results, split):
    """Per setting and variant: median paired ECE reduction, ratio, wins, p and cost."""
    table = {}
    for name, variants in results.items():
        baseline = np.array([run[split]["ece"] for run in variants["baseline"]])
        fit_seconds = np.median([run["fit_seconds"] for run in variants["baseline"]])
        table[name] = {}
        for variant, runs in variants.items():
            if variant == "baseline":
                continue
            warm = np.array([run[split]["ece"] for run in runs])
            accuracy = np.array([run[split]["accuracy"] for run in runs])
            base_accuracy = np.array([run[split]["accuracy"] for run in variants["baseline"]])
            table[name][variant] = {
                "reduction": float(np.median(baseline - warm)),
                "ratio": float(np.median(warm / baseline)),
                "baseline": statistics.summarize(baseline),
                "warmup": statistics.summarize(warm),
                "wins": statistics.wins(baseline, warm, lower_is_better=True),
                "seeds": len(warm),
                "p_value": statistics.paired_wilcoxon(baseline, warm),
                "accuracy_change": float(np.median(accuracy - base_accuracy)),
                "cost": float(np.median([run["warmup_seconds"] for run in runs]) / fit_seconds),
                "steps": float(np.median([run["warmup_steps"] for run in runs])),
            }
    return table


def responding_settings(validation_effects):
    """The settings where some warm-up lowered validation ECE in every seed."""
    return [name for name, variants in validation_effects.items()
            if any(v["reduction"] > 0 and v["wins"] == v["seeds"] for v in variants.values())]


def variant_fraction(variant):
    """The length of a fixed-length variant as a fraction of the training, else `None`."""
    return float(variant.split("_f", 1)[1]) if "_f" in variant else None


def choose_default(validation_effects, max_fraction=None):
    """The variant that keeps the largest share of each responding setting's best ECE reduction.

    Chosen on the validation split only. A setting where no length lowered
    ECE in every seed has no best reduction to keep a share of (its best
    would be the luckiest of many noisy lengths) and does not vote. Shares
    tied to two decimals go to the cheaper variant; what the choice costs
    is reported beside it, not filtered on, because each run's cost here is
    timed next to other work (`benchmarks/warmup_cost.py` times the default
    alone). `max_fraction` keeps only the fixed lengths of at most that
    fraction of the training's examples (the shares are still of the best
    length of any size). Returns `(variant, shares)`, `shares` per
    responding setting, or `(None, {})` when no setting responds.
    """
    names = responding_settings(validation_effects)
    if not names:
        return None, {}
    candidates = set.intersection(*(set(validation_effects[n]) for n in validation_effects))
    if max_fraction is not None:
        candidates = {c for c in candidates
                      if variant_fraction(c) is not None and variant_fraction(c) <= max_fraction}
    best = {n: max(v["reduction"] for v in validation_effects[n].values()) for n in names}

    def shares(variant):
        return {n: validation_effects[n][variant]["reduction"] / best[n] for n in names}

    def cost(variant):
        return max(validation_effects[n][variant]["cost"] for n in validation_effects)

    chosen = max(sorted(candidates), key=lambda c: (round(min(shares(c).values()), 2), -cost(c)))
    return chosen, shares(chosen)


def reproduce(context):
    """Runs (or resumes) the budget measurement; returns the markdown section."""
    settings = list((QUICK if context.quick else SETTINGS).values())
    fractions = QUICK_FRACTIONS if context.quick else FRACTIONS
    seeds = context.seeds_or(QUICK_SEEDS if context.quick else SEEDS)
    results = run(settings, seeds, context.cache, fractions, context.data_dir, context.verbose)
    validation = ece_effects(results, "validation")
    test = ece_effects(results, "test")
    chosen, shares = choose_default(validation, max_fraction=DEFAULT_MAX_FRACTION)
    unlimited, unlimited_shares = choose_default(validation)
    _draw(context, test, settings, fractions)
    lines = [
        "## Warm-up length against the training it prepares",
        "",
        f"Command: `{context.command}`",
        "",
        "Settings (each trained from the same initial weights per seed, without "
        "warm-up and after each warm-up; Adam warm-up, batch 128, N(0, 1) noise in "
        "the input space the model computes in: the models with a Rescaling layer "
        "get noise that it maps to N(0, 1)):",
        "",
        *[f"- **{s.name}**: {s.title}; {s.training_examples:,} training examples; warm-up "
          f"learning rates {', '.join(f'{lr:g}' for lr in s.warmup_learning_rates)}." for s in settings],
        "",
        f"Seeds {', '.join(map(str, seeds))}. ECE (15 bins) on {settings[0].validation_size:,} "
        "held-out *training* images (validation: what the default is chosen on) and on "
        f"{settings[0].test_size:,} test images (reported only). Length: a fraction of the "
        "training examples; cost: warm-up seconds over training seconds (medians).",
        "",
        context.figure_link(FIGURE, "ECE ratio against warm-up length"),
        "",
    ]
    for setting in settings:
        lines += [f"### {setting.name}", "", "| warm-up | length | cost | ECE val | ECE test | ratio test | "
                  "better (test) | p (test) | accuracy change (test) |", "|---|---|---|---|---|---|---|---|---|"]
        lines.append(f"| none | 0 | 0 | {validation[setting.name][next(iter(validation[setting.name]))]['baseline']} "
                     f"| {test[setting.name][next(iter(test[setting.name]))]['baseline']} | 1 | | | |")
        for variant, effect in test[setting.name].items():
            fraction = effect["steps"] * WARMUP_BATCH_SIZE / setting.training_examples
            lines.append(
                f"| {variant} | {fraction:.3g} ({effect['steps']:.0f} steps) | {effect['cost']:.1%} | "
                f"{validation[setting.name][variant]['warmup']} | {effect['warmup']} | {effect['ratio']:.3f} | "
                f"{effect['wins']}/{effect['seeds']} | {effect['p_value']:.2g} | {100 * effect['accuracy_change']:+.1f} pt |"
            )
        lines.append("")
    silent = [name for name in validation if name not in shares]
    if chosen is None:
        lines += ["Chosen on validation: **none**: no warm-up length lowered validation ECE in "
                  "every seed of any setting.", ""]
    else:
        lines += [
            f"Chosen on validation among the lengths of at most {DEFAULT_MAX_FRACTION:g} of the "
            f"training: **{chosen}**, which keeps "
            + ", ".join(f"{share:.0%} of the best validation ECE reduction in {name}"
                        for name, share in shares.items())
            + (f"; in {', '.join(silent)} no length lowered validation ECE in every seed"
               if silent else "")
            + ". With no limit on the length: **" + unlimited + "**, keeping "
            + ", ".join(f"{share:.0%} in {name}" for name, share in unlimited_shares.items()) + ".",
            "",
            claim_line(test, chosen),
            "",
        ]
    return "\n".join(lines)


def claim_line(test_effects, variant):
    """The paper's cost claim, judged on the test split for the chosen variant."""
    verdicts = []
    words = {"helped": "lower", "hurt": "higher", "no clear difference": "no clear change"}
    held = 0
    for name, variants in test_effects.items():
        effect = variants[variant]
        outcome = paired_runs.verdict(effect)
        held += outcome == "helped"
        verdicts.append(f"{name} {words[outcome]} (ECE ratio {effect['ratio']:.2f}, {effect['wins']}/"
                        f"{effect['seeds']} seeds, p = {effect['p_value']:.2g}, accuracy "
                        f"{100 * effect['accuracy_change']:+.1f} pt)")
    return (f"Paper's claim (a warm-up of about a tenth of the training's examples lowers ECE): with "
            f"{variant}, test ECE is lower in {held} of {len(verdicts)} settings: " + "; ".join(verdicts) + ".")


def _draw(context, test, settings, fractions):
    plt = plot.pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, setting in zip(colors, settings):
        for style, learning_rate in zip(("-", "--"), setting.warmup_learning_rates):
            ratios = [test[setting.name][variant_name(learning_rate, f)]["ratio"] for f in fractions]
            ax.plot(fractions, ratios, style, marker="o", color=color,
                    label=f"{setting.name}, lr {learning_rate:g}")
            stop = test[setting.name][variant_name(learning_rate)]
            ax.plot([stop["steps"] * WARMUP_BATCH_SIZE / setting.training_examples], [stop["ratio"]],
                    "*", markersize=12, color=color)
    ax.axhline(1.0, color="gray", linewidth=1)
    ax.axvline(0.1, color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("warm-up length (fraction of the training examples)")
    ax.set_ylabel("test ECE with / without warm-up (median of seeds)")
    ax.set_title("Warm-up length vs calibration (stars: the stopping rule)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    plot.save_figure(figure, context.figure_path(FIGURE))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run stages of the warm-up budget measurement.")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--cache", default="outputs/reproduce-runs")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    settings = [{**SETTINGS, **DROPPED_SETTINGS}[name] for name in args.settings.split(",")]
    run(settings, tuple(range(args.seeds)), args.cache, data_dir=args.data_dir)


if __name__ == "__main__":
    main()
