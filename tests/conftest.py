"""Shared test set-up. The Keras backend is chosen by KERAS_BACKEND before
pytest starts (scripts/test.sh runs one pytest process per backend)."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The loaders read local copies of the datasets from here (no downloads).
_SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
if _SHARED_DATA.is_dir():
    os.environ.setdefault("KERAS_NOISEWARM_DATA", str(_SHARED_DATA))

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "torch":
    import torch

    # torch's OpenMP workers spin-wait against TensorFlow's tf.data threads in
    # the same process, which slows small steps on a 2-core machine many times
    # over. One intra-op thread is plenty for the tests' small models.
    torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (full-size reproductions)",
    )


# The backend whose pytest process runs the tests marked `one_backend`.
ONE_BACKEND = "jax"


def pytest_collection_modifyitems(config, items):
    skip_slow = pytest.mark.skip(reason="slow: pass --run-slow to run")
    skip_other = pytest.mark.skip(
        reason=f"one_backend: an end-to-end run, tested once, in the {ONE_BACKEND} process"
    )
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)
        if "one_backend" in item.keywords and keras.backend.backend() != ONE_BACKEND:
            item.add_marker(skip_other)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seeds (Python, NumPy, backend)."""
    keras.utils.set_random_seed(1234)
