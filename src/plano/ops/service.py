"""One service found in an adopted repo (`Found`: what `adopt.survey` read about it)
and what plano makes for it: its package manager, its dev, test and CI commands, and
its Dockerfile and .dockerignore (plano's per-folder templates made to install with
its manager, or a workspace's templates, built from the workspace root; Prisma's
steps where it uses Prisma). Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plano.core.files import File, Kind, Tree
from plano.ops import nx, orm, scaffold, workspaces
from plano.ops.workspaces import Workspace
from plano.render.templating import render_template


@dataclass(frozen=True)
class Found:
    """One service found in the repo, and the facts about it that matter here."""

    role: str
    dir: str  # relative to the repo, "." for the repo itself
    scripts: dict[str, str]
    lockfile: str | None  # package-lock.json, yarn.lock, pnpm-lock.yaml
    existing: frozenset[str] = frozenset()  # files already in the folder
    api_prefix: str | None = None  # backend: from app.setGlobalPrefix()
    health_route: str | None = None  # backend: the full path of its health route, as the app serves it
    health_source: str = ""  # where it was read
    standalone: bool = False  # frontend: output: 'standalone'
    google_fonts: bool = False  # frontend: next/font/google (fetched at build time)
    database_packages: tuple[str, ...] = ()  # backend: the Postgres clients or ORMs it depends on
    unsupported: tuple[str, ...] = ()  # packages of a database plano does not provide (MongoDB...)
    workspace: Workspace | None = None  # the root's workspace, when the service has no lock of its own
    package_name: str = ""  # package.json's name (a workspace builds a package by its name)
    package_manager: str | None = None  # package.json's packageManager, e.g. pnpm@10.34.9
    yarn_berry: bool = False  # a yarn.lock of yarn 2+ (or a .yarnrc.yml)
    dockerfile_issues: tuple[str, ...] = ()  # what the service's own Dockerfile lacks for plano
    env: tuple[tuple[str, str], ...] = ()  # backend: env names it reads that plano answers (DB_HOST -> database.host)
    port: int | None = None  # the port it listens on whatever PORT says (a literal), None when it follows PORT
    port_source: str = ""  # where the port was read
    redis_packages: tuple[str, ...] = ()  # backend: the Redis clients it depends on
    orm: orm.Orm | None = None  # backend: TypeORM or Prisma, and how its migrations run
    nx: nx.Project | None = None  # a project of an Nx workspace (built by its targets, not by scripts)
    routes: tuple[str, ...] = ()  # frontend: its first-level route folders (app/api, pages/blog...)
    local: tuple[workspaces.Member, ...] = ()  # the workspace packages it uses, in build order
    yarn_linker: str = ""  # yarn 2+ in its own folder: .yarnrc.yml's nodeLinker (pnp when unset)
    yarn_dirs: tuple[str, ...] = ()  # yarn 2+ in its own folder: .yarn/releases, plugins, patches it has


# `nest start --watch` runs the app through a shell unless --no-shell; on a change it
# then kills the shell and leaves node holding the port (EADDRINUSE) in images without
# `ps` (the slim Node images), so the reload never comes up.
NEST_WATCH_RE = re.compile(r"\bnest\s+start\b.*--watch")


def manager_commands(found: Found) -> dict[str, list[str] | None]:
    """plano.yml's dev and test commands (plan_adoption leaves out the defaults)."""
    if found.nx:
        return {"dev_command": dev_command(found), "test": ["npx", "nx", found.nx.check, found.nx.name]}
    return {"dev_command": dev_command(found), "test": [manager_of(found).name, "test"]}


def ci_checks(found: Found) -> tuple[str, ...]:
    """What CI runs for a service: its scripts' tests and build, or an Nx project's targets."""
    if found.nx:
        targets = (("test",) if found.nx.check == "test" else ()) + ("build",)
        return tuple(f"npx nx {target} {found.nx.name}" for target in targets)
    return scaffold.checks_for(found.role, found.scripts, manager_of(found))


def dev_command(found: Found) -> list[str]:
    """What `plano dev up` runs in the service's folder: its manager's start:dev or dev,
    with --no-shell for a `nest start --watch` that lacks it; an Nx project's serve or dev target."""
    if found.nx:
        return ["npx", "nx", "serve" if found.role == "backend" else "dev", found.nx.name]
    manager = manager_of(found)
    script = "start:dev" if found.role == "backend" else "dev"
    argv = [manager.name, "run", script]
    if found.role == "backend" and NEST_WATCH_RE.search(found.scripts.get(script, "")) and "--no-shell" not in found.scripts[script]:
        argv += ["--", "--no-shell"] if manager.name == "npm" else ["--no-shell"]
    return argv


