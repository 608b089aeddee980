"""Operating an environment's server from here (`plano -e NAME ...`, `plano server ...`):
plano runs on the server itself, reached by the system ssh; this module is the one
place where the steps are ordered.

A command with -e: (1) one SSH connection (engine.ssh: a shared master, host keys
against the infra's ssh_known_hosts), (2) the server's infra brought to this infra's
commit (git push of the commit, then a checkout that refuses files changed by hand on
the server), (3) `plano <the same command>` run there, its output streamed, its exit
code returned. Commands that change the stack (core.commands) run detached on the server
(engine.server RUN_DETACHED): a dropped connection does not stop them half-way. The
server's plano is told who runs it from where (core.actor): its deploy lock and audit
log name this machine's user, not the shared SSH login. A dry run (--dry-run) changes
nothing there: no push, no checkout (plan).

`plano server setup -e NAME` makes a fresh server ready: Debian's docker.io, git and
python3-venv where missing (through sudo), plano itself (a wheel of this plano into
~/.plano/venv), the infra repo, the environment's secrets (.env.NAME here -> .env.prod
there, mode 0600, over the connection's stdin), then `plano prod up`. Running it again
changes nothing that is already right. With a deploy user in plano.yml, `host`'s login
(a sudo user) does what needs root (packages, the deploy user, .env.prod) and the rest
runs as the deploy user, as every later command does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from plano.core import actor, commands, secrets
from plano.core import naming as n
from plano.core.errors import EnvironmentProblem, PlanoError, RefusedError, UsageError
from plano.core.manifest import Environment, require_environment
from plano.core.session import Session
from plano.engine import server as srv
from plano.engine import ssh

# How long a server's `plano status --json` may take (status --all-environments).
STATUS_TIMEOUT_SECONDS = 180
# Commands about this machine's infra files: never with -e.
LOCAL_ONLY = frozenset({"init", "app", "render", "check", "demo", "secrets", "clone", "dev", "export"})
HERE = commands.HERE  # they take -e but run here


@dataclass(frozen=True)
class Server:
    """An environment of plano.yml, as plano reaches it."""

    name: str
    environment: Environment
    remote: ssh.Remote

    @property
    def shown(self) -> str:
        return f"{self.name} ({self.remote.host})"

    @property
    def path(self) -> str:
        return ssh.home_relative(self.environment.path)


@dataclass
class SetupResult:
    done: list[str] = field(default_factory=list)  # what changed on the server
    kept: list[str] = field(default_factory=list)  # what was already right
    note: str = ""  # who later commands connect as, when that is a deploy user


def known_hosts(session: Session) -> Path:
    return session.root / n.SSH_KNOWN_HOSTS


def control_dir() -> Path:
    """A private folder for the connections' sockets, short enough for a socket path."""
    folder = Path(tempfile.gettempdir()) / f"plano-ssh-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RefusedError(f"{folder}: not a private folder of yours (owner {info.st_uid}, mode {oct(info.st_mode & 0o777)}); "
                           "remove it, plano makes it again")
    return folder


def server(session: Session, name: str, admin: bool = False) -> Server:
    """The environment's server as its login reaches it: the deploy user when plano.yml
    names one, else `host`'s login; `admin`: `host`'s login (server setup's sudo user)."""
    env = require_environment(session.manifest, name)
    if env.host is None:
        raise UsageError(f"-e {name}: environments/{name}/host: not set; {name} is a Kubernetes namespace only (plano -e {name} "
                         "k8s ...); give it a host to run other commands on a server")
    host = env.host if admin else env.login_host
    return Server(name, env, ssh.Remote(host, env.port, known_hosts(session), control_dir()))


def root_script_argv(target: Server, script: str, *args: str) -> list[str]:
    """`script` run as root on the server (the login is root, or sudo -n)."""
    return ssh.script_argv(target.remote, srv.ROOT_SCRIPT, script, *args)


# ---------------------------------------------------------------- host keys


def address(session: Session, target: Server) -> ssh.Address:
    resolved = session.query(ssh.resolve_argv(target.remote), timeout=20)
    if not resolved.ok:
        raise EnvironmentProblem(f"environments/{target.name}/host: ssh cannot use it: {resolved.last_line}")
    return ssh.parse_resolved(resolved.out)


