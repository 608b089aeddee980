"""`plano app adopt` on a repo made by the official generators (`@nestjs/cli new` and
`create-next-app`, from the npm registry): it finds both services, adds Dockerfiles,
.dockerignore and CI without touching a generated file, and the app runs in the
prod stack behind the rendered nginx."""

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.corpus import CREATE_NEXT_APP, NEST_CLI, run_generators
from tests.integration.net import https_request
from tests.integration.stackfixtures import (
    REGISTRY,
    build_image,
    docker,
    make_workspace,
    plano,
    remove_images,
    remove_project,
    sql,
)
from tests.unit.test_scaffold import SCHEMAS, check_jsonschema

pytestmark = pytest.mark.expected_seconds(330)  # on a 2-core machine

GENERATORS = {
    "backend": ["npx", "-y", NEST_CLI, "new", "backend", "--package-manager", "npm", "--skip-git"],
    # --empty: the default page loads Google fonts, which `next build` cannot fetch offline.
    "frontend": ["npx", "-y", CREATE_NEXT_APP, "frontend", "--ts", "--app", "--eslint", "--no-tailwind", "--no-src-dir",
                 "--import-alias", "@/*", "--use-npm", "--disable-git", "--empty", "--yes"],
}


def snapshot(repo: Path) -> dict[str, str]:
    return {
        p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in repo.rglob("*") if p.is_file() and "node_modules" not in p.parts
    }


def generate(repo: Path) -> None:
    env = {**os.environ, "CI": "1", "NEXT_TELEMETRY_DISABLED": "1", "npm_config_yes": "true"}
    run_generators(repo, GENERATORS, env)
    # The generated lock has vite 8.4.0, whose optional napi-windows-process-start-time
    # is not in the registry here: the containers' npm 12 then refuses `npm ci`. The
    # owner's fix, as in plano's own template: pin vite 8.3.8 (as the direct dependency
    # when the current schematics make it one: npm refuses an override of those).
    direct = "vite" in json.loads((repo / "backend/package.json").read_text()).get("devDependencies", {})
    fixes = [["npm", "install", "--save-dev", "--save-exact", "--no-audit", "--no-fund", "vite@8.3.8"]] if direct else [
        ["npm", "pkg", "set", "overrides.vite=8.3.8"], ["npm", "install", "--no-audit", "--no-fund"]]
    for argv in fixes:
        fix = subprocess.run(argv, cwd=repo / "backend", env=env, capture_output=True, text=True, timeout=900)
        assert fix.returncode == 0, fix.stderr[-3000:]


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, engine):
    def made(repo: Path) -> None:
        generate(repo)
        # Its git says: branch master, a GitLab remote. plano's pipeline must follow both.
        for argv in (["git", "init", "-q", "-b", "master"], ["git", "remote", "add", "origin", "https://gitlab.example.com/acme/shop.git"]):
            subprocess.run(argv, cwd=repo, check=True, capture_output=True, timeout=60)

    with adopted_shop(tmp_path_factory.mktemp("adopt"), made) as adopted:
        yield adopted


@contextmanager
def adopted_shop(folder: Path, make_repo) -> Iterator[tuple]:
    """A workspace with the repo `shop` made by `make_repo` and adopted: (ws, repo, the
    repo's files before adoption, adopt's output); the prod stack is removed after, and
    the workspace's folder too (a generated repo's node_modules weigh 0.5-1 GB: a whole
    run's would otherwise stay on the disk until the run ends)."""
    ws = make_workspace(folder, apps=())
    repo = ws.root / "shop"
    repo.mkdir()
    make_repo(repo)
    before = snapshot(repo)
    result = plano("app", "adopt", "../shop", "--domain", "shop.example.com", cwd=ws.infra)
    try:
        yield ws, repo, before, result.stdout
    finally:
        plano("prod", "down", cwd=ws.infra, check=False)
        remove_project(ws.name)
        remove_images(ws.name)
        shutil.rmtree(folder, ignore_errors=True)


