"""Reliability diagrams and confidence histograms: what is drawn agrees
with the metric's numbers, and matplotlib is only imported when drawing."""

import ast
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_noisewarm import plot  # noqa: E402
from keras_noisewarm.metrics import AdaptiveCalibrationError  # noqa: E402
from keras_noisewarm.metrics import ClasswiseCalibrationError  # noqa: E402
from keras_noisewarm.metrics import ExpectedCalibrationError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def overconfident_predictions(num_examples=240, num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    logits = 3 * rng.normal(size=(num_examples, num_classes))
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    tempered = np.sqrt(probabilities)
    tempered /= tempered.sum(axis=-1, keepdims=True)
    labels = np.array([rng.choice(num_classes, p=p) for p in tempered])
    return probabilities.astype("float32"), labels


def bars_by_label(ax):
    containers = {container.get_label(): container for container in ax.containers}
    return containers["Accuracy"], containers["Gap"]


def test_reliability_diagram_draws_the_metrics_bins_and_value():
    probabilities, labels = overconfident_predictions()
    metric = ExpectedCalibrationError(num_bins=10)
    metric.update_state(labels, probabilities)
    figure = plot.reliability_diagram(metric=metric)
    assert isinstance(figure, matplotlib.figure.Figure)
    ax = figure.axes[0]
    stats = metric.bin_statistics()
    shown = stats["count"] > 0
    accuracy_bars, gap_bars = bars_by_label(ax)
    heights = np.array([bar.get_height() for bar in accuracy_bars])
    gaps = np.array([bar.get_height() for bar in gap_bars])
    np.testing.assert_allclose(heights, stats["accuracy"][shown])
    np.testing.assert_allclose(gaps, stats["confidence"][shown] - stats["accuracy"][shown])
    # The picture and the number agree: the ECE is the count-weighted mean
    # height of the gap bars.
    counts = stats["count"][shown]
    ece = float(metric.result())
    assert np.sum(counts * np.abs(gaps)) / counts.sum() == pytest.approx(ece, abs=1e-6)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"ECE = {ece:.4f}" in legend
    count_labels = sorted(text.get_text() for text in ax.texts)
    assert count_labels == sorted(f"{count:.0f}" for count in counts)


def test_reliability_diagram_from_arrays_equals_the_one_from_a_metric():
    probabilities, labels = overconfident_predictions()
    metric = ExpectedCalibrationError(num_bins=10, bin_confidence="center")
    metric.update_state(labels, probabilities)
    from_metric = plot.reliability_diagram(metric=metric).axes[0]
    from_arrays = plot.reliability_diagram(labels, probabilities, num_bins=10, bin_confidence="center").axes[0]
    for one, other in zip(bars_by_label(from_metric), bars_by_label(from_arrays)):
        assert [bar.get_height() for bar in one] == [bar.get_height() for bar in other]
    legend = [text.get_text() for text in from_arrays.get_legend().get_texts()]
    assert f"ECE = {float(metric.result()):.4f}" in legend


def test_adaptive_bins_are_drawn_with_their_own_widths():
    probabilities, labels = overconfident_predictions()
    metric = AdaptiveCalibrationError(num_bins=6)
    metric.update_state(labels, probabilities)
    ax = plot.reliability_diagram(metric=metric).axes[0]
    accuracy_bars, _ = bars_by_label(ax)
    stats = metric.bin_statistics()
    np.testing.assert_allclose([bar.get_width() for bar in accuracy_bars], stats["upper"] - stats["lower"])
    assert np.ptp([bar.get_width() for bar in accuracy_bars]) > 0.01
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"Adaptive ECE = {float(metric.result()):.4f}" in legend


def test_confidence_histogram_shows_shares_accuracy_and_mean_confidence():
    probabilities, labels = overconfident_predictions()
    figure = plot.confidence_histogram(labels, probabilities, num_bins=10)
    ax = figure.axes[0]
    shares = [bar.get_height() for bar in ax.containers[0]]
    assert sum(shares) == pytest.approx(1.0)
    accuracy = np.mean(probabilities.argmax(-1) == labels)
    mean_confidence = probabilities.max(-1).mean()
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [f"Accuracy {accuracy:.3f}", f"Mean confidence {mean_confidence:.3f}"]


def test_figures_are_drawn_on_a_given_axes():
    probabilities, labels = overconfident_predictions()
    figure, (left, right) = plt.subplots(1, 2)
    assert plot.reliability_diagram(labels, probabilities, ax=left) is figure
    assert plot.confidence_histogram(labels, probabilities, ax=right) is figure
    assert left.containers and right.containers


def test_wrong_sources_are_rejected():
    probabilities, labels = overconfident_predictions()
    with pytest.raises(ValueError, match="not both"):
        plot.reliability_diagram(labels, probabilities, metric=ExpectedCalibrationError())
    with pytest.raises(ValueError, match="both `y_true` and `y_pred`"):
        plot.reliability_diagram(labels)
    with pytest.raises(TypeError, match="must be an ExpectedCalibrationError"):
        plot.reliability_diagram(metric=ClasswiseCalibrationError(10))


def test_no_library_module_imports_matplotlib_at_import_time():
    # Checked on the source: `import keras` itself (keras.src.visualization)
    # already imports matplotlib when it is installed, so sys.modules cannot
    # tell whether our modules do.
    package = pathlib.Path(plot.__file__).parent
    checked = 0
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top_level_imports = [
            alias.name if isinstance(node, ast.Import) else node.module
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ]
        checked += len(top_level_imports)
        assert not [name for name in top_level_imports if name and name.startswith("matplotlib")], path
    assert checked > 100, "the check must see the modules' imports"
    pyplot_source = ast.get_source_segment(
        pathlib.Path(plot.__file__).read_text(),
        next(node for node in ast.parse(pathlib.Path(plot.__file__).read_text()).body
             if isinstance(node, ast.FunctionDef) and node.name == "pyplot"),
    )
    assert "import matplotlib.pyplot as plt" in pyplot_source


def test_drawing_without_matplotlib_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"keras-noisewarm\[plot\]"):
        plot.reliability_diagram([0, 1], [[0.9, 0.1], [0.2, 0.8]])


