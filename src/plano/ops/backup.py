"""Backups: plano runs the backup service's own script (docker/backup/scripts/
plano-backup.sh) in a one-off container, so `plano backup ...`, cron's
docker/shared-scripts/backup.sh and the daily schedule share one implementation.
Here: the argv, and reading data/backups/ (manifests and the status log) for `list`.
On a swarm (`target: swarm`, prod) the same script runs as a one-off job of the
backup service on the data node (ops/job.py), and `list` reads that node's folder
through one too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import fields
from plano.core import naming as n
from plano.core.errors import PlanoError, UsageError
from plano.core.manifest import Manifest, require_app, select_apps
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine import inspect, swarm
from plano.engine.stack import Stack, open_stack, require_engine
from plano.ops import job

ID_RE = fields.BACKUP_ID_RE


SCRIPT = "plano-backup.sh"


def script_argv(stack: Stack, *args: str) -> list[str]:
    return stack.argv("run", "--rm", "--no-deps", "-T", "--entrypoint", SCRIPT, "backup", *args)


# The script's arguments (the same on one server and on a swarm).


def run_args(apps: list[str], prune: bool = True) -> list[str]:
    return ["run", *([] if prune else ["--no-prune"]), *apps]


def verify_args(backup_id: str | None) -> list[str]:
    return ["verify", *([backup_id] if backup_id else [])]


def restore_args(backup_id: str, app: str | None, scratch: str | None) -> list[str]:
    return ["restore", backup_id, *([app] if app else []), *(["--to-scratch", scratch] if scratch else [])]


def check_id(backup_id: str) -> str:
    return fields.given("BACKUP_ID", fields.backup_id, backup_id)


def check_scratch(name: str | None, manifest: Manifest) -> str | None:
    if name is None:
        return None
    fields.given("--to-scratch", fields.database_name, name)
    if name in manifest.apps or name in ("postgres", "template0", "template1"):
        raise UsageError(f"--to-scratch: {name!r} is an existing database; give a new database name, not an app's")
    return name


# ---------------------------------------------------------------- reading data/backups/


@dataclass(frozen=True)
class Entry:
    id: str
    bytes: int
    files: list[dict]
    postgres: str

    @property
    def apps(self) -> list[str]:
        names = [f["name"] for f in self.files]
        return sorted({name.removesuffix(".dump") for name in names if name.endswith(".dump")}
                      | {name.removesuffix("-uploads.tar") for name in names if name.endswith("-uploads.tar")})


def backups_dir(root: Path, mode: Mode) -> Path:
    return root / n.backups_dir(mode)


def entry(backup_id: str, manifest_text: str | None) -> Entry:
    try:
        manifest = json.loads(manifest_text or "")
    except ValueError:
        manifest = {"files": [], "postgres": "?"}
    files = manifest.get("files", [])
    return Entry(backup_id, sum(int(f.get("bytes", 0)) for f in files), files, manifest.get("postgres", "?"))


def entries(folder: Path) -> list[Entry]:
    found = []
    for path in sorted(p for p in folder.glob("*") if p.is_dir() and ID_RE.fullmatch(p.name)):
        try:
            text = (path / "manifest.json").read_text()
        except OSError:
            text = None
        found.append(entry(path.name, text))
    return found


def parse_status(text: str) -> dict[str, str | None]:
    """The last success and the last failure from data/backups/.status lines:
    `ok <time> <id>` or `failed <time> <what>`."""
    last_ok = last_failed = failure = None
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        if parts[0] == "ok" and len(parts) == 3 and ID_RE.fullmatch(parts[2]):
            last_ok = parts[1]
        elif parts[0] == "failed":
            last_failed, failure = parts[1], parts[2] if len(parts) == 3 else ""
    return {"last_success": last_ok, "last_failure": last_failed, "failure": failure}


def parse_verified(text: str) -> dict[str, str]:
    """The backups `plano backup verify` proved, each with when it last did: the script
    records a verification that passed as `ok <time> verify <id>` in the status log (one
    that failed is not recorded there: the command says so and exits non-zero)."""
    verified: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(" ")
        if len(parts) == 4 and parts[0] == "ok" and parts[2] == "verify" and ID_RE.fullmatch(parts[3]):
            verified[parts[3]] = parts[1]
    return verified


def status(folder: Path) -> dict[str, object]:
    """The status log, plus runs that were killed (their .partial-<ID> folders)."""
    try:
        text = (folder / ".status").read_text()
    except FileNotFoundError:
        text = ""
    state: dict[str, object] = dict(parse_status(text))
    state["verified"] = parse_verified(text)
    state["interrupted"] = sorted(p.name.removeprefix(".partial-") for p in folder.glob(".partial-*"))
    return state


@dataclass(frozen=True)
class BackupRow:
    id: str
    bytes: int
    apps: list[str]
    postgres: str


@dataclass(frozen=True)
class BackupList:
    backups: list[BackupRow]
    last_success: str | None
    last_failure: str | None
    failure: str | None
    interrupted: list[str]
    verified: dict[str, str] = field(default_factory=dict)  # backup ID -> when `backup verify` last proved it


# On a swarm, data/backups/ is the data node's: a job there prints what `listing`
# reads here, one tab-separated line each: a backup and its manifest, an interrupted
# run, a line of the status log.
LIST_SCRIPT = r"""cd /backups 2>/dev/null || exit 0
for d in */; do d=${d%/}; case $d in [0-9]*T[0-9]*Z) printf 'backup\t%s\t%s\n' "$d" "$(tr -d '\n' < "$d/manifest.json" 2>/dev/null)";; esac; done
for p in .partial-*; do [ -e "$p" ] && printf 'partial\t%s\n' "${p#.partial-}"; done
[ -f .status ] && sed 's/^/status\t/' .status
exit 0"""


def listing(session: Session) -> BackupList:
    if on_swarm(session):
        return listed_on_swarm(swarm_job(session, ["-c", LIST_SCRIPT], "listing the backups", entrypoint=["sh"]))
    folder = backups_dir(session.root, session.stack_mode)
    state = status(folder)
    rows = [BackupRow(e.id, e.bytes, e.apps, e.postgres) for e in entries(folder)]
    return BackupList(rows, state["last_success"], state["last_failure"], state["failure"], state["interrupted"],
                      state["verified"])


def listed_on_swarm(text: str) -> BackupList:
    """LIST_SCRIPT's lines as a listing."""
    found, partial, status_lines = [], [], []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "backup" and ID_RE.fullmatch(rest.split("\t", 1)[0]):
            backup_id, _, manifest = rest.partition("\t")
            found.append(entry(backup_id, manifest))
        elif kind == "partial":
            partial.append(rest)
        elif kind == "status":
            status_lines.append(rest)
    state = parse_status("\n".join(status_lines))
    rows = [BackupRow(e.id, e.bytes, e.apps, e.postgres) for e in sorted(found, key=lambda e: e.id)]
    return BackupList(rows, state["last_success"], state["last_failure"], state["failure"], sorted(partial),
                      parse_verified("\n".join(status_lines)))


