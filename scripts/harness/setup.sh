#!/usr/bin/env bash
# Everything the tests need on this machine, as fast as a fresh machine allows:
#
# 1. Debian's packages the harness uses, those missing, in one apt run (docker.io,
#    debootstrap, docker-registry, pebble, and chromium: the real browser the
#    dashboard's tests drive with Playwright); each script below would install its
#    own, one apt run each, when run alone.
# 2. The engine (engine.sh).
# 3. At once: the stand-in images (images.sh: base images, then every build in
#    parallel) and the local registry (registry.sh start). pebble is started by
#    each test module that needs one (tests/integration/acme.py).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/harness/lib.sh
source "$HERE/lib.sh"

t0=$SECONDS
wanted=(debootstrap pebble chromium)
command -v dockerd >/dev/null 2>&1 || [[ -x /usr/sbin/dockerd ]] || wanted+=(docker.io)
new_registry=0
if ! command -v docker-registry >/dev/null 2>&1; then
  wanted+=(docker-registry)
  new_registry=1
fi
apt_install setup "${wanted[@]}"
if ((new_registry)); then "$HERE/registry.sh" stop-packaged; fi

"$HERE/engine.sh"

"$HERE/images.sh" &
images=$!
"$HERE/registry.sh" start &
registry=$!
failed=0
wait "$images" || failed=1
wait "$registry" || failed=1
((failed == 0)) || die "setup: images or registry failed (see above)"
log "setup: done ($((SECONDS - t0))s)"
