"""Tables and markdown reports of a comparison."""

import platform

import keras
import numpy as np

from keras_noisewarm.experiments import runs
from keras_noisewarm.experiments import statistics


def comparison_rows(results, metric_names=None):
    """One row per metric: summaries of both arms, effect, wins and p-value.

    Args:
        results: `{arm: [per-seed result dicts]}` as returned by
            `compare.run_comparison`, with the seeds in the same order.
        metric_names: Names of `runs.METRICS` to include (default: all).

    Returns:
        A list of dicts with keys `metric`, `title`, `baseline`, `warmup`
        (`statistics.Summary`), `ratio` (median warm-up / median baseline),
        `difference` (median of the paired differences, warm-up minus
        baseline), `wins` (seeds where warm-up is better), `seeds` and
        `p_value` (paired two-sided Wilcoxon).
    """
    rows = []
    for name, title, lower_is_better in runs.METRICS:
        if metric_names is not None and name not in metric_names:
            continue
        baseline = np.array([run[name] for run in results["baseline"]])
        warmup = np.array([run[name] for run in results["warmup"]])
        baseline_summary = statistics.summarize(baseline)
        warmup_summary = statistics.summarize(warmup)
        rows.append(
            {
                "metric": name,
                "title": title,
                "baseline": baseline_summary,
                "warmup": warmup_summary,
                "ratio": warmup_summary.median / baseline_summary.median
                if baseline_summary.median
                else float("nan"),
                "difference": float(np.median(warmup - baseline)),
                "wins": statistics.wins(baseline, warmup, lower_is_better),
                "seeds": len(baseline),
                "p_value": statistics.paired_wilcoxon(baseline, warmup),
            }
        )
    return rows


def format_table(rows):
    """A plain-text table of `comparison_rows` for the terminal."""
    header = (
        f"{'metric':26}{'no warm-up':>26}{'noise warm-up':>26}"
        f"{'ratio':>8}{'wins':>7}{'Wilcoxon p':>12}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['title']:26}{str(row['baseline']):>26}{str(row['warmup']):>26}"
            f"{row['ratio']:8.3f}{row['wins']:>4}/{row['seeds']:<2}{row['p_value']:12.4f}"
        )
    lines.append("median [25th, 75th percentile] over seeds; wins: seeds where warm-up is better")
    return "\n".join(lines)


def markdown_table(rows):
    """The rows of `comparison_rows` as a markdown table."""
    lines = [
        "| metric | no warm-up | noise warm-up | ratio | warm-up better | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['title']} | {row['baseline']} | {row['warmup']} | "
            f"{row['ratio']:.3f} | {row['wins']}/{row['seeds']} | {row['p_value']:.4g} |"
        )
    lines += [
        "",
        "Values: median [25th, 75th percentile] over seeds. p: paired two-sided "
        "Wilcoxon signed-rank test over seeds (each seed's two networks start "
        "from the same weights).",
    ]
    return "\n".join(lines)


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


def noise_confidence_line(results):
    num_classes = results["warmup"][0]["num_classes"]
    before = [run["noise_confidence_before"] for run in results["warmup"]]
    after = [run["noise_confidence_after"] for run in results["warmup"]]
    return (
        f"Mean confidence on fresh noise: {np.median(before):.3f} before the "
        f"warm-up, {np.median(after):.3f} after (median over seeds; chance "
        f"{1 / num_classes:.3f})."
    )


def markdown_report(rows, spec, seeds, command, results, figures):
    """The markdown report of `keras-noisewarm compare`."""
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
