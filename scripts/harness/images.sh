#!/usr/bin/env bash
# Build the offline stand-in images the test harness uses.
#
#   scripts/harness/images.sh [NAME...]
#
# Runs engine.sh, then base-image.sh for each Debian suite the Dockerfiles build
# FROM (plano-test/debian:SUITE), then builds plano-test/NAME:SUITE from
# tests/harness/images/NAME/ for each NAME (default: every folder there with a
# Dockerfile), all at once, each logging to its own file. A build is skipped when
# the image exists and its LABEL plano.test.hash equals the hash of the folder's
# content plus its base image's ID. Uses the legacy builder: the client here has
# no buildx.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
IMAGES_DIR=$ROOT/tests/harness/images
LOG_DIR=$HARNESS_LOG_DIR
LABEL=plano.test.hash

# The Debian suite a folder's Dockerfile builds FROM (plano-test/debian:SUITE).
suite_of() {
  local from
  from=$(sed -n 's/^FROM[[:space:]]\+plano-test\/debian:\([a-z]\+\).*/\1/p' "$IMAGES_DIR/$1/Dockerfile" | head -n 1)
  [[ -n $from ]] || die "images: $IMAGES_DIR/$1/Dockerfile does not build FROM plano-test/debian:SUITE"
  echo "$from"
}

t0=$SECONDS
"$HERE/engine.sh"

# Hash of a build context: each file's path, executable bit and content, plus
# the base image it builds FROM (a rebuilt base rebuilds everything on top).
context_hash() {
  local dir=$1 base_id=$2 f x
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
  local name=$1 dir=$IMAGES_DIR/$1 suite t=$SECONDS
  local hash have old_id buildlog image base_id
  suite=$(suite_of "$name")
  image=plano-test/$name:$suite
  base_id=$(docker image inspect -f '{{.Id}}' "plano-test/debian:$suite") || die "images: no plano-test/debian:$suite"
  hash=$(context_hash "$dir" "$base_id")
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
for name in "${names[@]}"; do
  [[ -f $IMAGES_DIR/$name/Dockerfile ]] || die "images: no Dockerfile in $IMAGES_DIR/$name"
done

# One run at a time (after engine.sh: dockerd must not inherit the lock).
exec 8>"$HARNESS_LOCK_DIR/plano-harness-images.lock"
flock -w 900 8 || die "images: could not take the build lock"

# Run "$@" once per word of the list on stdin, all at once; fail if any failed.
all_at_once() {
  local item pids=() failed=0 pid
  while read -r item; do
    "$@" "$item" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  return "$failed"
}

for name in "${names[@]}"; do suite_of "$name"; done | sort -u |
  all_at_once "$HERE/base-image.sh" || die "images: a base image failed (see above)"
for name in "${names[@]}"; do copy_host_cas "$IMAGES_DIR/$name"; done
printf '%s\n' "${names[@]}" | all_at_once build_image || die "images: a build failed (see above)"
log "images: done ($((SECONDS - t0))s)"
