"""App repositories: the files plano adds to an app repo (CI pipelines, README).

Every file is created only when missing: an existing file is never overwritten, so
the same tree serves a new repo and the adoption of an existing one.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from plano.core import files
from plano.core import naming as n
from plano.core.files import File, Kind, Tree
from plano.core.manifest import DEFAULT_IMAGES
from plano.render.templating import render_app_template

T = "app-repo"
# Stored without the leading dot so that every packaging tool ships them.
REPO_FILES = {
    ".github/workflows/ci.yml": f"{T}/github/workflows/ci.yml.j2",
    ".gitlab-ci.yml": f"{T}/gitlab-ci.yml.j2",
    "README.md": f"{T}/README.md.j2",
}
CI_FILES = {"github": ".github/workflows/ci.yml", "gitlab": ".gitlab-ci.yml"}


@dataclass(frozen=True)
class Manager:
    """A package manager, as the Dockerfiles and pipelines use it."""

    name: str  # npm | pnpm
    lock: str
    install: str  # exactly from the lock, every dependency
    prune: str  # down to the production dependencies
    ci_install: str  # in CI, with its cache in the project folder
    frozen: str  # on a developer's machine: install exactly from the lock
    version: str = ""  # pnpm's or yarn berry's, where plano installs it

    def run(self, script: str) -> str:
        return f"{self.name} test" if script == "test" else f"{self.name} run {script}"


NPM = Manager("npm", "package-lock.json", "npm ci --no-audit --no-fund && npm cache clean --force",
              "npm prune --omit=dev --no-audit --no-fund", "npm ci --cache $CI_PROJECT_DIR/.npm --prefer-offline", "npm ci")
# pnpm's version when package.json's packageManager names none. pnpm is installed with
# npm (its registry's integrity hashes), not with corepack: corepack 0.34/0.35, in the
# Node images of this writing, refuses current pnpm releases ("No compatible signature
# found in package metadata": its built-in keys are older than the registry's).
PNPM_VERSION = "10.34.9"


def pnpm(version: str = PNPM_VERSION) -> Manager:
    get = f"npm install --global --no-audit --no-fund pnpm@{version}"
    return Manager("pnpm", "pnpm-lock.yaml", f"{get} && pnpm install --frozen-lockfile && pnpm store prune",
                   "pnpm prune --prod", f"{get} && pnpm install --frozen-lockfile --store-dir $CI_PROJECT_DIR/.pnpm-store",
                   "pnpm install --frozen-lockfile", version)


PNPM = pnpm()
# yarn 1 ("classic"), pinned; --force: the official Node images already hold a yarn 1.
YARN_GET = "npm install --global --force --no-audit --no-fund yarn@1.22.22"
# yarn 1 gives up on a registry answer after 30 s (ESOCKETTIMEDOUT), which a busy build
# machine or a slow network reaches; npm and pnpm wait minutes. yarn's own advice is to
# raise it: 10 minutes.
YARN_FETCH = "--frozen-lockfile --network-timeout 600000"
YARN = Manager("yarn", "yarn.lock", f"{YARN_GET} && yarn install {YARN_FETCH} && yarn cache clean",
               f"yarn install --production {YARN_FETCH} --ignore-scripts --prefer-offline",
               f"{YARN_GET} && yarn install {YARN_FETCH} --cache-folder $CI_PROJECT_DIR/.yarn-cache", "yarn install --frozen-lockfile")
LOCKS = {"package-lock.json": "npm", "pnpm-lock.yaml": "pnpm", "yarn.lock": "yarn"}
# yarn 2+ ("berry") when packageManager names none. It comes from the npm registry
# (@yarnpkg/cli-dist): corepack fetches it from repo.yarnpkg.com, which many networks block.
YARN_BERRY_VERSION = "4.18.1"


def yarn_berry(version: str = YARN_BERRY_VERSION) -> Manager:
    get = f"npm install --global --force --no-audit --no-fund @yarnpkg/cli-dist@{version}"
    return Manager("yarn", "yarn.lock", f"{get} && yarn install --immutable", "yarn workspaces focus --production",
                   f"{get} && yarn install --immutable", "yarn install --immutable", version)


@dataclass(frozen=True)
class RepoPart:
    """One service of an app repo: its role, its folder, the commands CI runs there, its
    package manager, and the folder it installs in and its image is built from (the
    workspace root for a service of a workspace; else its own)."""

    role: str  # backend | frontend
    dir: str
    checks: tuple[str, ...]
    manager: Manager = NPM
    root: str = ""  # "" : dir

    @property
    def context(self) -> str:
        return self.root or self.dir


def checks_for(role: str, scripts: dict[str, str], manager: Manager = NPM) -> tuple[str, ...]:
    """What CI runs for a service, from its package.json scripts: the tests it has,
    and the build for a frontend (or when there is nothing else to run)."""
    checks = [manager.run(name) for name in ("test", "test:e2e") if name in scripts]
    if role == "frontend" or not checks:
        checks.append(manager.run("build"))
    return tuple(checks)


# What `plano app new` creates (see templates/app/*/package.json).
NEW_PARTS = (
    RepoPart("backend", "backend", ("npm test", "npm run test:e2e")),
    RepoPart("frontend", "frontend", ("npm test", "npm run build")),
)


def registry_host(registry: str) -> str:
    """registry.example.com/acme -> registry.example.com (what `docker login` takes)."""
    return registry.split("/", 1)[0]


def node_major(image: str) -> str:
    """The Node major version of an image reference (node:22.20.0-bookworm-slim -> 22), for setup-node."""
    match = re.search(r":(\d+)", image)
    return match.group(1) if match else "lts/*"


def repo_tree(app: str, registry: str, domain: str, parts: tuple[RepoPart, ...] = NEW_PARTS,
              node_image: str = DEFAULT_IMAGES["node"], branch: str = "main", ci: tuple[str, ...] = ("github", "gitlab"),
              database: bool = True, postgres_image: str = DEFAULT_IMAGES["postgres"], deploy: str | None = None) -> Tree:
    """The repo's CI pipelines (those of `ci`, building on pushes to `branch`; with a
    throwaway Postgres for the tests when the app has a database; with a job that runs
    `plano -e DEPLOY deploy APP --tag <commit>` after the images, when `deploy` names an
    environment: plano.yml's apps.APP.ci_deploy) and README."""
    values = {
        "parts": parts,
        "app": app,
        "domain": domain,
        "registry": registry,
        "registry_host": registry_host(registry),
        "var_prefix": n.variable_prefix(app),
        "node_image": node_image,
        "node_major": node_major(node_image),
        "branch": branch,
        "database": database,
        "postgres_image": postgres_image,
        "deploy": deploy,
    }
    wanted = {CI_FILES[name] for name in ci} | {"README.md"}
    return {path: File(render_app_template(template, **values), kind=Kind.USER)
            for path, template in REPO_FILES.items() if path in wanted}


