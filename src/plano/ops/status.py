"""`plano status`: one screen per environment. Per app service: the image and tag
running against the tag recorded in the env file, health, uptime, restarts, URL;
then the infra services, certificates, the last backup and the disk usage of data/.
Every service that does not run (stopped, restarting, paused, no container) is a
problem, with the command that brings it back; any problem makes the exit code 1."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets
from plano.core.session import Session
from plano.engine import inspect
from plano.engine.stack import open_stack, require_engine, urls
from plano.engine.tls import installed_facts
from plano.ops import backup


@dataclass(frozen=True)
class ServiceRow:
    app: str
    service: str
    state: str
    image: str | None
    tag: str | None
    recorded_tag: str | None
    matches: bool
    health: str | None
    uptime_seconds: int | None
    restarts: int | None
    url: str


@dataclass(frozen=True)
class InfraRow:
    service: str
    state: str
    health: str | None  # None when it does not run: a stopped container keeps its last health
    restarts: int | None


@dataclass(frozen=True)
class Problem:
    service: str
    state: str
    fix: str


@dataclass(frozen=True)
class CertSummary:
    app: str
    issuer: str | None
    days_left: int | None
    placeholder: bool


@dataclass(frozen=True)
class BackupSummary:
    last: str | None
    count: int
    last_success: str | None
    last_failure: str | None


@dataclass(frozen=True)
class DataUsage:
    path: str
    bytes: int
    free_bytes: int | None


@dataclass(frozen=True)
class Report:
    mode: str
    project: str
    apps: list[ServiceRow]
    infra: list[InfraRow]
    certificates: list[CertSummary]
    backup: BackupSummary
    data: DataUsage
    problems: list[Problem]


def service_row(app: str, role: str, info: dict | None, recorded: str | None, url: str, now: dt.datetime) -> ServiceRow:
    """One service from `docker inspect` (None: no container)."""
    if info is None:
        return ServiceRow(app, n.service(app, role), "absent", None, None, recorded, False, None, None, None, url)
    image = info["Config"]["Image"]
    tag = inspect.image_tag(image)
    state = info["State"]
    started = inspect.parse_started(state.get("StartedAt", ""))
    running = bool(state.get("Running"))
    return ServiceRow(
        app=app, service=n.service(app, role), state=state.get("Status", "unknown"), image=image, tag=tag,
        recorded_tag=recorded, matches=recorded is None or recorded == tag, health=inspect.health_status(state) if running else None,
        uptime_seconds=int((now - started).total_seconds()) if running and started else None,
        restarts=inspect.restarts(info), url=url,
    )


def infra_row(service: str, info: dict | None) -> InfraRow:
    """One infra service from `docker inspect` (None: no container)."""
    if info is None:
        return InfraRow(service, "absent", None, None)
    state = info["State"]
    return InfraRow(service, state.get("Status", "unknown"), inspect.health_status(state) if state.get("Running") else None,
                    inspect.restarts(info))


def problem(service: str, state: str, mode: str) -> Problem | None:
    """A service that does not run, and what to run (None: it runs)."""
    if state == "running":
        return None
    fixes = {"restarting": f"plano {mode} logs {service} (it fails as it starts), then plano {mode} up",
             "paused": f"plano {mode} restart {service}"}
    return Problem(service, state, fixes.get(state, f"plano {mode} up"))


def problems(apps: list[ServiceRow], infra: list[InfraRow], mode: str) -> list[Problem]:
    found = [problem(row.service, row.state, mode) for row in [*apps, *infra]]
    return [p for p in found if p is not None]


def exit_code(report: Report) -> int:
    return 1 if report.problems else 0


def collect(session: Session, now: dt.datetime | None = None) -> Report:
    now = now or dt.datetime.now(dt.UTC)
    mode, root, manifest = session.stack_mode, session.root, session.manifest
    require_engine(session.runner)
    st = open_stack(session)
    found = inspect.by_service(inspect.project_containers(st.ctx.project, session.runner))
    recorded = {} if mode.is_dev else secrets.read_env(root / n.ENV_PROD)
    links = urls(manifest, mode)
    rows = [service_row(app_name, role, found.get(n.service(app_name, role)), recorded.get(n.tag_var(app_name, role)), links[app_name], now)
            for app_name, app in sorted(manifest.apps.items()) for role in app.services()]
    infra_rows = [infra_row(name, found.get(name)) for name in sorted(inspect.INFRA_SERVICES)]
    cert_rows = []
    for app_name in sorted(manifest.apps):
        facts = installed_facts(root, mode, app_name)
        cert_rows.append(CertSummary(app_name, facts.issuer if facts else None, facts.days_left(now) if facts else None,
                                     bool(facts is None or facts.placeholder)))
    folder = backup.backups_dir(root, mode)
    entries = backup.entries(folder) if folder.is_dir() else []
    state = backup.status(folder) if folder.is_dir() else {"last_success": None, "last_failure": None}
    data = root / mode.data_root
    return Report(
        mode=str(mode), project=st.ctx.project, apps=rows, infra=infra_rows, certificates=cert_rows,
        backup=BackupSummary(entries[-1].id if entries else None, len(entries), state["last_success"], state["last_failure"]),
        data=DataUsage(mode.data_root, folder_bytes(data), shutil.disk_usage(data).free if data.is_dir() else None),
        problems=problems(rows, infra_rows, str(mode)),
    )


def folder_bytes(path: Path) -> int:
    total = 0
    for item in path.rglob("*") if path.is_dir() else []:
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            continue  # files of the database's own user, or gone meanwhile
    return total


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d{hours}h" if days else (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s")
