"""Fig. 2: warm-up lowers test loss and ECE, most for deep nets on little data."""

import numpy as np
from scipy import stats

from keras_noisewarm import plot
from paper import run_sets
from paper import plots
from paper import report
from paper import runs
from keras_noisewarm import statistics

MAIN_FIGURE = "fig2_loss_reliability_ece.png"
GRID_FIGURE = "fig2_grid_improvement.png"


def reproduce(context):
    """Trains (or loads) the main comparison and the grid; draws Fig. 2.

    Returns:
        The markdown section.
    """
    results = run_sets.main_results(context)
    spec, seeds = run_sets.main_spec(context), run_sets.main_seeds(context)
    _draw_main(context, spec, seeds, results)
    grid = run_sets.grid_results(context)
    depths, sizes, grid_seeds = run_sets.grid_axes(context)
    cells = _grid_cells(grid, depths, sizes)
    _draw_grid(context, cells, depths, sizes, len(grid_seeds))

    rows = report.comparison_rows(results)
    by_name = {row["metric"]: row for row in rows}
    final_loss = {arm: [run["nll"] for run in results[arm]] for arm in runs.ARMS}
    lines = [
        "## Fig. 2 — lower test loss and ECE with warm-up",
        "",
        f"Command: `{context.command}`",
        "",
        f"Main comparison: {spec.describe()}; test loss and ECE on {spec.test_size:,} "
        f"held-out images after every epoch; seeds {', '.join(map(str, seeds))}. "
        + report.environment_line(results),
        report.noise_confidence_line(results),
        "",
        context.figure_link(MAIN_FIGURE, "test loss, reliability diagrams and ECE"),
        "",
        report.markdown_table(rows),
        "",
        main_verdict(by_name, final_loss),
        "",
        f"Grid: the same protocol for every depth and training-set size, seeds "
        f"{', '.join(map(str, grid_seeds))}. Cell: median over seeds of the paired "
        "ECE reduction (no warm-up minus warm-up; > 0 means warm-up is better), "
        "seeds improved, and the Wilcoxon p-value.",
        "",
        context.figure_link(GRID_FIGURE, "ECE reduction over depth and data size"),
        "",
        *report.markdown_grid(depths, sizes, lambda depth, size: _cell_text(cells[depth, size])),
        "",
        grid_verdict(cells, depths, sizes),
        "",
    ]
    return "\n".join(lines)


def _cell_text(cell):
    return (f"{cell['reduction']:+.3f} ({cell['wins']}/{cell['seeds']}, "
            f"p {cell['p_value']:.2g})")


def _grid_cells(grid, depths, sizes):
    cells = {}
    for depth in depths:
        for size in sizes:
            baseline = np.array([run["ece"] for run in grid[depth, size]["baseline"]])
            warmup = np.array([run["ece"] for run in grid[depth, size]["warmup"]])
            cells[depth, size] = {
                "reductions": baseline - warmup,
                "reduction": float(np.median(baseline - warmup)),
                "wins": statistics.wins(baseline, warmup, lower_is_better=True),
                "seeds": len(baseline),
                "p_value": statistics.paired_wilcoxon(baseline, warmup),
                "baseline": float(np.median(baseline)),
            }
    return cells


def _draw_main(context, spec, seeds, results):
    import matplotlib.pyplot as plt

    store = runs.RunStore(context.cache)
    figure, axes = plt.subplots(1, 4, figsize=(19, 4.4), layout="constrained")
    loss_ax, *reliability_axes, ece_ax = axes
    epochs = np.arange(spec.epochs + 1)
    for arm in runs.ARMS:
        curves = [[epoch["nll"] for epoch in run["epochs"]] for run in results[arm]]
        plots.median_band(loss_ax, epochs, curves, runs.ARM_TITLES[arm], plots.ARM_COLORS[arm])
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("test loss (NLL)")
    loss_ax.set_title("Test loss (median, quartiles over seeds)", fontsize=10)
    loss_ax.legend()
    loss_ax.grid(alpha=0.3)
    for ax, arm in zip(reliability_axes, runs.ARMS):
        arrays = store.load_arrays(spec, seeds[0], arm)
        plot.reliability_diagram(
            arrays["test_labels"], arrays["test_logits"], num_bins=runs.NUM_BINS,
            from_logits=True, ax=ax, title=f"{runs.ARM_TITLES[arm]}, seed {seeds[0]}",
        )
    baseline = [run["ece"] for run in results["baseline"]]
    warmup = [run["ece"] for run in results["warmup"]]
    plots.paired_plot(ece_ax, baseline, warmup, "ECE (15 bins)",
                      statistics.paired_wilcoxon(baseline, warmup), runs.ARM_TITLES)
    plot.save_figure(figure, context.figure_path(MAIN_FIGURE))


