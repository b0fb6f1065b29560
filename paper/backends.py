"""The main comparison under TensorFlow, JAX and PyTorch, side by side.

The backend is fixed when Keras is imported, so each backend's runs are made
by a `python -m paper compare --backend ...` process of their own, into the
shared cache; this process then reads them all back.
"""

import os
import subprocess

import numpy as np

from paper import cli
from paper import run_sets
from paper import runs
from keras_noisewarm import statistics

BACKENDS = ("tensorflow", "jax", "torch")
# (metric, title, lower is better) compared across backends.
COMPARED = (
    ("ece", "ECE", True),
    ("accuracy", "accuracy", False),
    ("nll", "NLL", True),
    ("ood_auroc", "OOD AUROC", False),
)


def reproduce(context):
    """Runs (or loads) the main comparison on every backend; compares them.

    Returns:
        The markdown section.
    """
    spec, seeds = run_sets.main_spec(context), run_sets.main_seeds(context)
    for backend in BACKENDS:
        _run_compare(context, backend, seeds)
    store = runs.RunStore(context.cache)
    results = {
        backend: {arm: [store.load(spec, seed, arm, backend) for seed in seeds]
                  for arm in runs.ARMS}
        for backend in BACKENDS
    }
    lines = [
        "## Backends — the same comparison under TensorFlow, JAX and PyTorch",
        "",
        f"Command: `{context.command}`",
        "",
        f"Setting: the main comparison ({spec.describe()}; out-of-distribution: "
        f"{spec.ood}; seeds {', '.join(map(str, seeds))}), made once per backend by "
        f"`python -m paper compare --backend <name>`. The same seed gives different "
        "initial weights on different backends (each has its own random number "
        "generator), so the backends are independent samples of the same experiment.",
        "",
        "| backend | metric | no warm-up | noise warm-up | warm-up better | Wilcoxon p | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in BACKENDS:
        minutes = sum(run["seconds"] for arm in runs.ARMS for run in results[backend][arm]) / 60
        for name, title, lower_is_better in COMPARED:
            baseline, warmup = _values(results[backend], name)
            lines.append(
                f"| {backend} | {title} | {statistics.summarize(baseline)} | "
                f"{statistics.summarize(warmup)} | "
                f"{statistics.wins(baseline, warmup, lower_is_better)}/{len(seeds)} | "
                f"{statistics.paired_wilcoxon(baseline, warmup):.2g} | {minutes:.1f} |"
            )
    lines += [
        "",
        "Are the backends consistent? For each metric, the effect of the warm-up "
        "(per-seed difference, warm-up minus no warm-up) compared between every pair "
        "of backends with a two-sided Mann-Whitney U test (p > 0.05: no evidence "
        "that the backends disagree):",
        "",
        "| metric | " + " | ".join(f"{a} vs {b}" for a, b in _pairs()) + " |",
        "|---|" + "---|" * len(_pairs()),
    ]
    for name, title, _ in COMPARED:
        effects = {}
        for backend in BACKENDS:
            baseline, warmup = _values(results[backend], name)
            effects[backend] = warmup - baseline
        lines.append(f"| {title} effect | " + " | ".join(
            f"{np.median(effects[a]):+.3f} vs {np.median(effects[b]):+.3f}, "
            f"p {statistics.mann_whitney(effects[a], effects[b]):.2g}"
            for a, b in _pairs()
        ) + " |")
    lines += ["", verdict(results, len(seeds)), ""]
    return "\n".join(lines)


def _run_compare(context, backend, seeds):
    command = cli.paper_command([
        "compare", "--backend", backend,
        "--ood", context.ood, "--seeds", ",".join(map(str, seeds)),
        "--cache", str(context.cache),
        "--output", str(context.output / "backends" / backend),
    ])
    if context.quick:
        command.append("--quick")
    if context.data_dir:
        command += ["--data-dir", str(context.data_dir)]
    if context.verbose:
        print(f"\n--- {backend} ---", flush=True)
    completed = subprocess.run(
        command, stdout=None if context.verbose else subprocess.DEVNULL,
        env=cli.with_checkout_on_path(dict(os.environ)),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed with exit status {completed.returncode}.")


def _values(arm_results, name):
    return (np.array([run[name] for run in arm_results["baseline"]]),
            np.array([run[name] for run in arm_results["warmup"]]))


def _pairs():
    return [(a, b) for index, a in enumerate(BACKENDS) for b in BACKENDS[index + 1:]]


def verdict(results, num_seeds):
    significant = []
    for backend in BACKENDS:
        baseline, warmup = _values(results[backend], "ece")
        significant.append(
            np.median(warmup) < np.median(baseline)
            and statistics.paired_wilcoxon(baseline, warmup) < 0.01
        )
    return (
        f"Paper's claim (ECE lower with warm-up, p < 0.01), backend by backend: "
        f"it holds on {sum(significant)} of {len(BACKENDS)} backends "
        f"({num_seeds} seeds each)."
    )
