"""Tables and markdown reports of a comparison."""

import platform

import keras
import numpy as np

from keras_noisewarm.experiments import compare
from keras_noisewarm.experiments import statistics


def comparison_rows(results):
    """One row per metric: summaries of both arms, effect, wins and p-value.

    Args:
        results: `{arm: [per-seed result dicts]}` as returned by
            `compare.run_comparison`, with the seeds in the same order.

    Returns:
        A list of dicts with keys `metric`, `title`, `baseline`, `warmup`
        (`statistics.Summary`), `ratio` (median warm-up / median baseline),
        `difference` (median of the paired differences, warm-up minus
        baseline), `wins` (seeds where warm-up is better), `seeds` and
        `p_value` (paired two-sided Wilcoxon).
    """
    rows = []
    for name, title, lower_is_better in compare.METRICS:
        baseline = np.array([run[name] for run in results["baseline"]])
        warmup = np.array([run[name] for run in results["warmup"]])
        baseline_summary = statistics.summarize(baseline)
        rows.append(
            {
                "metric": name,
                "title": title,
                "baseline": baseline_summary,
                "warmup": statistics.summarize(warmup),
                "ratio": statistics.summarize(warmup).median / baseline_summary.median
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


def markdown_report(rows, config, task, command, results):
    """The markdown report written next to the figures."""
    seconds = sum(run["seconds"] for arm in compare.ARMS for run in results[arm])
    noise_before = [run["noise_confidence_before"] for run in results["warmup"]]
    noise_after = [run["noise_confidence_after"] for run in results["warmup"]]
    lines = [
        "# Noise warm-up vs no warm-up",
        "",
        f"Command: `{command}`",
        "",
        f"Backend {keras.backend.backend()}, keras {keras.__version__}, "
        f"Python {platform.python_version()}, {platform.machine()}; "
        f"{seconds / 60:.1f} minutes of runs.",
        "",
        f"Data: {task.name}, {len(task.x_train)} training and {len(task.x_test)} "
        f"test images; out-of-distribution: {task.ood_name} ({len(task.x_ood)} images).",
        f"Model: {config.depth}-layer MLP of width {config.width} (Dense -> ReLU -> "
        f"BatchNorm, He-normal), {config.epochs} epochs of Adam {config.learning_rate} "
        f"(batch {config.batch_size}).",
        f"Warm-up: {config.warmup_examples} Gaussian noise examples, Adam "
        f"{config.warmup_learning_rate}; noise confidence "
        f"{np.median(noise_before):.3f} -> {np.median(noise_after):.3f} (median, "
        f"chance {1 / task.num_classes:.3f}).",
        f"Seeds: {', '.join(str(seed) for seed in config.seeds)}; each seed's two "
        "networks start from the same weights.",
        "",
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
        "Wilcoxon signed-rank test over seeds.",
        "",
        f"![no warm-up](reliability_baseline_seed{config.seeds[0]}.png) "
        f"![noise warm-up](reliability_warmup_seed{config.seeds[0]}.png)",
        "",
    ]
    return "\n".join(lines)
