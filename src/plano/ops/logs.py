"""An app's log lines, as the dashboard shows them: the last lines of each service, and
the command that follows one live. On one server, `docker logs` of the service's running
container (compose's labels find it); on a swarm (`target: swarm`, prod), `docker service
logs` of the stack's service, from every task. Every line is masked with the env files'
secret values, as plano masks what it prints of a tool's output (core.secrets.mask).

stdout and stderr come apart from docker; with --timestamps each line starts with the
time docker received it, so the two are merged back in order here (`merged`)."""

from __future__ import annotations

from dataclasses import dataclass

from plano.core import naming as n
from plano.core.errors import UsageError
from plano.core.manifest import require_app
from plano.core.secrets import mask
from plano.core.session import Session
from plano.engine import inspect

LINES = 100  # the last lines a page shows of each service
LINE_MAX = 4000  # characters of one line shown (a minified bundle printed whole...)


@dataclass(frozen=True)
class Source:
    """Where a service's logs are read: a container here, or a swarm service."""

    service: str  # app1-backend
    container: str | None  # its running container's ID (compose); None: none runs
    swarm: str | None = None  # the stack's service (swarm): stack_app1-backend

    @property
    def found(self) -> bool:
        return bool(self.container or self.swarm)


@dataclass(frozen=True)
class ServiceLog:
    role: str
    service: str
    lines: list[str]
    running: bool


def container_logs_argv(container: str, lines: int, follow: bool) -> list[str]:
    return ["docker", "logs", "--timestamps", "--tail", str(lines), *(["--follow"] if follow else []), container]


def logs_argv(source: Source, lines: int = LINES, follow: bool = False) -> list[str]:
    """`docker logs` of the container, or `docker service logs` of the swarm's service."""
    if source.swarm:
        return ["docker", "service", "logs", "--timestamps", "--no-trunc", "--tail", str(lines),
                *(["--follow"] if follow else []), source.swarm]
    if not source.container:
        raise ValueError(f"{source.service}: no running container")
    return container_logs_argv(source.container, lines, follow)


def check_role(session: Session, app: str, role: str) -> str:
    roles = list(require_app(session.manifest, app).services())
    if role not in roles:
        raise UsageError(f"{app}: no service {role!r} (its services: {', '.join(roles) or 'none'})")
    return role


def source(session: Session, app: str, role: str) -> Source:
    """Where the logs of the app's `role` are read now (its newest running container)."""
    check_role(session, app, role)
    service = n.service(app, role)
    if session.manifest.target == "swarm" and not session.stack_mode.is_dev:
        return Source(service, None, f"{session.manifest.name}_{service}")
    project = session.stack_mode.project(session.manifest)
    running = session.query(inspect.service_argv(project, service), timeout=30).out.split()
    return Source(service, running[0] if running else None)


def merged(out: str, err: str) -> list[str]:
    """stdout's and stderr's lines in the order docker received them (a stable sort on
    their timestamps: each stream's own order is kept)."""
    lines = [line for line in (*out.splitlines(), *err.splitlines()) if line]
    return sorted(lines, key=lambda line: line.split(" ", 1)[0] if line[:4].isdigit() else "")


def shown(line: str, secret_values: set[str]) -> str:
    """One line as a page shows it: masked, cut at LINE_MAX characters."""
    text = mask(line.rstrip("\r\n"), secret_values)
    return text if len(text) <= LINE_MAX else text[:LINE_MAX] + " ..."


def last_lines(session: Session, app: str, lines: int = LINES) -> list[ServiceLog]:
    """The last `lines` of each of the app's services (none when it does not run)."""
    require_app(session.manifest, app)
    secret_values = session.secret_values()
    found = []
    for role in session.manifest.apps[app].services():
        where = source(session, app, role)
        if not where.found:
            found.append(ServiceLog(role, where.service, [], False))
            continue
        got = session.query(logs_argv(where, lines), timeout=30)
        text = merged(got.out, got.err) if got.ok else [f"({got.last_line})"]
        found.append(ServiceLog(role, where.service, [shown(line, secret_values) for line in text[-lines:]], True))
    return found