def _draw_grid(context, cells, depths, sizes, num_seeds):
    import matplotlib.pyplot as plt

    reduction = np.array([[cells[d, s]["reduction"] for s in sizes] for d in depths])
    baseline = np.array([[cells[d, s]["baseline"] for s in sizes] for d in depths])
    annotations = [[f"{cells[d, s]['reduction']:+.3f}\n{cells[d, s]['wins']}/{num_seeds}"
                    for s in sizes] for d in depths]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    plots.heatmap(left, baseline, [str(d) for d in depths], [f"{s:,}" for s in sizes],
                  "Median ECE without warm-up", cmap="Reds")
    plots.heatmap(right, reduction, [str(d) for d in depths], [f"{s:,}" for s in sizes],
                  "ECE reduction by warm-up (median; seeds improved)", cmap="RdBu",
                  center=0.0, annotations=annotations)
    for ax in (left, right):
        ax.set_xlabel("training images")
        ax.set_ylabel("layers")
    plot.save_figure(figure, context.figure_path(GRID_FIGURE))


def main_verdict(rows, final_loss):
    ece, accuracy = rows["ece"], rows["accuracy"]
    accuracy_change = 100 * accuracy["difference"]
    holds = (
        ece["warmup"].median < ece["baseline"].median and ece["p_value"] < 0.01
        and accuracy_change > -1.0
    )
    return (
        f"Paper's claim (ECE lower with p < 0.01, accuracy not worse by more than 1 "
        f"point): **{'reproduced' if holds else 'not reproduced'}** here. Median ECE "
        f"{ece['baseline'].median:.3f} -> {ece['warmup'].median:.3f} (ratio "
        f"{ece['ratio']:.2f}, p = {ece['p_value']:.2g}); accuracy change "
        f"{accuracy_change:+.1f} points (median of paired differences); final test "
        f"loss {np.median(final_loss['baseline']):.3f} -> "
        f"{np.median(final_loss['warmup']):.3f} (p = {rows['nll']['p_value']:.2g})."
    )


def grid_verdict(cells, depths, sizes):
    improved = sum(cell["reduction"] > 0 for cell in cells.values())
    # Pooled over every cell and seed: one paired difference per network.
    pairs = [(depth, size, reduction) for (depth, size), cell in cells.items()
             for reduction in cell["reductions"]]
    depth, size, reduction = np.array(pairs, dtype="float64").T
    pooled_p = statistics.paired_wilcoxon(reduction, np.zeros_like(reduction))
    depth_trend = stats.spearmanr(depth, reduction)
    size_trend = stats.spearmanr(size, reduction)
    return (
        f"Warm-up lowered the median ECE in {improved} of {len(cells)} cells, and in "
        f"{int(np.sum(reduction > 0))} of {len(reduction)} networks over all cells "
        f"(pooled Wilcoxon p = {pooled_p:.2g}). Paper's claim (the gain is largest "
        f"for deep networks on little data): reduction {cells[depths[-1], sizes[0]]['reduction']:+.3f} "
        f"at {depths[-1]} layers / {sizes[0]:,} images against "
        f"{cells[depths[0], sizes[-1]]['reduction']:+.3f} at {depths[0]} layers / "
        f"{sizes[-1]:,} images; Spearman correlation of the reduction with depth "
        f"{depth_trend.statistic:+.2f} (p = {depth_trend.pvalue:.2g}), with data size "
        f"{size_trend.statistic:+.2f} (p = {size_trend.pvalue:.2g})."
    )
