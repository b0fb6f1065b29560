#!/usr/bin/env bash
# Sets up .venv if needed, then runs the whole test suite once per Keras
# backend, each in its own pytest process (the backend is fixed at import).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k noise`.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
BACKENDS=${BACKENDS:-"tensorflow jax torch"}
failed=()
for backend in $BACKENDS; do
    echo
    echo "==================== KERAS_BACKEND=$backend ===================="
    start=$SECONDS
    KERAS_BACKEND=$backend .venv/bin/python -m pytest -p no:cacheprovider -q "$@"
    status=$?
    echo "==> $backend: pytest exit status $status in $((SECONDS - start)) s"
    [ $status -eq 0 ] || failed+=("$backend")
done
echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED on backends: ${failed[*]}"
    exit 1
fi
echo "All backends passed: $BACKENDS"
