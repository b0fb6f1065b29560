"""Fig. 4: calibrated throughout training, at matched epochs and matched accuracy.

A lower final ECE could come from a model that simply learned less. Fig. 4
rules that out by comparing the two arms at the same epoch, and at the same
test accuracy (each run's ECE interpolated at the point where its accuracy
first reaches a level), and by following confidence against accuracy over
training: a calibrated run stays on the diagonal.
"""

import numpy as np

from keras_noisewarm import plot
from paper import run_sets
from paper import plots
from paper import runs
from keras_noisewarm import statistics

FIGURE = "fig4_matched_ece_trajectories.png"
NUM_ACCURACY_LEVELS = 6


def reproduce(context):
    """Draws Fig. 4 from the main comparison (trained here if missing).

    Returns:
        The markdown section.
    """
    results = run_sets.main_results(context)
    spec, seeds = run_sets.main_spec(context), run_sets.main_seeds(context)
    curves = {arm: _curves(results[arm]) for arm in runs.ARMS}
    levels = accuracy_levels(curves)
    matched = {
        arm: np.array([[ece_at_accuracy(c["accuracy"], c["ece"], level) for level in levels]
                       for c in curves[arm]])
        for arm in runs.ARMS
    }
    _draw(context, curves, levels, matched)

    epochs = sorted({e for e in (1, 5, 10, 20, 30) if e <= spec.epochs} | {spec.epochs})
    lines = [
        "## Fig. 4 — lower ECE at matched epochs and at matched accuracy",
        "",
        f"Command: `{context.command}`",
        "",
        f"Runs: the main comparison of Fig. 2 ({spec.describe()}; seeds "
        f"{', '.join(map(str, seeds))}), measured on the {spec.test_size:,} held-out "
        "images before training (epoch 0) and after every epoch.",
        "",
        context.figure_link(FIGURE, "epoch-matched and accuracy-matched ECE, trajectories"),
        "",
        "| matched at | ECE no warm-up | ECE warm-up | warm-up better | Wilcoxon p |",
        "|---|---|---|---|---|",
    ]
    for epoch in epochs:
        baseline = np.array([c["ece"][epoch] for c in curves["baseline"]])
        warmup = np.array([c["ece"][epoch] for c in curves["warmup"]])
        lines.append(_row(f"epoch {epoch}", baseline, warmup))
    for index, level in enumerate(levels):
        lines.append(_row(f"test accuracy {level:.3f}", matched["baseline"][:, index],
                          matched["warmup"][:, index]))
    gaps = {arm: np.array([np.mean(np.abs(np.array(c["confidence"][1:]) - c["accuracy"][1:]))
                           for c in curves[arm]]) for arm in runs.ARMS}
    lines.append(_row("mean over epochs 1.. of \\|confidence − accuracy\\|",
                      gaps["baseline"], gaps["warmup"]))
    lines += [
        "",
        "Median [25th, 75th percentile] over seeds. Accuracy levels: evenly spaced "
        "between the highest accuracy any run starts from and the lowest accuracy "
        "every run reaches; each run's ECE is interpolated linearly between the two "
        "epochs around the first time its accuracy reaches the level.",
        "",
        verdict(curves, matched, levels, spec.epochs),
        "",
    ]
    return "\n".join(lines)


def _curves(arm_results):
    """Per run: arrays of `accuracy`, `ece` and `confidence` at epochs 0, 1, ...."""
    names = {"accuracy": "accuracy", "ece": "ece", "confidence": "mean_confidence"}
    return [
        {name: np.array([epoch[key] for epoch in run["epochs"]]) for name, key in names.items()}
        for run in arm_results
    ]


def accuracy_levels(curves, count=NUM_ACCURACY_LEVELS):
    """Accuracy levels that every run of every arm passes through after epoch 0."""
    every_run = [c for arm_curves in curves.values() for c in arm_curves]
    lowest = max(c["accuracy"][0] for c in every_run)
    highest = min(c["accuracy"].max() for c in every_run)
    if highest <= lowest:
        return np.array([])
    # Stay clear of the ends, where a level is met only at a single epoch.
    return np.linspace(lowest, highest, count + 2)[1:-1]


