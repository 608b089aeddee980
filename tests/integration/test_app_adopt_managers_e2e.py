"""`plano app adopt` of pnpm and yarn (1) repos made by the official generators
(`@nestjs/cli new --package-manager M`, `create-next-app --use-M`): Dockerfiles that
install, prune, build and run with that manager, plano.yml's dev and test commands in it,
and both production images serving behind nginx."""

import os
from pathlib import Path

import pytest

from plano.ops import scaffold
from tests.integration.corpus import CREATE_NEXT_APP, NEST_CLI, run_generators
from tests.integration.test_app_adopt_e2e import (
    adopted_shop,
    serve_adopted_shop,
    snapshot,
)

pytestmark = pytest.mark.expected_seconds(420)  # on a 2-core machine

# The version each generator's `pnpm` or `yarn` runs (a shim through npx): plano's pins.
VERSIONS = {"pnpm": scaffold.PNPM_VERSION, "yarn": "1.22.22"}


def generators(manager: str) -> dict[str, list[str]]:
    return {
        "backend": ["npx", "-y", NEST_CLI, "new", "backend", "--package-manager", manager, "--skip-git"],
        "frontend": ["npx", "-y", CREATE_NEXT_APP, "frontend", "--ts", "--app", "--eslint", "--no-tailwind", "--no-src-dir",
                     "--import-alias", "@/*", f"--use-{manager}", "--disable-git", "--empty", "--yes"],
    }


def generate(repo: Path, shims: Path, manager: str) -> None:
    shims.mkdir()
    (shims / manager).write_text(f'#!/bin/sh\nexec npx -y {manager}@{VERSIONS[manager]} "$@"\n')
    (shims / manager).chmod(0o755)
    # YARN_IGNORE_ENGINES: this machine's Node (20) is older than what one generated
    # dependency declares (>=22); the images build and run on Node 22 or later.
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "CI": "1", "NEXT_TELEMETRY_DISABLED": "1",
           "npm_config_yes": "true", "YARN_IGNORE_ENGINES": "true"}
    argvs = generators(manager)
    for role, out in run_generators(repo, argvs, env).items():
        lock = {"pnpm": scaffold.PNPM.lock, "yarn": scaffold.YARN.lock}[manager]
        assert (repo / role / lock).is_file(), f"{' '.join(argvs[role])} made no {lock}:\n{out[-3000:]}"


@pytest.fixture(scope="module", params=["pnpm", "yarn"])
def adopted(request, tmp_path_factory):
    manager = request.param

    def make(repo: Path) -> None:
        generate(repo, repo.parent / "shims", manager)

    with adopted_shop(tmp_path_factory.mktemp(f"adopt-{manager}"), make) as (ws, repo, before, out):
        yield ws, repo, before, out, manager


def test_adopt_takes_the_manager_as_it_is(adopted):
    ws, repo, before, out, manager = adopted
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # no generated file changed
    assert not (repo / "backend/package-lock.json").exists()
    for role in ("backend", "frontend"):
        dockerfile = (repo / role / "Dockerfile").read_text()
        assert f"{manager} install --frozen-lockfile" in dockerfile and "RUN npm ci" not in dockerfile, role
    manifest = (ws.infra / "plano.yml").read_text()
    assert f"      dev_command:\n        - {manager}\n        - run\n        - start:dev\n" in manifest
    assert f"      test:\n        - {manager}\n        - test\n" in manifest
    ci = (repo / ".github/workflows/ci.yml").read_text()
    assert f"{manager} test && {manager} run test:e2e" in ci


def test_the_app_runs_in_prod_behind_nginx(adopted):
    ws, repo, _, _, _ = adopted
    serve_adopted_shop(ws, repo)
