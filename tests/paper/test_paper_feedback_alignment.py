"""The feedback-alignment experiment: its quick mode end to end, and its helpers."""

import json

import numpy as np
import pytest

from paper import context as context_lib
from paper import feedback_alignment


def test_epochs_to_target_interpolates_at_the_first_crossing():
    accuracies = [0.1, 0.5, 0.9, 0.8, 0.95]
    assert feedback_alignment.epochs_to(accuracies, 0.7) == pytest.approx(1.5)
    assert feedback_alignment.epochs_to(accuracies, 0.9) == pytest.approx(2.0)
    assert feedback_alignment.epochs_to(accuracies, 0.05) == 0.0
    assert np.isnan(feedback_alignment.epochs_to(accuracies, 0.99))


def test_quick_mode_trains_paired_arms_and_writes_the_section(tmp_path):
    context = context_lib.Context(output=tmp_path, cache=tmp_path / "runs", quick=True,
                                  seeds=(0,), verbose=0)
    section = feedback_alignment.reproduce(context)
    assert (tmp_path / "figures" / feedback_alignment.FIGURE).is_file()
    verdicts = [line for line in section.splitlines() if line.startswith("Paper's claim")]
    assert len(verdicts) == 4
    assert all("8x8 digits **" in line for line in verdicts)
    folder = feedback_alignment.QUICK_SETTING.folder(context.cache)
    runs = {arm: json.loads((folder / f"seed0_{arm}.json").read_text())
            for arm in feedback_alignment.ARMS}
    # Pairing: the same initial forward weights in every arm (same accuracy
    # before training), the same feedback matrices in both FA arms.
    start = {arm: run["epochs"][0]["accuracy"] for arm, run in runs.items()}
    assert start["backprop"] == start["fa"]
    assert runs["fa_noise"]["noise_trace"][0]["fa_weight_angle"] == pytest.approx(
        runs["fa"]["epochs"][0]["fa_weight_angle"])
    setting = feedback_alignment.QUICK_SETTING
    assert len(runs["fa"]["epochs"]) == setting.epochs + 1
    assert [row["step"] for row in runs["fa_noise"]["noise_trace"]] == [0, 30]
    # Random 32-wide feedback starts near orthogonal to the forward weights.
    assert 75 < runs["fa"]["epochs"][0]["fa_weight_angle"] < 105
    # A second call reuses the stored runs and gives the same report.
    assert feedback_alignment.reproduce(context) == section
