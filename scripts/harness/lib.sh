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
