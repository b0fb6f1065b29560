"""`keras-noisewarm compare` on a user's model given as module:function."""

import os
import pathlib
import subprocess
import sys

import json

import keras
import numpy as np
import pytest

from keras_noisewarm import cli
from keras_noisewarm import metrics
from keras_noisewarm import statistics

TESTS = pathlib.Path(__file__).parent


def test_compare_runs_the_users_model_and_writes_a_report(tmp_path):
    environment = dict(os.environ, KERAS_BACKEND=keras.backend.backend(),
                       PYTHONPATH=str(TESTS))
    completed = subprocess.run(
        [sys.executable, "-m", "keras_noisewarm", "compare",
         "--model", "cli_example_project:build_model", "--data", "cli_example_project:load_data",
         "--seeds", "2", "--epochs", "2", "--batch-size", "32", "--warmup-steps", "5",
         "--output", str(tmp_path), "--quiet"],
        capture_output=True, text=True, env=environment, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "ECE" in completed.stdout and "Wilcoxon p" in completed.stdout
    report = (tmp_path / "report.md").read_text()
    assert "cli_example_project:build_model" in report and "| OOD AUROC |" in report
    assert len(list((tmp_path / "runs").glob("seed*_warmup.json"))) == 2
    # The printed ECE row follows from the stored runs, and each stored ECE
    # from the stored outputs.
    runs = {(seed, arm): json.loads((tmp_path / "runs" / f"seed{seed}_{arm}.json").read_text())
            for seed in (0, 1) for arm in ("baseline", "warmup")}
    for (seed, arm), run in runs.items():
        arrays = np.load(tmp_path / "runs" / f"seed{seed}_{arm}.npz")
        ece = metrics.ExpectedCalibrationError(num_bins=15, from_logits=True)
        ece.update_state(arrays["validation_labels"], arrays["validation_outputs"])
        assert run["ece"] == pytest.approx(float(ece.result()), abs=1e-6)
    row = next(line for line in completed.stdout.splitlines() if line.startswith("ECE "))
    baseline = [runs[seed, "baseline"]["ece"] for seed in (0, 1)]
    warmup = [runs[seed, "warmup"]["ece"] for seed in (0, 1)]
    assert str(statistics.summarize(baseline)) in row and str(statistics.summarize(warmup)) in row
    assert f"{statistics.wins(baseline, warmup)}/2" in row


def test_a_bad_function_name_is_a_clear_error():
    with pytest.raises(SystemExit, match="MODULE:FUNCTION"):
        cli.load_function("no_colon_here")
    with pytest.raises(SystemExit, match="has no function 'missing'"):
        cli.load_function("keras_noisewarm.cli:missing")
