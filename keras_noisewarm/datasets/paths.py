"""Where a loader reads its files: an explicit path, or an environment variable.

A loader given `path=None` looks for `$KERAS_NOISEWARM_DATA/<folder>` (for
example `cifar10-subset/` or `mnist/`) and reads the official files there;
without the variable it falls back to `keras.datasets`, which downloads. The
package knows nothing else about where data live.
"""

import os
import pathlib

DATA_DIR_VARIABLE = "KERAS_NOISEWARM_DATA"


def local_folder(folder_name, path=None):
    """The folder to read a dataset's official files from, or `None`.

    Args:
        folder_name: The dataset's folder under `$KERAS_NOISEWARM_DATA`.
        path: An explicit folder, which wins when given.

    Returns:
        A `pathlib.Path`, or `None` to use `keras.datasets`.

    Raises:
        FileNotFoundError: If `$KERAS_NOISEWARM_DATA` is set but has no such
            folder (a typo there should not turn into a download).
    """
    if path is not None:
        return pathlib.Path(path)
    root = os.environ.get(DATA_DIR_VARIABLE)
    if not root:
        return None
    folder = pathlib.Path(root) / folder_name
    if not folder.is_dir():
        raise FileNotFoundError(
            f"${DATA_DIR_VARIABLE} is {root!r}, which has no {folder_name}/ folder. "
            f"Put the official files in {folder}, pass path=..., or unset "
            f"{DATA_DIR_VARIABLE} to download with keras.datasets."
        )
    return folder


def missing_dataset_error(name, path, expected):
    return FileNotFoundError(
        f"{name} not found at {path}: expected {expected}. Download the "
        f"official files into that folder, point `path=` at a folder holding "
        f"them, or set ${DATA_DIR_VARIABLE} to a folder with a local copy."
    )
