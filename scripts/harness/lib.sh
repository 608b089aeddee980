# Shared by the harness scripts: `source "$HERE/lib.sh"`.
# shellcheck shell=bash

export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1

log() { printf 'harness: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# `apt-get update`, unless a harness script did so in the last hour (so a
# harness run that installs several packages updates only once). apt gives
# list files the server's mtime, hence a stamp file of our own.
APT_STAMP=/var/tmp/plano-harness-apt-update.stamp
apt_update() {
  if [[ -n $(find "$APT_STAMP" -mmin -60 2>/dev/null) ]]; then
    echo "harness: apt-get update ran less than an hour ago; skipping it"
  else
    apt-get update -q && touch "$APT_STAMP"
  fi
}

HARNESS_LOG_DIR=${PLANO_HARNESS_LOG_DIR:-/var/log/plano-harness}
# Locks that harness scripts started at once take turns with. /var/lock is a
# symlink to /run/lock, which a fresh tmpfs /run (a container's) does not have yet.
HARNESS_LOCK_DIR=${PLANO_HARNESS_LOCK_DIR:-/var/lock}
mkdir -p -- "$(readlink -f -- "$HARNESS_LOCK_DIR")"

# True when the Debian package is installed.
installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

# apt_install LABEL PACKAGE...: install those of the packages that are missing, in
# one apt run; harness scripts started at once take turns (apt holds one lock).
# On failure: the log's last lines, then exit.
apt_install() {
  local label=$1 missing=() pkg t=$SECONDS apt_log
  shift
  for pkg in "$@"; do installed "$pkg" || missing+=("$pkg"); done
  ((${#missing[@]})) || return 0
  apt_log=$HARNESS_LOG_DIR/apt-$label.log
  mkdir -p "$HARNESS_LOG_DIR"
  log "$label: installing Debian's ${missing[*]} (log: $apt_log)"
  if ! (
    flock -w 900 7 || { echo "apt: could not take the harness's apt lock"; exit 1; }
    still=()  # another harness script may have installed some meanwhile
    for pkg in "$@"; do installed "$pkg" || still+=("$pkg"); done
    ((${#still[@]})) || exit 0
    # 7>&-: a service a package's script starts must not hold the lock
    { apt_update && apt-get install -y -q -o DPkg::Lock::Timeout=300 "${still[@]}"; } 7>&-
  ) 7>"$HARNESS_LOCK_DIR/plano-harness-apt.lock" >"$apt_log" 2>&1 </dev/null; then
    tail -n 20 "$apt_log" | sed 's/^/harness:   | /' >&2
    die "$label: installing ${missing[*]} failed (log: $apt_log)"
  fi
  log "$label: ${missing[*]} installed ($((SECONDS - t))s)"
}

# True when PID runs and is not a zombie (killed processes linger as zombies here,
# and pgrep / kill -0 still count those).
alive() {
  local st
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}

# Stop the process recorded in PIDFILE if it still runs and is named COMM (never
# signal a reused PID): TERM, then KILL after WAIT seconds. Sets STOPPED_PID and
# returns 0 when it stopped something; returns 1 when there was nothing to stop.
stop_recorded() {
  local pidfile=$1 comm=$2 label=$3 wait=$4 pid name deadline
  if [[ ! -e $pidfile ]]; then
    log "$label: no $pidfile; no harness $comm to stop"
    return 1
  fi
  pid=$(tr -dc '0-9' <"$pidfile" || true)
  if [[ -z $pid ]] || ! alive "$pid"; then
    log "$label: harness $comm (pid ${pid:-?}) no longer runs; removing $pidfile"
    rm -f "$pidfile"
    return 1
  fi
  name=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [[ $name != "$comm" ]]; then
    log "$label: pid $pid is '$name', not $comm; leaving it alone and removing $pidfile"
    rm -f "$pidfile"
    return 1
  fi
  log "$label: stopping harness $comm (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + wait))
  while alive "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive "$pid"; then
    log "$label: pid $pid still runs after ${wait}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$pidfile"
  # shellcheck disable=SC2034  # read by the caller
  STOPPED_PID=$pid
}