def manager_of(found: Found) -> scaffold.Manager:
    """npm, or pnpm at the version package.json's packageManager names (else plano's pin)."""
    workspace = found.workspace if found.lockfile is None else None
    kind = scaffold.LOCKS.get(found.lockfile or (workspace.lock if workspace else None) or "")
    if workspace and workspace.pnpm:
        return scaffold.pnpm(workspace.pnpm)
    if workspace and workspace.berry:
        return scaffold.yarn_berry(workspace.yarn or scaffold.YARN_BERRY_VERSION)
    if kind == "yarn" and found.yarn_berry:
        named = re.fullmatch(r"yarn@(\d+\.\d+\.\d+)(?:\+\S+)?", found.package_manager or "")
        return scaffold.yarn_berry(named.group(1) if named else scaffold.YARN_BERRY_VERSION)
    if kind == "yarn":
        return scaffold.YARN
    if kind != "pnpm":
        return scaffold.NPM
    named = re.fullmatch(r"pnpm@(\d+\.\d+\.\d+)(?:\+\S+)?", found.package_manager or "")
    return scaffold.pnpm(named.group(1)) if named else scaffold.PNPM


def for_manager(text: str, manager: scaffold.Manager) -> str:
    """plano's npm Dockerfile, made to install, prune, build and run with `manager`."""
    if manager.name == "npm":
        return text
    npm = scaffold.NPM
    # pnpm-workspace.yaml, when there, holds the folder's pnpm settings (a name matching no file copies nothing).
    extra = " pnpm-workspace.yam[l]" if manager.name == "pnpm" else ""
    swaps = [(f"COPY package.json {npm.lock} ./", f"COPY package.json {manager.lock}{extra} ./"),
             (f"RUN {npm.install}", f"RUN {manager.install}"),
             ('CMD ["npm", "run", ', f'CMD ["{manager.name}", "run", '), ("npm run build", manager.run("build"))]
    for old, new in swaps:
        if old not in text:
            raise RuntimeError(f"plano's Dockerfile template has no {old!r}")  # a template changed: a bug in plano
        text = text.replace(old, new)
    return text.replace(f"RUN {npm.prune}", f"RUN {manager.prune}")  # the backend's prod-deps stage


def for_berry(text: str, found: Found) -> str:
    """plano's Dockerfile made for yarn 2+ in the service's own folder (after
    for_manager): yarn's settings and release in the install's context, its cache kept
    in the deps stage (never shipped) for `yarn workspaces focus`, and `yarn run`'s
    shims out of the noexec /tmp in dev."""
    manager = manager_of(found)
    copies = "".join(f"COPY {d} ./{d}\n" for d in found.yarn_dirs)
    swaps = [(f"COPY package.json {manager.lock} ./\n", f"COPY package.json {manager.lock} .yarnrc.yml ./\n{copies}"),
             (f"RUN {manager.install}", "# yarn's cache stays: this stage never ships, and `yarn workspaces focus` reads it.\n"
                                        f"# hadolint ignore=DL3060\nRUN {manager.install}"),
             ("FROM deps AS dev\nENV NODE_ENV=development \\\n",
              "FROM deps AS dev\n# `yarn run` writes its shims in TMPDIR; the infra's /tmp is a noexec tmpfs.\n"
              "ENV NODE_ENV=development \\\n    TMPDIR=/var/tmp \\\n")]
    for old, new in swaps:
        if old not in text:
            raise RuntimeError(f"plano's Dockerfile template has no {old!r}")  # a template changed: a bug in plano
        text = text.replace(old, new)
    return text


def manifests_commands(found: Found) -> dict[str, object]:
    """An npm or yarn 1 workspace's build (the packages the service uses, then the
    service) and the install of its production dependencies."""
    assert found.workspace is not None
    names = [m.name for m in found.local if m.builds] + [found.package_name]
    if found.workspace.shape == "npm":
        return {"builds": [f"npm run build --workspace={name}" for name in names],
                "prod_install": f"npm ci --omit=dev --workspace={found.package_name} --no-audit --no-fund && npm cache clean --force",
                "prod_scope": "alone (npm ci --workspace)"}
    return {"builds": [f"yarn workspace {name} run build" for name in names],
            "prod_install": f"{scaffold.YARN_GET} && {scaffold.YARN.prune} && yarn cache clean",
            "prod_scope": "and of the workspace's other packages (yarn 1 installs the whole workspace)"}


