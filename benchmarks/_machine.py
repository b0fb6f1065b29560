"""What every benchmark prints first: the machine, the versions and the load.

Ratios on a shared machine only mean something next to the load they were
measured under. (A private module: tests/test_benchmarks.py skips `_*.py`.)
"""

import os
import platform

import keras


def print_machine():
    versions = [f"keras {keras.__version__}"]
    for module in ("tensorflow", "jax", "torch", "numpy"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    print("versions: " + ", ".join(versions))
    print(f"backend: {keras.backend.backend()}")
    print("load average (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg())