# Dotfiles are stored without their dot so that every packaging tool ships them.
DOTFILES = {"dockerignore": ".dockerignore", "gitignore": ".gitignore", "oxlintrc.json": ".oxlintrc.json"}
TEMPLATE_APP = "app1"  # the name the app templates are written with
TEMPLATE_NODE_IMAGE = "@NODE_IMAGE@"  # stands for images.node of plano.yml (the one pin) in their Dockerfiles


def template_text(path: str, replace: dict[str, str]) -> str:
    """One file of templates/, with each `replace` key substituted."""
    text = (resources.files("plano") / "templates" / path).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def copy_template(template: str, dest: Path, replace: dict[str, str] | None = None) -> None:
    """Copy templates/<template> to dest: dotfiles get their dot back, and each
    `replace` key is substituted in text files (e.g. the template's app name)."""
    source = resources.files("plano") / "templates" / template
    with resources.as_file(source) as folder:
        shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("node_modules", "__pycache__", "dist", ".next"))
    for path in sorted(dest.rglob("*"), reverse=True):
        if path.is_file() and replace:
            text = path.read_text()
            for old, new in replace.items():
                text = text.replace(old, new)
            path.write_text(text)
        if path.name in DOTFILES:
            path.rename(path.with_name(DOTFILES[path.name]))


def create_repo(repo: Path, app: str, registry: str, domain: str, node_image: str, deploy: str | None = None) -> None:
    """A new app repo: backend/ (NestJS), frontend/ (Next.js), CI pipelines, README."""
    replace = {TEMPLATE_APP: app, TEMPLATE_NODE_IMAGE: node_image}
    for role in ("backend", "frontend"):
        copy_template(f"app/{role}", repo / role, replace)
    files.apply(repo, files.plan(repo, repo_tree(app, registry, domain, node_image=node_image, deploy=deploy)))
