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


# Gone or a zombie (PID 1 here reaps orphans only lazily) counts as stopped.
alive() {
  local st
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}

t0=$SECONDS
# The registry first: it does not need the engine. Its failure must not keep
# dockerd running.
"$HERE/registry.sh" stop || log "teardown: registry.sh stop failed; going on"

if [[ ! -e $PIDFILE ]]; then
  log "teardown: no $PIDFILE; no harness dockerd to stop"
  exit 0
fi

pid=$(tr -dc '0-9' <"$PIDFILE" || true)
if [[ -z $pid ]] || ! alive "$pid"; then
  log "teardown: harness dockerd (pid ${pid:-?}) no longer runs; removing $PIDFILE"
  rm -f "$PIDFILE"
  exit 0
fi

# Guard against PID reuse: only ever signal a process that is a dockerd.
comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
if [[ $comm != dockerd ]]; then
  log "teardown: pid $pid is '$comm', not dockerd; leaving it alone and removing $PIDFILE"
  rm -f "$PIDFILE"
  exit 0
fi

log "teardown: stopping harness dockerd (pid $pid)"
kill -TERM "$pid"
deadline=$((SECONDS + WAIT))
while alive "$pid" && ((SECONDS < deadline)); do
  sleep 0.5
done
if alive "$pid"; then
  log "teardown: dockerd (pid $pid) still runs after ${WAIT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
  # A killed dockerd leaves its pid file behind; engine.sh also copes with that.
  if ! alive "$pid" && [[ $(tr -dc '0-9' </var/run/docker.pid 2>/dev/null || true) == "$pid" ]]; then
    rm -f /var/run/docker.pid
  fi
fi
rm -f "$PIDFILE"
log "teardown: done ($((SECONDS - t0))s)"