def ece_at_accuracy(accuracy, ece, level):
    """ECE where a run's accuracy first reaches `level`, linearly interpolated.

    Args:
        accuracy: Accuracy at epochs 0, 1, ....
        ece: ECE at the same epochs.
        level: The accuracy level.

    Returns:
        The interpolated ECE, or NaN if the run never reaches `level`.
    """
    reached = np.flatnonzero(np.asarray(accuracy) >= level)
    if reached.size == 0:
        return float("nan")
    epoch = reached[0]
    if epoch == 0:
        return float(ece[0])
    low, high = accuracy[epoch - 1], accuracy[epoch]
    weight = (level - low) / (high - low)
    return float(ece[epoch - 1] + weight * (ece[epoch] - ece[epoch - 1]))


def _row(label, baseline, warmup):
    wins = statistics.wins(baseline, warmup, lower_is_better=True)
    return (
        f"| {label} | {statistics.summarize(baseline)} | {statistics.summarize(warmup)} | "
        f"{wins}/{len(baseline)} | {statistics.paired_wilcoxon(baseline, warmup):.2g} |"
    )


def _draw(context, curves, levels, matched):
    import matplotlib.pyplot as plt

    figure, (epoch_ax, accuracy_ax, trajectory_ax) = plt.subplots(
        1, 3, figsize=(16, 4.8), layout="constrained"
    )
    for arm in runs.ARMS:
        color, title = plots.ARM_COLORS[arm], runs.ARM_TITLES[arm]
        ece = np.array([c["ece"] for c in curves[arm]])
        plots.median_band(epoch_ax, np.arange(ece.shape[1]), ece, title, color)
        for index, c in enumerate(curves[arm]):
            accuracy_ax.plot(c["accuracy"][1:], c["ece"][1:], "-", color=color, alpha=0.3,
                             linewidth=0.8, label=f"{title}, each seed" if index == 0 else None)
        if len(levels):
            accuracy_ax.plot(levels, np.median(matched[arm], axis=0), "o-", color=color,
                             linewidth=2, label=f"{title}, median at matched accuracy")
        accuracy = np.median([c["accuracy"] for c in curves[arm]], axis=0)
        confidence = np.median([c["confidence"] for c in curves[arm]], axis=0)
        trajectory_ax.plot(accuracy, confidence, "o-", color=color, markersize=3, label=title)
        trajectory_ax.annotate("start", (accuracy[0], confidence[0]), fontsize=8,
                               textcoords="offset points", xytext=(4, -10))
    epoch_ax.set(xlabel="epoch", ylabel="ECE (15 bins)",
                 title="Epoch-matched ECE (median, quartiles)")
    accuracy_ax.set(xlabel="test accuracy", ylabel="ECE (15 bins)", title="Accuracy-matched ECE")
    upper = max(max(c["accuracy"].max(), c["confidence"].max())
                for arm_curves in curves.values() for c in arm_curves)
    limit = min(1.0, upper + 0.05)
    trajectory_ax.plot([0, limit], [0, limit], "--", color="gray", linewidth=1,
                       label="confidence = accuracy")
    trajectory_ax.set(xlim=(0, limit), ylim=(0, limit), xlabel="test accuracy",
                      ylabel="mean confidence", title="Trajectory over epochs (median run)")
    trajectory_ax.set_aspect("equal")
    for ax in (epoch_ax, accuracy_ax, trajectory_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.title.set_fontsize(10)
    plot.save_figure(figure, context.figure_path(FIGURE))


def verdict(curves, matched, levels, last_epoch):
    epoch_wins = sum(
        np.median([c["ece"][epoch] for c in curves["warmup"]])
        < np.median([c["ece"][epoch] for c in curves["baseline"]])
        for epoch in range(1, last_epoch + 1)
    )
    level_wins = int(np.sum(np.nanmedian(matched["warmup"], axis=0)
                            < np.nanmedian(matched["baseline"], axis=0))) if len(levels) else 0
    return (
        f"Paper's claim (warm-up is better calibrated at the same epoch and at the same "
        f"accuracy): median ECE lower with warm-up at {epoch_wins} of {last_epoch} epochs "
        f"and at {level_wins} of {len(levels)} matched accuracy levels."
    )
