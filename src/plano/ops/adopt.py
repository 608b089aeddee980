"""Adopting an existing app repo: find its NestJS backend and Next.js frontend, add
what the infra needs (Dockerfiles, .dockerignore, CI, README) without overwriting
anything, and say what the user still has to change by hand.

`survey()` reads the repo (package.json files, main.ts, next.config), with the help
of `workspaces` (the root's workspace), `nx` (an Nx workspace's projects), `codefacts`
(prefix, health route, port, env names) and `orm` (TypeORM or Prisma migrations), into
one `service.Found` per service; everything after it is pure: `plan_adoption()` turns
what was found into files to add (`service` makes each one's Dockerfile), the manifest
entry and the advice to print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import manifest as mf
from plano.core.errors import UsageError
from plano.core.files import Tree
from plano.ops import nx, orm, scaffold, workspaces
from plano.ops.service import Found, ci_checks, dockerfiles, in_workspace, manager_commands, manager_of
from plano.ops.codefacts import (
    env_mapping,
    global_prefix,
    health_route,
    listen_port,
    script_port,
)
from plano.ops.workspaces import Workspace

# The package each kind of service depends on.
MARKERS = {"backend": "@nestjs/core", "frontend": "next"}
KIND_NAMES = {"backend": "NestJS backend", "frontend": "Next.js frontend"}
SKIP_DIRS = {"node_modules", "dist", "build", "coverage"}
STANDALONE_RE = re.compile(r"""output\s*:\s*['"`]standalone['"`]""")
GOOGLE_FONT = "next/font/google"
# A backend that depends on one of these uses Postgres, or Redis (else plano gives it none).
DATABASE_PACKAGES = ("pg", "@prisma/adapter-pg", "postgres", "pg-promise", "slonik", "typeorm", "@nestjs/typeorm", "prisma", "@prisma/client", "sequelize",
                     "@nestjs/sequelize", "knex", "@mikro-orm/core", "@mikro-orm/postgresql", "drizzle-orm", "kysely")
# plano provides Postgres and Redis; an app built on another database is refused, not half-hosted.
UNSUPPORTED_PACKAGES = ("mongoose", "@nestjs/mongoose", "mongodb", "@mikro-orm/mongodb", "mysql", "mysql2", "@mikro-orm/mysql",
                        "mariadb", "cassandra-driver", "@google-cloud/firestore")
LOCKFILES = ("package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", "bun.lockb")
REDIS_PACKAGES = ("ioredis", "redis", "@redis/client", "bull", "@nestjs/bull", "bullmq", "@nestjs/bullmq", "cache-manager-redis-store",
                  "cache-manager-ioredis", "cache-manager-ioredis-yet", "@keyv/redis", "connect-redis", "@socket.io/redis-adapter")




@dataclass(frozen=True)
class Adoption:
    files: Tree
    backend: dict | None
    frontend: dict | None
    parts: tuple[scaffold.RepoPart, ...]
    advice: list[str] = field(default_factory=list)
    database: bool = False  # the backend uses Postgres
    redis: bool = False  # the backend uses Redis
    facts: list[str] = field(default_factory=list)  # what was read, and where


def dependencies(package: dict) -> dict:
    return workspaces.dependencies(package)


def role_of(package: dict) -> str | None:
    deps = dependencies(package)
    return next((role for role, marker in MARKERS.items() if marker in deps), None)


DEPTH = 3  # apps/api, packages/web, services/api/server


def candidates(repo: Path, extra: tuple[Path, ...], workspace: Workspace | None, holding: str = "package.json") -> list[Path]:
    """The repo and its folders up to DEPTH levels down that hold a package.json (an Nx
    workspace's projects: a project.json), the packages its workspace declares (however
    deep) and any folder named on the command line."""
    found, level = [repo], [repo]
    for _ in range(DEPTH):
        level = sorted(p for folder in level for p in folder.iterdir()
                       if p.is_dir() and not p.name.startswith(".") and p.name not in SKIP_DIRS)
        found += level
    declared = workspaces.members(repo, workspace) if workspace else []
    found += [p for p in (*declared, *extra) if p.is_dir() and p not in found]
    return [d for d in found if (d / holding).is_file()]