def workspace_dockerfiles(app: str, found: Found, node_image: str, health: str) -> Tree:
    """A service of a workspace: its Dockerfile, built from the workspace root, and the
    root's .dockerignore (each where missing)."""
    assert found.workspace is not None and found.workspace.shape is not None
    manager = manager_of(found)
    shape = found.workspace.shape
    extra = manifests_commands(found) if shape in workspaces.LOCAL_BUILD_SHAPES else {}
    text = render_template(f"app/workspace/{'manifests' if extra else shape}-{found.role}.Dockerfile.j2", app=app,
                           inner=found.dir, package=found.package_name, node_image=node_image, manager=manager,
                           turbo=found.workspace.turbo, pnpm=manager.version, yarn=manager.version, health=health,
                           dev_command=dev_command(found), project=found.nx.name if found.nx else "",
                           output=found.nx.output if found.nx else "", kind=found.workspace.describe(),
                           local=[m.dir for m in found.local], **extra)
    tree: Tree = {".dockerignore": File(render_template("app/workspace/dockerignore"), kind=Kind.USER)}
    if "Dockerfile" not in found.existing:
        tree[f"{found.dir}/Dockerfile"] = File(text, kind=Kind.USER)
    return tree


def in_workspace(found: Found) -> bool:
    """Built from the workspace root (it has no lock of its own)."""
    return found.lockfile is None and found.workspace is not None


def dockerfiles(app: str, found: Found, node_image: str, health: str) -> Tree:
    """Dockerfile and .dockerignore from the templates `plano app new` uses, where missing."""
    if in_workspace(found):
        return workspace_dockerfiles(app, found, node_image, health)
    replace = {scaffold.TEMPLATE_APP: app, scaffold.TEMPLATE_NODE_IMAGE: node_image}
    if found.role == "backend":
        replace["'/api/health'"] = repr(health)
    prefix = "" if found.dir == "." else f"{found.dir}/"
    tree: Tree = {}
    for name, template in (("Dockerfile", "Dockerfile"), (".dockerignore", "dockerignore")):
        if name not in found.existing:
            text = scaffold.template_text(f"app/{found.role}/{template}", replace)
            if name == "Dockerfile":
                text = for_manager(text, manager_of(found))
                text = with_prisma(for_berry(text, found) if found.yarn_berry else text, found)
            tree[prefix + name] = File(text, kind=Kind.USER)
    return tree


# `prisma generate` reads prisma.config.ts, whose env("DATABASE_URL") must be set: a
# placeholder (generate never connects), not a secret.
PRISMA_GENERATE = "DATABASE_URL=postgresql://build@localhost/build node_modules/.bin/prisma generate"


def with_prisma(text: str, found: Found) -> str:
    """A Prisma backend's Dockerfile: the client generated before the build (unless its
    scripts do it), and the schema engine fetched into the production dependencies and
    the schema, migrations and prisma.config in the image, so that `prisma migrate
    deploy` runs in the read-only production container."""
    if not (found.orm and found.orm.generate):
        return text
    manager = manager_of(found)
    scripts = " ".join(found.scripts.get(name, "") for name in ("build", "prebuild", "postinstall"))
    swaps = [] if "prisma generate" in scripts else [(f"RUN {manager.run('build')}", f"RUN {PRISMA_GENERATE} && {manager.run('build')}")]
    if found.orm.release:
        swaps.append((f"RUN {manager.prune}", f"RUN {manager.prune} && node_modules/.bin/prisma version"))
        # `prisma migrate deploy` (the release) reads the schema, its migrations and prisma.config.
        copies = "".join(f"COPY {name} ./{name}\n" for name in found.orm.runtime_files)
        swaps.append(("COPY package.json ./\n", f"COPY package.json ./\n{copies}"))
    for old, new in swaps:
        if old not in text:
            raise RuntimeError(f"plano's Dockerfile template has no {old!r}")  # a template changed: a bug in plano
        text = text.replace(old, new)
    return text
