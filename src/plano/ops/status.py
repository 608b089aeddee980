"""`plano status`: one screen per environment. Per app service: the image and tag
running against the tag recorded in the env file, health, uptime, restarts, the
limits the engine applies, URL; then the infra services, certificates, the last
backup and the disk usage of data/. Every service that does not run (stopped,
restarting, paused, no container) is a problem, with the command that brings it
back, and so is a service the kernel killed for going over its memory limit, with
the plano.yml setting to raise; any problem makes the exit code 1.

On a swarm (`target: swarm`), the services are the stack's, as its manager knows them:
running when every task it wants runs (Swarm counts a task once its healthcheck
passed), else how many do; certificates and data/ are this node's (the edge node's),
the backups the data node's (read there by a one-off job)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import fields, secrets
from plano.core import naming as n
from plano.core.errors import PlanoError
from plano.core.manifest import InfraLimits, Manifest
from plano.core.session import Session
from plano.engine import inspect, swarm
from plano.engine.stack import require_engine, urls
from plano.engine.tls import installed_facts
from plano.ops import backup


@dataclass(frozen=True)
class AppliedLimits:
    """What the engine applies to a container (from `docker inspect`), None: unlimited."""

    memory: str | None  # 256m, 1g
    cpus: float | None
    pids: int | None

    def cells(self) -> tuple[str, str, str]:
        return (self.memory or "-", f"{self.cpus:g}" if self.cpus else "-", str(self.pids or "-"))


NO_LIMITS = AppliedLimits(None, None, None)


@dataclass(frozen=True)
class OomKill:
    """A service the kernel killed for going over its memory limit, and the setting to raise."""

    service: str
    at: str
    memory: str | None
    restarts: int
    setting: str | None  # apps/app1/backend/limits/memory; None for a service of docker-compose.custom.yml
    apply: str  # the command that recreates it with the new limit

    def reason(self) -> str:
        return f"{self.service} was killed at {self.at}: it went over its memory limit ({self.memory or 'none'})"

    def fix(self) -> str:
        where = f"raise {self.setting} in plano.yml" if self.setting else "raise its mem_limit in docker-compose.custom.yml"
        return f"{where}, then plano render and {self.apply} (or find the leak: plano prod logs {self.service})"


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
    limits: AppliedLimits = NO_LIMITS
    oom_killed_at: str | None = None


@dataclass(frozen=True)
class InfraRow:
    service: str
    state: str
    health: str | None  # None when it does not run: a stopped container keeps its last health
    restarts: int | None
    limits: AppliedLimits = NO_LIMITS
    oom_killed_at: str | None = None


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
    last_verified: str | None = None  # when `plano backup verify` proved the last backup (None: not yet)


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
    oom_kills: list[OomKill] = field(default_factory=list)


def size(bytes_: int) -> str:
    """A memory size as plano.yml writes it: 1g, 256m."""
    gib = fields.MIB * 1024
    return f"{bytes_ // gib}g" if bytes_ % gib == 0 else f"{round(bytes_ / fields.MIB)}m"


def applied_limits(info: dict) -> AppliedLimits:
    memory, cpus, pids = inspect.limits(info)
    return AppliedLimits(size(memory) if memory else None, cpus, pids)


def memory_setting(manifest: Manifest, service: str) -> str | None:
    """Where plano.yml sets a compose service's memory limit (apps/app1/backend/limits/memory);
    None for a service plano does not render (one of docker-compose.custom.yml)."""
    if service in InfraLimits.model_fields:
        return f"limits/{service}/memory"
    owner = n.app_services(manifest).get(service)
    return f"apps/{owner[0]}/{owner[1]}/limits/memory" if owner else None


def apply_argv(manifest: Manifest, service: str, info: dict) -> list[str]:
    """What recreates a service with its new limit: an app's own deploy of the tag it
    runs (a new container next to the old, no downtime), else `prod up`."""
    owner = n.app_services(manifest).get(service)
    if owner:
        return ["plano", "deploy", owner[0], "--service", owner[1], "--tag", inspect.image_tag(info["Config"]["Image"])]
    return ["plano", "prod", "up"]


def oom_kills(manifest: Manifest, found: dict[str, dict]) -> list[OomKill]:
    """The services (name -> `docker inspect`) whose last exit was the kernel's OOM kill."""
    kills = []
    for service, info in sorted(found.items()):
        at = inspect.oom_killed_at(info)
        if at:
            kills.append(OomKill(service, at, applied_limits(info).memory, inspect.restarts(info), memory_setting(manifest, service),
                                 shlex.join(apply_argv(manifest, service, info))))
    return kills


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
        restarts=inspect.restarts(info), url=url, limits=applied_limits(info), oom_killed_at=inspect.oom_killed_at(info),
    )


def infra_row(service: str, info: dict | None) -> InfraRow:
    """One infra service from `docker inspect` (None: no container)."""
    if info is None:
        return InfraRow(service, "absent", None, None)
    state = info["State"]
    return InfraRow(service, state.get("Status", "unknown"), inspect.health_status(state) if state.get("Running") else None,
                    inspect.restarts(info), applied_limits(info), inspect.oom_killed_at(info))


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
    return 1 if report.problems or report.oom_kills else 0