def is_berry(folder: Path) -> bool:
    try:
        head = (folder / "yarn.lock").read_text(errors="replace")[:2000]
    except OSError:
        return False
    return "__metadata:" in head or (folder / ".yarnrc.yml").is_file()


def read_sources(folder: Path, pattern: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob(pattern)) if "node_modules" not in p.parts)


YARN_DIRS = (".yarn/releases", ".yarn/plugins", ".yarn/patches")


def berry_facts(folder: Path) -> dict[str, object]:
    """yarn 2+ in the service's own folder: its linker and yarn's own folders."""
    return {"yarn_linker": workspaces.yarn_linker(folder), "yarn_dirs": tuple(d for d in YARN_DIRS if (folder / d).is_dir())}


def own_dockerfile(repo: Path, folder: Path, port: int, from_root: bool = False) -> tuple[str, ...]:
    """What a service's own Dockerfile lacks for plano, each with the fix: the `dev`
    target `plano dev up` builds, the port the app listens on, a build context of the
    service's own folder (plano builds there; a workspace's services, from its root)."""
    try:
        text = (folder / "Dockerfile").read_text(errors="replace")
    except OSError:
        return ()
    where = f"{folder.relative_to(repo).as_posix() or '.'}/Dockerfile"
    issues = []
    stages = [m.group(1).lower() for m in re.finditer(r"^\s*FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.M | re.I) if m.group(1)]
    if "dev" not in stages:
        issues.append(f"{where}: no `dev` stage, which `plano dev up` builds (hot reload); add one (see `plano app new`'s "
                      "Dockerfile) or set dev_target in plano.yml to one of its stages")
    exposed = [int(p) for line in re.findall(r"^\s*EXPOSE\s+(.+)$", text, re.M | re.I) for p in re.findall(r"\b(\d{2,5})\b", line)]
    if exposed and port not in exposed:
        issues.append(f"{where}: EXPOSE {', '.join(map(str, exposed))}, but the app listens on {port}; plano routes to {port} "
                      "(its port in plano.yml), so make them agree")
    for source in [] if from_root else re.findall(r"^\s*(?:COPY|ADD)\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+", text, re.M | re.I):
        first = source.split("/", 1)[0]
        outside = source.startswith("../") or (folder != repo and not (folder / first).exists() and (repo / first).exists())
        if outside and first not in (".", "*"):
            issues.append(f"{where}: COPY {source} reads from the repo root, but plano builds with {folder.relative_to(repo).as_posix()}/ "
                          "as the context; copy from the service's folder")
            break
    return tuple(issues)


def survey_one(repo: Path, folder: Path, role: str, package: dict, root: Workspace | None) -> Found:
    """One service; `root` is the workspace the repo root declares (its services have no lock of their own)."""
    lockfile = next((name for name in LOCKFILES if (folder / name).is_file()), None)
    workspace = root if folder != repo and lockfile is None else None
    project = nx.project(repo, folder) if workspace and workspace.manager == "nx" else None
    berry = lockfile == "yarn.lock" and is_berry(folder)
    common = {
        "role": role,
        "dir": folder.relative_to(repo).as_posix() or ".",
        "scripts": package["scripts"] if isinstance(package.get("scripts"), dict) else {},
        "lockfile": lockfile,
        "existing": frozenset(p.name for p in folder.iterdir()),
        "workspace": workspace,
        "package_name": package.get("name") if isinstance(package.get("name"), str) else "",
        "package_manager": package.get("packageManager") if isinstance(package.get("packageManager"), str) else None,
        "yarn_berry": berry,
        **(berry_facts(folder) if berry else {}),
        "nx": project,
        "local": (workspaces.local_dependencies(repo, workspace, package)
                  if workspace and workspace.shape in workspaces.LOCAL_BUILD_SHAPES else ()),
    }
    if role == "backend":
        sources, main = read_sources(folder, "src/**/*.ts"), read_sources(folder, "src/main.ts")
        prefix = global_prefix(main)
        deps = dependencies(package)
        port, port_source = listen_port(main, f"{common['dir']}/src/main.ts")
        route, route_source = health_route(folder, main, prefix)
        return Found(**common, api_prefix=prefix, health_route=route, health_source=route_source,
                     env=env_mapping(sources), dockerfile_issues=own_dockerfile(repo, folder, port or 3000, workspace is not None),
                     port=port, port_source=port_source,
                     database_packages=tuple(p for p in DATABASE_PACKAGES if p in deps),
                     unsupported=tuple(p for p in UNSUPPORTED_PACKAGES if p in deps),
                     redis_packages=tuple(p for p in REDIS_PACKAGES if p in deps),
                     orm=orm.detect(folder, f"{common['dir']}/", package))
    config = read_sources(folder, "next.config.*")
    sources = read_sources(folder, "app/**/*.tsx") + read_sources(folder, "src/**/*.tsx") + read_sources(folder, "pages/**/*.tsx")
    port, port_source = script_port(common["scripts"], f"{common['dir']}/package.json")
    return Found(**common, standalone=bool(STANDALONE_RE.search(config)), google_fonts=GOOGLE_FONT in sources,
                 routes=route_folders(folder),
                 port=port, port_source=port_source, dockerfile_issues=own_dockerfile(repo, folder, port or 3000, workspace is not None))


def services_in(repo: Path, named: tuple[Path, ...], workspace: Workspace | None) -> dict[str, list[tuple[Path, dict]]]:
    """Each folder holding a NestJS or a Next.js package.json, by role."""
    found: dict[str, list[tuple[Path, dict]]] = {"backend": [], "frontend": []}
    if workspace and workspace.manager == "nx":
        return nx_services(repo, named, workspace)
    for folder in candidates(repo, named, workspace):
        package = workspaces.read_json(folder / "package.json")
        if all(marker in dependencies(package) for marker in MARKERS.values()):
            raise UsageError(f"{folder / 'package.json'}: one package holds both the NestJS backend and the Next.js frontend "
                             "(an Nx-style single-package repo); plano builds each service from its own package.json, not yet from this")
        role = role_of(package)
        if role:
            found[role].append((folder, package))
    return found


def nx_services(repo: Path, named: tuple[Path, ...], workspace: Workspace) -> dict[str, list[tuple[Path, dict]]]:
    """The Nx projects that are a NestJS backend or a Next.js frontend, each with the
    root's package.json (which holds every project's dependencies) under its project name."""
    root = workspaces.read_json(repo / "package.json")
    found: dict[str, list[tuple[Path, dict]]] = {"backend": [], "frontend": []}
    for folder in candidates(repo, named, workspace, holding="project.json"):
        project = nx.project(repo, folder)
        if project and MARKERS[project.role] in dependencies(root):
            found[project.role].append((folder, {**root, "name": project.name, "scripts": {}}))
    return found


def survey(repo: Path, backend_dir: str | None = None, frontend_dir: str | None = None) -> list[Found]:
    """The NestJS backend and the Next.js frontend of `repo` (at most one of each)."""
    if not repo.is_dir():
        raise UsageError(f"{repo}: no such folder; give the path of the app's repo")
    chosen = {"backend": backend_dir, "frontend": frontend_dir}
    named = tuple((repo / d).resolve() for d in chosen.values() if d is not None)
    for given in (d for d in chosen.values() if d is not None):
        if not (repo / given).resolve().is_relative_to(repo.resolve()):
            raise UsageError(f"--backend/--frontend {given}: not a folder inside {repo}; give a path relative to the repo")
    root = workspaces.detect(repo)  # read once: the lock it parses can be large
    found = services_in(repo, named, root)
    result = []
    for role, hits in found.items():
        if chosen[role] is not None:
            hits = [(f, p) for f, p in hits if f.resolve() == (repo / chosen[role]).resolve()]
            if not hits:
                raise UsageError(f"--{role} {chosen[role]}: no {KIND_NAMES[role]} there (a package.json depending on {MARKERS[role]})")
        if len(hits) > 1:
            names = ", ".join(f.relative_to(repo).as_posix() or "." for f, _ in hits)
            raise UsageError(f"{repo}: found {len(hits)} {KIND_NAMES[role]}s ({names}); choose one with --{role} DIR")
        result += [survey_one(repo, folder, role, package, root) for folder, package in hits]
    if not result:
        raise UsageError(
            f"{repo}: no NestJS backend (package.json depending on @nestjs/core) and no Next.js frontend "
            f"(depending on next), in the folder or {DEPTH} levels below it; point at the app's repo"
        )
    return result


def health_path(found: Found) -> str:
    """Its own health route where it has one; else the root of its API."""
    if found.health_route:
        return found.health_route
    return f"/{found.api_prefix}" if found.api_prefix else "/"


def check_usable(found: Found) -> None:
    where = f"{found.dir}/"
    if found.lockfile in ("bun.lock", "bun.lockb"):
        raise UsageError(f"{where}: uses Bun ({found.lockfile}); plano builds and runs apps with Node (npm ci), not Bun")
    if found.unsupported:
        raise UsageError(f"{where}package.json: uses {', '.join(found.unsupported)}; plano provides Postgres and Redis only, "
                         "so it cannot host this backend's database")
    if in_workspace(found):
        check_workspace(found)
        if found.nx:
            return  # built and served by Nx's targets, not by scripts
    elif found.lockfile is None:
        raise UsageError(f"{where}: no package-lock.json; run `npm install` there and commit the lock file, then adopt again")
    elif found.yarn_berry and found.yarn_linker != "node-modules":
        raise UsageError(f"{where}: uses yarn 2 or later with Plug'n'Play (.yarnrc.yml's nodeLinker: {found.yarn_linker}); "
                         "plano's images run with node_modules (Next.js's standalone output needs them); set `nodeLinker: "
                         "node-modules` in .yarnrc.yml and run yarn install, then adopt again")
    elif found.lockfile not in scaffold.LOCKS:
        raise UsageError(f"{where}: uses {found.lockfile}; plano's Dockerfiles install with npm, pnpm or yarn 1")
    needed = ["build"] + (["start:dev"] if found.role == "backend" else ["dev"])
    missing = [name for name in needed if name not in found.scripts]
    if missing:
        run = manager_of(found).run(missing[0])
        raise UsageError(f"{where}package.json: no script {', '.join(missing)}; the Dockerfile runs `{run}`, add it")


PACKAGE_NAME_RE = re.compile(r"(@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*")


def check_workspace(found: Found) -> None:
    """A service of a workspace: one plano's workspace Dockerfiles build, named (they build it by its name)."""
    assert found.workspace is not None
    if found.workspace.shape is None:
        raise UsageError(f"{found.dir}/: part of {found.workspace.unsupported()}")
    if not PACKAGE_NAME_RE.fullmatch(found.package_name):
        where = "project.json" if found.nx else "package.json"
        raise UsageError(f"{found.dir}/{where}: no valid name; the workspace builds each package by its name, so give "
                         "it one (e.g. \"name\": \"api\")")
    if found.nx and found.role == "backend":
        check_nx_backend(found, found.nx)


def check_nx_backend(found: Found, project: nx.Project) -> None:
    """An Nx backend's image runs the webpack bundle with the production dependencies
    Nx lists beside it (generatePackageJson)."""
    if not project.output_source:
        raise UsageError(f"{found.dir}/: no webpack.config.js and no build outputPath in project.json; plano builds Nx "
                         "backends bundled with webpack (@nx/webpack, create-nx-workspace's nest preset)")
    if not project.output:
        raise UsageError(f"{project.output_source}: the build writes outside the workspace; write it under dist/ "
                         f"(e.g. dist/{found.dir})")
    if not project.package_json:
        raise UsageError(f"{project.output_source}: set generatePackageJson: true; plano's image installs the production "
                         f"dependencies Nx lists in {project.output}/package.json")


























def advice_for(found: Found) -> list[str]:
    where = f"{found.dir}/"
    if found.role == "backend":
        tips = list(found.dockerfile_issues) + (found.orm.advice if found.orm else [])
        if in_workspace(found) and found.orm and found.orm.generate and "prisma generate" not in found.scripts.get("build", ""):
            tips.append(f"{where}package.json: the workspace Dockerfile runs your build script; make it run `prisma generate` "
                        "first (\"build\": \"prisma generate && nest build\")")
        if not found.api_prefix:
            tips.append(f"{where}src/main.ts: nginx sends /api/... to the backend unchanged; add app.setGlobalPrefix('api')")
        if not found.health_route:
            tips.append(f"{where}: no health route found; the healthcheck uses {health_path(found)}. A route that checks "
                        "the database and Redis is better (see `plano app new`)")
        return tips
    tips = list(found.dockerfile_issues)
    if not found.standalone:
        tips.append(f"{where}next.config: add output: 'standalone' (the Dockerfile sets it by default meanwhile)")
    if found.google_fonts:
        tips.append(f"{where}: next/font/google downloads fonts at build time; image builds need fonts.googleapis.com")
    return tips


NEXT_ROUTE_DIRS = ("app", "src/app", "pages", "src/pages")


def route_folders(folder: Path) -> tuple[str, ...]:
    """A Next.js app's first-level route folders: app/api, src/pages/blog..."""
    return tuple(f"{base}/{child.name}" for base in NEXT_ROUTE_DIRS if (folder / base).is_dir()
                 for child in sorted((folder / base).iterdir()) if child.is_dir())


def shadowed_routes(found: list[Found], backend: dict | None) -> list[str]:
    """The frontend's own routes under the backend's path, which nginx never sends it
    (create-nx-workspace's Next app has one: app/api/hello)."""
    front = next((one for one in found if one.role == "frontend"), None)
    if front is None or backend is None or backend.get("enabled") is False:
        return []
    path = (backend.get("path") or mf.Backend.model_fields["path"].default).strip("/")
    return [f"{front.dir}/{route}/: Next.js routes under /{path}, where nginx sends every request to the backend, so "
            "they are never reached; move them, or give the backend another path in plano.yml"
            for route in front.routes if path and route.split("/")[-1] == path.split("/")[0]]


def defaults(app: str, role: str) -> dict[str, str]:
    model = mf.Backend if role == "backend" else mf.Frontend
    fields = model.model_fields
    return {"source": f"../{app}/{role}", "health": fields["health"].default, "path": fields["path"].default,
            "port": fields["port"].default, "env": {}, "dev_command": fields["dev_command"].default_factory(),
            "test": fields["test"].default_factory(), "workspace": None, "release": None}


def plan_adoption(app: str, repo_rel: str, found: list[Found], registry: str, domain: str, node_image: str,
                  git: GitFacts | None = None, ci: str = "auto", deploy: str | None = None) -> Adoption:
    """Files to add (never over existing ones), the manifest entry and advice."""
    git = git or GitFacts()
    for one in found:
        check_usable(one)
    tree: Tree = {}
    services: dict[str, dict | None] = {"backend": {"enabled": False}, "frontend": {"enabled": False}}
    for one in found:
        health = health_path(one) if one.role == "backend" else "/"
        tree.update(dockerfiles(app, one, node_image, health))
        values = {
            "source": repo_rel if one.dir == "." else f"{repo_rel}/{one.dir}",
            "workspace": repo_rel if in_workspace(one) else None,
            "port": one.port if one.port and one.port != 3000 else None,
            "health": health,
            "path": f"/{one.api_prefix}" if one.api_prefix else None,
            "env": dict(one.env) or None,
            "release": one.orm.release if one.orm else None,
            **manager_commands(one),
        }
        services[one.role] = {key: value for key, value in values.items() if value not in (None, defaults(app, one.role)[key])}
    parts = tuple(scaffold.RepoPart(f.role, f.dir, ci_checks(f), manager_of(f), "." if in_workspace(f) else "") for f in found)
    backend = next((one for one in found if one.role == "backend"), None)
    refs = [ref for _, ref in backend.env] if backend else []
    database = bool(backend and (backend.database_packages or any(r.startswith("database.") for r in refs)))
    redis = bool(backend and (backend.redis_packages or any(r.startswith("redis.") for r in refs)))
    pipelines, ci_advice = choose_ci(ci, git)
    tree.update(scaffold.repo_tree(app, registry, domain, parts, node_image, git.branch, pipelines, database,
                                   deploy=deploy))
    advice = [tip for one in found for tip in advice_for(one)] + shadowed_routes(found, services["backend"]) + ci_advice
    ports = [f"{one.role} in {one.dir}/: part of {one.workspace.describe()}; its image is built from the repo root "
             f"({one.dir}/Dockerfile)" for one in found if one.workspace and in_workspace(one)]
    ports += [f"{one.role} is the Nx project {one.nx.name} ({one.dir}/project.json)"
              + (f"; its build writes {one.nx.output} ({one.nx.output_source})" if one.role == "backend" else "")
              for one in found if one.nx]
    ports += [f"{one.role} listens on {one.port} ({one.port_source})" for one in found if one.port]
    ports += [f"backend health route: {one.health_route} ({one.health_source})" for one in found if one.health_route]
    ports += [f"backend reads {name}: plano gives it {ref}" for one in found for name, ref in one.env]
    ports += [fact for one in found if one.orm for fact in one.orm.facts]
    return Adoption(tree, services["backend"], services["frontend"], parts, advice, database, redis, uses(backend) + ports)


@dataclass(frozen=True)
class GitFacts:
    """What the repo's git says: its default branch, its remote, the pipelines it has."""

    branch: str = "main"
    remote: str | None = None
    pipelines: tuple[str, ...] = ()  # CI files already in the repo


CI_CHOICES = ("auto", "github", "gitlab", "none")


def choose_ci(ci: str, git: GitFacts) -> tuple[tuple[str, ...], list[str]]:
    """Which pipelines to add: the one asked for; else none beside an existing pipeline
    (its owner extends it), else GitLab's for a GitLab remote and GitHub's otherwise."""
    if ci not in CI_CHOICES:
        raise UsageError(f"--ci {ci}: give one of {', '.join(CI_CHOICES)}")
    if ci == "none":
        return (), []
    if ci != "auto":
        return (ci,), []
    if git.pipelines:
        return (), [f"{', '.join(git.pipelines)}: the repo has its CI; add a job that builds and pushes the images "
                    "(see `plano app new`'s pipelines), or pass --ci github|gitlab to add plano's"]
    return ("gitlab",) if git.remote and "gitlab" in git.remote.lower() else ("github",), []


def existing_pipelines(repo: Path) -> tuple[str, ...]:
    found = sorted(p.relative_to(repo).as_posix() for p in (repo / ".github/workflows").glob("*.y*ml"))
    if (repo / ".gitlab-ci.yml").is_file():
        found.append(".gitlab-ci.yml")
    return tuple(found)


def uses(backend: Found | None) -> list[str]:
    """What the app uses, each with where it was read."""
    if backend is None:
        return ["database: none, Redis: none (no backend)"]
    where = "package.json" if backend.nx else f"{backend.dir}/package.json"  # an Nx workspace's: the root's
    return [
        f"database: {'Postgres, for ' + ', '.join(backend.database_packages) if backend.database_packages else 'none'} ({where})",
        f"Redis: {'yes, for ' + ', '.join(backend.redis_packages) if backend.redis_packages else 'none'} ({where})",
    ]