def test_adopt_finds_both_services_and_overwrites_nothing(adopted):
    ws, repo, before, out = adopted
    assert "found the backend in backend/" in out and "found the frontend in frontend/" in out
    # The generated backend uses neither Postgres nor Redis: it gets neither.
    assert "database: none (backend/package.json)" in out and "Redis: none (backend/package.json)" in out
    after = snapshot(repo)
    assert {path: after[path] for path in before} == before
    assert sorted(set(after) - set(before)) == [  # a GitLab remote: GitLab's pipeline only
        ".gitlab-ci.yml", "README.md",
        "backend/.dockerignore", "backend/Dockerfile", "frontend/.dockerignore", "frontend/Dockerfile",
    ]
    # What the generated code lacks is said, not silently changed.
    assert "add app.setGlobalPrefix('api')" in out and "add output: 'standalone'" in out
    manifest = (ws.infra / "plano.yml").read_text()
    assert "  shop:\n    domains:\n      - shop.example.com\n    backend:\n      health: /\n" in manifest
    assert "    database: false\n    redis: false\n" in manifest
    # A second adoption is refused by the manifest; nothing in the repo changes.
    again = plano("app", "adopt", "../shop", "--domain", "shop.example.com", cwd=ws.infra, check=False)
    assert again.returncode == 3 and "apps/shop: already registered" in again.stderr
    assert snapshot(repo) == after


