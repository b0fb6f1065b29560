"""Figures: reliability diagrams, confidence histograms, training trajectories,
calibration under shift, risk-coverage curves.

The calibration figures are drawn from the state of a calibration metric, so
the picture and the number in its legend always agree: pass a metric that
has seen predictions, or arrays, which fill a fresh `ExpectedCalibrationError`
(for regression, a fresh `QuantileCalibrationError` or
`ExpectedNormalizedCalibrationError`).

matplotlib is an optional dependency (`pip install keras-noisewarm[plot]`):
it is imported when a figure is drawn, never with the package.
"""

import numpy as np
from keras import ops

from keras_noisewarm.metrics import calibration
from keras_noisewarm.metrics import regression

_DISPLAY_NAMES = {
    calibration.MaximumCalibrationError: "MCE",
    calibration.AdaptiveCalibrationError: "Adaptive ECE",
    calibration.DebiasedL2CalibrationError: "Debiased L2 CE",
    calibration.ExpectedCalibrationError: "ECE",
}

# Axis titles of the numbers that `shift.evaluate_shift` reports.
_SHIFT_AXIS_TITLES = {"ece": "ECE", "nll": "NLL", "brier": "Brier score",
                      "accuracy": "accuracy"}


def _filled_metric(metric, y_true, y_pred, sample_weight, metric_kwargs):
    if metric is not None:
        if y_true is not None or y_pred is not None or metric_kwargs:
            raise ValueError(
                "Pass either `metric` or `y_true` and `y_pred` (with metric "
                "options), not both."
            )
        if not isinstance(metric, tuple(_DISPLAY_NAMES)):
            raise TypeError(
                "`metric` must be an ExpectedCalibrationError, "
                "MaximumCalibrationError, AdaptiveCalibrationError or "
                f"DebiasedL2CalibrationError. Received: {metric!r}"
            )
        return metric
    if y_true is None or y_pred is None:
        raise ValueError("Pass `metric`, or both `y_true` and `y_pred`.")
    metric = calibration.ExpectedCalibrationError(**metric_kwargs)
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return metric


def _metric_label(metric):
    name = next(
        label for cls, label in _DISPLAY_NAMES.items() if isinstance(metric, cls)
    )
    if name == "ECE" and metric.norm != "l1":
        name = {"l2": "RMS CE", "max": "MCE"}[metric.norm]
    return f"{name} = {float(metric.result()):.4f}"


