"""Fig. 1: without warm-up, miscalibration grows with depth and with less data."""

import numpy as np
from scipy import stats

from keras_noisewarm import plot
from paper import run_sets
from paper import plots
from paper import report
from keras_noisewarm import statistics

FIGURE = "fig1_ece_depth_data.png"


def reproduce(context):
    """Trains (or loads) the grid's no-warm-up runs and draws Fig. 1.

    Returns:
        The markdown section.
    """
    import matplotlib.pyplot as plt

    depths, sizes, seeds = run_sets.grid_axes(context)
    grid = run_sets.grid_results(context, arms=("baseline",))
    ece = {cell: np.array([run["ece"] for run in arms["baseline"]]) for cell, arms in grid.items()}
    medians = np.array([[np.median(ece[depth, size]) for size in sizes] for depth in depths])

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    plots.heatmap(
        left, medians, [str(d) for d in depths], [f"{s:,}" for s in sizes],
        f"Median ECE without warm-up ({len(seeds)} seeds)", cmap="Reds",
    )
    left.set_xlabel("training images")
    left.set_ylabel("layers")
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(sizes)))
    for size, color in zip(sizes, colors):
        q25, median, q75 = np.array(
            [np.percentile(ece[depth, size], [25, 50, 75]) for depth in depths]
        ).T
        right.errorbar(depths, median, yerr=[median - q25, q75 - median], fmt="o-",
                       color=color, capsize=3, label=f"{size:,} images")
    right.set_xlabel("layers")
    right.set_ylabel("ECE (15 bins)")
    right.set_xticks(depths)
    right.set_title("ECE against depth (median, quartiles)", fontsize=10)
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    plot.save_figure(figure, context.figure_path(FIGURE))

    depth_trends = [_spearman([(depth, value) for depth in depths for value in ece[depth, size]])
                    for size in sizes]
    size_trends = [_spearman([(size, value) for size in sizes for value in ece[depth, size]])
                   for depth in depths]
    spec = run_sets.grid_spec(context, depths[0], sizes[0])
    lines = [
        "## Fig. 1 — miscalibration grows with depth and with less data",
        "",
        f"Command: `{context.command}`",
        "",
        f"Setting: MLPs of {', '.join(map(str, depths))} layers (width {spec.width}) "
        f"trained without warm-up on the first {', '.join(f'{s:,}' for s in sizes)} "
        f"CIFAR-10 training images, {spec.epochs} epochs of Adam "
        f"{spec.learning_rate:g}; ECE (15 bins) on {spec.test_size:,} held-out "
        f"images; seeds {', '.join(map(str, seeds))}.",
        "",
        context.figure_link(FIGURE, "ECE over depth and training-set size"),
        "",
        *report.markdown_grid(
            depths, sizes, lambda depth, size: str(statistics.summarize(ece[depth, size]))
        ),
        "",
        "ECE: median [25th, 75th percentile] over seeds. Trends: Spearman rank "
        "correlation over all runs (ρ > 0: ECE grows).",
        "",
        "| trend | " + " | ".join(
            [f"depth, {s:,} images" for s in sizes] + [f"data size, {d} layers" for d in depths]
        ) + " |",
        "|---|" + "---|" * (len(sizes) + len(depths)),
        "| ρ (p) | " + " | ".join(
            f"{rho:+.2f} ({p:.2g})" for rho, p in depth_trends + size_trends
        ) + " |",
        "",
        verdict(depth_trends, size_trends),
        "",
    ]
    return "\n".join(lines)


def _spearman(pairs):
    x, y = np.array(pairs, dtype="float64").T
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def verdict(depth_trends, size_trends):
    grows_with_depth = sum(rho > 0 and p < 0.01 for rho, p in depth_trends)
    falls_with_data = sum(rho < 0 and p < 0.01 for rho, p in size_trends)
    return (
        f"Paper's claim (ECE grows with depth, falls with more data): ECE grows "
        f"significantly with depth (ρ > 0, p < 0.01) at {grows_with_depth} of "
        f"{len(depth_trends)} data sizes, and falls significantly with data size at "
        f"{falls_with_data} of {len(size_trends)} depths."
    )
