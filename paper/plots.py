"""Plot pieces shared by the figures of the reproduction (matplotlib)."""

import numpy as np


ARM_COLORS = {"baseline": "tab:gray", "warmup": "tab:orange"}


def median_band(ax, x, rows, label, color):
    """A median line with the interquartile range shaded, over seeds.

    Args:
        ax: Axes to draw on.
        x: Positions, one per column of `rows`.
        rows: Array-like of shape `(seeds, len(x))`.
        label: Legend label.
        color: Line colour.
    """
    rows = np.asarray(rows, dtype="float64")
    q25, median, q75 = np.nanpercentile(rows, [25, 50, 75], axis=0)
    ax.plot(x, median, "-", color=color, label=label, linewidth=1.8)
    ax.fill_between(x, q25, q75, color=color, alpha=0.25, linewidth=0)


def paired_plot(ax, baseline, warmup, ylabel, p_value, titles):
    """One line per seed from its no-warm-up value to its warm-up value."""
    baseline = np.asarray(baseline, dtype="float64")
    warmup = np.asarray(warmup, dtype="float64")
    for first, second in zip(baseline, warmup):
        ax.plot([0, 1], [first, second], "-", color="lightgray", linewidth=1, zorder=1)
    for position, (arm, values) in enumerate((("baseline", baseline), ("warmup", warmup))):
        ax.scatter(np.full(len(values), position), values, color=ARM_COLORS[arm], zorder=2, s=20)
        ax.plot([position - 0.15, position + 0.15], [np.median(values)] * 2, color="black",
                linewidth=2, zorder=3)
    ax.set_xticks([0, 1], [titles["baseline"], titles["warmup"]])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{len(baseline)} seeds, Wilcoxon p = {p_value:.2g}", fontsize=9)


def heatmap(ax, values, row_labels, column_labels, title, cmap, center=None, annotations=None):
    """An annotated heat map of `values` (rows x columns).

    Args:
        center: Value at the middle of a diverging colour map, or `None`.
        annotations: Text per cell (default: the values to 3 decimals).
    """
    values = np.asarray(values, dtype="float64")
    limits = {}
    if center is not None:
        spread = np.nanmax(np.abs(values - center)) or 1.0
        limits = dict(vmin=center - spread, vmax=center + spread)
    image = ax.imshow(values, cmap=cmap, aspect="auto", origin="lower", **limits)
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    for row in range(values.shape[0]):
        for column in range(values.shape[1]):
            text = (annotations[row][column] if annotations is not None
                    else f"{values[row, column]:.3f}")
            # White on the dark end of the colour map, black elsewhere.
            shade = image.norm(values[row, column])
            dark = shade > 0.7 or (center is not None and shade < 0.3)
            ax.text(column, row, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(column_labels)), column_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_title(title, fontsize=10)