def pyplot():
    """`matplotlib.pyplot`, or an `ImportError` that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "keras_noisewarm.plot draws with matplotlib, which is not installed: "
            "pip install 'keras-noisewarm[plot]' (or pip install matplotlib)."
        ) from error
    return plt


def save_figure(figure, path, dpi=100):
    """Saves a matplotlib figure (PNG by its file name) and closes it."""
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)


def _new_axes(ax, figsize):
    plt = pyplot()

    if ax is not None:
        return ax.figure, ax
    figure, ax = plt.subplots(figsize=figsize, layout="constrained")
    return figure, ax


def reliability_diagram(
    y_true=None,
    y_pred=None,
    sample_weight=None,
    *,
    metric=None,
    ax=None,
    title="Reliability diagram",
    show_counts=True,
    **metric_kwargs,
):
    """Draws accuracy against confidence, bin by bin.

    Each non-empty bin shows a bar up to its accuracy, a hatched red gap bar
    between the accuracy and the confidence the metric compares it with
    (the mean confidence of the bin, or its centre with
    `bin_confidence="center"`), marked by a dot, and, with `show_counts`,
    its (weighted) number of predictions. With `norm="l1"` the ECE in the
    legend is exactly the count-weighted mean height of the gap bars.

    Args:
        y_true: Labels, as for `ExpectedCalibrationError.update_state`.
        y_pred: Probabilities (or logits with `from_logits=True`).
        sample_weight: Optional weights.
        metric: Instead of arrays, an `ExpectedCalibrationError`,
            `MaximumCalibrationError`, `AdaptiveCalibrationError` or
            `DebiasedL2CalibrationError` that has seen the predictions.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.
        show_counts: Whether to write each bin's count above its bar.
        **metric_kwargs: Options of the `ExpectedCalibrationError` filled
            from arrays (`num_bins`, `from_logits`, `bin_confidence`, ...).

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    figure = keras_noisewarm.plot.reliability_diagram(
        labels, model.predict(images), num_bins=10
    )
    figure.savefig("reliability.png")
    ```
    """
    metric = _filled_metric(metric, y_true, y_pred, sample_weight, metric_kwargs)
    stats = metric.bin_statistics()
    figure, ax = _new_axes(ax, figsize=(5, 5))
    shown = stats["count"] > 0
    lower, upper = stats["lower"][shown], stats["upper"][shown]
    accuracy, confidence = stats["accuracy"][shown], stats["confidence"][shown]
    widths = upper - lower
    ax.bar(
        lower,
        accuracy,
        width=widths,
        align="edge",
        color="tab:blue",
        edgecolor="black",
        linewidth=0.5,
        label="Accuracy",
    )
    ax.bar(
        lower,
        confidence - accuracy,
        bottom=accuracy,
        width=widths,
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        linewidth=0.5,
        label="Gap",
    )
    ax.plot(
        (lower + upper) / 2,
        confidence,
        "o",
        color="tab:red",
        markersize=3,
        label="Bin confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="Perfect calibration")
    if show_counts:
        for left, width, height, count in zip(
            lower, widths, np.maximum(accuracy, confidence), stats["count"][shown]
        ):
            ax.text(
                left + width / 2,
                min(height + 0.02, 1.02),
                f"{count:.0f}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    # An invisible handle puts the metric's value in the legend.
    ax.plot([], [], " ", label=_metric_label(metric))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return figure


def confidence_histogram(
    y_true=None,
    y_pred=None,
    sample_weight=None,
    *,
    metric=None,
    ax=None,
    title="Confidence histogram",
    **metric_kwargs,
):
    """Draws the share of predictions in each confidence bin.

    Vertical lines mark the overall accuracy and mean confidence: a model
    whose mean confidence lies right of its accuracy is overconfident.

    Args:
        y_true: Labels, as for `ExpectedCalibrationError.update_state`.
        y_pred: Probabilities (or logits with `from_logits=True`).
        sample_weight: Optional weights.
        metric: Instead of arrays, a top-label calibration metric that has
            seen the predictions (see `reliability_diagram`).
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.
        **metric_kwargs: Options of the `ExpectedCalibrationError` filled
            from arrays.

    Returns:
        The matplotlib `Figure`.
    """
    metric = _filled_metric(metric, y_true, y_pred, sample_weight, metric_kwargs)
    stats = metric.bin_statistics()
    figure, ax = _new_axes(ax, figsize=(5, 3))
    shown = stats["count"] > 0
    total = stats["count"].sum()
    lower, upper = stats["lower"][shown], stats["upper"][shown]
    ax.bar(
        lower,
        stats["count"][shown] / max(total, 1e-12),
        width=upper - lower,
        align="edge",
        color="tab:blue",
        edgecolor="black",
        linewidth=0.5,
    )
    if total > 0:
        # Totals straight from the state: the same numbers the metric uses.
        counts = stats["count"][shown]
        accuracy = np.sum(stats["accuracy"][shown] * counts) / total
        mean_confidence = float(
            np.sum(ops.convert_to_numpy(metric.bin_confidence_sums.value)) / total
        )
        ax.axvline(accuracy, color="black", linestyle="--", label=f"Accuracy {accuracy:.3f}")
        ax.axvline(
            mean_confidence,
            color="tab:red",
            linestyle="--",
            label=f"Mean confidence {mean_confidence:.3f}",
        )
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Share of predictions")
    ax.set_title(f"{title} ({total:.0f} predictions)")
    return figure


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
    plt = pyplot()
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


def _filled_regression_metric(metric, metric_class, y_true, y_pred, sample_weight, metric_kwargs):
    if metric is not None:
        if y_true is not None or y_pred is not None or metric_kwargs:
            raise ValueError(
                "Pass either `metric` or `y_true` and `y_pred` (with metric "
                "options), not both."
            )
        if not isinstance(metric, metric_class):
            raise TypeError(f"`metric` must be a {metric_class.__name__}. Received: {metric!r}")
        return metric
    if y_true is None or y_pred is None:
        raise ValueError("Pass `metric`, or both `y_true` and `y_pred`.")
    metric = metric_class(**metric_kwargs)
    metric.update_state(y_true, y_pred, sample_weight=sample_weight)
    return metric


def quantile_reliability_diagram(
    y_true=None,
    y_pred=None,
    sample_weight=None,
    *,
    metric=None,
    ax=None,
    title="Quantile calibration",
    **metric_kwargs,
):
    """Draws the observed against the expected quantile level of a regression.

    For every level `p`, the share of targets at or below the predicted
    `p`-quantile (Kuleshov et al., 2018). A calibrated model lies on the
    diagonal; a curve that is flatter than it (below it at low levels, above
    it at high ones) belongs to intervals too narrow, an overconfident
    model; a steeper one to intervals too wide. The shaded area is the gap
    whose mean is the quantile calibration error in the legend.

    Args:
        y_true: Targets, as for `QuantileCalibrationError.update_state`.
        y_pred: Means and spreads, as for `QuantileCalibrationError`.
        sample_weight: Optional weights.
        metric: Instead of arrays, a `QuantileCalibrationError` that has
            seen the predictions.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.
        **metric_kwargs: Options of the `QuantileCalibrationError` filled
            from arrays (`num_levels`, `spread`, ...).

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    figure = keras_noisewarm.plot.quantile_reliability_diagram(
        y_test, model.predict(x_test), spread="variance"
    )
    ```
    """
    metric = _filled_regression_metric(metric, regression.QuantileCalibrationError, y_true,
                                       y_pred, sample_weight, metric_kwargs)
    curve = metric.calibration_curve()
    figure, ax = _new_axes(ax, figsize=(5, 5))
    expected, observed = curve["expected"], curve["observed"]
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="Perfect calibration")
    ax.fill_between(expected, expected, observed, color="tab:red", alpha=0.25, label="Gap")
    ax.plot(expected, observed, "-", color="tab:blue", linewidth=1.5, label="Observed")
    ax.plot([], [], " ", label=f"QCE = {float(metric.result()):.4f} ({curve['count']:.0f} targets)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("Expected level p (predicted quantile)")
    ax.set_ylabel("Observed share of targets at or below it")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return figure


def variance_reliability_diagram(
    y_true=None,
    y_pred=None,
    sample_weight=None,
    *,
    metric=None,
    ax=None,
    title="Variance calibration",
    **metric_kwargs,
):
    """Draws each bin's root mean squared error against its root mean variance.

    The bins are those of `ExpectedNormalizedCalibrationError` (equal-mass
    bins of the predicted standard deviation). A calibrated model's bins lie
    on the diagonal (the errors are as large as the model says); bins above
    it are overconfident. Both axes are logarithmic, with the ENCE in the
    legend.

    Args:
        y_true: Targets, as for `ExpectedNormalizedCalibrationError`.
        y_pred: Means and spreads.
        sample_weight: Optional weights.
        metric: Instead of arrays, an `ExpectedNormalizedCalibrationError`
            that has seen the predictions.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.
        **metric_kwargs: Options of the metric filled from arrays
            (`num_bins`, `spread`, ...).

    Returns:
        The matplotlib `Figure`.
    """
    metric = _filled_regression_metric(metric, regression.ExpectedNormalizedCalibrationError,
                                       y_true, y_pred, sample_weight, metric_kwargs)
    stats = metric.bin_statistics()
    figure, ax = _new_axes(ax, figsize=(5, 5))
    shown = stats["count"] > 0
    rmv, rmse = stats["rmv"][shown], stats["rmse"][shown]
    positive = np.concatenate([rmv, rmse[rmse > 0]])
    if positive.size:
        low, high = positive.min() / 1.5, positive.max() * 1.5
    else:
        low, high = 0.1, 10.0
    ax.plot([low, high], [low, high], "--", color="gray", linewidth=1, label="Perfect calibration")
    ax.plot(rmv, rmse, "o-", color="tab:blue", markersize=4, label="Bins (equal mass)")
    ax.plot([], [], " ", label=f"ENCE = {float(metric.result()):.4f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("Root mean variance (predicted error)")
    ax.set_ylabel("Root mean squared error (observed)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return figure


def shift_boxplot(rows, metric="ece", ax=None, title=None):
    """Box plots of a metric over corruptions, one group per severity.

    The figure of Ovadia et al. (2019): at each severity, a box spans the
    values of the corruptions (median, quartiles, whiskers at 1.5 times the
    interquartile range). Several models side by side, one colour each.

    Args:
        rows: Rows of `keras_noisewarm.shift.evaluate_shift` (dicts with
            `corruption`, `severity` and the metric), or `{label: rows}` to
            compare models. Rows of several seeds may be pooled in one list.
        metric: The number to draw (`"ece"`, `"accuracy"`, `"nll"`,
            `"brier"`).
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    rows = keras_noisewarm.shift.evaluate_shift(model, images, labels,
                                                preprocess=normalise)
    keras_noisewarm.plot.shift_boxplot(rows).savefig("shift.png")
    ```
    """
    groups = rows if isinstance(rows, dict) else {None: rows}
    if not groups or not all(groups.values()):
        raise ValueError("`rows` holds no measurements.")
    for label, group in groups.items():
        missing = [row for row in group if metric not in row or "severity" not in row]
        if missing:
            raise ValueError(f"Rows of {label or 'the model'} lack {metric!r} or 'severity'.")
    severities = sorted({row["severity"] for group in groups.values() for row in group})
    figure, ax = _new_axes(ax, figsize=(1.2 + 1.1 * len(severities), 4))
    width = 0.8 / len(groups)
    colors = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, group) in enumerate(groups.items()):
        values = [[row[metric] for row in group if row["severity"] == severity]
                  for severity in severities]
        positions = np.arange(len(severities)) + (index - (len(groups) - 1) / 2) * width
        color = colors[index % len(colors)]
        ax.boxplot(values, positions=positions, widths=width * 0.9, patch_artist=True,
                   boxprops={"facecolor": color, "alpha": 0.5}, medianprops={"color": "black"},
                   flierprops={"markersize": 3})
        if label is not None:
            ax.plot([], [], "s", color=color, alpha=0.5, label=label)
    ax.set_xticks(np.arange(len(severities)),
                  ["clean" if severity == 0 else str(severity) for severity in severities])
    ax.set_xlabel("corruption severity")
    axis_title = _SHIFT_AXIS_TITLES.get(metric, metric)
    ax.set_ylabel(axis_title)
    ax.set_title(title or f"{axis_title} under increasing shift")
    ax.grid(alpha=0.3, axis="y")
    if len(groups) > 1 or None not in groups:
        ax.legend(fontsize=8)
    return figure


def risk_coverage_plot(y_true, y_pred, from_logits=None, *, ax=None, label=None,
                       title="Risk-coverage curve", show_optimal=True, **line_kwargs):
    """Draws the risk-coverage curve of selective prediction.

    The risk (error rate among the answered inputs) against the coverage
    (share answered, most confident first; `keras_noisewarm.selective`),
    with the AURC in the legend, and the curve of a perfect ranking with
    the same errors (dotted). Call it again with the same `ax` to overlay
    models.

    Args:
        y_true: Integer labels `(N,)`.
        y_pred: Logits or probabilities `(N, K)`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        label: Legend label of the curve (the AURC is appended).
        title: Title of the axes.
        show_optimal: Whether to draw the perfect ranking's curve.
        **line_kwargs: Passed to `Axes.plot` (`color`, `linestyle`, ...).

    Returns:
        The matplotlib `Figure`.
    """
    from keras_noisewarm import selective

    coverage, risk = selective.risk_coverage_curve(y_true, y_pred, from_logits)
    figure, ax = _new_axes(ax, figsize=(5, 4))
    area = float(np.mean(risk))
    text = f"AURC = {area:.4f}"
    ax.plot(coverage, risk, label=f"{label}, {text}" if label else text, **line_kwargs)
    if show_optimal:
        errors = int(round(risk[-1] * len(risk)))
        right = len(risk) - errors
        positions = np.arange(1, len(risk) + 1)
        optimal = np.maximum(positions - right, 0) / positions
        ax.plot(coverage, optimal, ":", color="gray",
                label=f"perfect ranking, AURC = {optimal.mean():.4f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (error rate among the answered)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return figure


def smooth_reliability_diagram(y_true, y_pred, from_logits=None, *, ax=None,
                               title="Smooth reliability diagram"):
    """Draws the smoothed reliability curve and the smooth ECE (Błasiok & Nakkiran).

    The kernel-smoothed accuracy against the confidence (top label), at the
    smooth ECE's own bandwidth (`keras_noisewarm.smooth_calibration`); the
    line is thicker where predictions are denser, and the density of the
    confidences is shaded below.

    Args:
        y_true: Integer labels `(N,)`.
        y_pred: Logits or probabilities `(N, K)`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.
        ax: A matplotlib `Axes` to draw on; a new figure if `None`.
        title: Title of the axes.

    Returns:
        The matplotlib `Figure`.
    """
    from matplotlib.collections import LineCollection

    from keras_noisewarm import selective
    from keras_noisewarm import smooth_calibration

    confidences, errors = selective.confidences_and_errors(y_true, y_pred, from_logits)
    curve = smooth_calibration.smooth_calibration_curve(confidences, 1.0 - errors)
    figure, ax = _new_axes(ax, figsize=(5, 5))
    shown = np.isfinite(curve["accuracy"])
    t, accuracy, density = curve["t"][shown], curve["accuracy"][shown], curve["density"][shown]
    points = np.stack([t, accuracy], axis=1)
    segments = np.stack([points[:-1], points[1:]], axis=1)
    widths = 0.5 + 4.0 * density[:-1] / max(density.max(), 1e-12)
    ax.add_collection(LineCollection(segments, linewidths=widths, colors="tab:red",
                                     label="smoothed accuracy"))
    ax.fill_between(curve["t"], 0, 0.25 * curve["density"] / max(curve["density"].max(), 1e-12),
                    color="tab:blue", alpha=0.25, linewidth=0, label="density of confidences")
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1, label="perfect calibration")
    ax.plot([], [], " ", label=f"smooth ECE = {curve['smooth_ece']:.4f} "
                               f"(bandwidth {curve['bandwidth']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Confidence")
    ax.set_ylabel("Accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return figure
