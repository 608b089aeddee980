"""What plano runs on a server it operates over SSH: short POSIX sh scripts, pure text,
each run by engine.ssh.script_argv with its arguments quoted ($1, $2...), never pasted
into the script. The server's plano lives in a venv of the login user
(~/.plano/venv), its infra is a git checkout at the environment's path.
"""

from __future__ import annotations

VENV = ".plano/venv"  # under the login's home
# plano runs as root on the server (sudo -n: no password prompt), as when an operator runs
# it there: it gives data/ folders to the services' users (certbot's, the apps'), which
# only root can. .env.prod is read and written as root for the same reason (a deploy,
# as root, rewrites it). The SSH user needs sudo without a password; root needs none.
AS_ROOT = 'as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }\n'
# $by and $from: who runs it from where (core.actor), as the laptop's plano names them.
PLANO = f'as_root env PYTHONUNBUFFERED=1 PLANO_USER="$by" PLANO_HOST="$from" "$HOME/{VENV}/bin/plano"'
STAMP = f"{VENV}/plano.stamp"  # the installed wheel's content hash
REF = "refs/plano/laptop"  # where the laptop pushes the commit the server checks out

# What the server has: key=value lines (edited= once per file changed by hand).
STATE = f"""\
p=$1
if [ -d "$p/.git" ]; then
  echo "repo=yes"
  echo "commit=$(git -C "$p" rev-parse -q --verify HEAD 2>/dev/null || true)"
  git -C "$p" status --porcelain --untracked-files=no | sed 's/^.. /edited=/'
fi
[ -x "$HOME/{VENV}/bin/plano" ] && echo "plano=$(cat "$HOME/{STAMP}" 2>/dev/null)"
command -v docker >/dev/null 2>&1 && echo "docker=$(docker version --format '{{{{.Server.Version}}}}' 2>/dev/null)"
command -v git >/dev/null 2>&1 && echo "git=yes"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo "venv=yes"
command -v setsid >/dev/null 2>&1 && echo "setsid=yes"
true
"""

# Debian's engine and what plano needs beside it, as root through sudo (no prompt: -n).
PACKAGES = ("docker.io", "git", "python3-venv", "ca-certificates")
INSTALL_PACKAGES = """\
set -eu
sudo -n apt-get update -q
sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
id -nG | tr ' ' '\\n' | grep -qx docker || sudo -n usermod -aG docker "$(id -un)"
"""

# plano itself: the laptop's wheel (base64 on stdin) into ~/.plano/venv; $1 its stamp, $2 its file name.
INSTALL_PLANO = f"""\
set -eu
d=$HOME/.plano
mkdir -p "$d/wheels"
w=$d/wheels/$2
base64 -d >"$w"
[ -x "$d/venv/bin/pip" ] || python3 -m venv "$d/venv"
"$d/venv/bin/pip" install -q --disable-pip-version-check "$w"
"$d/venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$w"
echo "$1" >"$HOME/{STAMP}"
"""

# An empty repo at the infra's path, ready for the laptop's push (idempotent).
INIT_REPO = """\
set -eu
mkdir -p "$1"
[ -d "$1/.git" ] || git init -q "$1"
"""

# The infra at the pushed commit ($2); files changed by hand on the server refuse it (exit 3) unless $3 is "force",
# and so does a deploy running there (its lock held: its files are not changed under it).
CHECKOUT = f"""\
set -eu
cd "$1"
for lock in data/logs/.deploy-*.lock; do
  [ -e "$lock" ] || continue
  if ! flock -n "$lock" true; then
    echo "a deploy runs on the server ($(cat "$lock")); wait for it to end, then run again" >&2
    exit 3
  fi
done
if [ "$3" != force ] && [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  git status --porcelain --untracked-files=no >&2
  exit 3
fi
git -c advice.detachedHead=false checkout -q -f --detach "$2"
git update-ref -d {REF}
"""

# The server's .env.prod, as text (it holds secrets: read over the connection, never printed).
READ_ENV = AS_ROOT + """\
[ ! -e "$1/.env.prod" ] || as_root cat "$1/.env.prod"
"""

# The environment's secrets (stdin) as the server's .env.prod, mode 0600, replaced atomically.
WRITE_ENV = AS_ROOT + """\
set -eu
cd "$1"
as_root sh -c 'umask 077 && cat >.env.prod.plano-new && chmod 600 .env.prod.plano-new && mv -f .env.prod.plano-new .env.prod'
"""

# `plano ARGS` in the infra ($1), attached to this connection, for user $2 on host $3.
RUN = AS_ROOT + f"""\
cd "$1" || exit 4
by=$2 from=$3
shift 3
{PLANO} "$@"
"""

# `plano ARGS` in the infra ($1) for user $2 on host $3, in a session of its own (setsid) writing to a log that
# this connection follows: when the connection drops, the command goes on to its end
# (a deploy releases its lock, the server ends on one version) and its log stays in
# ~/.plano/runs/. The exit code is the command's.
RUN_DETACHED = f"""\
cd "$1" || exit 4
by=$2 from=$3
shift 3
mkdir -p "$HOME/.plano/runs"
log=$(mktemp "$HOME/.plano/runs/run.XXXXXX")
setsid sh -c '{AS_ROOT}log=$1; shift; "$@" >"$log" 2>&1 </dev/null; echo $? >"$log.code"' plano-run "$log" \\
  {PLANO} "$@" </dev/null >/dev/null 2>&1 &
pid=$!
tail -s 0.2 -n +1 -f --pid="$pid" "$log"
code=$(cat "$log.code" 2>/dev/null || echo 70)
rm -f "$log" "$log.code"
exit "$code"
"""


def parse_state(text: str) -> dict[str, list[str]]:
    """STATE's lines: each key with its values (edited= may come many times)."""
    state: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            state.setdefault(key, []).append(value)
    return state


def missing_packages(state: dict[str, list[str]]) -> list[str]:
    """Debian packages the server lacks for plano: the engine, git, venv."""
    wanted = {"docker": "docker.io", "git": "git", "venv": "python3-venv"}
    missing = [package for key, package in wanted.items() if not (state.get(key) or [""])[0]]
    return [*missing, "ca-certificates"] if missing else []
