"""The examples run end to end in their quick mode on each backend."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import local_data

from keras_noisewarm import datasets

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def run_example(name, *args):
    environment = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, env=environment, timeout=600,
    )


def test_quickstart_compares_warmup_with_none_and_prints_confidence():
    if local_data.local_copy("cifar10-subset") is None:
        pytest.skip("no local CIFAR-10 copy, and this machine cannot download")
    result = run_example("quickstart.py", "--quick")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    # The quick warm-up (50 steps of Adam 1e-4) removes the untrained class
    # bias on noise; its mean confidence need not fall that soon (under torch
    # it rose, 0.341 -> 0.387).
    before, after = (float(re.search(rf"{label}.*most predicted class takes ([0-9.]+)%", output).group(1))
                     for label in ("Untrained model on noise:", "After warm-up on noise:"))
    assert after < 0.5 * before and after < 20.0, (before, after)
    rows = {"accuracy", "mean confidence", "ECE (15 bins)", "noise confidence"}
    table = {
        name: [float(value) for value in line[len(name):].split()]
        for line in output.splitlines() for name in rows if line.startswith(name + " ")
    }
    assert set(table) == rows
    for arm in range(2):
        accuracy, confidence, ece = (table[name][arm] for name in ("accuracy", "mean confidence",
                                                                    "ECE (15 bins)"))
        # The l1 ECE is at least the overall gap between confidence and
        # accuracy (the triangle inequality over its bins), up to rounding.
        assert ece >= abs(confidence - accuracy) - 2e-3, (arm, accuracy, confidence, ece)
        assert 0.0 <= accuracy <= 1.0 and 0.1 <= confidence <= 1.0
    assert all(0.1 <= value <= 1.0 for value in table["noise confidence"])


# The task examples run in their fast mode, in this process (no second
# import of the backends), and every number they print is recomputed here
# from the predictions they save, or follows from the other numbers.


def load_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_runs(output):
    """The `run key=value ...` lines: {(seed, arm): {key: value}}."""
    runs = {}
    for line in output.splitlines():
        if line.startswith("run "):
            fields = dict(item.split("=") for item in line.split()[1:])
            seed, arm = int(fields.pop("seed")), fields.pop("arm")
            runs[seed, arm] = {key: float(value) for key, value in fields.items()}
    return runs


def check_table_and_verdicts(output, runs, example):
    """The table's medians, quartiles, wins and p follow from the run lines."""
    from keras_noisewarm import statistics

    seeds = sorted({seed for seed, _ in runs})
    lines = output.splitlines()
    for name, title, lower_is_better in example.METRICS:
        baseline = [runs[seed, "baseline"][name] for seed in seeds]
        warmup = [runs[seed, "warmup"][name] for seed in seeds]
        row = next(line for line in lines if line.startswith(title))
        assert str(statistics.summarize(baseline)) in row, (title, row)
        assert str(statistics.summarize(warmup)) in row, (title, row)
        wins = statistics.wins(baseline, warmup, lower_is_better)
        p_value = statistics.paired_wilcoxon(baseline, warmup)
        assert row.split()[-2:] == [f"{wins}/{len(seeds)}", f"{p_value:.4f}"], row
        verdict = next(line for line in lines if line.startswith(f"verdict {name}:"))
        expected = "no clear difference"
        if p_value < 0.1 and wins > len(seeds) / 2:
            expected = "helped"
        elif p_value < 0.1 and wins < len(seeds) / 2:
            expected = "hurt"
        assert verdict.startswith(f"verdict {name}: {expected} ({wins}/{len(seeds)} seeds"), verdict


def reference_ece(probabilities, labels, num_bins=15):
    """Top-label ECE with equal-width bins, from the definition."""
    confidences = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == labels
    bins = np.minimum((confidences * num_bins).astype(int), num_bins - 1)
    return sum(
        abs(correct[bins == b].mean() - confidences[bins == b].mean()) * np.mean(bins == b)
        for b in range(num_bins) if np.any(bins == b)
    )


def run_task_example(name, tmp_path, capsys):
    example = load_example(name)
    example.main(["--fast", "--output", str(tmp_path)])
    output = capsys.readouterr().out
    runs = printed_runs(output)
    assert sorted(runs) == [(seed, arm) for seed in example.FAST.seeds for arm in ("baseline", "warmup")]
    check_table_and_verdicts(output, runs, example)
    return example, output, runs


