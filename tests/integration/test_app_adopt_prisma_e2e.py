"""`plano app adopt` of a NestJS backend with Prisma, as a team adds it to the
generated backend (`@nestjs/cli new`, then `prisma init` and Prisma's NestJS recipe:
a PrismaService on the pg driver adapter), with a migration made by Prisma's own CLI
(`prisma migrate diff --from-empty --script`). adopt makes `prisma migrate deploy` the
release; `plano deploy` runs it in the production image, before the switch, against
the app's own database, and the new version reads and writes the table it created.

Prisma's schema engine is a native binary downloaded from binaries.prisma.sh, which
these machines cannot reach. tests/integration/prisma_engine/ holds the stand-in
(test infrastructure): Prisma's own engine compiled to wasm, behind the binary's
JSON-RPC, in a Node image derived from the stand-in one. plano's Dockerfile is built
unchanged on that image."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import testrun
from tests.integration.corpus import NEST_CLI, edit, run
from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import REGISTRY, STAND_INS, build_image, docker, plano, sql
from tests.integration.test_app_adopt_e2e import adopted_shop

pytestmark = pytest.mark.expected_seconds(330)  # on a 2-core machine

PRISMA = "7.10.1"
DOTENV = "17.2.3"
ENGINE = Path(__file__).parent / "prisma_engine"
NODE_PRISMA = "plano-test/node-prisma:sid"

SCHEMA = """generator client {
  provider            = "prisma-client"
  output              = "../src/generated/prisma"
  moduleFormat        = "esm"
  importFileExtension = "js"
}

datasource db {
  provider = "postgresql"
}

model Visit {
  id        Int      @id @default(autoincrement())
  createdAt DateTime @default(now())
}
"""
SERVICE = """import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

@Injectable()
export class PrismaService extends PrismaClient implements OnModuleDestroy {
  constructor() {
    super({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });
  }

  async onModuleDestroy() {
    await this.$disconnect();
  }
}
"""
CONTROLLER = """import { Controller, Get } from '@nestjs/common';
import { PrismaService } from './prisma.service.js';

@Controller('visits')
export class VisitsController {
  constructor(private readonly prisma: PrismaService) {}

  @Get()
  async count(): Promise<string> {
    await this.prisma.visit.create({ data: {} });
    return `visits: ${await this.prisma.visit.count()}`;
  }
}
"""


@contextmanager
def developer_database() -> Iterator[str]:
    """A throwaway Postgres on 127.0.0.1 (the developer's own, where migrations are made); its URL."""
    name = f"prisma-dev-{testrun.current()}"
    docker("run", "-d", "--rm", "--name", name, "--label", f"{testrun.LABEL}={testrun.current()}", "-e", "POSTGRES_USER=dev",
           "-e", "POSTGRES_PASSWORD=dev", "-e", "POSTGRES_DB=dev", "-p", "127.0.0.1::5432", STAND_INS["postgres"])
    try:
        wait_for(lambda: docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "dev", check=False).returncode == 0,
                 "the developer's Postgres never started", 60, 0.5)
        port = docker("port", name, "5432/tcp").stdout.split(":")[-1].strip()
        yield f"postgresql://dev:dev@127.0.0.1:{port}/dev"
    finally:
        docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def engine_stand_in(tmp_path_factory, engine) -> Path:
    """The stand-in engine: built into the derived Node image, and installed here for
    the CLI on this machine (`prisma init`, `prisma migrate diff`); its path."""
    docker("build", "-q", "--label", f"{testrun.LABEL}={testrun.current()}", "-t", NODE_PRISMA,
           "--build-arg", f"NODE_IMAGE={STAND_INS['node']}", str(ENGINE), timeout=600)
    here = tmp_path_factory.mktemp("prisma-engine")
    for name in ("package.json", "package-lock.json", "schema-engine.mjs"):
        shutil.copy(ENGINE / name, here / name)
    run(["npm", "ci", "--no-audit", "--no-fund"], here, dict(os.environ))
    (here / "schema-engine.mjs").chmod(0o755)
    return here / "schema-engine.mjs"


