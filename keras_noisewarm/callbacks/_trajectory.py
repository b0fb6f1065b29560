"""The confidence-vs-accuracy trajectory of a training run (matplotlib)."""

import numpy as np


def trajectory_plot(accuracy, confidence, title=None):
    """Draws mean confidence against accuracy, one point per epoch.

    A calibrated run moves along the diagonal; points above it are epochs in
    which the model was more confident than accurate (Fig. 4d-f of Cheon &
    Paik, 2026, draws training runs this way).

    Args:
        accuracy: Accuracy after each epoch.
        confidence: Mean top-label confidence after each epoch.
        title: Title of the axes.

    Returns:
        The matplotlib `Figure`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    accuracy = np.asarray(accuracy, dtype="float64")
    confidence = np.asarray(confidence, dtype="float64")
    epochs = np.arange(1, len(accuracy) + 1)
    figure, ax = plt.subplots(figsize=(5.5, 5), layout="constrained")
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="confidence = accuracy")
    ax.plot(accuracy, confidence, "-", color="black", linewidth=0.8, zorder=2)
    points = ax.scatter(accuracy, confidence, c=epochs, cmap="viridis", s=30, zorder=3)
    # The first epoch labelled below right of its point, the last above left.
    for index, offset, align in ((0, (6, -12), "left"), (-1, (-6, 6), "right")):
        ax.annotate(
            f"epoch {epochs[index]}", (accuracy[index], confidence[index]),
            textcoords="offset points", xytext=offset, ha=align, fontsize=8,
        )
    colorbar = figure.colorbar(points, ax=ax, label="epoch", shrink=0.8)
    colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.text(0.04, 0.93, "overconfident", transform=ax.transAxes, fontsize=8, color="gray")
    ax.text(0.65, 0.05, "underconfident", transform=ax.transAxes, fontsize=8, color="gray")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Accuracy")
    ax.set_ylabel("Mean confidence")
    ax.set_title(title or "Confidence vs accuracy during training")
    ax.legend(loc="upper left", bbox_to_anchor=(0, 0.9), fontsize=8)
    return figure
