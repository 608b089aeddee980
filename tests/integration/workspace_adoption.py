"""The tests of `plano app adopt` on a workspace repo (tests/integration/corpus.py),
shared by one module per layout (test_app_adopt_turbo_e2e, _pnpm_e2e and _berry_e2e) so
that the layouts run in parallel.

For each: adopt builds the services from the workspace root; the production images
serve behind nginx (`/` renders, `/api` reaches NestJS through the shared workspace
package); `plano deploy` of v2 loses no request under load; `dev up` runs both
services from the mounted workspace and reloads an edit."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.integration import corpus
from tests.integration.loadgen import Load, Probe
from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import REGISTRY, build_image, docker, plano, remove_project
from tests.integration.test_app_adopt_e2e import adopted_shop, snapshot

SERVICES = {"backend": "apps/api", "frontend": "apps/web"}
PROBES = (
    Probe("GET", "/api", contains=b"hello from shop v",
          version=lambda body: "backend " + body.decode().rsplit(" ", 1)[-1]),
    Probe("GET", "/", contains=b"<html",
          version=lambda body: "frontend " + m.group(1).decode() if (m := re.search(rb"web (v\d)", body)) else None),
)


def adopted_workspace(layout: str, folder: Path):
    with adopted_shop(folder, lambda repo: corpus.make(layout, repo)) as adopted:
        yield adopted


def set_tags(ws, tag: str) -> None:
    env = ws.infra / ".env.prod"
    text = re.sub(r"^(SHOP_(?:BACKEND|FRONTEND)_TAG)=.*$", rf"\1={tag}", env.read_text(), flags=re.M)
    env.write_text(text)


def publish(ws, repo: Path, tag: str) -> None:
    for role, inner in SERVICES.items():
        image = f"{REGISTRY}/{ws.name}/shop-{role}:{tag}"
        build_image(image, repo, timeout=1200, dockerfile=f"{inner}/Dockerfile")
        docker("push", image)


def check_adoption(adopted, layout: str) -> None:
    ws, repo, before, out = adopted
    assert "found the backend in apps/api/" in out and "found the frontend in apps/web/" in out, out
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # nothing generated was changed
    readme = [] if layout == "nx" else ["README.md"]  # create-nx-workspace writes one (adopt keeps it)
    assert sorted(set(after) - set(before)) == [".dockerignore", ".github/workflows/ci.yml", *readme,
                                                "apps/api/Dockerfile", "apps/web/Dockerfile"]
    manifest = (ws.infra / "plano.yml").read_text()
    assert "    backend:\n      source: ../shop/apps/api\n      workspace: ../shop\n" in manifest, manifest
    marker = {"turbo": f"turbo@{corpus.TURBO} && turbo prune api --docker", "pnpm": f"pnpm@{corpus.PNPM} && pnpm fetch",
              "berry": f"@yarnpkg/cli-dist@{corpus.YARN} && yarn install --immutable",
              "nx": "RUN npx --no-install nx build api", "npm": "npm ci --omit=dev --workspace=api",
              "classic": "yarn workspace api run build"}[layout]
    assert marker in (repo / "apps/api/Dockerfile").read_text()
    # plano check lints the adopted Dockerfiles (hadolint) with the rest.
    check = plano("check", "--json", cwd=ws.infra, check=False)
    statuses = {outcome["name"]: outcome for outcome in json.loads(check.stdout)}
    assert statuses["hadolint"]["status"] == "passed", statuses["hadolint"]


def serve_and_deploy(adopted) -> None:
    ws, repo, _, _ = adopted
    publish(ws, repo, "1.0.0")
    corpus.bump(repo, "v1", "v2")
    publish(ws, repo, "2.0.0")
    set_tags(ws, "1.0.0")
    plano("prod", "up", cwd=ws.infra, timeout=900)  # --wait: both healthchecks pass
    port = ws.ports["prod_https"]
    status, _, body = https_request(port, "shop.example.com", "/api")
    assert status == 200 and body == b"hello from shop v1", body[:300]
    status, _, body = https_request(port, "shop.example.com", "/")
    assert status == 200 and b"web v1" in body, body[:300]
    traffic = Load(port, "shop.example.com", workers=4, probes=PROBES).start()
    try:
        time.sleep(2)
        out = plano("deploy", "shop", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra)
        plano("deploy", "shop", "--service", "frontend", "--tag", "2.0.0", cwd=ws.infra)
        after = len(traffic.results)  # answered once the deploys returned: by the new containers only
        wait_for(lambda: len(traffic.results) >= max(1000, after + 100), "the load made fewer than 1,000 requests", 240, 0.5)
    finally:
        traffic.stop()
    print(f"deploy of a workspace app under load: {traffic.summary()}")
    assert "shop-backend: 1.0.0 -> 2.0.0, done" in out.stdout
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert {r.version for r in traffic.results[after:] if r.version} == {"backend v2", "frontend v2"}


def dev_hot_reload(adopted) -> None:
    ws, repo, _, _ = adopted
    try:
        plano("dev", "up", cwd=ws.infra, timeout=1500)
        port = ws.ports["dev_https"]

        def answers(path: str, text: bytes) -> bool:
            try:
                status, _, body = https_request(port, "shop.localhost", path)
            except OSError:
                return False
            return status == 200 and text in body

        version = "v2" if b"v2" in corpus.sources(repo)[0].read_bytes() else "v1"
        wait_for(lambda: answers("/api", f"hello from shop {version}".encode()), "the dev backend never answered", 180, 1)
        wait_for(lambda: answers("/", f"web {version}".encode()), "the dev frontend never answered", 180, 1)
        corpus.bump(repo, version, "dev")
        edited = time.monotonic()
        wait_for(lambda: answers("/api", b"hello from shop dev"), "the backend edit never reached the container", 120, 0.5)
        backend = time.monotonic() - edited
        wait_for(lambda: answers("/", b"web dev"), "the page edit never reached the container", 120, 0.5)
        print(f"hot reload in the workspace, seconds from the edit: backend {backend:.1f}, frontend {time.monotonic() - edited:.1f}")
    finally:
        plano("dev", "down", "--volumes", "--yes", cwd=ws.infra, check=False)
        remove_project(f"{ws.name}-dev")
