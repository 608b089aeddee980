"""A real workspace for end-to-end tests: infra + app1 + app2 side by side, the
stand-in images, free loopback ports, a compose project name of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plano.ops.demo import copy_demo_app
from tests import testrun
from tests.integration.net import free_ports

STAND_INS = {
    "nginx": "plano-test/nginx:sid",
    "postgres": "plano-test/postgres:sid",
    "redis": "plano-test/redis:sid",
    "certbot": "plano-test/certbot:sid",
    "node": "plano-test/node:sid",
}
REGISTRY = testrun.REGISTRY  # scripts/harness/registry.sh
# A Docker engine in a container (plano-test/dind): what `docker run --privileged` would
# give, less CAP_SYS_RESOURCE, which this sandbox's bounding set lacks
# (../shared/docs/offline-test-environment.md). Add a /var/lib/docker: a tmpfs or a volume.
ENGINE_IN_A_CONTAINER = ["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
                         "--security-opt", "apparmor=unconfined", "--security-opt", "systempaths=unconfined",
                         "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run"]


def plano(*args: str, cwd: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"plano {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def docker(*args: str, check: bool = True, timeout: float = 900, cwd: Path | None = None,
           input_text: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, input=input_text)
    if check:
        assert proc.returncode == 0, f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def build_image(image: str, context: Path, timeout: float = 900, dockerfile: str | None = None,
                node_image: str = STAND_INS["node"]) -> None:
    """`docker build` of a test image (the legacy builder: no buildx here), on the
    stand-in Node image (or `node_image`), labelled with the test run so that its end
    removes it; `dockerfile` relative to the context (a workspace's service)."""
    proc = subprocess.run(["docker", "build", "-q", "--label", f"{testrun.LABEL}={testrun.current()}", "-t", image,
                           "--build-arg", f"NODE_IMAGE={node_image}", *(["-f", str(context / dockerfile)] if dockerfile else []),
                           str(context)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    assert proc.returncode == 0, f"docker build -t {image} {context}:\n{proc.stderr[-3000:]}"


@dataclass
class Workspace:
    root: Path
    name: str
    ports: dict[str, int]

    @property
    def infra(self) -> Path:
        return self.root / "infra"

    def env(self, mode: str, infra: Path | None = None) -> dict[str, str]:
        from plano.core import secrets

        return secrets.read_env((infra or self.infra) / f".env.{mode}")


def make_workspace(root: Path, apps: tuple[str, ...] = ("app1", "app2")) -> Workspace:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    testrun.record_project(name)
    keys = ("prod_http", "prod_https", "dev_http", "dev_https", "dev_db", "dev_redis")
    ports = dict(zip(keys, free_ports(len(keys))))
    plano("init", "infra", "--name", name, "--registry", f"{REGISTRY}/{name}", "--email", "ops@example.com", cwd=root)
    infra = root / "infra"
    text = (infra / "plano.yml").read_text()
    for key, image in STAND_INS.items():
        text = text.replace(f"  {key}: ", f"  {key}: {image} # was: ", 1)
    text = text.replace("  http_port: 80\n  https_port: 443\n\ndev:", f"  http_port: {ports['prod_http']}\n  https_port: {ports['prod_https']}\n\ndev:")
    text = text.replace("  bind: 0.0.0.0", "  bind: 127.0.0.1")
    text = text.replace("  http_port: 80\n  https_port: 443\n  database_port: 5432", f"  http_port: {ports['dev_http']}\n  https_port: {ports['dev_https']}\n  database_port: {ports['dev_db']}")
    text = text.replace("  redis_port: 6379", f"  redis_port: {ports['dev_redis']}")
    (infra / "plano.yml").write_text(text)
    plano("render", cwd=infra)
    for app in apps:
        copy_demo_app(root / app)
        plano("app", "add", app, "--domain", f"{app}.example.com", "--domain", f"www.{app}.example.com", cwd=infra)
    return Workspace(root, name, ports)


def project_containers(project: str) -> list[str]:
    out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "--format", "{{.Names}}").stdout
    return sorted(out.split())


def remove_project(project: str) -> None:
    """Remove the test's own containers, networks and volumes (never data/ on the host: tmp_path goes)."""
    names = project_containers(project)
    if names:
        docker("rm", "-f", "-v", *names, check=False)
    for kind in ("network", "volume"):
        out = docker(kind, "ls", "-q", "--filter", f"label=com.docker.compose.project={project}", check=False).stdout.split()
        if out:
            docker(kind, "rm", *out, check=False)


def sql(ws: Workspace, database: str, query: str) -> str:
    """One query as postgres in the prod stack's database container; its rows, unaligned."""
    return docker("exec", f"{ws.name}-database-1", "psql", "-U", "postgres", "-d", database, "-At", "-c", query).stdout.strip()


def remove_images(project: str) -> None:
    """The images of the test's own project, once its module is done (the run's end removes
    them anyway; a module with large images frees the disk for the others sooner): those
    compose built for it or its -dev twin, and those tagged under the registry for it."""
    found = testrun.images_under([project])
    for name in (project, f"{project}-dev"):
        found |= set(docker("image", "ls", "-q", "--filter", f"label=com.docker.compose.project={name}", check=False).stdout.split())
    if found:
        docker("image", "rm", "-f", *sorted(found), check=False)


@contextmanager
def prod_running(ws: Workspace) -> Iterator[Workspace]:
    """`plano prod up` for the test's lifetime; then down, and the project's containers removed."""
    try:
        plano("prod", "up", cwd=ws.infra, timeout=1200)
        yield ws
    finally:
        plano("prod", "down", cwd=ws.infra, check=False)
        remove_project(ws.name)