def prisma_backend(repo: Path, engine_path: Path) -> None:
    """The generated backend, then Prisma as its docs add it, and one migration."""
    env = {**os.environ, "CI": "1", "npm_config_yes": "true", "PRISMA_SCHEMA_ENGINE_BINARY": str(engine_path),
           "CHECKPOINT_DISABLE": "1"}
    repo.rmdir()  # nest new makes the folder
    run(["npx", "-y", NEST_CLI, "new", repo.name, "--package-manager", "npm", "--skip-git"], repo.parent, env)
    # The release runs the prisma CLI in the production image: prisma (and dotenv, which
    # the config prisma init writes imports) are production dependencies, as adopt says.
    run(["npm", "install", "--save-exact", "--no-audit", "--no-fund", f"prisma@{PRISMA}", f"@prisma/client@{PRISMA}",
         f"@prisma/adapter-pg@{PRISMA}", f"dotenv@{DOTENV}"], repo, env)
    run(["npx", "--no-install", "prisma", "init", "--datasource-provider", "postgresql"], repo, env)
    (repo / "prisma/schema.prisma").write_text(SCHEMA)
    (repo / "src/prisma.service.ts").write_text(SERVICE)
    (repo / "src/visits.controller.ts").write_text(CONTROLLER)
    edit(repo / "src/app.module.ts", "import { AppService } from './app.service.js';",
         "import { AppService } from './app.service.js';\nimport { PrismaService } from './prisma.service.js';\n"
         "import { VisitsController } from './visits.controller.js';")
    edit(repo / "src/app.module.ts", "controllers: [AppController],", "controllers: [AppController, VisitsController],")
    edit(repo / "src/app.module.ts", "providers: [AppService],", "providers: [AppService, PrismaService],")
    edit(repo / "src/main.ts", "  const app = await NestFactory.create(AppModule);\n",
         "  const app = await NestFactory.create(AppModule);\n  app.setGlobalPrefix('api');\n")
    migration = repo / "prisma/migrations/20261205000000_init"
    migration.mkdir(parents=True)
    with developer_database() as url:  # the CLI connects to the config's database first
        run(["npx", "--no-install", "prisma", "migrate", "diff", "--from-empty", "--to-schema", "prisma/schema.prisma",
             "--script", "--output", str(migration / "migration.sql")], repo, {**env, "DATABASE_URL": url})
    (repo / "prisma/migrations/migration_lock.toml").write_text('provider = "postgresql"\n')
    assert 'CREATE TABLE "Visit"' in (migration / "migration.sql").read_text()


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, engine_stand_in):
    with adopted_shop(tmp_path_factory.mktemp("adopt-prisma"), lambda repo: prisma_backend(repo, engine_stand_in)) as adopted:
        yield adopted


def test_prisma_migrations_run_as_the_release_of_a_deploy(adopted):
    ws, repo, _, out = adopted
    assert "found the backend in ./" in out and "database: Postgres, for @prisma/adapter-pg, prisma, @prisma/client" in out, out
    assert "Prisma migrations (1): release runs `prisma migrate deploy` before each deploy's switch (./prisma/migrations)" in out
    manifest = (ws.infra / "plano.yml").read_text()
    assert "      release:\n        - /usr/src/app/node_modules/.bin/prisma\n        - migrate\n        - deploy\n" in manifest
    dockerfile = (repo / "Dockerfile").read_text()
    assert "COPY prisma ./prisma\nCOPY prisma7.config.ts ./prisma7.config.ts\n" in dockerfile
    for tag in ("1.0.0", "2.0.0"):
        image = f"{REGISTRY}/{ws.name}/shop-backend:{tag}"
        build_image(image, repo, timeout=1200, node_image=NODE_PRISMA)
        docker("push", image)
    prod_env = ws.infra / ".env.prod"
    prod_env.write_text(prod_env.read_text().replace("SHOP_BACKEND_TAG=latest", "SHOP_BACKEND_TAG=1.0.0"))
    plano("prod", "up", cwd=ws.infra, timeout=900)

    assert sql(ws, "shop", "SELECT to_regclass('public.\"Visit\"')") == ""  # not yet: migrations run at deploys
    done = plano("deploy", "shop", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra)
    log = done.stdout + done.stderr
    assert "release command /usr/src/app/node_modules/.bin/prisma migrate deploy" in log, log
    assert sql(ws, "shop", "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL") == "20261205000000_init"
    # The table is the app's: its owner is the app's role, not postgres.
    assert sql(ws, "shop", "SELECT tableowner FROM pg_tables WHERE tablename = 'Visit'") == "shop"
    # The new version writes and reads it, through nginx.
    for expected in (b"visits: 1", b"visits: 2"):
        status, _, body = https_request(ws.ports["prod_https"], "shop.example.com", "/api/visits")
        assert status == 200 and body == expected, body[:300]
    # The next deploy's release finds nothing to apply: the migration stays applied once.
    plano("deploy", "shop", "--service", "backend", "--tag", "1.0.0", cwd=ws.infra)
    assert sql(ws, "shop", "SELECT count(*) FROM _prisma_migrations") == "1"
