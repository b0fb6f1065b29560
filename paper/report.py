"""Tables and markdown reports of a comparison."""

import platform

import keras
import numpy as np

from keras_noisewarm import compare
from paper import runs


def comparison_rows(results, metric_names=None):
    """`keras_noisewarm.compare.comparison_rows` with the paper's metric titles."""
    return compare.comparison_rows(results, metric_names, metrics=runs.METRICS)


format_table = compare.format_table
markdown_table = compare.markdown_table


def markdown_grid(depths, sizes, cell_text):
    """A depth x training-set-size markdown table.

    Args:
        depths: Row values (layers).
        sizes: Column values (training images).
        cell_text: Callable `(depth, size) -> str`.

    Returns:
        The table's lines.
    """
    lines = [
        "| layers | " + " | ".join(f"{size:,} images" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for depth in depths:
        lines.append(f"| {depth} | " + " | ".join(cell_text(depth, size) for size in sizes) + " |")
    return lines


def environment_line(results):
    """Backend, versions and the summed run time of `results`."""
    seconds = sum(run["seconds"] for arm_runs in results.values() for run in arm_runs)
    return (
        f"Backend {keras.backend.backend()}, keras {keras.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}; "
        f"{seconds / 60:.1f} minutes of training and measuring."
    )


def noise_confidence_line(results, num_classes=10):
    before = [run["noise_confidence_before"] for run in results["warmup"]]
    after = [run["noise_confidence_after"] for run in results["warmup"]]
    return (
        f"Mean confidence on fresh noise: {np.median(before):.3f} before the "
        f"warm-up, {np.median(after):.3f} after (median over seeds; chance "
        f"{1 / num_classes:.3f})."
    )


def markdown_report(rows, spec, seeds, command, results, figures):
    """The markdown report of `python -m paper compare`."""
    lines = [
        "# Noise warm-up vs no warm-up",
        "",
        f"Command: `{command}`",
        "",
        environment_line(results),
        "",
        f"Setting: {spec.describe()}. Held-out: {spec.test_size:,} {spec.dataset} "
        f"test images; out-of-distribution: {spec.test_size:,} {spec.ood} images.",
        noise_confidence_line(results),
        f"Seeds: {', '.join(str(seed) for seed in seeds)}.",
        "",
        markdown_table(rows),
        "",
        " ".join(f"![{arm}]({name})" for arm, name in figures.items()),
        "",
    ]
    return "\n".join(lines)
