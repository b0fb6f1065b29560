"""The examples run end to end in their quick mode on each backend."""

import os
import pathlib
import subprocess
import sys

import keras
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
    assert "Untrained model on noise: mean confidence" in output
    assert "After warm-up on noise:   mean confidence" in output
    table = {
        line.split()[0]: line.split()[-2:]
        for line in output.splitlines()
        if line.startswith(("accuracy", "ECE"))
    }
    assert set(table) == {"accuracy", "ECE"}
    for values in table.values():
        assert all(0.0 <= float(value) <= 1.0 for value in values)
