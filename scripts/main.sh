#!/usr/bin/env bash
# Sets up .venv if needed, then runs the main job: warm up a model on noise and
# train it on CIFAR-10, printing confidence and calibration before and after.
# Extra arguments go to the example, e.g. `bash scripts/main.sh --epochs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python examples/quickstart.py "$@"