def test_the_added_ci_file_validates(adopted):
    _, repo, _, _ = adopted
    path = ".gitlab-ci.yml"
    result = check_jsonschema(SCHEMAS[path], repo / path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (repo / path).read_text()
    assert "npm test && npm run test:e2e" in text and "npm run build" in text


def serve_adopted_shop(ws, repo: Path) -> None:
    """Build and push both images of the adopted `shop` at 1.0.0, run them with `prod up`,
    and check what the generated code serves: `/` renders, `/api/...` reaches NestJS
    (whose generated routes have no /api prefix yet: its 404)."""
    for role in ("backend", "frontend"):
        image = f"{REGISTRY}/{ws.name}/shop-{role}:1.0.0"
        build_image(image, repo / role, timeout=1200)
        docker("push", image)
    prod_env = ws.infra / ".env.prod"
    prod_env.write_text(prod_env.read_text().replace("SHOP_BACKEND_TAG=latest", "SHOP_BACKEND_TAG=1.0.0")
                        .replace("SHOP_FRONTEND_TAG=latest", "SHOP_FRONTEND_TAG=1.0.0"))
    plano("prod", "up", cwd=ws.infra, timeout=900)  # --wait: both healthchecks pass
    port = ws.ports["prod_https"]
    status, headers, body = https_request(port, "shop.example.com", "/")
    assert status == 200 and b"<html" in body.lower(), body[:300]
    assert "x-powered-by" not in headers
    status, _, body = https_request(port, "shop.example.com", "/api/hello")
    assert status == 404 and b'"message":"Cannot GET /api/hello"' in body, body[:300]


def test_the_adopted_app_runs_in_prod_behind_nginx(adopted):
    ws, repo, _, _ = adopted
    serve_adopted_shop(ws, repo)


def edited(text: str, old: str, new: str) -> str:
    assert old in text, f"the generated code changed: no {old!r}"
    return text.replace(old, new, 1)


HEALTH_CONTROLLER = """import { Controller, Get } from '@nestjs/common';

@Controller('health')
export class HealthController {
  @Get()
  check() {
    return { status: 'ok' };
  }
}
"""


def test_a_backend_on_a_fixed_port_with_a_versioned_health_route(adopted):
    """The generated backend, changed as teams do: a fixed port (3001), an API prefix, URI
    versioning and a health controller. adopt reads all of it; the healthcheck (2xx only)
    passes on that route and nginx reaches it."""
    import shutil

    ws, repo, _, _ = adopted
    api = ws.root / "api3001"
    shutil.copytree(repo / "backend", api, ignore=shutil.ignore_patterns("node_modules", "dist"))
    main = edited((api / "src/main.ts").read_text(), "await app.listen(process.env.PORT ?? 3000);",
                  "app.setGlobalPrefix('api');\n  app.enableVersioning({ type: VersioningType.URI, defaultVersion: '1' });\n"
                  "  await app.listen(PORT);")
    (api / "src/main.ts").write_text("import { VersioningType } from '@nestjs/common';\nconst PORT = 3001;\n" + main)
    (api / "src/health.controller.ts").write_text(HEALTH_CONTROLLER)
    module = edited((api / "src/app.module.ts").read_text(), "controllers: [AppController]", "controllers: [AppController, HealthController]")
    (api / "src/app.module.ts").write_text("import { HealthController } from './health.controller.js';\n" + module)
    out = plano("app", "adopt", "../api3001", "--domain", "api.example.com", cwd=ws.infra).stdout
    assert "backend listens on 3001 (./src/main.ts: listen(PORT))" in out
    assert "backend health route: /api/v1/health (api3001/src/health.controller.ts)" in out
    manifest = (ws.infra / "plano.yml").read_text()
    assert "  api3001:\n    domains:\n      - api.example.com\n    backend:\n      source: ../api3001\n      port: 3001\n" \
           "      health: /api/v1/health\n" in manifest
    image = f"{REGISTRY}/{ws.name}/api3001-backend:1.0.0"
    build_image(image, api, timeout=1200)
    docker("push", image)
    prod_env = ws.infra / ".env.prod"
    prod_env.write_text(prod_env.read_text().replace("API3001_BACKEND_TAG=latest", "API3001_BACKEND_TAG=1.0.0"))
    plano("prod", "up", cwd=ws.infra, timeout=900)  # --wait: its healthcheck passes on /api/v1/health at 3001
    status, _, body = https_request(ws.ports["prod_https"], "api.example.com", "/api/v1/health")
    assert status == 200 and b'"status":"ok"' in body, body[:300]


DATA_SOURCE = """import { DataSource } from 'typeorm';

export default new DataSource({
  type: 'postgres',
  url: process.env.DATABASE_URL,
  migrations: ['dist/migrations/*.js'],
});
"""


def test_typeorm_migrations_run_as_the_release_of_a_deploy(adopted):
    """The generated backend with TypeORM as teams add it: a DataSource file and a
    migration made by TypeORM's own CLI (`typeorm migration:create`). adopt makes the
    migration the release command; `plano deploy` runs it, before the switch, against
    the app's own database, from the production image."""
    import shutil

    ws, repo, _, _ = adopted
    api = ws.root / "notes"
    shutil.copytree(repo / "backend", api, ignore=shutil.ignore_patterns("node_modules", "dist"))
    env = {**os.environ, "npm_config_yes": "true"}
    for argv in (["npm", "install", "--save-exact", "--no-audit", "--no-fund", "typeorm@1.1.2", "pg@8"],
                 ["npx", "--no-install", "typeorm", "migration:create", "src/migrations/CreateNotes"]):
        done = subprocess.run(argv, cwd=api, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    (api / "src/data-source.ts").write_text(DATA_SOURCE)
    [migration] = (api / "src/migrations").glob("*-CreateNotes.ts")
    text = migration.read_text()
    up = text.index("public async up(queryRunner: QueryRunner): Promise<void> {") + len("public async up(queryRunner: QueryRunner): Promise<void> {")
    migration.write_text(text[:up] + "\n        await queryRunner.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');" + text[up:])
    out = plano("app", "adopt", "../notes", "--domain", "notes.example.com", cwd=ws.infra).stdout
    assert "TypeORM migrations: release runs `migration:run -d dist/data-source.js` before each deploy's switch " \
           "(./src/data-source.ts)" in out, out
    manifest = (ws.infra / "plano.yml").read_text()
    assert "      release:\n        - /usr/src/app/node_modules/.bin/typeorm\n        - migration:run\n        - -d\n" \
           "        - dist/data-source.js\n" in manifest
    notes = manifest.split("  notes:\n", 1)[1]
    assert notes.startswith("    domains:\n      - notes.example.com\n") and "database: false" not in notes  # typeorm: Postgres
    assert notes.endswith("    redis: false\n")
    for tag in ("1.0.0", "2.0.0"):
        image = f"{REGISTRY}/{ws.name}/notes-backend:{tag}"
        build_image(image, api, timeout=1200)
        docker("push", image)
    prod_env = ws.infra / ".env.prod"
    prod_env.write_text(prod_env.read_text().replace("NOTES_BACKEND_TAG=latest", "NOTES_BACKEND_TAG=1.0.0"))
    plano("prod", "up", cwd=ws.infra, timeout=900)
    plano("db", "create", "notes", "--prod", cwd=ws.infra)  # an app added to a running stack gets its database so

    assert sql(ws, "notes", "SELECT to_regclass('public.notes')") == ""  # not yet: migrations run at deploys
    done = plano("deploy", "notes", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra)
    out = done.stdout + done.stderr
    assert "release command /usr/src/app/node_modules/.bin/typeorm migration:run -d dist/data-source.js" in out, out
    assert sql(ws, "notes", "SELECT to_regclass('public.notes')") == "notes"
    assert sql(ws, "notes", "SELECT name FROM migrations").startswith("CreateNotes")
    # The table is the app's: its owner is the app's role, not postgres.
    assert sql(ws, "notes", "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'") == "notes"
