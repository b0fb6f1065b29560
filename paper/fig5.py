"""Fig. 5: less confidence on unseen inputs, better max-softmax OOD detection."""

import numpy as np

from keras_noisewarm import plot
from paper import data
from paper import run_sets
from paper import plots
from paper import report
from paper import runs
from keras_noisewarm import statistics
from keras_noisewarm.ood import metrics as ood_metrics

FIGURE = "fig5_ood_confidence_roc.png"
# (name, title, higher is better) of the OOD numbers of `runs.measure`.
OOD_METRICS = (
    ("ood_confidence", "mean OOD confidence", False),
    ("ood_auroc", "AUROC", True),
    ("ood_aupr_in", "AUPR-In (in-distribution positive)", True),
    ("ood_aupr_out", "AUPR-Out (OOD positive)", True),
    ("ood_fpr95", "FPR at 95% TPR (in-distribution positive)", False),
)
HISTOGRAM_BINS = np.linspace(0.0, 1.0, 41)


def reproduce(context):
    """Draws Fig. 5 from the main comparison (trained here if missing).

    Returns:
        The markdown section.
    """
    results = run_sets.main_results(context)
    spec, seeds = run_sets.main_spec(context), run_sets.main_seeds(context)
    store = runs.RunStore(context.cache)
    scores = {
        arm: [_scores(store.load_arrays(spec, seed, arm)) for seed in seeds]
        for arm in runs.ARMS
    }
    _draw(context, scores, results)

    ood_name = spec.ood.replace("_", "-")
    substitute = (
        "" if spec.ood == data.PAPER_OOD else
        f" The paper uses SVHN; this run uses {ood_name} test images brought to "
        "32x32x3 instead (pass `--ood svhn` with SVHN's `test_32x32.mat` in the "
        "data folder's `svhn/` to use it)."
    )
    lines = [
        "## Fig. 5 — out-of-distribution inputs: confidence and detection",
        "",
        f"Command: `{context.command}`",
        "",
        f"Runs: the main comparison of Fig. 2 ({spec.describe()}; seeds "
        f"{', '.join(map(str, seeds))}). In-distribution: {spec.test_size:,} "
        f"CIFAR-10 held-out images; out-of-distribution: {spec.test_size:,} "
        f"{ood_name} images, normalised with the CIFAR-10 statistics.{substitute} "
        "Score: maximum softmax probability.",
        "",
        context.figure_link(FIGURE, "confidence histograms and ROC curves"),
        "",
        "| metric | no warm-up | noise warm-up | warm-up better | Wilcoxon p |",
        "|---|---|---|---|---|",
    ]
    for name, title, higher_is_better in OOD_METRICS:
        baseline = np.array([run[name] for run in results["baseline"]])
        warmup = np.array([run[name] for run in results["warmup"]])
        wins = statistics.wins(baseline, warmup, lower_is_better=not higher_is_better)
        lines.append(
            f"| {title} | {statistics.summarize(baseline)} | {statistics.summarize(warmup)} "
            f"| {wins}/{len(seeds)} | {statistics.paired_wilcoxon(baseline, warmup):.2g} |"
        )
    rows = {row["metric"]: row for row in report.comparison_rows(results)}
    lines += [
        "",
        "Median [25th, 75th percentile] over seeds; AUROC is the same whichever set is "
        "called positive, AUPR is not, so both AUPRs are given.",
        "",
        verdict(rows, ood_name),
        "",
    ]
    return "\n".join(lines)


def verdict(rows, ood_name):
    """The paper's claim on OOD detection against `comparison_rows`, in words."""
    auroc, confidence = rows["ood_auroc"], rows["ood_confidence"]
    holds = auroc["warmup"].median > auroc["baseline"].median and auroc["p_value"] < 0.01
    return (
        f"Paper's claim (AUROC higher with warm-up, p < 0.01): "
        f"**{'reproduced' if holds else 'not reproduced'}** on {ood_name}: AUROC "
        f"{auroc['baseline'].median:.3f} -> {auroc['warmup'].median:.3f} (p = "
        f"{auroc['p_value']:.2g}, {auroc['wins']}/{auroc['seeds']} seeds); mean OOD "
        f"confidence {confidence['baseline'].median:.3f} -> "
        f"{confidence['warmup'].median:.3f} (p = {confidence['p_value']:.2g})."
    )


def _scores(arrays):
    return {
        "in": runs.confidences(arrays["test_logits"]),
        "out": runs.confidences(arrays["ood_logits"]),
    }


def _draw(context, scores, results):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(19, 4.3), layout="constrained")
    *histogram_axes, roc_ax, auroc_ax = axes
    for ax, arm in zip(histogram_axes, runs.ARMS):
        pooled_in = np.concatenate([seed["in"] for seed in scores[arm]])
        pooled_out = np.concatenate([seed["out"] for seed in scores[arm]])
        ax.hist(pooled_in, bins=HISTOGRAM_BINS, density=True, alpha=0.6,
                color="tab:blue", label="in-distribution (CIFAR-10)")
        ax.hist(pooled_out, bins=HISTOGRAM_BINS, density=True, alpha=0.6,
                color="tab:red", label="out-of-distribution")
        ax.set(xlabel="max softmax probability", ylabel="density",
               title=f"{runs.ARM_TITLES[arm]} (all seeds)")
        ax.legend(fontsize=8)
    for arm in runs.ARMS:
        first = scores[arm][0]
        fpr, tpr = ood_metrics.roc_curve(first["in"], first["out"])
        roc_ax.plot(fpr, tpr, color=plots.ARM_COLORS[arm],
                    label=f"{runs.ARM_TITLES[arm]}, AUROC "
                          f"{ood_metrics.auroc(first['in'], first['out']):.3f}")
    roc_ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
    roc_ax.set(xlabel="false-positive rate (OOD accepted)",
               ylabel="true-positive rate (in-distribution accepted)", title="ROC, first seed")
    roc_ax.legend(fontsize=8)
    baseline = [run["ood_auroc"] for run in results["baseline"]]
    warmup = [run["ood_auroc"] for run in results["warmup"]]
    plots.paired_plot(auroc_ax, baseline, warmup, "OOD AUROC (max softmax)",
                      statistics.paired_wilcoxon(baseline, warmup), runs.ARM_TITLES)
    for ax in axes:
        ax.title.set_fontsize(10)
    plot.save_figure(figure, context.figure_path(FIGURE))
