#!/usr/bin/env bash
# Build the offline stand-in images the test harness uses.
#
#   scripts/harness/images.sh [NAME...]
#
# Runs engine.sh and base-image.sh, then builds plano-test/NAME:sid from
# tests/harness/images/NAME/ for each NAME (default: every folder there with a
# Dockerfile). A build is skipped when the image exists and its
# LABEL plano.test.hash equals the hash of the folder's content plus the base
# image's ID. Uses the legacy builder: the client here has no buildx.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
IMAGES_DIR=$ROOT/tests/harness/images
BASE_IMAGE=${PLANO_BASE_IMAGE:-plano-test/debian:sid}
LOG_DIR=${PLANO_HARNESS_LOG_DIR:-/var/log/plano-harness}
LABEL=plano.test.hash


t0=$SECONDS
"$HERE/engine.sh"
"$HERE/base-image.sh"

base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE") || die "images: no $BASE_IMAGE after base-image.sh"

# Hash of a build context: each file's path, executable bit and content, plus
# the base image it builds FROM (a rebuilt base rebuilds everything on top).
context_hash() {
  local dir=$1 f x
  {
    (
      cd "$dir"
      find . -type f -print0 | LC_ALL=C sort -z |
        while IFS= read -r -d '' f; do
          x=-; [[ -x $f ]] && x=x
          printf '%s %s %s\n' "$f" "$x" "$(sha256sum <"$f" | cut -d' ' -f1)"
        done
    )
    printf 'base %s\n' "$base_id"
  } | sha256sum | cut -d' ' -f1
}

build_image() {
  local name=$1 dir=$IMAGES_DIR/$1 image=plano-test/$1:sid t=$SECONDS
  local hash have old_id buildlog
  [[ -f $dir/Dockerfile ]] || die "images: no Dockerfile in $dir"
  hash=$(context_hash "$dir")
  have=$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null || true)
  if [[ $have == "$hash" ]]; then
    log "images: $image is up to date ($((SECONDS - t))s)"
    return 0
  fi
  old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if [[ -n $old_id ]]; then
    log "images: $image is stale (${have:-no hash label}), rebuilding"
  else
    log "images: building $image"
  fi
  mkdir -p "$LOG_DIR"
  buildlog=$LOG_DIR/build-$name.log
  if ! DOCKER_BUILDKIT=0 docker build --label "$LABEL=$hash" -t "$image" "$dir" >"$buildlog" 2>&1; then
    tail -n 30 "$buildlog" | sed 's/^/harness:   | /' >&2
    die "images: building $image failed (full log: $buildlog)"
  fi
  # Drop the image this one replaced, unless something still uses it.
  if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$image")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
  local size
  size=$(docker image inspect -f '{{.Size}}' "$image")
  log "images: built $image, $((size / 1000000)) MB ($((SECONDS - t))s; log: $buildlog)"
}

# Image folders with a host-ca/ folder get this machine's extra CAs (the ones
# update-ca-certificates reads), so builds on top of them can reach HTTPS
# registries through an intercepting proxy. host-ca/ is generated, not committed.
copy_host_cas() {
  local dir=$1/host-ca
  [[ -d $dir ]] || return 0
  find "$dir" -name '*.crt' -delete
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$dir/"
  fi
}

names=("$@")
if ((${#names[@]} == 0)); then
  for d in "$IMAGES_DIR"/*/; do
    [[ -f $d/Dockerfile ]] && names+=("$(basename "$d")")
  done
fi
((${#names[@]})) || die "images: no image folders under $IMAGES_DIR"

# One build at a time (after engine.sh: dockerd must not inherit the lock).
exec 8>"${PLANO_HARNESS_LOCK_DIR:-/var/lock}/plano-harness-images.lock"
flock -w 600 8 || die "images: could not take the build lock"

for name in "${names[@]}"; do
  copy_host_cas "$IMAGES_DIR/$name"
  build_image "$name"
done
log "images: done ($((SECONDS - t0))s)"
