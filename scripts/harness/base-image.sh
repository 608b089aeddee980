#!/usr/bin/env bash
# Build an offline base image plano-test/debian:SUITE with debootstrap.
#
#   scripts/harness/base-image.sh [SUITE]   # sid (default) or bookworm
#
# No container registry is reachable from these machines, so the base image is
# made from Debian's package archive: debootstrap --variant=minbase SUITE into a
# temp dir, trim it, and `docker import` it. Skipped when the image exists
# (rebuild with PLANO_REBUILD_BASE=1). The stand-ins build FROM sid (nginx >=
# 1.27.3); the engine-in-a-container image FROM bookworm, this machine's own
# Debian, so that its dockerd is the one CI's machine installs.
set -euo pipefail

SUITE=${1:-sid}
[[ $SUITE =~ ^[a-z]+$ ]] || { echo "usage: $0 [SUITE]" >&2; exit 2; }
IMAGE=plano-test/debian:$SUITE
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"



t0=$SECONDS

if ! timeout 15 docker info >/dev/null 2>&1; then
  "$HERE/engine.sh"
fi

if [[ ${PLANO_REBUILD_BASE:-0} != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "base-image: $IMAGE exists, skipping ($((SECONDS - t0))s)"
  exit 0
fi

# The Debian mirror this machine's apt already uses (deb822 or one-line format).
find_mirror() {
  local uris=() f line
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    while IFS= read -r line; do
      # shellcheck disable=SC2206  # split "URIs: a b" into words on purpose
      [[ $line =~ ^URIs:[[:space:]]*(.*)$ ]] && uris+=(${BASH_REMATCH[1]})
    done <"$f"
    ((${#uris[@]})) && break
  done
  if ((${#uris[@]} == 0)) && [[ -r /etc/apt/sources.list ]]; then
    while IFS= read -r line; do
      [[ $line =~ ^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+) ]] && uris+=("${BASH_REMATCH[2]}")
    done </etc/apt/sources.list
  fi
  local u
  for u in "${uris[@]}"; do            # prefer .../debian (not -security etc.)
    [[ $u =~ ^https?://.*/debian/?$ ]] && { echo "${u%/}"; return; }
  done
  for u in "${uris[@]}"; do
    [[ $u =~ ^https?:// && $u != *security* ]] && { echo "${u%/}"; return; }
  done
  echo http://deb.debian.org/debian
}
# One build at a time; a second caller then finds the image made.
exec 8>"$HARNESS_LOCK_DIR/plano-harness-base-image-$SUITE.lock"
flock -w 600 8 || die "base-image: could not take the build lock"
if [[ ${PLANO_REBUILD_BASE:-0} != 1 ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "base-image: $IMAGE was built meanwhile ($((SECONDS - t0))s)"
  exit 0
fi

MIRROR=${PLANO_DEBIAN_MIRROR:-$(find_mirror)}
log "base-image: building $IMAGE from $MIRROR ($SUITE)"

command -v debootstrap >/dev/null 2>&1 || apt_install base-image debootstrap

WORK=$(mktemp -d /var/tmp/plano-base-image.XXXXXX)
ROOTFS=$WORK/rootfs
cleanup() {
  # debootstrap mounts proc/sys inside the target; never rm -rf through a mount.
  local m
  if [[ -r /proc/mounts ]]; then
    awk -v w="$WORK" 'index($2, w "/") == 1 { print $2 }' /proc/mounts | sort -r |
      while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
  fi
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

t=$SECONDS
DEBOOTSTRAP_LOG=$HARNESS_LOG_DIR/debootstrap-$SUITE.log
mkdir -p "$(dirname "$DEBOOTSTRAP_LOG")"
log "base-image: debootstrap --variant=minbase $SUITE (log: $DEBOOTSTRAP_LOG)"
if ! debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$DEBOOTSTRAP_LOG" 2>&1; then
  tail -n 25 "$DEBOOTSTRAP_LOG" | sed 's/^/harness:   | /' >&2
  [[ -r $ROOTFS/debootstrap/debootstrap.log ]] &&
    tail -n 25 "$ROOTFS/debootstrap/debootstrap.log" | sed 's/^/harness:   | /' >&2
  die "base-image: debootstrap failed"
fi
log "base-image: debootstrap done ($((SECONDS - t))s)"

t=$SECONDS
# apt: the sid snapshot's Release has expired; same mirror for sid.
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/apt.conf.d/99plano-snapshot" <<'CONF'
// The archive reachable here serves a frozen sid snapshot whose Release file
// has expired; without this `apt-get update` refuses it.
Acquire::Check-Valid-Until "false";
CONF
# Keep images small, like Debian's official container images do.
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CONF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages" <<'CONF'
Acquire::Languages "none";
CONF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes" <<'CONF'
Acquire::GzipIndexes "true";
CONF
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-minimal" <<'CONF'
# Packages installed later leave out docs, man pages and translations too.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CONF
# Services are never started by package scripts inside containers.
cat >"$ROOTFS/usr/sbin/policy-rc.d" <<'CONF'
#!/bin/sh
exit 101
CONF
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"

# Trim what debootstrap left.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/archives/partial/* \
  "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/debconf/*-old \
  "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* \
  "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/lintian/*
find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$ROOTFS/var/lib/apt/lists/partial"
# Container runtimes provide these.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"
[[ -e $ROOTFS/etc/machine-id ]] && : >"$ROOTFS/etc/machine-id"
log "base-image: trimmed rootfs to $(du -sh --one-file-system "$ROOTFS" | cut -f1) ($((SECONDS - t))s)"

t=$SECONDS
mounted=$(awk -v w="$ROOTFS" 'index($2, w "/") == 1' /proc/mounts)
[[ -z $mounted ]] || die "base-image: something is still mounted under $ROOTFS: $mounted"
tar --numeric-owner --xattrs -C "$ROOTFS" -c . |
  docker import -c 'CMD ["bash"]' -m "plano offline base: debootstrap minbase $SUITE from $MIRROR" - "$IMAGE" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
log "base-image: imported $IMAGE, $((size / 1000000)) MB ($((SECONDS - t))s; total $((SECONDS - t0))s)"