def swarm_service_row(app: str, role: str, found: swarm.Service | None, recorded: str | None, url: str) -> ServiceRow:
    """One app service of the stack, from `docker service ls|inspect` (None: not in it)."""
    name = n.service(app, role)
    if found is None:
        return ServiceRow(app, name, "absent", None, None, recorded, False, None, None, None, url)
    tag = inspect.image_tag(found.image)
    return ServiceRow(app, name, swarm_state(found), found.image, tag, recorded, recorded is None or recorded == tag,
                      swarm_health(found), None, None, url)


def swarm_state(found: swarm.Service) -> str:
    """running: every task it wants runs; else how many do (a node down, a crash loop)."""
    return "running" if found.desired and found.running == found.desired else f"{found.running}/{found.desired} tasks"


def swarm_health(found: swarm.Service) -> str:
    """Swarm counts a task as running once its healthcheck passed; the last update's state."""
    return f"{found.running}/{found.desired} healthy" + (f", update {found.update}" if found.update else "")


def swarm_problem(service: str, state: str) -> Problem | None:
    if state == "running":
        return None
    fix = "plano swarm up" if state == "absent" else f"plano swarm ps {service} (why its tasks stop), then plano swarm up"
    return Problem(service, state, fix)


def on_swarm(session: Session) -> tuple[str, list[ServiceRow], list[InfraRow], list[Problem]]:
    """The stack's services on a swarm (target: swarm): what the manager knows."""
    manifest = session.manifest
    swarm.require_manager(session)
    found = {s.name: s for s in swarm.stack_services(session)}
    recorded = secrets.read_env(session.root / n.ENV_PROD)
    links = urls(manifest, session.stack_mode)
    rows = [swarm_service_row(app_name, role, found.get(n.service(app_name, role)), recorded.get(n.tag_var(app_name, role)), links[app_name])
            for app_name, app in sorted(manifest.apps.items()) for role in app.services()]
    infra_rows = [InfraRow(name, swarm_state(s), swarm_health(s), None) if (s := found.get(name)) else InfraRow(name, "absent", None, None)
                  for name in sorted(inspect.INFRA_SERVICES)]
    problems = [p for row in [*rows, *infra_rows] if (p := swarm_problem(row.service, row.state))]
    return f"{manifest.name} on a swarm", rows, infra_rows, problems


def on_compose(session: Session, now: dt.datetime) -> tuple[str, list[ServiceRow], list[InfraRow], list[Problem], list[OomKill]]:
    mode, manifest = session.stack_mode, session.manifest
    project = mode.project(manifest)
    found = inspect.by_service(inspect.project_containers(project, session.runner))
    if not found:  # a stack that is down, or no engine at all: only then is `docker info` asked, to say which
        require_engine(session.runner)
    recorded = {} if mode.is_dev else secrets.read_env(session.root / n.ENV_PROD)
    links = urls(manifest, mode)
    rows = [service_row(app_name, role, found.get(n.service(app_name, role)), recorded.get(n.tag_var(app_name, role)), links[app_name], now)
            for app_name, app in sorted(manifest.apps.items()) for role in app.services()]
    infra_rows = [infra_row(name, found.get(name)) for name in sorted(inspect.INFRA_SERVICES)]
    return project, rows, infra_rows, problems(rows, infra_rows, str(mode)), oom_kills(manifest, found)


def collect(session: Session, now: dt.datetime | None = None) -> Report:
    now = now or dt.datetime.now(dt.UTC)
    mode, root, manifest = session.stack_mode, session.root, session.manifest
    if manifest.target == "swarm" and not mode.is_dev:
        require_engine(session.runner)
        project, rows, infra_rows, found_problems = on_swarm(session)
        kills: list[OomKill] = []
    else:
        project, rows, infra_rows, found_problems, kills = on_compose(session, now)
    cert_rows = []
    for app_name in sorted(manifest.apps):
        facts = installed_facts(root, mode, app_name)
        cert_rows.append(CertSummary(app_name, facts.issuer if facts else None, facts.days_left(now) if facts else None,
                                     bool(facts is None or facts.placeholder)))
    summary = backup_summary(session)
    data = root / mode.data_root
    return Report(
        mode=str(mode), project=project, apps=rows, infra=infra_rows, certificates=cert_rows,
        backup=summary,
        data=DataUsage(mode.data_root, folder_bytes(data), shutil.disk_usage(data).free if data.is_dir() else None),
        problems=found_problems,
        oom_kills=kills,
    )


def backup_summary(session: Session) -> BackupSummary:
    """The backups as `plano backup list` reads them: this infra's data/, or on a swarm
    the data node's (read by a job there; none when it cannot run)."""
    try:
        listed = backup.listing(session)
    except PlanoError as exc:
        session.out.note(f"warning: the data node's backups could not be read: {exc}")
        return BackupSummary(None, 0, None, None)
    last = listed.backups[-1].id if listed.backups else None
    return BackupSummary(last, len(listed.backups), listed.last_success, listed.last_failure, listed.verified.get(last or ""))


def folder_bytes(path: Path) -> int:
    """The bytes of the regular files under `path`, symlinks not followed. os.scandir, as
    Postgres's data holds thousands of files: its entries carry their type, so only
    the files' own stat is asked (a third of rglob's time)."""
    total, pending = 0, [path]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # a folder of the database's own user, or gone meanwhile
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d{hours}h" if days else (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s")
