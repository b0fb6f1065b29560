"""Where the tests find local copies of public datasets (this machine is offline).

`conftest.py` points `$KERAS_NOISEWARM_DATA` at `shared/data` beside the
checkout when that folder exists and the variable is not set; the loaders
then read the official files from there (see `keras_noisewarm.datasets`).
"""

import os
import pathlib

from keras_noisewarm.datasets import DATA_DIR_VARIABLE

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def local_copy(name):
    """`$KERAS_NOISEWARM_DATA/<name>` if it exists, else `None`."""
    root = os.environ.get(DATA_DIR_VARIABLE)
    if not root:
        return None
    folder = pathlib.Path(root) / name
    return folder if folder.is_dir() else None