def scan(session: Session, target: Server, where: ssh.Address) -> tuple[list[str], list[str]]:
    """The server's host key lines and their fingerprints, as it offers them now: from
    ssh-keyscan, or, behind a jump host, from a first contact through it."""
    if where.proxied:
        lines, why = first_contact(session, target, where)
    else:
        scanned = session.query(ssh.keyscan_argv(where), timeout=ssh.CONNECT_TIMEOUT_SECONDS + 10)
        lines, why = ssh.key_lines(scanned.out), scanned.last_line
    if not lines:
        raise EnvironmentProblem(f"{where.hostname} port {where.port}{' (through a jump host)' if where.proxied else ''}: "
                                 f"no SSH host key offered ({why}); is sshd running and the port right?")
    shown = session.query(ssh.fingerprints_argv(), stdin="\n".join(lines) + "\n")
    return lines, [" ".join(line.split()[1:2] + line.split()[-1:]) for line in shown.out.splitlines() if line.strip()]


def first_contact(session: Session, target: Server, where: ssh.Address) -> tuple[list[str], str]:
    """The key ssh receives through the jump host (ssh.first_contact_argv), recorded in a
    scratch file of a private folder, never in a known_hosts of yours; ssh's last line."""
    with tempfile.TemporaryDirectory(prefix="plano-hostkey-") as folder:
        scratch = Path(folder) / "known_hosts"
        contact = session.query(ssh.first_contact_argv(target.remote, scratch), timeout=ssh.CONNECT_TIMEOUT_SECONDS + 30)
        text = scratch.read_text() if scratch.exists() else ""
    return ssh.named(text, where), contact.last_line


def known_lines(session: Session, where: ssh.Address) -> str:
    path = known_hosts(session)
    if not path.exists():
        return ""
    found = session.query(ssh.known_argv(path, where))
    return found.out if found.ok else ""


def trust(session: Session, target: Server, fingerprint: str | None = None) -> tuple[bool, list[str]]:
    """Record the server's host keys in the infra's ssh_known_hosts (commit it: your
    team and CI then trust the same keys). A key that differs from the one recorded is
    refused. Returns (newly trusted, the fingerprints)."""
    where = address(session, target)
    lines, prints = scan(session, target, where)
    known = ssh.key_blobs(known_lines(session, where))
    if known and not known & ssh.key_blobs("\n".join(lines)):
        raise changed_key(session, target, where)
    if fingerprint and not any(fingerprint in shown for shown in prints):
        raise RefusedError(f"{target.shown}: the server offers {', '.join(prints)}, not {fingerprint}; "
                           "do not trust it until you know why")
    if known:
        return False, prints
    path = known_hosts(session)
    before = path.read_text() if path.exists() else ""
    session.write(path, before + "".join(f"{line}\n" for line in lines), 0o644)
    return True, prints


def changed_key(session: Session, target: Server, where: ssh.Address) -> RefusedError:
    return RefusedError(f"{target.shown}: the server's SSH host key CHANGED since it was trusted: refused (a reinstalled "
                        "server, or someone in between); once you know it is the server, remove its old key with "
                        f"ssh-keygen -R '{where.known_hosts_name}' -f {n.SSH_KNOWN_HOSTS}, then plano server trust -e {target.name}")


def connect(session: Session, target: Server, accept_host_key: bool = False) -> None:
    """Open the shared connection; refuse an unknown host key (showing it) or a changed one."""
    where = address(session, target)
    if not known_lines(session, where):
        if accept_host_key:
            _, prints = trust(session, target)
            session.out.note(f"trusted {target.shown}: {', '.join(prints)} (recorded in {n.SSH_KNOWN_HOSTS})")
        else:
            _, prints = scan(session, target, where)
            raise RefusedError(f"{target.shown}: its SSH host key is not trusted yet ({', '.join(prints)}); check it with the "
                               f"server's admin, then run plano server trust -e {target.name} (or add --accept-host-key)")
    opened = session.query(ssh.ssh_argv(target.remote, "true"), timeout=ssh.CONNECT_TIMEOUT_SECONDS + 15)
    if opened.ok:
        return
    if ssh.problem(opened.err) == "changed":
        raise changed_key(session, target, where)
    raise EnvironmentProblem(f"{target.shown}: cannot connect: {opened.last_line}")


def reconnect(session: Session, target: Server) -> None:
    """A new connection (the server changed what a login gets: the docker group)."""
    session.query(ssh.exit_master_argv(target.remote), timeout=20)
    connect(session, target)


