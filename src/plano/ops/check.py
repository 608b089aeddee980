"""`plano check`: the real validators of the field, run on the rendered tree.

A validator that cannot run here is reported as skipped, never as passed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import EnvironmentProblem
from plano.core.manifest import Manifest
from plano.core.mode import Mode
from plano.core.runner import Runner
from plano.core.session import Session
from plano.engine import compose

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    detail: str = ""



def scripts(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "docker").rglob("*.sh"))


def dockerfiles(root: Path, manifest: Manifest | None = None) -> list[str]:
    """The infra's Dockerfiles, then each app service's own where its source is here
    (a prod server holds only the infra), relative to the infra."""
    infra = sorted(p.relative_to(root).as_posix() for p in (root / "docker").rglob("Dockerfile"))
    apps = [] if manifest is None else [
        f"{n.source(name, app, role)}/Dockerfile" for name, app in sorted(manifest.apps.items()) for role in app.services()]
    return infra + [path for path in apps if (root / path).is_file()]


def nginx_tag(root: Path, manifest: Manifest) -> str:
    """A tag that changes whenever the nginx build inputs change."""
    digest = hashlib.sha256(manifest.images.nginx.encode())
    for path in sorted((root / "docker/nginx").rglob("*")):
        if path.is_file() and ("entrypoint.d" in path.parts or path.name == "Dockerfile"):
            digest.update(path.read_bytes())
    return f"plano-check/{manifest.name}-nginx:{digest.hexdigest()[:12]}"


def nginx_build_argv(root: Path, manifest: Manifest) -> list[str]:
    return ["docker", "build", "-q", "-t", nginx_tag(root, manifest),
            "--build-arg", f"NGINX_IMAGE={manifest.images.nginx}", str(root / "docker/nginx")]


def nginx_test_argv(root: Path, manifest: Manifest) -> list[str]:
    return ["docker", "run", "--rm", "--network", "none",
            "-v", f"{(root / 'docker/nginx').resolve()}:/etc/plano/nginx:ro",
            "--tmpfs", "/etc/nginx/certs", "--tmpfs", n.RUNTIME_IN_NGINX, "--tmpfs", n.LOGS_IN_NGINX,
            nginx_tag(root, manifest), "nginx", "-c", n.NGINX_CONF, "-t"]


def outcome(name: str, result, ok_detail: str = "") -> Outcome:
    if result.ok:
        return Outcome(name, PASSED, ok_detail)
    return Outcome(name, FAILED, result.output or f"exit code {result.code}")


def check_compose(root: Path, manifest: Manifest, runner: Runner) -> list[Outcome]:
    try:
        binary = compose.find_binary(runner)
    except EnvironmentProblem as exc:
        return [Outcome(f"compose config ({mode})", SKIPPED, str(exc)) for mode in Mode]
    results = []
    for mode in Mode:
        ctx = compose.ComposeContext(binary, mode.project(manifest), mode.compose_files, mode.env_files)
        result = runner.run(compose.compose_argv(ctx, "config", "--quiet"), cwd=root, timeout=120)
        results.append(outcome(f"compose config ({mode})", result, " ".join(binary)))
    return results


def check_nginx(root: Path, manifest: Manifest, runner: Runner) -> Outcome:
    name = "nginx -t"
    if not compose.engine_answers(runner):
        return Outcome(name, SKIPPED, "no Docker engine answers; start one (see README, 'Tests') to run the stack's own nginx")
    build = runner.run(nginx_build_argv(root, manifest), timeout=900)
    if not build.ok:
        return Outcome(name, FAILED, f"building docker/nginx failed: {build.output}")
    return outcome(name, runner.run(nginx_test_argv(root, manifest), timeout=120), f"in {manifest.images.nginx}")


def check_tool(name: str, tool: str, args: list[str], root: Path, runner: Runner) -> Outcome:
    path = compose.venv_tool(tool)
    if path is None:
        return Outcome(name, SKIPPED, f"{tool} not installed; pip install 'plano[check]'")
    return outcome(name, runner.run([path, *args], cwd=root, timeout=300))


def run_all(session: Session) -> list[Outcome]:
    """Every validator on the session's rendered tree; they only read (queries)."""
    root, manifest, runner = session.root, session.manifest, session.runner
    return [
        *check_compose(root, manifest, runner),
        check_nginx(root, manifest, runner),
        check_tool("gixy", "gixy", ["docker/nginx/nginx.conf"], root, runner),
        check_tool("shellcheck", "shellcheck", ["--external-sources", *scripts(root)], root, runner),
        check_tool("hadolint", "hadolint", dockerfiles(root, manifest), root, runner),
    ]
