"""Fig. 3: a 2-D toy classifier's confidence everywhere, before and after noise.

A small MLP with two inputs and two classes is viewed over the square
[-10, 10]^2 straight from initialisation and after the noise warm-up. The
paper's claim: an untrained network is confident almost everywhere and
prefers one class; after the warm-up its confidence is at chance (0.5)
everywhere and the class bias is gone.

A ReLU network is piecewise linear, so far from where the noise lies its
logits can still grow with the distance to the origin. Two warm-ups are
therefore compared: the library's default N(0, 1) noise, which covers only
the centre of the square, and uniform noise over the whole square (the
`"uniform"` family with `std = 10 / sqrt(3)`).
"""

import json
import math

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import plot
from paper import models
from paper import plots
from paper import runs
from keras_noisewarm import statistics

FIGURE = "fig3_toy_confidence.png"
LIMIT = 10.0
GRID_POINTS = 101
DEPTH, WIDTH = 4, 100
SEEDS = tuple(range(10))
QUICK_SEEDS = (0, 1, 2)
QUICK_STEPS = 300
# name: (title, warm-up noise); None is the untrained network.
CONDITIONS = {
    "before": ("untrained", None),
    "gaussian": ("after N(0, 1) noise", dict(distribution="gaussian", std=1.0)),
    "square": ("after noise over the square",
               dict(distribution="uniform", std=LIMIT / math.sqrt(3.0))),
}
COLORS = {"before": "tab:gray", "gaussian": "tab:orange", "square": "tab:green"}


def grid_points():
    """The `(GRID_POINTS**2, 2)` inputs covering the square, row by row."""
    axis = np.linspace(-LIMIT, LIMIT, GRID_POINTS, dtype="float32")
    x, y = np.meshgrid(axis, axis)
    return np.stack([x.ravel(), y.ravel()], axis=1)


def run_seed(seed, steps=None):
    """Logits over the grid of one seed's network in every condition.

    Args:
        seed: Seed of the initial weights (and of the warm-up noise).
        steps: Warm-up steps; `None` for the library's default length.

    Returns:
        A dict `{condition: logits of shape (GRID_POINTS**2, 2)}`.
    """
    inputs = grid_points()
    logits = {}
    for name, (_, noise) in CONDITIONS.items():
        # Every condition starts from the same initial weights.
        model = models.build_mlp(2, num_classes=2, depth=DEPTH, width=WIDTH, seed=seed)
        if noise is not None:
            # The paper's recipe, whatever the package's default.
            keras_noisewarm.warmup(model, num_classes=2, steps=steps, seed=seed + 10_000,
                                   recipe="mlp", batchnorm="update", verbose=0, **noise)
        logits[name] = np.asarray(model.predict(inputs, batch_size=4096, verbose=0), "float32")
    return logits


def summarize_seed(logits):
    """Per condition: mean confidence over the square and near the origin, class bias."""
    radius = np.linalg.norm(grid_points(), axis=1)
    summary = {}
    for name, values in logits.items():
        confidence = runs.confidences(values)
        share_of_class_0 = float(np.mean(np.argmax(values, axis=1) == 0))
        summary[name] = {
            "mean_confidence": float(confidence.mean()),
            "centre_confidence": float(confidence[radius <= 2.0].mean()),
            "class_bias": abs(share_of_class_0 - 0.5),
        }
    return summary


