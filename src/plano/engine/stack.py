"""A running stack: dev (base + dev override) or prod (base + prod override).

Each command is a pure argv (see `compose.compose_argv`); the queries here read the
engine's state and the checks turn common failures into one clear line.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from plano.core.errors import EnvironmentProblem, PlanoError, UsageError
from plano.core.manifest import Manifest
from plano.core.mode import Mode
from plano.core.runner import Runner
from plano.core.session import Session
from plano.engine import compose
from plano.engine.compose import ComposeContext

WAIT_SECONDS = 300


@dataclass(frozen=True)
class Stack:
    root: Path
    manifest: Manifest
    mode: Mode
    ctx: ComposeContext

    def argv(self, *args: str) -> list[str]:
        return compose.compose_argv(self.ctx, *args)


def env_files(root: Path, mode: Mode) -> tuple[str, ...]:
    """`.env` when present (generic settings), then the mode's file, which must exist."""
    base, own = mode.env_files
    if not (root / own).is_file():
        hint = (
            "run 'plano render' to create it" if mode.is_dev
            else "copy it from the machine where plano created it (it holds the prod secrets the database was initialised with), "
            "or there run 'plano secrets encrypt' and commit .env.prod.enc (plano prod up decrypts it)"
        )
        raise PlanoError(f"{own}: missing; {hint}")
    return (base, own) if (root / base).is_file() else (own,)


def open_stack(session: Session) -> Stack:
    """The session's stack (its mode), with the compose binary found on this machine."""
    mode, root, manifest = session.stack_mode, session.root, session.manifest
    binary = compose.find_binary(session.runner)
    ctx = ComposeContext(binary, mode.project(manifest), mode.compose_files, env_files(root, mode))
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
    # prod always builds the images of the services plano renders (nginx, database, redis,
    # certbot, backup; cached when their files did not change): an image built by an older
    # plano holds older scripts, e.g. ones that read passwords from the environment.
    if build or not stack.mode.is_dev:
        args.append("--build")
    if wait:
        args += ["--wait", "--wait-timeout", str(WAIT_SECONDS)]
    return stack.argv(*args)


def pull_argv(stack: Stack, services: tuple[str, ...] = (), quiet: bool = False) -> list[str]:
    """Pull the images; those plano builds itself (nginx, database...) are left out."""
    return stack.argv("pull", *services, "--ignore-buildable", *(["--quiet"] if quiet else []))


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
    """ps, restart, build: `compose VERB [SERVICE...]`."""
    return stack.argv(verb, *services)


def running_argv(stack: Stack) -> list[str]:
    return stack.argv("ps", "--status", "running", "--services")


# ---------------------------------------------------------------- queries and checks


def running_services(stack: Stack, runner: Runner) -> set[str]:
    result = runner.run(running_argv(stack), cwd=stack.root, timeout=60)
    return set(result.out.split()) if result.ok else set()


def published_ports(manifest: Manifest, mode: Mode) -> list[tuple[str, int, str]]:
    """(bind address, host port, what) for every port the mode publishes."""
    settings = mode.settings(manifest)
    ports = [(settings.bind, settings.http_port, f"{mode}/http_port"), (settings.bind, settings.https_port, f"{mode}/https_port")]
    if mode.is_dev:
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


def check_ports(stack: Stack, running: set[str]) -> None:
    """Refuse to start when another process holds a port the stack publishes."""
    for bind, port, field in published_ports(stack.manifest, stack.mode):
        owner = "database" if "database" in field else "redis" if "redis" in field else "nginx"
        if owner in running:
            continue
        if not port_is_free(bind, port):
            raise UsageError(f"{field}: port {port} on {bind} is taken by another process; stop it or pick another port in plano.yml")


def urls(manifest: Manifest, mode: Mode) -> dict[str, str]:
    port = mode.settings(manifest).https_port
    suffix = "" if port == 443 else f":{port}"
    return {name: f"https://{mode.domains(manifest, name)[0]}{suffix}" for name in manifest.apps}
