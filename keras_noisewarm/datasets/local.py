"""Where local copies of datasets live on machines without internet."""

import os
import pathlib

DATA_DIR_VARIABLE = "KERAS_NOISEWARM_DATA"


def find_local_copy(name):
    """The folder holding a local copy of dataset `name`, or `None`.

    Looks in `$KERAS_NOISEWARM_DATA/<name>` first, then in `shared/data/<name>`
    beside the repository checkout (the layout of our CI machines).

    Args:
        name: Folder name of the dataset, e.g. `"cifar10-subset"` or `"mnist"`.

    Returns:
        A `pathlib.Path`, or `None` when no copy is found.
    """
    candidates = []
    if os.environ.get(DATA_DIR_VARIABLE):
        candidates.append(pathlib.Path(os.environ[DATA_DIR_VARIABLE]) / name)
    repository = pathlib.Path(__file__).resolve().parents[2]
    candidates.append(repository.parent / "shared" / "data" / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def missing_dataset_error(name, path, expected):
    return FileNotFoundError(
        f"{name} not found at {path}: expected {expected}. Download the "
        f"official files into that folder, point `path=` at a folder holding "
        f"them, or set ${DATA_DIR_VARIABLE} to a folder with a local copy."
    )
