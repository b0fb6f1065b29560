#!/usr/bin/env bash
# Sets up .venv if needed, then runs the whole test suite once per Keras
# backend, each in its own pytest process (the backend is fixed at import).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k noise`.
#
# TEST_JOBS processes run at once (default 2): most tests are small models
# whose time goes to single-threaded Python and compilation, so two
# processes share two cores well. The slowest backend (jax, which also runs
# the `one_backend` end-to-end tests) starts first. Each process writes its
# own log, shown whole once it ends. TEST_JOBS=1 runs them one by one.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
BACKENDS=${BACKENDS:-"jax tensorflow torch"}
TEST_JOBS=${TEST_JOBS:-2}
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/keras-noisewarm-tests.XXXXXX")
failed=()
declare -A started=() backend_of=()  # backend_of: pid -> backend

run_backend() {
    local backend=$1
    KERAS_BACKEND=$backend .venv/bin/python -m pytest -p no:cacheprovider -q "${@:2}" \
        >"$LOGS/$backend.log" 2>&1
}

report() {  # backend, exit status
    echo
    echo "==================== KERAS_BACKEND=$1 ===================="
    cat "$LOGS/$1.log"
    echo "==> $1: pytest exit status $2 in $((SECONDS - started[$1])) s"
    [ "$2" -eq 0 ] || failed+=("$1")
}

wait_for_one() {
    local finished status
    wait -n -p finished "${!backend_of[@]}"
    status=$?
    local backend=${backend_of[$finished]}
    unset "backend_of[$finished]"
    report "$backend" "$status"
}

echo "==> running backends $BACKENDS, $TEST_JOBS at a time (logs in $LOGS)"
for backend in $BACKENDS; do
    while [ ${#backend_of[@]} -ge "$TEST_JOBS" ]; do wait_for_one; done
    started[$backend]=$SECONDS
    run_backend "$backend" "$@" &
    backend_of[$!]=$backend
done
while [ ${#backend_of[@]} -gt 0 ]; do wait_for_one; done

echo
echo "==> all backends done in $SECONDS s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED on backends: ${failed[*]}"
    exit 1
fi
echo "All backends passed: $BACKENDS"
