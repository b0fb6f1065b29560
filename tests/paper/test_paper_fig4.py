"""Fig. 4's matching of runs at equal test accuracy."""

import numpy as np
import pytest

from paper import fig4


def test_ece_at_accuracy_interpolates_at_the_first_crossing():
    accuracy = [0.1, 0.3, 0.5, 0.4, 0.6]
    ece = [0.5, 0.3, 0.2, 0.25, 0.1]
    # 0.4 is first reached between epochs 1 and 2: halfway from 0.3 to 0.2.
    assert fig4.ece_at_accuracy(accuracy, ece, 0.4) == pytest.approx(0.25)
    # Exactly on a recorded accuracy: that epoch's ECE.
    assert fig4.ece_at_accuracy(accuracy, ece, 0.5) == pytest.approx(0.2)
    assert fig4.ece_at_accuracy(accuracy, ece, 0.05) == pytest.approx(0.5)
    assert np.isnan(fig4.ece_at_accuracy(accuracy, ece, 0.7))


def test_accuracy_levels_lie_strictly_inside_the_range_every_run_covers():
    curves = {
        "baseline": [{"accuracy": np.array([0.10, 0.30, 0.40])},
                     {"accuracy": np.array([0.12, 0.35, 0.50])}],
        "warmup": [{"accuracy": np.array([0.11, 0.36, 0.45])}],
    }
    levels = fig4.accuracy_levels(curves, count=3)
    np.testing.assert_allclose(levels, [0.19, 0.26, 0.33])


def test_no_accuracy_levels_when_the_runs_never_overlap():
    curves = {"baseline": [{"accuracy": np.array([0.10, 0.12])}],
              "warmup": [{"accuracy": np.array([0.20, 0.25])}]}
    assert fig4.accuracy_levels(curves).size == 0