def test_segmentation_example_numbers_recompute_from_its_predictions(tmp_path, capsys):
    example, output, runs = run_task_example("segmentation", tmp_path, capsys)
    for (seed, arm), numbers in runs.items():
        saved = np.load(tmp_path / f"seed{seed}_{arm}.npz")
        kept = saved["labels"] != example.IGNORE_LABEL
        probabilities = saved["probabilities"][kept].astype("float64")
        labels = saved["labels"][kept].astype("int64")
        assert probabilities.shape[-1] == 3 and 0 < kept.mean() < 1
        predicted = probabilities.argmax(-1)
        assert numbers["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=2e-6)
        nll = -np.mean(np.log(np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1)))
        assert numbers["nll"] == pytest.approx(nll, abs=1e-5)
        assert numbers["ece"] == pytest.approx(reference_ece(probabilities, labels), abs=1e-5)
        ious = [np.sum((predicted == c) & (labels == c)) / max(np.sum((predicted == c) | (labels == c)), 1)
                for c in range(3)]
        assert numbers["miou"] == pytest.approx(np.mean(ious), abs=2e-6)
    assert "test pixels ignored" in output


def test_language_model_example_numbers_recompute_from_its_logits(tmp_path, capsys):
    example, output, runs = run_task_example("char_language_model", tmp_path, capsys)
    for (seed, arm), numbers in runs.items():
        saved = np.load(tmp_path / f"seed{seed}_{arm}.npz")
        kept = saved["labels"] != example.PADDING_ID
        logits = saved["logits"][kept].astype("float64")
        labels = saved["labels"][kept]
        log_probabilities = logits - logits.max(-1, keepdims=True)
        log_probabilities -= np.log(np.exp(log_probabilities).sum(-1, keepdims=True))
        nll = -np.mean(log_probabilities[np.arange(len(labels)), labels])
        assert numbers["nll"] == pytest.approx(nll, abs=1e-5)
        assert numbers["perplexity"] == pytest.approx(np.exp(numbers["nll"]), rel=1e-5)
        assert numbers["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == labels), abs=2e-6)
        assert numbers["ece"] == pytest.approx(
            reference_ece(np.exp(log_probabilities), labels), abs=1e-5)
        # A perplexity well above the vocabulary size would be worse than a
        # uniform guess: the fast run trains too little to do much better.
        assert numbers["perplexity"] < 1.05 * logits.shape[-1]
    assert "of test positions are padding" in output


def test_regression_example_numbers_recompute_from_its_predictions(tmp_path, capsys):
    from scipy import stats

    example, output, runs = run_task_example("regression_variance", tmp_path, capsys)
    for (seed, arm), numbers in runs.items():
        saved = np.load(tmp_path / f"seed{seed}_{arm}.npz")
        mean = saved["predictions"][:, 0].astype("float64")
        std = np.sqrt(np.maximum(saved["predictions"][:, 1].astype("float64"), example.MIN_VARIANCE))
        targets = saved["targets"].astype("float64")
        assert numbers["rmse"] == pytest.approx(np.sqrt(np.mean((targets - mean) ** 2)), rel=1e-5)
        assert numbers["nll"] == pytest.approx(-np.mean(stats.norm.logpdf(targets, mean, std)), abs=1e-4)
        lower, upper = stats.norm.interval(0.9, mean, std)
        coverage = np.mean((targets >= lower) & (targets <= upper))
        assert numbers["coverage"] == pytest.approx(coverage, abs=1e-6)
        assert numbers["coverage_error"] == pytest.approx(abs(coverage - 0.9), abs=1e-6)
        levels = np.arange(1, 100) / 100
        observed = np.mean(targets[:, None] <= stats.norm.ppf(levels, mean[:, None], std[:, None]), axis=0)
        assert numbers["qce"] == pytest.approx(np.mean(np.abs(observed - levels)), abs=1e-5)
        # Five equal-mass bins by predicted std: the i-th smallest goes to
        # bin floor(5 (i + 1/2) / N), as the metric documents.
        order = np.argsort(std, kind="stable")
        bins = np.floor(5 * (np.arange(len(order)) + 0.5) / len(order)).astype(int)
        ence = np.mean([abs(np.sqrt(np.mean(std[b] ** 2)) - np.sqrt(np.mean((targets[b] - mean[b]) ** 2)))
                        / np.sqrt(np.mean(std[b] ** 2)) for b in (order[bins == k] for k in range(5))])
        assert numbers["ence"] == pytest.approx(ence, abs=1e-5)
    coverage_line = next(line for line in output.splitlines() if line.startswith("90% interval"))
    medians = {arm: np.median([runs[seed, arm]["coverage"] for seed in example.FAST.seeds])
               for arm in ("baseline", "warmup")}
    assert f"no warm-up {medians['baseline']:.3f}, warm-up {medians['warmup']:.3f}" in coverage_line
