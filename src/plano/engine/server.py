"""What plano runs on a server it operates over SSH: short POSIX sh scripts, pure text,
each run by engine.ssh.script_argv with its arguments quoted ($1, $2...), never pasted
into the script. The server's plano lives in a venv of the login user
(~/.plano/venv), its infra is a git checkout at the environment's path.
"""

from __future__ import annotations

VENV = ".plano/venv"  # under the login's home
# plano runs as root on the server (sudo -n: no password prompt), as when an operator runs
# it there: it gives data/ folders to the services' users (certbot's, the apps'), which
# only root can. The SSH user needs sudo without a password for it (root needs none): a
# sudo user, or the deploy user `server setup` makes, whose sudo rule allows plano only
# (DEPLOY_USER). The variables go to sudo as VAR=value (the rule's SETENV), not through `env`.
AS_ROOT = 'as_root() { if [ "$(id -u)" = 0 ]; then env "$@"; else sudo -n "$@"; fi; }\n'
# $by and $from: who runs it from where (core.actor), as the laptop's plano names them.
PLANO = f'as_root PYTHONUNBUFFERED=1 PLANO_USER="$by" PLANO_HOST="$from" "$HOME/{VENV}/bin/plano"'
# A script ($1) run as root with the next arguments as its $1...: directly as root, else
# through sudo -n (the login must be a sudo user: only `server setup` and .env.prod use it).
ROOT_SCRIPT = 's=$1; shift; if [ "$(id -u)" = 0 ]; then exec sh -c "$s" plano "$@"; else exec sudo -n sh -c "$s" plano "$@"; fi'
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

# Debian's engine and what plano needs beside it, as root: the login itself (a fresh
# server often has only root, and no sudo), else through sudo (no prompt: -n).
PACKAGES = ("docker.io", "git", "python3-venv", "ca-certificates")
INSTALL_PACKAGES = AS_ROOT + """\
set -eu
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
[ "$(id -u)" = 0 ] || id -nG | tr ' ' '\\n' | grep -qx docker || as_root usermod -aG docker "$(id -un)"
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

# The server's .env.prod, as text (it holds secrets: read over the connection, never
# printed). Run as root (ROOT_SCRIPT): the file is root's, and the infra may be in another user's home.
READ_ENV = """\
[ ! -e "$1/.env.prod" ] || cat "$1/.env.prod"
"""

# The environment's secrets (stdin) as the server's .env.prod, mode 0600, replaced atomically (as root).
WRITE_ENV = """\
set -eu
cd "$1"
umask 077
cat >.env.prod.plano-new
chmod 600 .env.prod.plano-new
mv -f .env.prod.plano-new .env.prod
"""

# The deploy user (as root, through ROOT_SCRIPT): $1 its name, $2 the infra's path as
# plano.yml gives it (relative: in its home), its public key line on stdin. A system
# account with a home and a shell (git and plano's scripts need one), no password ('*':
# key login only), in the docker group; the key in ~/.ssh/authorized_keys (0600, its own);
# a sudo rule for its plano only (plano runs as root: data/ owners); the infra folder its
# own. Each step says done= or kept=; home= and infra= say where they are.
DEPLOY_USER = """\
set -eu
u=$1 p=$2
key=$(cat)
if ! id -u "$u" >/dev/null 2>&1; then
  useradd --system --create-home --shell /bin/bash --password '*' --groups docker "$u"
  echo "done=made the system user $u, in the docker group"
elif id -nG "$u" | tr ' ' '\\n' | grep -qx docker; then
  echo "kept=the user $u, in the docker group"
else
  usermod -aG docker "$u"
  echo "done=put $u in the docker group"
fi
home=$(getent passwd "$u" | cut -d: -f6)
g=$(id -gn "$u")
echo "home=$home"
install -d -m 700 -o "$u" -g "$g" "$home/.ssh"
k=$home/.ssh/authorized_keys
blob=$(printf '%s\\n' "$key" | cut -d' ' -f1,2)
if [ -f "$k" ] && grep -qF "$blob" "$k"; then
  echo "kept=its authorized key"
else
  printf '%s\\n' "$key" >>"$k"
  echo "done=authorized the key for $u"
fi
chown "$u:$g" "$k"
chmod 600 "$k"
rule="$u ALL=(root) NOPASSWD:SETENV: $home/.plano/venv/bin/plano"
f=/etc/sudoers.d/plano-$u
if [ -f "$f" ] && [ "$(cat "$f")" = "$rule" ]; then
  echo "kept=its sudo rule (plano only)"
else
  printf '%s\\n' "$rule" >"$f.new"
  chmod 440 "$f.new"
  visudo -cqf "$f.new"
  mv -f "$f.new" "$f"
  echo "done=a sudo rule for its plano only ($f)"
fi
case $p in /*) d=$p ;; *) d=$home/$p ;; esac
if [ ! -e "$d" ]; then
  install -d -o "$u" -g "$g" "$d"
  echo "done=made $d, $u's"
elif [ "$(stat -c %U "$d")" = "$u" ]; then
  echo "kept=$d, $u's"
else
  echo "$d exists and belongs to $(stat -c %U "$d"), not $u: give it to $u (chown -R $u: $d) or set another path" >&2
  exit 3
fi
echo "infra=$d"
"""

# `plano ARGS` in the infra ($1), attached to this connection, for user $2 on host $3.
RUN = AS_ROOT + f"""\
cd "$1" || exit 4
by=$2 from=$3
shift 3
{PLANO} "$@"
"""

# `plano ARGS` in the infra ($1) for user $2 on host $3, in a session of its own (setsid)
# writing its stdout and its stderr to two logs that this connection follows, each to its
# own stream: when the connection drops, the command goes on to its end (a deploy
# releases its lock, the server ends on one version) and its logs stay in ~/.plano/runs/.
# The exit code is the command's.
RUN_DETACHED = f"""\
cd "$1" || exit 4
by=$2 from=$3
shift 3
mkdir -p "$HOME/.plano/runs"
log=$(mktemp "$HOME/.plano/runs/run.XXXXXX")
(umask 077 && : >"$log.err")
setsid sh -c '{AS_ROOT}log=$1; shift; "$@" >"$log" 2>"$log.err" </dev/null; echo $? >"$log.code"' plano-run "$log" \\
  {PLANO} "$@" </dev/null >/dev/null 2>&1 &
pid=$!
tail -s 0.2 -n +1 -f --pid="$pid" "$log.err" >&2 &
err=$!
tail -s 0.2 -n +1 -f --pid="$pid" "$log"
wait "$err"
code=$(cat "$log.code" 2>/dev/null || echo 70)
rm -f "$log" "$log.err" "$log.code"
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