def reproduce(context):
    """Trains (or loads) the toy networks and draws Fig. 3.

    Returns:
        The markdown section.
    """
    seeds = context.seeds_or(QUICK_SEEDS if context.quick else SEEDS)
    steps = QUICK_STEPS if context.quick else None
    folder = context.cache / (
        f"fig3-toy-{keras.backend.backend()}-{'quick' if context.quick else 'full'}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    progress = keras.utils.Progbar(len(seeds), unit_name="seed") if context.verbose else None
    logits = []
    for index, seed in enumerate(seeds):
        path = folder / f"seed{seed}.npz"
        if not path.is_file():
            np.savez(path, **run_seed(seed, steps))
        with np.load(path) as stored:
            logits.append(dict(stored))
        if progress is not None:
            progress.update(index + 1)
    summaries = [summarize_seed(seed_logits) for seed_logits in logits]
    (folder / "summary.json").write_text(json.dumps(dict(zip(map(str, seeds), summaries)), indent=1))
    _draw(context, logits, summaries)
    return _section(context, seeds, steps, summaries)


def _values(summaries, condition, name):
    return np.array([summary[condition][name] for summary in summaries])


def _section(context, seeds, steps, summaries):
    warmup_steps = steps or keras_noisewarm.NoiseWarmup().num_steps()
    lines = [
        "## Fig. 3 — a 2-D toy model before and after noise",
        "",
        f"Command: `{context.command}`",
        "",
        f"Setting: MLP 2 -> {DEPTH - 1} x (Dense {WIDTH} -> ReLU -> BatchNorm) -> 2 logits, "
        f"He-normal; warm-up with the library defaults (Adam 1e-4, {warmup_steps} steps of "
        f"128 noise examples, uniformly random labels); inputs viewed on a {GRID_POINTS} x "
        f"{GRID_POINTS} grid over [-{LIMIT:g}, {LIMIT:g}]^2; seeds "
        f"{', '.join(map(str, seeds))}. Two warm-up noises: N(0, 1) (the default) and "
        f"uniform over the whole square.",
        "",
        context.figure_link(FIGURE, "toy model confidence maps and histograms"),
        "",
        "| | untrained | after N(0, 1) noise | after noise over the square |",
        "|---|---|---|---|",
    ]
    for name, title in (("mean_confidence", "mean confidence over the square"),
                        ("centre_confidence", "mean confidence within radius 2"),
                        ("class_bias", "class bias \\|share of class 0 − 0.5\\|")):
        before = _values(summaries, "before", name)
        cells = [str(statistics.summarize(before))]
        for condition in ("gaussian", "square"):
            after = _values(summaries, condition, name)
            cells.append(f"{statistics.summarize(after)}, p = "
                         f"{statistics.paired_wilcoxon(before, after):.2g}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    square = np.median(_values(summaries, "square", "mean_confidence"))
    gaussian = np.median(_values(summaries, "gaussian", "mean_confidence"))
    centre = np.median(_values(summaries, "gaussian", "centre_confidence"))
    before = np.median(_values(summaries, "before", "mean_confidence"))
    lines += [
        "",
        "Median [25th, 75th percentile] over seeds; p: paired two-sided Wilcoxon test "
        "against the untrained network of the same seed. Chance is 0.5.",
        "",
        f"Paper's claim (confidence at chance everywhere after the warm-up): with noise "
        f"over the whole square, the median confidence over the square fell from "
        f"{before:.3f} to {square:.3f}. With the default N(0, 1) noise it fell to "
        f"{centre:.3f} within radius 2, where the noise lies, but only to {gaussian:.3f} "
        f"over the whole square: far from the noise a ReLU network stays confident, so "
        f"'everywhere' holds where the warm-up noise reaches.",
        "",
    ]
    return "\n".join(lines)


def _draw(context, logits, summaries):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 4, figsize=(20, 9), layout="constrained")
    # {condition: one confidence array per seed}
    confidences = {name: [runs.confidences(seed_logits[name]) for seed_logits in logits]
                   for name in CONDITIONS}
    for ax, name in zip(axes[0, :3], CONDITIONS):
        image = ax.imshow(
            confidences[name][0].reshape(GRID_POINTS, GRID_POINTS), origin="lower",
            extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), vmin=0.5, vmax=1.0, cmap="viridis",
        )
        ax.set(title=f"{CONDITIONS[name][0]}, first seed", xlabel="$x_1$", ylabel="$x_2$")
        ax.add_patch(plt.Circle((0, 0), 2.0, fill=False, color="white", linestyle="--"))
    figure.colorbar(image, ax=axes[0, :3], label="confidence (max softmax)", shrink=0.8)

    mean_ax = axes[0, 3]
    for index, name in enumerate(CONDITIONS):
        values = _values(summaries, name, "mean_confidence")
        mean_ax.scatter(np.full(len(values), index), values, color=COLORS[name], s=20)
    for summary in summaries:
        mean_ax.plot(range(len(CONDITIONS)), [summary[n]["mean_confidence"] for n in CONDITIONS],
                     color="lightgray", linewidth=1, zorder=0)
    mean_ax.axhline(0.5, color="black", linestyle=":", label="chance")
    mean_ax.set_xticks(range(len(CONDITIONS)), ["untrained", "N(0, 1)", "square"])
    mean_ax.set(ylabel="mean confidence over the square", title="Every seed")
    mean_ax.legend()

    logit_ax, confidence_ax, bias_ax, radial_ax = axes[1]
    radius = np.linalg.norm(grid_points(), axis=1)
    radial_bins = np.linspace(0, LIMIT * math.sqrt(2) + 1e-3, 30)
    # A coarse grid (the tests' quick mode) leaves some rings without a point.
    ring = np.digitize(radius, radial_bins) - 1
    rings = np.unique(ring)
    for name, (title, _) in CONDITIONS.items():
        pooled = np.concatenate([seed_logits[name] for seed_logits in logits])
        logit_ax.hist(pooled.ravel(), bins=80, density=True, histtype="step",
                      color=COLORS[name], label=title, linewidth=1.5)
        confidence_ax.hist(np.concatenate(confidences[name]), bins=np.linspace(0.5, 1, 41), density=True,
                           histtype="step", color=COLORS[name], label=title, linewidth=1.5)
        bias = _values(summaries, name, "class_bias")
        bias_ax.scatter(np.full(len(bias), list(CONDITIONS).index(name)), bias,
                        color=COLORS[name], s=20)
        profile = [[confidence[ring == r].mean() for r in rings]
                   for confidence in confidences[name]]
        plots.median_band(radial_ax, radial_bins[rings], profile, title, COLORS[name])
    logit_ax.set(xlabel="logit", ylabel="density", title="Logits over the square (all seeds)")
    logit_ax.set_yscale("log")
    confidence_ax.set(xlabel="confidence", ylabel="density",
                      title="Confidence over the square (all seeds)")
    bias_ax.set_xticks(range(len(CONDITIONS)), ["untrained", "N(0, 1)", "square"])
    bias_ax.set(ylabel="|share of class 0 − 0.5|", title="Class bias, every seed", ylim=(-0.02, 0.52))
    radial_ax.axhline(0.5, color="black", linestyle=":")
    radial_ax.set(xlabel="distance from the origin", ylabel="mean confidence",
                  title="Confidence against distance (median, quartiles)")
    for ax in (logit_ax, confidence_ax, radial_ax):
        ax.legend(fontsize=8)
    plot.save_figure(figure, context.figure_path(FIGURE))
