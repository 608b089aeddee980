"""`plano app adopt` of a pnpm repo made by the official generators (`@nestjs/cli new
--package-manager pnpm`, `create-next-app --use-pnpm`): Dockerfiles that install, prune,
build and run with pnpm, plano.yml's dev and test commands in pnpm, and both production
images serving behind nginx."""

import os
import subprocess
from pathlib import Path

import pytest

from plano.ops import scaffold
from tests.integration.test_app_adopt_e2e import (
    CREATE_NEXT_APP,
    NEST_CLI,
    adopted_shop,
    serve_adopted_shop,
    snapshot,
)

pytestmark = pytest.mark.expected_seconds(300)  # on a 2-core machine

GENERATORS = {
    "backend": ["npx", "-y", NEST_CLI, "new", "backend", "--package-manager", "pnpm", "--skip-git"],
    "frontend": ["npx", "-y", CREATE_NEXT_APP, "frontend", "--ts", "--app", "--eslint", "--no-tailwind", "--no-src-dir",
                 "--import-alias", "@/*", "--use-pnpm", "--disable-git", "--empty", "--yes"],
}


def generate(repo: Path, shims: Path) -> None:
    """The generators call `pnpm`: a shim runs plano's pinned pnpm through npx."""
    shims.mkdir()
    (shims / "pnpm").write_text(f'#!/bin/sh\nexec npx -y pnpm@{scaffold.PNPM_VERSION} "$@"\n')
    (shims / "pnpm").chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "CI": "1", "NEXT_TELEMETRY_DISABLED": "1", "npm_config_yes": "true"}
    procs = {role: subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for role, argv in GENERATORS.items()}
    for role, proc in procs.items():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{' '.join(GENERATORS[role])}:\n{out[-3000:]}"


@pytest.fixture(scope="module")
def adopted(tmp_path_factory):
    with adopted_shop(tmp_path_factory.mktemp("adopt-pnpm"), lambda repo: generate(repo, repo.parent / "shims")) as adopted:
        yield adopted


def test_adopt_takes_pnpm_as_it_is(adopted):
    ws, repo, before, out = adopted
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # no generated file changed
    assert (repo / "backend/pnpm-lock.yaml").is_file() and not (repo / "backend/package-lock.json").exists()
    for role in ("backend", "frontend"):
        dockerfile = (repo / role / "Dockerfile").read_text()
        assert "pnpm install --frozen-lockfile" in dockerfile and "RUN npm ci" not in dockerfile, role
    manifest = (ws.infra / "plano.yml").read_text()
    assert "      dev_command:\n        - pnpm\n        - run\n        - start:dev\n" in manifest
    assert "      test:\n        - pnpm\n        - test\n" in manifest
    ci = (repo / ".github/workflows/ci.yml").read_text()
    assert "pnpm test && pnpm run test:e2e" in ci and "lock: pnpm-lock.yaml" in ci


def test_the_pnpm_app_runs_in_prod_behind_nginx(adopted):
    ws, repo, _, _ = adopted
    serve_adopted_shop(ws, repo)
