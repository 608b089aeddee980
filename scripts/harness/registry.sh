#!/usr/bin/env bash
# A local Docker registry for the tests (no public registry is reachable here).
#
#   scripts/harness/registry.sh stop-packaged  # stop the service the package's install started
#   scripts/harness/registry.sh start   # idempotent; waits until /v2/ answers
#   scripts/harness/registry.sh stop    # stops only the registry `start` started
#   scripts/harness/registry.sh url     # prints the address, e.g. 127.0.0.1:5000
#
# Uses Debian's docker-registry (Distribution 2.8), installed with apt when
# missing. Its packaged config turns on htpasswd auth, so `start` writes its
# own (no auth, filesystem storage, deletes enabled) to $PLANO_REGISTRY_DIR/config.yml
# and runs `docker-registry serve` on it in the background, as the package's
# docker-registry user, with its PID in $PLANO_REGISTRY_PIDFILE and its output
# in $PLANO_REGISTRY_LOG. The engine treats 127.0.0.0/8 as an insecure
# registry, so push and pull need no TLS.
#
# Environment: PLANO_REGISTRY_ADDR (127.0.0.1:5000), PLANO_REGISTRY_DIR
# (/var/lib/plano-registry), PLANO_REGISTRY_PIDFILE (/var/run/plano-registry.pid),
# PLANO_REGISTRY_LOG (/var/log/plano-registry.log), PLANO_REGISTRY_WAIT (20 s).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"

ADDR=${PLANO_REGISTRY_ADDR:-127.0.0.1:5000}
DIR=${PLANO_REGISTRY_DIR:-/var/lib/plano-registry}
CONFIG=$DIR/config.yml
STORAGE=$DIR/storage
PIDFILE=${PLANO_REGISTRY_PIDFILE:-/var/run/plano-registry.pid}
LOG=${PLANO_REGISTRY_LOG:-/var/log/plano-registry.log}
WAIT=${PLANO_REGISTRY_WAIT:-20}
STOP_WAIT=${PLANO_REGISTRY_STOP_WAIT:-10}
LOCK=$HARNESS_LOCK_DIR/plano-harness-registry.lock
RUN_USER=docker-registry

usage() { echo "usage: $0 stop-packaged|start|stop|url" >&2; exit 2; }

answers() { curl -fsS -m 3 -o /dev/null "http://$ADDR/v2/" 2>/dev/null; }


# The PID in our PID file, if that process runs and is a docker-registry.
our_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(tr -dc '0-9' <"$PIDFILE" || true)
  [[ -n $pid ]] && alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == docker-registry ]] || return 1
  echo "$pid"
}

tail_log() {
  if [[ -s $LOG ]]; then
    log "last lines of $LOG:"
    tail -n 20 "$LOG" | sed 's/^/harness:   | /' >&2
  fi
}

install_registry() {
  apt_install registry docker-registry
  stop_packaged_service
}

# Where no policy-rc.d forbids it, installing the package starts its own service
# (with htpasswd auth, on :5000), recorded in the package's PID file: stop that
# one, which the harness's install started.
stop_packaged_service() {
  local pkg_pid
  [[ -s /var/run/docker-registry.pid ]] || return 0
  pkg_pid=$(tr -dc '0-9' </var/run/docker-registry.pid || true)
  if [[ -n $pkg_pid ]] && alive "$pkg_pid" && [[ $(cat "/proc/$pkg_pid/comm" 2>/dev/null) == docker-registry ]]; then
    log "registry: stopping the packaged service the install started (pid $pkg_pid)"
    kill -TERM "$pkg_pid" 2>/dev/null || true
  fi
}

write_config() {
  mkdir -p "$STORAGE"
  if getent passwd "$RUN_USER" >/dev/null; then
    chown -R "$RUN_USER:$RUN_USER" "$STORAGE"
  fi
  cat >"$CONFIG.new" <<EOF
# Written by scripts/harness/registry.sh: a local registry for the tests.
version: 0.1
log:
  level: info
  fields:
    service: plano-registry
storage:
  filesystem:
    rootdirectory: $STORAGE
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  mv -f "$CONFIG.new" "$CONFIG"
}

