#!/usr/bin/env bash
# Sets up .venv if needed, then runs the main job: the same six-layer MLPs
# trained on CIFAR-10 with and without noise warm-up, compared over 10 seeds
# (accuracy, ECE, MCE, NLL, Brier, OOD confidence and AUROC, paired Wilcoxon
# tests), with a report and reliability diagrams in outputs/compare/.
# Extra arguments go to `python -m paper compare`, e.g. --quick or --seeds 3.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m paper compare "$@"