def regression_predictions(variance_factor, num_examples=400, seed=0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=num_examples)
    sigma = np.exp(0.5 * rng.normal(size=num_examples))
    targets = mean + sigma * rng.normal(size=num_examples)
    return targets, np.stack([mean, variance_factor * sigma**2], -1).astype("float32")


def test_quantile_reliability_diagram_draws_the_metrics_curve_and_value():
    from keras_noisewarm.metrics import QuantileCalibrationError

    targets, y_pred = regression_predictions(0.25)
    metric = QuantileCalibrationError(num_levels=19)
    metric.update_state(targets, y_pred)
    ax = plot.quantile_reliability_diagram(metric=metric).axes[0]
    observed = next(line for line in ax.lines if line.get_label() == "Observed")
    curve = metric.calibration_curve()
    np.testing.assert_allclose(observed.get_xdata(), curve["expected"])
    np.testing.assert_allclose(observed.get_ydata(), curve["observed"])
    # Variances 4x too small: too few targets below the low quantiles.
    assert curve["observed"][0] > curve["expected"][0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"QCE = {float(metric.result()):.4f} (400 targets)" in legend
    from_arrays = plot.quantile_reliability_diagram(targets, y_pred, num_levels=19).axes[0]
    assert [text.get_text() for text in from_arrays.get_legend().get_texts()] == legend


def test_variance_reliability_diagram_draws_rmse_against_rmv_per_bin():
    from keras_noisewarm.metrics import ExpectedNormalizedCalibrationError

    targets, y_pred = regression_predictions(4.0)
    metric = ExpectedNormalizedCalibrationError(num_bins=5)
    metric.update_state(targets, y_pred)
    ax = plot.variance_reliability_diagram(metric=metric).axes[0]
    bins = next(line for line in ax.lines if line.get_label() == "Bins (equal mass)")
    stats = metric.bin_statistics()
    np.testing.assert_allclose(bins.get_xdata(), stats["rmv"])
    np.testing.assert_allclose(bins.get_ydata(), stats["rmse"])
    assert np.all(stats["rmse"] < stats["rmv"])  # underconfident: below the diagonal
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"ENCE = {float(metric.result()):.4f}" in legend
    with pytest.raises(TypeError, match="ExpectedNormalizedCalibrationError"):
        plot.variance_reliability_diagram(metric=ExpectedCalibrationError())