cmd_start() {
  local t0=$SECONDS t pid deadline bin
  if answers; then
    log "registry: http://$ADDR/v2/ already answers ($((SECONDS - t0))s)"
    return 0
  fi
  exec 9>"$LOCK"
  flock -w $((WAIT + 330)) 9 || die "registry: could not take lock $LOCK"
  if answers; then
    log "registry: http://$ADDR/v2/ answers ($((SECONDS - t0))s)"
    return 0
  fi

  # Ours may be starting up still: give it the usual time.
  if pid=$(our_pid); then
    log "registry: docker-registry (pid $pid) runs but does not answer yet; waiting up to ${WAIT}s"
    deadline=$((SECONDS + WAIT))
    while ((SECONDS < deadline)) && alive "$pid"; do
      if answers; then
        log "registry: http://$ADDR/v2/ answers ($((SECONDS - t0))s)"
        return 0
      fi
      sleep 0.3
    done
    tail_log
    die "registry: docker-registry (pid $pid) does not answer http://$ADDR/v2/; not starting a second one (stop it with '$0 stop')"
  fi

  command -v curl >/dev/null 2>&1 || die "registry: curl is missing"
  bin=$(command -v docker-registry || true)
  if [[ -z $bin ]]; then
    install_registry
    bin=$(command -v docker-registry) || die "registry: no docker-registry on PATH after installing it"
  fi
  write_config

  t=$SECONDS
  mkdir -p "$(dirname "$LOG")" "$(dirname "$PIDFILE")"
  if [[ -s $LOG ]]; then mv -f "$LOG" "$LOG.1"; fi
  local -a as_user=()
  if getent passwd "$RUN_USER" >/dev/null; then
    as_user=(setpriv "--reuid=$RUN_USER" "--regid=$RUN_USER" --init-groups --)
  fi
  log "registry: starting docker-registry on $ADDR (config: $CONFIG, log: $LOG)"
  (
    # Hold no inherited descriptor (our lock, a caller's pipe).
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    cd /
    exec nohup setsid "${as_user[@]}" "$bin" serve "$CONFIG" </dev/null >"$LOG" 2>&1
  ) &
  pid=$!
  echo "$pid" >"$PIDFILE"

  deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if answers; then
      log "registry: started, pid $pid, http://$ADDR/v2/ answers ($((SECONDS - t))s; total $((SECONDS - t0))s)"
      return 0
    fi
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      tail_log
      die "registry: docker-registry exited during start-up (is $ADDR taken?)"
    fi
    sleep 0.3
  done
  tail_log
  die "registry: http://$ADDR/v2/ did not answer within ${WAIT}s (pid $pid still runs; '$0 stop' stops it)"
}

cmd_stop() {
  local t0=$SECONDS
  if stop_recorded "$PIDFILE" docker-registry registry "$STOP_WAIT"; then
    log "registry: stopped ($((SECONDS - t0))s)"
    collect_garbage
  fi
}

# With the registry stopped: free the blobs no tagged manifest uses any more (the
# tests delete their own tags when their run ends: tests/testrun.py).
collect_garbage() {
  local t0=$SECONDS before after gc_log=$HARNESS_LOG_DIR/registry-gc.log
  [[ -s $CONFIG && -d $STORAGE ]] || return 0
  mkdir -p "$HARNESS_LOG_DIR"
  before=$(du -sm "$STORAGE" | cut -f1)
  if ! docker-registry garbage-collect --delete-untagged "$CONFIG" >"$gc_log" 2>&1; then
    log "registry: garbage collection failed (log: $gc_log); the storage is kept as it is"
    return 0
  fi
  after=$(du -sm "$STORAGE" | cut -f1)
  log "registry: garbage collected, storage $before MB -> $after MB ($((SECONDS - t0))s)"
}

(($# == 1)) || usage
case $1 in
  stop-packaged) stop_packaged_service ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) echo "$ADDR" ;;
  *) usage ;;
esac
