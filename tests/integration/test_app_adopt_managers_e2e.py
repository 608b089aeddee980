"""`plano app adopt` of pnpm, yarn 1 and yarn 4 repos made by the official generators
(`@nestjs/cli new --package-manager M`, `create-next-app --use-M`): Dockerfiles that
install, prune, build and run with that manager, plano.yml's dev and test commands in it,
and both production images serving behind nginx."""

import os
from pathlib import Path

import pytest

from plano.ops import scaffold
from tests.integration.corpus import CREATE_NEXT_APP, NEST_CLI, run, run_generators
from tests.integration.test_app_adopt_e2e import (
    adopted_shop,
    serve_adopted_shop,
    snapshot,
)

pytestmark = pytest.mark.expected_seconds(600)  # on a 2-core machine

# What each generator's `pnpm` or `yarn` runs (a shim through npx): plano's pins; yarn 4
# from the npm registry (corepack's source, repo.yarnpkg.com, is unreachable here).
SHIMS = {"pnpm": f"pnpm@{scaffold.PNPM_VERSION}", "yarn": "yarn@1.22.22",
         "berry": f"-p @yarnpkg/cli-dist@{scaffold.YARN_BERRY_VERSION} yarn"}
TOOL = {"pnpm": "pnpm", "yarn": "yarn", "berry": "yarn"}
INSTALL = {"pnpm": "pnpm install --frozen-lockfile", "yarn": "yarn install --frozen-lockfile", "berry": "yarn install --immutable"}


def generators(manager: str) -> dict[str, list[str]]:
    return {
        "backend": ["npx", "-y", NEST_CLI, "new", "backend", "--package-manager", manager, "--skip-git"],
        "frontend": ["npx", "-y", CREATE_NEXT_APP, "frontend", "--ts", "--app", "--eslint", "--no-tailwind", "--no-src-dir",
                     "--import-alias", "@/*", f"--use-{manager}", "--disable-git", "--empty", "--yes"],
    }


def generate(repo: Path, shims: Path, manager: str) -> None:
    tool = TOOL[manager]
    shims.mkdir()
    (shims / tool).write_text(f'#!/bin/sh\nexec npx -y {SHIMS[manager]} "$@"\n')
    (shims / tool).chmod(0o755)
    # YARN_IGNORE_ENGINES: this machine's Node (20) is older than what one generated
    # dependency declares (>=22); the images build and run on Node 22 or later.
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "CI": "1", "NEXT_TELEMETRY_DISABLED": "1",
           "npm_config_yes": "true", "YARN_IGNORE_ENGINES": "true", "YARN_ENABLE_TELEMETRY": "0",
           "YARN_ENABLE_IMMUTABLE_INSTALLS": "false"}  # yarn 4 under CI=1 would refuse to write the first lock
    # yarn 4: the generators' install passes yarn 1's flags (nest: `yarn install --silent`),
    # so the owner installs, after the switch to node_modules (Plug'n'Play is refused).
    argvs = {role: [*argv, "--skip-install"] if manager == "berry" else argv for role, argv in generators(tool).items()}
    for role, out in run_generators(repo, argvs, env).items():
        if manager == "berry":
            (repo / role / ".yarnrc.yml").write_text("nodeLinker: node-modules\n")
            run(["yarn", "install"], repo / role, {k: v for k, v in env.items() if k != "YARN_IGNORE_ENGINES"})  # yarn 1's
        lock = {"pnpm": scaffold.PNPM.lock, "yarn": scaffold.YARN.lock}[tool]
        assert (repo / role / lock).is_file(), f"{' '.join(argvs[role])} made no {lock}:\n{out[-3000:]}"


@pytest.fixture(scope="module", params=["pnpm", "yarn", "berry"])
def adopted(request, tmp_path_factory):
    manager = request.param

    def make(repo: Path) -> None:
        generate(repo, repo.parent / "shims", manager)

    with adopted_shop(tmp_path_factory.mktemp(f"adopt-{manager}"), make) as (ws, repo, before, out):
        yield ws, repo, before, out, manager


def test_adopt_takes_the_manager_as_it_is(adopted):
    ws, repo, before, out, manager = adopted
    tool = TOOL[manager]
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before  # no generated file changed
    assert not (repo / "backend/package-lock.json").exists()
    for role in ("backend", "frontend"):
        dockerfile = (repo / role / "Dockerfile").read_text()
        assert INSTALL[manager] in dockerfile and "RUN npm ci" not in dockerfile, role
    manifest = (ws.infra / "plano.yml").read_text()
    assert f"      dev_command:\n        - {tool}\n        - run\n        - start:dev\n" in manifest
    assert f"      test:\n        - {tool}\n        - test\n" in manifest
    ci = (repo / ".github/workflows/ci.yml").read_text()
    assert f"{tool} test && {tool} run test:e2e" in ci


def test_the_app_runs_in_prod_behind_nginx(adopted):
    ws, repo, _, _, _ = adopted
    serve_adopted_shop(ws, repo)
