"""Running the stack: dev (base + dev override) and prod (base + prod override).

Each operation is a pure argv (see `compose.compose_argv`); `Stack` adds the
pre-flight checks that turn common failures into one clear line.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import EnvironmentProblem, PlanoError, UsageError
from plano.core.manifest import Manifest
from plano.core.runner import Runner
from plano.engine import compose
from plano.engine.compose import ComposeContext

MODES = ("dev", "prod")
WAIT_SECONDS = 300


@dataclass(frozen=True)
class Stack:
    root: Path
    manifest: Manifest
    mode: str
    ctx: ComposeContext

    def argv(self, *args: str) -> list[str]:
        return compose.compose_argv(self.ctx, *args)


def env_files(root: Path, mode: str) -> tuple[str, ...]:
    """`.env` when present (generic settings), then the mode's file, which must exist."""
    base, own = n.env_files(mode)
    if not (root / own).is_file():
        hint = (
            "copy it from the machine where plano created it (it holds the prod secrets the database was initialised with)"
            if mode == "prod"
            else "run 'plano render' to create it"
        )
        raise PlanoError(f"{own}: missing; {hint}")
    return (base, own) if (root / base).is_file() else (own,)


def open_stack(root: Path, manifest: Manifest, mode: str, runner: Runner) -> Stack:
    binary = compose.find_binary(runner)
    ctx = ComposeContext(binary, n.project(manifest, mode), tuple(n.compose_files(mode)), env_files(root, mode))
    return Stack(root, manifest, mode, ctx)


def require_engine(runner: Runner) -> None:
    if not compose.engine_answers(runner):
        raise EnvironmentProblem(
            "no Docker engine answers (docker info failed): start dockerd (e.g. 'systemctl start docker') "
            "or set DOCKER_HOST"
        )


# ---------------------------------------------------------------- argv per command


def up_argv(stack: Stack, build: bool = False, wait: bool = True) -> list[str]:
    args = ["up", "-d", "--remove-orphans"]
    if build:
        args.append("--build")
    if wait:
        args += ["--wait", "--wait-timeout", str(WAIT_SECONDS)]
    return stack.argv(*args)


def down_argv(stack: Stack, volumes: bool = False) -> list[str]:
    return stack.argv("down", *(["--volumes"] if volumes else []))


def logs_argv(stack: Stack, services: tuple[str, ...], follow: bool, tail: str | None) -> list[str]:
    args = ["logs"]
    if follow:
        args.append("--follow")
    if tail:
        args += ["--tail", tail]
    return stack.argv(*args, *services)


def exec_argv(stack: Stack, service: str, command: tuple[str, ...], tty: bool) -> list[str]:
    return stack.argv("exec", *([] if tty else ["-T"]), service, *command)


def simple_argv(stack: Stack, verb: str, services: tuple[str, ...] = ()) -> list[str]:
    """ps, restart, build, pull: `compose VERB [SERVICE...]`."""
    return stack.argv(verb, *services)


# ---------------------------------------------------------------- checks and URLs


def published_ports(manifest: Manifest, mode: str) -> list[tuple[str, int, str]]:
    """(bind address, host port, what) for every port the mode publishes."""
    settings = manifest.dev if mode == "dev" else manifest.prod
    ports = [(settings.bind, settings.http_port, f"{mode}/http_port"), (settings.bind, settings.https_port, f"{mode}/https_port")]
    if mode == "dev":
        ports += [(settings.bind, manifest.dev.database_port, "dev/database_port"), (settings.bind, manifest.dev.redis_port, "dev/redis_port")]
    return ports


def port_is_free(bind: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError:
            return False
    return True


def running_services(stack: Stack, runner: Runner) -> set[str]:
    result = runner.run(stack.argv("ps", "--status", "running", "--services"), cwd=stack.root, timeout=60)
    return set(result.out.split()) if result.ok else set()


def inspect_project(project: str, runner: Runner) -> list[dict]:
    """`docker inspect` of every container of a compose project, in one call. A container
    gone between the listing and the inspection is simply left out."""
    ids = runner.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"], timeout=30).out.split()
    if not ids:
        return []
    got = runner.run(["docker", "inspect", *ids], timeout=60)
    return json.loads(got.out) if got.out.lstrip().startswith("[") else []


def check_ports(stack: Stack, runner: Runner) -> None:
    """Refuse to start when another process holds a port the stack publishes."""
    running = running_services(stack, runner)
    for bind, port, field in published_ports(stack.manifest, stack.mode):
        owner = "database" if "database" in field else "redis" if "redis" in field else "nginx"
        if owner in running:
            continue
        if not port_is_free(bind, port):
            raise UsageError(f"{field}: port {port} on {bind} is taken by another process; stop it or pick another port in plano.yml")


def urls(manifest: Manifest, mode: str) -> dict[str, str]:
    if mode == "dev":
        port = manifest.dev.https_port
        suffix = "" if port == 443 else f":{port}"
        return {name: f"https://{n.dev_domains(manifest, name)[0]}{suffix}" for name in manifest.apps}
    port = manifest.prod.https_port
    suffix = "" if port == 443 else f":{port}"
    return {name: f"https://{app.domains[0]}{suffix}" for name, app in manifest.apps.items()}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode
