#!/usr/bin/env bash
# Stop what the harness started, and only that: the local registry that
# registry.sh started, then the dockerd that engine.sh started, each if it
# runs. Never touches any other process. Images in /var/lib/docker and the
# registry's storage are kept.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"

PIDFILE=${PLANO_DOCKERD_PIDFILE:-/var/run/plano-dockerd.pid}
WAIT=${PLANO_DOCKERD_STOP_WAIT:-40}

t0=$SECONDS
# The registry first: it does not need the engine. Its failure must not keep
# dockerd running.
"$HERE/registry.sh" stop || log "teardown: registry.sh stop failed; going on"
"$HERE/pebble.sh" stop || log "teardown: pebble.sh stop failed; going on"

if stop_recorded "$PIDFILE" dockerd teardown "$WAIT"; then
  # A killed dockerd leaves its pid file behind; engine.sh also copes with that.
  if [[ $(tr -dc '0-9' 2>/dev/null </var/run/docker.pid || true) == "$STOPPED_PID" ]]; then
    rm -f /var/run/docker.pid
  fi
fi
log "teardown: done ($((SECONDS - t0))s)"