# ---------------------------------------------------------------- the operations


def on_swarm(session: Session) -> bool:
    """Prod on a swarm (`target: swarm`): the backups live on the data node."""
    return session.manifest.target == "swarm" and session.stack_mode is Mode.PROD


def execute(session: Session, args: list[str], what: str = "backup") -> str:
    """Run the backup script in a one-off container of the backup service (on a swarm:
    a job on the data node); its progress (stderr) is shown, its result (stdout, the
    backup ID) returned."""
    if on_swarm(session):
        return execute_on_swarm(session, args, what)
    st = open_stack(session)
    argv = script_argv(st, *args)
    # One query on the way to a backup, docker's own (~0.03 s; compose's ps and docker
    # info cost 0.2-0.5 s each); why it failed, only then.
    if not session.query(inspect.service_argv(st.ctx.project, "database")).out.split():
        require_engine(session.runner)
        raise PlanoError(f"the database is not running; start the stack first (plano {st.mode} up)")
    result = session.act(argv, timeout=6 * 3600)
    if result.err:
        session.out.note(result.err.rstrip("\n"))
    if not result.ok:
        lines = [line for line in result.err.splitlines() if line.startswith("plano-backup:")]
        raise PlanoError(f"{what} failed: {lines[-1].removeprefix('plano-backup: ') if lines else result.output[-500:]}")
    return result.out.split()[-1] if result.out.split() else ""


def execute_on_swarm(session: Session, args: list[str], what: str) -> str:
    done = swarm_job(session, args, what)
    return done.split()[-1] if done.split() else ""


def swarm_job(session: Session, args: list[str], what: str, entrypoint: list[str] | None = None) -> str:
    """The script (or `entrypoint`) as a job of the backup service (its image as it
    runs now, its secrets, network and mounts) on the data node, whose data/backups/
    holds the backups; the daily schedule in the running backup task shares its lock
    file. Its progress (stderr) is shown, its stdout returned."""
    stack = session.manifest.name
    running = {s.name: s for s in swarm.stack_services(session)}
    if "backup" not in running:
        raise PlanoError("the backup service is not in the stack; start it first (plano swarm up)")
    if not running.get("database") or running["database"].running < 1:
        raise PlanoError("the database is not running on the swarm; start the stack first (plano swarm up)")
    image = session.query(swarm.service_image_argv(f"{stack}_backup"), timeout=60).out.strip()
    try:
        done = job.run(session, job.Job("backup", image, args, what, entrypoint=entrypoint or [SCRIPT], timeout=6 * 3600))
    except job.JobFailed as exc:
        raise PlanoError(str(exc).replace(": plano-backup: ", ": ")) from None
    if done.err:
        session.out.note(done.err.rstrip("\n"))
    return done.out


def run(session: Session, apps: tuple[str, ...] = (), all_apps: bool = False) -> str:
    """Back up APPS (default every app) now; returns the new backup's ID."""
    select_apps(session.manifest, apps, all_apps)  # the names exist, not both with --all
    return execute(session, run_args(list(apps)))  # none given: the script takes every app


def verify(session: Session, backup_id: str | None) -> None:
    if backup_id:
        check_id(backup_id)
    execute(session, verify_args(backup_id), what="verification")


def prune(session: Session) -> None:
    execute(session, ["prune"], what="retention")


def check_restore(session: Session, backup_id: str, app: str | None, scratch: str | None) -> str | None:
    """Refuse a bad restore before anything is asked or run; returns the scratch name."""
    check_id(backup_id)
    scratch = check_scratch(scratch, session.manifest)
    if app is not None:
        require_app(session.manifest, app)
    if scratch and not app:
        raise UsageError("--to-scratch restores one app's database: give the APP")
    return scratch


def restore(session: Session, backup_id: str, app: str | None, scratch: str | None) -> str | None:
    """BACKUP_ID's databases and uploads (every app in it, or APP) replace the current
    ones, after a safety backup of the current state (returned); or, with a scratch
    name, APP's database is restored into a new database and nothing else changes."""
    scratch = check_restore(session, backup_id, app, scratch)
    safety = None
    if not scratch:
        safety = execute(session, run_args([app] if app else [], prune=False), what="the safety backup")
        session.out.note(f"safety backup of the current state: {safety}")
    execute(session, restore_args(backup_id, app, scratch), what="restore")
    return safety
