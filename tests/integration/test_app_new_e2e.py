"""`plano app new`: a real NestJS + Next.js repo whose tests pass on the host, whose
production images run in the stack behind the rendered nginx, with the backend's
health endpoint really checking Postgres and Redis."""

import json
import os
import subprocess

import pytest

from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import (
    REGISTRY,
    build_image,
    docker,
    make_workspace,
    plano,
    remove_project,
)

pytestmark = pytest.mark.expected_seconds(300)  # on a 2-core machine


def npm(*args: str, cwd) -> subprocess.CompletedProcess:
    proc = subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1", "CI": "1"})
    assert proc.returncode == 0, f"npm {' '.join(args)} in {cwd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("new"), apps=())
    plano("app", "new", "app1", "--domain", "app1.example.com", cwd=ws.infra)
    try:
        yield ws
    finally:
        plano("prod", "down", cwd=ws.infra, check=False)
        remove_project(ws.name)


def test_the_repo_has_the_seeds_layout(scaffolded):
    repo = scaffolded.root / "app1"
    for rel in ("backend/Dockerfile", "backend/package.json", "backend/package-lock.json", "backend/src/main.ts",
                "backend/.dockerignore", "frontend/Dockerfile", "frontend/package-lock.json", "frontend/next.config.ts",
                "frontend/.dockerignore", ".github/workflows/ci.yml", ".gitlab-ci.yml", "README.md", ".git"):
        assert (repo / rel).exists(), rel
    assert json.loads((repo / "backend/package.json").read_text())["name"] == "app1-backend"
    assert "output: 'standalone'" in (repo / "frontend/next.config.ts").read_text() or \
        'output: "standalone"' in (repo / "frontend/next.config.ts").read_text()
    listed = json.loads(plano("app", "list", "--json", cwd=scaffolded.infra).stdout)
    assert listed[0]["backend"]["source"] == "../app1/backend"


def test_host_install_tests_and_build(scaffolded):
    repo = scaffolded.root / "app1"
    npm("ci", cwd=repo / "backend")
    npm("test", cwd=repo / "backend")
    npm("run", "test:e2e", cwd=repo / "backend")
    npm("ci", cwd=repo / "frontend")
    npm("run", "build", cwd=repo / "frontend")


def test_production_images_serve_behind_nginx(scaffolded):
    ws = scaffolded
    for role in ("backend", "frontend"):
        image = f"{REGISTRY}/{ws.name}/app1-{role}:1.0.0"
        build_image(image, ws.root / "app1" / role, timeout=1200)
        docker("push", image)
    prod_env = ws.infra / ".env.prod"
    prod_env.write_text(prod_env.read_text().replace("APP1_BACKEND_TAG=latest", "APP1_BACKEND_TAG=1.0.0")
                        .replace("APP1_FRONTEND_TAG=latest", "APP1_FRONTEND_TAG=1.0.0"))
    plano("prod", "up", cwd=ws.infra, timeout=900)
    port = ws.ports["prod_https"]
    status, _, body = https_request(port, "app1.example.com", "/api/health")
    health = json.loads(body)
    assert status == 200 and health["database"] == "up" and health["redis"] == "up", health
    status, headers, body = https_request(port, "app1.example.com", "/")
    assert status == 200 and b"<html" in body.lower() and b"app1" in body
    assert "x-powered-by" not in headers
    wait_for(lambda: https_request(port, "app1.example.com", "/api/health")[0] == 200, "health flapped", 5)


def test_dev_after_prod_in_one_checkout_reloads_nest_and_next_edits(scaffolded):
    """dev keeps its data in data/dev/: a database that prod initialised with its own
    secrets does not stop dev (both stacks may even run at once on other ports)."""
    ws = scaffolded
    try:
        plano("dev", "up", cwd=ws.infra, timeout=1500)
        port = ws.ports["dev_https"]

        def body(path: str) -> bytes:
            status, _, raw = https_request(port, "app1.localhost", path)
            return raw if status == 200 else b""

        wait_for(lambda: b"<h1>app1</h1>" in body("/"), "the Next dev server never served /", 180, 1)
        assert body("/api") == b"Hello World!"

        service = ws.root / "app1/backend/src/app.service.ts"
        service.write_text(service.read_text().replace("Hello World!", "Hello, reloaded!"))
        seconds = wait_for(lambda: body("/api") == b"Hello, reloaded!", "the NestJS edit never reached the container", 90, 0.25)
        print(f"NestJS edit visible through nginx after {seconds:.1f} s")

        page = ws.root / "app1/frontend/app/page.tsx"
        page.write_text(page.read_text().replace("<h1>app1</h1>", "<h1>app1, reloaded</h1>"))
        seconds = wait_for(lambda: b"app1, reloaded" in body("/"), "the Next.js edit never reached the container", 90, 0.25)
        print(f"Next.js edit visible through nginx after {seconds:.1f} s")
    finally:
        plano("dev", "down", "--volumes", "--yes", cwd=ws.infra, check=False)
        remove_project(f"{ws.name}-dev")
