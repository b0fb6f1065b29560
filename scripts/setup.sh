#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv.
#
# torch is installed first and pinned to 2.13.0: that version is a local CPU
# build on our machines, and installing anything that depends on torch before
# it would pull the newest CUDA build (several GB). The install is skipped when
# pyproject.toml has not changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
    exit 0
fi

echo "==> creating $VENV and installing keras-noisewarm with its test dependencies"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip_install() {
    # Our machines' pip configuration lists local index folders that may not
    # exist; pip warns about each on every package. Keep the rest of stderr.
    "$VENV/bin/python" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install --upgrade pip
pip_install "torch==2.13.0"
pip_install -e ".[dev]"
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "==> environment ready: $(TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c 'import keras, tensorflow, jax, torch; print("keras", keras.__version__, "| tensorflow", tensorflow.__version__, "| jax", jax.__version__, "| torch", torch.__version__)')"
