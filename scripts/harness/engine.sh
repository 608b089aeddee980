#!/usr/bin/env bash
# Ensure a Docker engine answers `docker info` on this machine.
#
# - Does nothing when an engine already answers.
# - Installs Debian's docker.io when dockerd is missing (apt-get update once).
# - Removes a stale /var/run/docker.pid when no dockerd process runs.
# - Starts dockerd in the background (own session, no TTY needed), logging to
#   $PLANO_DOCKERD_LOG and recording its PID in $PLANO_DOCKERD_PIDFILE so that
#   teardown.sh can stop exactly that process.
# - Polls `docker info` for up to $PLANO_DOCKERD_WAIT seconds.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"

LOG=${PLANO_DOCKERD_LOG:-/var/log/plano-dockerd.log}
PIDFILE=${PLANO_DOCKERD_PIDFILE:-/var/run/plano-dockerd.pid}
WAIT=${PLANO_DOCKERD_WAIT:-60}
LOCK=$HARNESS_LOCK_DIR/plano-harness-engine.lock
DOCKER_PIDFILE=/var/run/docker.pid
CONTAINERD_PIDFILE=/var/run/docker/containerd/containerd.pid



engine_answers() { timeout 15 docker info >/dev/null 2>&1; }


dockerd_pids() {
  local p
  for p in $(pgrep -x dockerd || true); do
    if alive "$p"; then echo "$p"; fi
  done
}

# Poll `docker info` for up to $WAIT s. With $1, that PID must stay alive;
# without, some dockerd process must.
wait_for_engine() {
  local pid=${1:-} deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if engine_answers; then return 0; fi
    if [[ -n $pid ]]; then
      if ! alive "$pid"; then log "engine: dockerd (pid $pid) exited during start-up"; return 1; fi
    elif [[ -z $(dockerd_pids) ]]; then
      log "engine: the running dockerd went away"
      return 1
    fi
    sleep 0.5
  done
  return 1
}

fail_with_log() {
  log "$1"
  if [[ -s $LOG ]]; then
    log "last lines of $LOG:"
    tail -n 25 "$LOG" | sed 's/^/harness:   | /' >&2
  fi
  exit 1
}

t0=$SECONDS
if engine_answers; then
  log "engine: docker engine already answers ($((SECONDS - t0))s)"
  exit 0
fi

# Serialise concurrent callers (two harness scripts starting at once).
exec 9>"$LOCK"
flock -w $((WAIT + 120)) 9 || die "engine: could not take lock $LOCK"

# Another caller may have started the engine while we waited for the lock.
if engine_answers; then
  log "engine: docker engine answers ($((SECONDS - t0))s)"
  exit 0
fi

# 1. Install the engine when missing.
if ! command -v dockerd >/dev/null 2>&1 && [[ ! -x /usr/sbin/dockerd ]]; then
  apt_install engine docker.io
fi
DOCKERD=$(command -v dockerd || echo /usr/sbin/dockerd)
command -v docker >/dev/null 2>&1 || die "engine: no docker client on PATH after installing docker.io"

# 2. A dockerd process exists but does not answer yet: it may be starting.
running=$(dockerd_pids | tr '\n' ' ')
if [[ -n $running ]]; then
  t=$SECONDS
  log "engine: dockerd runs (pid ${running% }) but does not answer yet; waiting up to ${WAIT}s"
  if wait_for_engine; then
    log "engine: docker engine answers ($((SECONDS - t))s)"
    exit 0
  fi
  running=$(dockerd_pids | tr '\n' ' ')
  if [[ -n $running ]]; then
    fail_with_log "engine: dockerd (pid ${running% }) runs but 'docker info' does not answer after ${WAIT}s; not starting a second one"
  fi
fi

# 3. Stale PID files left by a killed dockerd (none runs at this point).
if [[ -e $DOCKER_PIDFILE ]]; then
  log "engine: removing stale $DOCKER_PIDFILE (no dockerd process runs)"
  rm -f "$DOCKER_PIDFILE"
fi
# dockerd reuses the containerd named in this file while kill(pid, 0) works,
# which it does for a zombie: then it waits for a dead socket and gives up.
if [[ -e $CONTAINERD_PIDFILE ]]; then
  cpid=$(tr -dc '0-9' <"$CONTAINERD_PIDFILE" || true)
  if [[ -z $cpid ]] || ! alive "$cpid"; then
    log "engine: removing stale $CONTAINERD_PIDFILE (containerd ${cpid:-?} is not running)"
    rm -f "$CONTAINERD_PIDFILE"
  fi
fi
rm -f "$PIDFILE"

# 4. Start dockerd detached from this shell and from any terminal.
t=$SECONDS
log "engine: starting dockerd (log: $LOG)"
mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
if [[ -s $LOG ]]; then mv -f "$LOG" "$LOG.1"; fi
(
  # dockerd must hold no inherited descriptor: not our lock (fd 9), and no pipe
  # of a caller that would otherwise wait for EOF as long as dockerd runs.
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
  done
  exec nohup setsid "$DOCKERD" </dev/null >"$LOG" 2>&1
) &
pid=$!
echo "$pid" >"$PIDFILE"

if ! wait_for_engine "$pid"; then
  fail_with_log "engine: docker engine did not answer 'docker info' within ${WAIT}s"
fi

# dockerd records its own PID; prefer it should setsid ever have forked.
if [[ -s $DOCKER_PIDFILE ]]; then
  real=$(tr -dc '0-9' <"$DOCKER_PIDFILE")
  if [[ -n $real && $real != "$pid" ]]; then
    echo "$real" >"$PIDFILE"
    pid=$real
  fi
fi
log "engine: dockerd started, pid $pid ($((SECONDS - t))s; total $((SECONDS - t0))s)"
