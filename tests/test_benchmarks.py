"""Every benchmark runs in its --quick mode and prints its ratios."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

BENCHMARKS = sorted(
    path
    for path in (pathlib.Path(__file__).parent.parent / "benchmarks").glob("*.py")
    if not path.name.startswith("_")  # shared helpers, not benchmarks
)


def test_there_are_benchmarks():
    assert BENCHMARKS, "benchmarks/ holds no script"


@pytest.mark.one_backend
@pytest.mark.parametrize("script", BENCHMARKS, ids=[path.stem for path in BENCHMARKS])
def test_benchmark_runs_in_quick_mode_and_prints_a_ratio(script):
    environment = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    completed = subprocess.run(
        [sys.executable, str(script), "--quick"],
        env=environment,
        capture_output=True,
        text=True,
        # A guard against a hang, not a speed test: warmup_cost starts a child
        # process per backend, and on a loaded 2-core machine it ran past 120 s.
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r"^ratio.*\d+\.\d+x", completed.stdout, re.MULTILINE), completed.stdout