# ---------------------------------------------------------------- the infra at this commit


def state(session: Session, target: Server) -> dict[str, list[str]]:
    got = session.query(ssh.script_argv(target.remote, srv.STATE, target.path), timeout=60)
    if not got.ok:
        raise EnvironmentProblem(f"{target.shown}: cannot read the server's state: {got.last_line}")
    return srv.parse_state(got.out)


def local_commit(session: Session) -> str:
    root = session.root
    top = session.query(["git", "rev-parse", "--show-toplevel"], cwd=root)
    if not top.ok or Path(top.out.strip()).resolve() != root.resolve():
        raise UsageError(f"{root}: -e needs the infra to be a git repository of its own (git init, commit); "
                         "the server gets the infra's commit")
    head = session.query(["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=root)
    if not head.ok:
        raise UsageError(f"{root}: the infra has no commit yet; commit it first (the server gets the infra's commit)")
    dirty = session.query(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    if dirty.out.strip():
        session.out.note("note: the infra has uncommitted changes; the server gets the last commit, without them")
    return head.out.strip()


def sync(session: Session, target: Server, known: dict[str, list[str]], force: bool = False) -> str | None:
    """The server's infra at this infra's commit: the commit, or None when it already was."""
    commit = local_commit(session)
    edited = known.get("edited", [])
    if known.get("commit") == [commit] and not edited:
        return None
    if edited and not force:
        shown = ", ".join(edited[:3]) + (" ..." if len(edited) > 3 else "")
        raise RefusedError(f"{target.shown}: {shown} changed by hand on the server ({target.environment.path}); move the "
                           "change into this infra and commit it, or re-run with --discard-server-edits to overwrite")
    if not known.get("repo"):
        prepare = session.act(ssh.script_argv(target.remote, srv.INIT_REPO, target.path), timeout=60)
        must(prepare, target, "create the infra's repository")
    pushed = session.act(["git", "push", "-q", "--force", ssh.git_url(target.remote, target.path), f"{commit}:{srv.REF}"],
                         timeout=600, env={"GIT_SSH_COMMAND": ssh.git_ssh_command(target.remote)}, cwd=session.root)
    must(pushed, target, "push the infra's commit")
    checked = session.act(ssh.script_argv(target.remote, srv.CHECKOUT, target.path, commit, "force" if force else ""), timeout=120)
    must(checked, target, f"check out {commit[:12]}")
    return commit


def must(result, target: Server, what: str) -> None:
    if not result.ok:
        raise EnvironmentProblem(f"{target.shown}: could not {what}: {result.last_line}")


# ---------------------------------------------------------------- running plano there


def forward(session: Session, name: str, args: list[str], tty: bool = False, accept_host_key: bool = False,
            force: bool = False) -> int:
    """`plano ARGS` on the environment's server, at this infra's commit; its exit code."""
    target = server(session, name)
    connect(session, target, accept_host_key)
    known = state(session, target)
    if not known.get("plano"):
        raise UsageError(f"{target.shown}: plano is not installed there yet; run plano server setup -e {name}")
    if commands.dry_run(args):
        return plan(session, target, known, args, force)
    if commit := sync(session, target, known, force):
        session.out.note(f"{target.shown}: infra now at {commit[:12]}")
    return run(session, target, args, tty)


def plan(session: Session, target: Server, known: dict[str, list[str]], args: list[str], force: bool) -> int:
    """A dry run with -e changes nothing on the server. When its infra is at this commit
    already, the server's plano shows its own dry run there (attached: it only reads);
    else the push, the checkout and the command are printed, not run: the server's plan
    depends on files it does not have yet."""
    planning = replace(session, dry_run=True)
    commit = sync(planning, target, known, force)
    if commit is None:
        return run(session, target, args)
    run(planning, target, args)
    session.out.note(f"dry run: nothing was sent to {target.shown}; its infra is at "
                     f"{(known.get('commit') or ['no commit'])[0][:12]}, not {commit[:12]}, so its own plan is not shown "
                     "(run the command without --dry-run, or once the server is at this commit)")
    return 0


def run_argv(target: Server, args: list[str], tty: bool = False) -> list[str]:
    """`plano ARGS` on the server, in its infra, named as this machine's user on this
    machine (the lock and the audit log there record them, not the shared login)."""
    who = actor.current()
    detached = commands.detached(args)
    script = srv.RUN_DETACHED if detached else srv.RUN
    return ssh.script_argv(target.remote, script, target.path, who.user, who.host, *args, tty=tty and not detached)


def run(session: Session, target: Server, args: list[str], tty: bool = False) -> int:
    detached = commands.detached(args)
    argv = run_argv(target, args, tty)
    return session.act_stream(argv, shown=f"plano {shlex.join(args)}  # on {target.shown}, in {target.environment.path}"
                              + (", detached" if detached else ""))


# ---------------------------------------------------------------- the server's dashboard, here


def dashboard_argv(target: Server, port: int) -> list[str]:
    """The server's `plano dashboard` on its own 127.0.0.1:PORT, attached to this connection
    (--until-eof: it stops when the connection's stdin closes, i.e. when this ssh ends or
    the connection drops), with this machine's 127.0.0.1:PORT forwarded to it."""
    who = actor.current()
    command = shlex.join(["sh", "-c", srv.RUN, "plano", target.path, who.user, who.host,
                          "dashboard", "--port", str(port), "--until-eof"])
    return ssh.forward_argv(target.remote, port, port, command)


def dashboard(session: Session, name: str, port: int, accept_host_key: bool = False, force: bool = False) -> int:
    """`plano -e NAME dashboard`: the server's dashboard (its infra at this commit, as every
    command with -e), reached at http://127.0.0.1:PORT/ here through the environment's SSH
    connection, until this command ends (ctrl-c); then the server's dashboard stops too and
    the forward is removed from the shared connection."""
    target = server(session, name)
    connect(session, target, accept_host_key)
    known = state(session, target)
    if not known.get("plano"):
        raise UsageError(f"{target.shown}: plano is not installed there yet; run plano server setup -e {name}")
    if commit := sync(session, target, known, force):
        session.out.note(f"{target.shown}: infra now at {commit[:12]}")
    session.out.note(f"plano dashboard of {target.shown}: http://127.0.0.1:{port}/ (ctrl-c stops it, here and there)")
    try:
        return session.act_stream(dashboard_argv(target, port), shown=f"plano dashboard --port {port}  # on {target.shown}, "
                                  f"reached through ssh -L {ssh.local_forward(port, port)}")
    finally:
        if not session.dry_run:
            session.query(ssh.cancel_forward_argv(target.remote, port, port), timeout=20)


# ---------------------------------------------------------------- every environment's status


@dataclass(frozen=True)
class EnvironmentStatus:
    """One environment in `plano status --all-environments`: its server's own
    `plano status --json`, or why there is none."""

    environment: str
    host: str
    state: str  # ok | problems | unreachable | refused (host key) | not set up | failed
    detail: str  # why, for any state but ok
    commit: str  # the server's infra commit ("" unknown)
    same_commit: bool | None  # the same as this infra's HEAD (None: unknown)
    code: int | None  # the server's `plano status` exit code
    status: dict | None  # its report (plano status --json)


def head(session: Session) -> str:
    found = session.query(["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=session.root)
    return found.out.strip() if found.ok else ""


def statuses(session: Session) -> list[EnvironmentStatus]:
    """Every environment's status (those with a server: a Kubernetes-only one has plano -e
    NAME k8s status), one after the other, each as its server tells it, at the
    commit its infra is at (nothing is pushed: a look changes nothing). An environment that
    cannot be reached is one row saying why; the others are still asked."""
    here = head(session)
    return [environment_status(session, name, here) for name, env in sorted(session.manifest.environments.items()) if env.host]


def environment_status(session: Session, name: str, here: str) -> EnvironmentStatus:
    target = server(session, name)
    host = target.environment.host

    def failed(state: str, why: str, commit: str = "") -> EnvironmentStatus:
        return EnvironmentStatus(name, host, state, why.splitlines()[0] if why else state, commit, None, None, None)

    try:
        connect(session, target)
        known = state(session, target)
    except RefusedError as exc:
        return failed("refused", str(exc))
    except PlanoError as exc:
        return failed("unreachable", str(exc))
    commit = (known.get("commit") or [""])[0]
    if not known.get("plano"):
        return failed("not set up", f"plano is not installed there; run plano server setup -e {name}", commit)
    got = session.query(run_argv(target, ["status", "--json"]), timeout=STATUS_TIMEOUT_SECONDS)
    try:
        report = json.loads(got.out)
    except ValueError:
        return failed("unreachable" if got.code == ssh.SSH_FAILED else "failed",
                      f"plano status exited {got.code} there: {got.last_line or 'no output'}", commit)
    same = commit == here if commit and here else None
    return EnvironmentStatus(name, host, "ok" if got.code == 0 else "problems", "" if got.code == 0 else problems_of(report),
                             commit, same, got.code, report)


def problems_of(report: dict) -> str:
    said = [f"{p.get('service')} {p.get('state')}" for p in report.get("problems") or []]
    said += [f"{k.get('service')} killed (memory)" for k in report.get("oom_kills") or []]
    return ", ".join(said) or "see plano status there"


# ---------------------------------------------------------------- server setup


def setup(session: Session, name: str, accept_host_key: bool = False, force: bool = False,
          deploy_key: Path | None = None) -> SetupResult:
    """With environments.NAME.deploy_user, `host`'s login (a sudo user) installs the
    packages, makes the deploy user and writes .env.prod; the rest runs as the deploy user."""
    admin = server(session, name, admin=True)
    result = SetupResult()
    connect(session, admin, accept_host_key)
    known = state(session, admin)
    packages = srv.missing_packages(known)
    if packages:
        installed = session.act(ssh.script_argv(admin.remote, srv.INSTALL_PACKAGES, *packages), timeout=1800)
        must(installed, admin, f"install {' '.join(packages)} with sudo (the SSH user needs sudo without a password)")
        reconnect(session, admin)
        result.done.append(f"installed {' '.join(packages)}")
        known = state(session, admin)
    else:
        result.kept.append(f"docker {known['docker'][0]}, git and python3-venv are there")
    target, infra = admin, admin.path
    if user := admin.environment.deploy_user:
        infra = make_deploy_user(session, admin, user, public_key(session, deploy_key), result)
        target = server(session, name)
        connect(session, target)
        known = state(session, target)
        result.note = (f"-e {name} commands connect as {target.remote.host}; {admin.remote.host} is used by server setup "
                       "only (apt packages, the deploy user, .env.prod: what needs root beside plano's own sudo rule)")
    install_plano(session, target, known, result)
    result.done.append("infra brought to this commit") if sync(session, target, known, force) else result.kept.append(
        "infra already at this commit")
    send_secrets(session, admin, infra, target.name, result)
    code = run(session, target, ["prod", "up"])
    if code != 0:
        raise PlanoError(f"{target.shown}: plano prod up exited {code} on the server (see above)")
    result.done.append("plano prod up")
    return result


def public_key(session: Session, given: Path | None) -> str:
    """The deploy user's key: the public key file given, else the first key of your ssh
    agent. Only a public key line is ever read and sent."""
    if given is None:
        listed = session.query(["ssh-add", "-L"], timeout=20)
        lines = [line for line in listed.out.splitlines() if line.strip()] if listed.ok else []
        if not lines:
            raise UsageError("server setup: deploy_user needs a key to authorize and your ssh agent has none "
                             f"({listed.last_line or 'ssh-add -L'}); give --deploy-key PATH.pub")
        return public_key_line(lines[0], "your ssh agent's first key")
    try:
        text = given.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--deploy-key {given}: cannot read it ({exc}); give a public key file, e.g. ~/.ssh/id_ed25519.pub") from None
    if "PRIVATE KEY" in text:
        raise UsageError(f"--deploy-key {given}: that is a private key; give its public key (PATH.pub): "
                         "plano never sends a private key")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1:
        raise UsageError(f"--deploy-key {given}: holds {len(lines)} key lines; give a file with one public key line")
    return public_key_line(lines[0], f"--deploy-key {given}")


def public_key_line(line: str, where: str) -> str:
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise UsageError(f"{where}: not an OpenSSH public key line (type base64 [comment]); give a PATH.pub "
                         "as ssh-keygen writes it")
    return " ".join(parts)


def make_deploy_user(session: Session, admin: Server, user: str, key: str, result: SetupResult) -> str:
    """The deploy user, its key, its sudo rule and its infra folder (as root, by the admin
    login); the infra folder's absolute path."""
    made = session.act(root_script_argv(admin, srv.DEPLOY_USER, user, admin.path), stdin=key + "\n", timeout=120,
                       shown=f"# make the deploy user {user} on {admin.shown}")
    if made.code == 3:
        raise RefusedError(f"{admin.shown}: {made.last_line}")
    must(made, admin, f"make the deploy user {user} (as root: {admin.remote.host} needs sudo without a password)")
    said = srv.parse_state(made.out)
    result.done.extend(said.get("done", []))
    result.kept.extend(said.get("kept", []))
    return said["infra"][0]


def install_plano(session: Session, target: Server, known: dict[str, list[str]], result: SetupResult) -> None:
    with tempfile.TemporaryDirectory(prefix="plano-wheel-") as folder:
        wheel = build_wheel(session, Path(folder))
        stamp = wheel_stamp(wheel)
        if known.get("plano") == [stamp]:
            result.kept.append("plano already installed (same build)")
            return
        payload = base64.b64encode(wheel.read_bytes()).decode()
        installed = session.act(ssh.script_argv(target.remote, srv.INSTALL_PLANO, stamp, wheel.name), stdin=payload,
                                timeout=1800, shown=f"# install {wheel.name} into ~/{srv.VENV} on {target.shown}")
        must(installed, target, "install plano in ~/.plano/venv (pip needs PyPI, or your index, for its dependencies)")
        result.done.append(f"installed {wheel.name} in ~/{srv.VENV}")


def source_root() -> Path:
    import plano

    root = Path(plano.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise EnvironmentProblem("plano server setup builds a wheel of this plano from its source, which is not beside "
                                 f"the installed package ({root}); run it from a checkout of plano (pip install -e)")
    return root


def build_wheel(session: Session, folder: Path) -> Path:
    """A wheel of this plano, built from a copy of its source (setuptools leaves a build/
    folder in the tree it builds, whose stale files would go into the next wheel)."""
    import shutil
    import sys

    root, staged = source_root(), folder / "source"
    shutil.copytree(root / "src", staged / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, staged / name)
    built = session.query([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(staged)],
                          timeout=600, cwd=folder)
    wheels = sorted(folder.glob("plano-*.whl"))
    if not built.ok or not wheels:
        raise EnvironmentProblem(f"could not build a wheel of plano: {built.last_line}")
    return wheels[0]


def wheel_stamp(wheel: Path) -> str:
    """The wheel's content (names and bytes of its files): the same build gives the same stamp."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            digest.update(info.filename.encode() + b"\0" + hashlib.sha256(archive.read(info)).digest())
    return digest.hexdigest()[:32]


def send_secrets(session: Session, admin: Server, infra: str, name: str, result: SetupResult) -> None:
    """.env.NAME here -> .env.prod there (mode 0600, as root, by the admin login: the
    server's .env.prod is root's), keeping the server's own lines (the tags deploys
    recorded) and replacing the values given here. Without .env.NAME here, it is made:
    from the server's .env.prod when it has one (its database was made with those), else
    with new secrets (none shared with another environment)."""
    local = session.root / n.environment_env(name)
    current = session.query(root_script_argv(admin, srv.READ_ENV, infra), timeout=60)
    must(current, admin, "read .env.prod")
    if not local.exists():
        values = secrets.parse_env(current.out) or secrets.complete({}, prod_secret_keys(session), {})
        session.write(local, "".join(f"{key}={value}\n" for key, value in values.items()), 0o600)
        result.done.append(f"{local.name} made here ({'from the server' if current.out.strip() else 'new secrets'}, "
                           "mode 0600, git-ignored): keep it safe")
    if session.query(["git", "check-ignore", "-q", local.name], cwd=session.root).code == 1:
        session.out.note(f"warning: {local.name} holds secrets and git does not ignore it; run plano render "
                         "(its .gitignore lists every environment's file) before you commit")
    merged = merged_env(current.out, local.read_text())
    if merged == current.out:
        result.kept.append(f"{local.name} already in .env.prod")
        return
    written = session.act(root_script_argv(admin, srv.WRITE_ENV, infra), stdin=merged, timeout=60,
                          shown=f"# write {local.name} as .env.prod (0600) on {admin.shown}")
    must(written, admin, "write .env.prod")
    result.done.append(f"{local.name} sent as .env.prod (0600)")


def prod_secret_keys(session: Session) -> tuple[str, ...]:
    from plano.render.envfiles import specs

    return specs(session.manifest)[n.ENV_PROD].secrets


def merged_env(server_text: str, local_text: str) -> str:
    """The server's env text with every value of `local_text` set (added at the end when new)."""
    text = server_text
    for key, value in secrets.parse_env(local_text).items():
        text = secrets.set_env_value(text, key, value)
    return text
