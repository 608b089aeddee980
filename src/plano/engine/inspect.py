"""The one reader of `docker inspect`: containers of a project, their health, their
addresses and start times. The parsing is pure; `project_containers` is the query."""

from __future__ import annotations

import datetime as dt
import json

from plano.core.errors import PlanoError
from plano.core.runner import Runner

INFRA_SERVICES = ("nginx", "certbot", "database", "redis", "backup")


def project_argv(project: str) -> list[str]:
    return ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"]


def service_argv(project: str, service: str) -> list[str]:
    """The running containers of one service, by full ID."""
    return ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
            "--filter", f"label=com.docker.compose.service={service}"]


def inspect_argv(*containers: str) -> list[str]:
    return ["docker", "inspect", *containers]


def project_containers(project: str, runner: Runner) -> list[dict]:
    """`docker inspect` of every container of a compose project, in one call. A container
    gone between the listing and the inspection is simply left out."""
    ids = runner.run(project_argv(project), timeout=30).out.split()
    if not ids:
        return []
    got = runner.run(inspect_argv(*ids), timeout=60)
    return parse(got.out) if got.out.lstrip().startswith("[") else []


def parse(text: str) -> list[dict]:
    return json.loads(text)


def by_service(containers: list[dict]) -> dict[str, dict]:
    """service name -> its (running, else newest listed) container; one-off runs left out."""
    found: dict[str, dict] = {}
    for info in containers:
        labels = info["Config"].get("Labels") or {}
        if labels.get("com.docker.compose.oneoff") == "True":
            continue
        service = labels.get("com.docker.compose.service", "")
        if service not in found or info["State"].get("Running"):
            found[service] = info
    return found


def name(details: dict) -> str:
    return details["Name"].lstrip("/")


def health_of(state: dict) -> str:
    """starting | healthy | unhealthy | exited | running (no healthcheck)."""
    if not state.get("Running"):
        return "exited"
    health = state.get("Health")
    return health["Status"] if health else "running"


def health_status(state: dict) -> str:
    """The healthcheck's own status, `none` without one."""
    return (state.get("Health") or {}).get("Status", "none")


def health_output(state: dict, last: int = 3) -> list[str]:
    entries = (state.get("Health") or {}).get("Log") or []
    return [f"exit {e.get('ExitCode')}: {' '.join(str(e.get('Output', '')).split())[:300]}" for e in entries[-last:]]


def restarts(details: dict) -> int:
    return int(details.get("RestartCount", 0))


def limits(details: dict) -> tuple[int | None, float | None, int | None]:
    """The limits the engine applies: memory in bytes, CPUs, processes; None when unlimited."""
    host = details.get("HostConfig") or {}
    memory, nano_cpus, pids = host.get("Memory") or 0, host.get("NanoCpus") or 0, host.get("PidsLimit") or 0
    return (memory if memory > 0 else None, nano_cpus / 1e9 if nano_cpus > 0 else None, pids if pids > 0 else None)


def oom_killed_at(details: dict) -> str | None:
    """When the kernel last killed the container for exceeding its memory limit. Docker
    keeps State.OOMKilled through the restart that follows (until the next exit), so a
    running container still shows it; the time is that exit's."""
    state = details.get("State") or {}
    if not state.get("OOMKilled"):
        return None
    finished = parse_started(state.get("FinishedAt", ""))
    return finished.strftime("%Y-%m-%d %H:%M:%S UTC") if finished else "an unknown time"


def network_address(details: dict, network: str) -> str:
    """A container's IPv4 address on one network."""
    address = (details["NetworkSettings"]["Networks"].get(network) or {}).get("IPAddress")
    if not address:
        raise PlanoError(f"{name(details)} has no address on the network {network}, which nginx uses")
    return address


def image_tag(image: str) -> str:
    return image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"


def parse_started(value: str) -> dt.datetime | None:
    """Docker's StartedAt (RFC 3339 with nanoseconds) as a datetime."""
    if not value or value.startswith("0001-"):
        return None
    trimmed = value.rstrip("Z").split(".")[0]
    return dt.datetime.fromisoformat(trimmed).replace(tzinfo=dt.UTC)
