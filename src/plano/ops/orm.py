"""The ORM of an adopted backend and how its migrations run: the `release` command
`plano deploy` runs in a one-off container of the new image before traffic switches.

TypeORM: the DataSource file the CLI loads (`typeorm migration:run -d dist/...js`, the
compiled file, so the production image needs no TypeScript). Prisma: `prisma migrate
deploy` over prisma/migrations, and `prisma generate` before the build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from plano.ops import workspaces

# The production images keep their dependencies here (each layout's WORKDIR may be the
# service's folder inside a workspace, so the path is absolute).
BIN = "/usr/src/app/node_modules/.bin"
DATA_SOURCE_RE = re.compile(r"\bnew\s+DataSource\s*\(")
MIGRATIONS_RE = re.compile(r"\bmigrations\s*:\s*\[")
SYNCHRONIZE_RE = re.compile(r"\bsynchronize\s*:\s*true\b")
MIGRATIONS_RUN_RE = re.compile(r"\bmigrationsRun\s*:\s*true\b")


@dataclass(frozen=True)
class Orm:
    """What an ORM needs from plano: the release command, a build step, facts and advice."""

    name: str  # typeorm | prisma
    release: list[str] | None = None
    generate: bool = False  # `prisma generate` must run before the build
    runtime_files: tuple[str, ...] = ()  # what the release reads beside dist/ (prisma/, prisma.config.ts)
    facts: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("src/**/*.ts") if "node_modules" not in p.parts and not p.name.endswith(".spec.ts"))


def compiled(folder: Path, path: Path) -> str:
    """src/db/data-source.ts -> dist/db/data-source.js (nest build's layout)."""
    return "dist/" + path.relative_to(folder / "src").with_suffix(".js").as_posix()


def typeorm(folder: Path, where: str) -> Orm:
    files = {path: path.read_text(errors="replace") for path in sources(folder)}
    advice = [f"{where}{path.relative_to(folder).as_posix()}: synchronize: true changes the schema at every start; "
              "turn it off in production and use migrations (plano runs them as the release)"
              for path, text in files.items() if SYNCHRONIZE_RE.search(text)]
    found = [path for path, text in files.items() if DATA_SOURCE_RE.search(text) and MIGRATIONS_RE.search(text)]
    if not found:
        return Orm("typeorm", advice=[*advice, f"{where}: TypeORM without a DataSource file listing migrations; add "
                                      "src/data-source.ts exporting one (migrations: ['dist/migrations/*.js']), then set "
                                      f"release in plano.yml to [{BIN}/typeorm, migration:run, -d, dist/data-source.js]"])
    path = found[0]
    rel = f"{where}{path.relative_to(folder).as_posix()}"
    if MIGRATIONS_RUN_RE.search(files[path]):
        advice.append(f"{rel}: migrationsRun: true runs migrations at every start too; plano runs them once per deploy, "
                      "before the switch (release), so turn it off")
    release = [f"{BIN}/typeorm", "migration:run", "-d", compiled(folder, path)]
    return Orm("typeorm", release, facts=[f"TypeORM migrations: release runs `{' '.join(release[1:])}` before each deploy's "
                                          f"switch ({rel})"], advice=advice)


# Where Prisma looks for its config, first found wins (@prisma/config 7: prisma7.config.*
# is what `prisma init` writes; prisma.config.* the earlier name).
PRISMA_CONFIGS = ("prisma7.config", ".config/prisma7", "prisma.config", ".config/prisma")
CONFIG_SUFFIXES = (".js", ".ts", ".mjs", ".cjs", ".mts", ".cts")


def prisma_config(folder: Path) -> Path | None:
    return next((folder / f"{base}{suffix}" for base in PRISMA_CONFIGS for suffix in CONFIG_SUFFIXES
                 if (folder / f"{base}{suffix}").is_file()), None)


def prisma(folder: Path, where: str, runtime: dict) -> Orm:
    """`runtime`: package.json's dependencies (what the production image keeps)."""
    schema = next((p for p in (folder / "prisma/schema.prisma", folder / "schema.prisma") if p.is_file()), None)
    if schema is None:
        return Orm("prisma", advice=[f"{where}: Prisma without prisma/schema.prisma; plano runs `prisma generate` and "
                                     "`prisma migrate deploy` from there"])
    migrations = sorted(schema.parent.glob("migrations/*/migration.sql"))
    advice = []
    if "prisma" not in runtime:
        advice.append(f"{where}package.json: prisma is not a production dependency; the release runs `prisma migrate "
                      "deploy` in the production image, so move it to dependencies")
    if not migrations:
        return Orm("prisma", generate=True, advice=[*advice, f"{where}{schema.parent.relative_to(folder).as_posix()}: no "
                                                    "migrations (prisma migrate dev creates them); without them plano "
                                                    "sets no release and the database schema is yours to apply"])
    release = [f"{BIN}/prisma", "migrate", "deploy"]
    rel = f"{where}{schema.parent.relative_to(folder).as_posix()}/migrations"
    config = prisma_config(folder)
    files = (schema.parent.relative_to(folder).as_posix() if schema.parent != folder else schema.name,
             *([config.relative_to(folder).as_posix()] if config else []))
    if config and "dotenv" in config.read_text(errors="replace") and "dotenv" not in runtime:
        advice.append(f"{where}{config.relative_to(folder).as_posix()}: imports dotenv, which is not a production dependency; the release loads "
                      "this file in the production image (where plano sets DATABASE_URL), so move dotenv to dependencies "
                      "or drop the import")
    return Orm("prisma", release, generate=True, advice=advice, runtime_files=files,
               facts=[f"Prisma migrations ({len(migrations)}): release runs `prisma migrate deploy` before each "
                      f"deploy's switch ({rel})"])


def detect(folder: Path, where: str, package: dict) -> Orm | None:
    """The backend's ORM when it is TypeORM or Prisma (else None). `where` prefixes paths ("api/")."""
    deps = workspaces.dependencies(package)
    if "prisma" in deps or "@prisma/client" in deps:
        return prisma(folder, where, workspaces.dependencies(package, ("dependencies",)))
    if "typeorm" in deps:
        return typeorm(folder, where)
    return None
