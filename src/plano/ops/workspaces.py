"""Workspaces: a repo whose root declares its packages (npm, pnpm or yarn workspaces,
Nx), with one lock at the root that every package installs from.

`detect()` reads the root; a service inside such a workspace is built from the root
(the build context) with a Dockerfile that installs only what that service needs:
`turbo prune` for Turborepo repos, `pnpm fetch` and `pnpm deploy` for pnpm ones,
`yarn workspaces focus` for yarn 2+ ones, `nx build` and the package.json Nx writes
beside a bundle for Nx ones (see `nx`); npm and yarn 1 workspaces build the packages
it uses first (`local_dependencies`), then install its production dependencies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from plano.core.errors import UsageError

SHAPES = ("turbo", "pnpm", "berry", "nx", "npm", "classic")  # the workspaces plano builds; see Workspace.unsupported
# The shapes whose Dockerfile builds the workspace packages a service uses itself, in
# order (local_dependencies); the others' tools do it (turbo, pnpm --filter, yarn foreach).
LOCAL_BUILD_SHAPES = ("npm", "classic")


@dataclass(frozen=True)
class Workspace:
    """The root of a workspace: how it declares its packages and what builds it."""

    manager: str  # npm | pnpm | yarn | nx
    declared_in: str  # pnpm-workspace.yaml, package.json workspaces, nx.json
    patterns: tuple[str, ...]  # the package folders it declares (globs)
    lock: str | None  # the lock at the root
    turbo: str | None = None  # the Turborepo version the repo pins (turbo.json and turbo installed)
    pnpm: str | None = None  # packageManager's pnpm version
    berry: bool = False  # yarn 2 or later
    linker: str = ""  # yarn berry's nodeLinker (pnp unless .yarnrc.yml says otherwise)
    yarn: str | None = None  # packageManager's yarn version
    package_manager: str = ""  # the root package.json's packageManager (turbo requires it)

    @property
    def shape(self) -> str | None:
        """Which of plano's workspace Dockerfiles builds it (None: none yet)."""
        if self.manager == "pnpm" and self.lock == "pnpm-lock.yaml":
            return "pnpm"
        if self.manager == "npm" and self.lock == "package-lock.json" and self.turbo and self.package_manager:
            return "turbo"
        if self.manager == "yarn" and self.berry and self.lock == "yarn.lock" and self.linker == "node-modules":
            return "berry"
        if self.manager == "nx" and self.lock == "package-lock.json":
            return "nx"
        if self.manager == "npm" and self.lock == "package-lock.json" and not self.turbo:
            return "npm"
        if self.manager == "yarn" and not self.berry and self.lock == "yarn.lock":
            return "classic"
        return None

    def describe(self) -> str:
        kind = {"npm": "an npm workspace", "pnpm": "a pnpm workspace", "nx": "an Nx workspace",
                "yarn": f"a yarn {self.yarn or ('2+' if self.berry else '1')} workspace"}
        return f"{kind[self.manager]}{' with Turborepo ' + self.turbo if self.turbo else ''} ({self.declared_in})"

    def unsupported(self) -> str:
        """Why plano cannot build a service of this workspace yet (shape is None)."""
        if self.lock is None:
            return (f"{self.describe()} with no lock at the repo root; run the install there (npm install, pnpm install) and "
                    "commit the lock, then adopt again")
        if self.manager == "npm" and self.turbo and not self.package_manager:
            return (f"{self.describe()}: turbo needs the root package.json's packageManager (e.g. \"npm@11.6.2\", "
                    "your npm --version); add it, then adopt again")
        if self.manager == "npm":
            return f"{self.describe()} installed from {self.lock}: an npm workspace installs from package-lock.json"
        if self.manager == "yarn" and self.berry:
            return (f"{self.describe()} with Plug'n'Play: plano's images run with node_modules (Next.js's standalone "
                    "output needs them); set `nodeLinker: node-modules` in .yarnrc.yml and run yarn install, then adopt again")
        if self.manager == "yarn":
            return f"{self.describe()} installed from {self.lock}: a yarn workspace installs from yarn.lock"
        return (f"{self.describe()} installed from {self.lock}: plano builds Nx workspaces installed with npm "
                "(package-lock.json), not yet with pnpm or yarn")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc}); fix it and run again") from None
    return data if isinstance(data, dict) else {}


def read_yaml(path: Path) -> dict:
    """A YAML mapping ({} when the file is missing or holds something else)."""
    try:
        data = YAML(typ="safe").load(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, YAMLError) as exc:
        raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix it and run again") from None
    return data if isinstance(data, dict) else {}


def pnpm_patterns(repo: Path) -> tuple[str, ...]:
    packages = read_yaml(repo / "pnpm-workspace.yaml").get("packages")
    return tuple(p for p in packages if isinstance(p, str)) if isinstance(packages, list) else ()


def npm_patterns(package: dict) -> tuple[str, ...]:
    declared = package.get("workspaces")
    if isinstance(declared, dict):  # yarn's {packages: [...], nohoist: [...]}
        declared = declared.get("packages")
    return tuple(p for p in declared if isinstance(p, str)) if isinstance(declared, list) else ()


def dependencies(package: dict, keys: tuple[str, ...] = ("devDependencies", "dependencies")) -> dict:
    """package.json's dependencies of those kinds, merged (a kind that is not a mapping counts as none)."""
    return {name: spec for key in keys if isinstance(package.get(key), dict) for name, spec in package[key].items()}


def exact_version(spec: object) -> str | None:
    match = re.fullmatch(r"[\^~=v]?(\d+\.\d+\.\d+(?:-[\w.]+)?)", spec.strip()) if isinstance(spec, str) else None
    return match.group(1) if match else None


def turbo_version(repo: Path, package: dict) -> str | None:
    """The turbo the repo installs: the lock's, else package.json's exact pin."""
    if not (repo / "turbo.json").is_file():
        return None
    locked = read_json(repo / "package-lock.json").get("packages", {}).get("node_modules/turbo", {})
    spec = dependencies(package).get("turbo")
    return exact_version(locked.get("version") if isinstance(locked, dict) else None) or exact_version(spec)


def yarn_linker(repo: Path) -> str:
    """nodeLinker of .yarnrc.yml (yarn 2+): pnp when unset."""
    linker = read_yaml(repo / ".yarnrc.yml").get("nodeLinker")
    return linker if isinstance(linker, str) else "pnp"


def detect(repo: Path) -> Workspace | None:
    """The workspace the repo root declares, if it does."""
    package = read_json(repo / "package.json")
    manager_field = package.get("packageManager") if isinstance(package.get("packageManager"), str) else ""
    pnpm = re.fullmatch(r"pnpm@(\d+\.\d+\.\d+)(?:\+\S+)?", manager_field)
    lock = next((name for name in ("pnpm-lock.yaml", "package-lock.json", "yarn.lock") if (repo / name).is_file()), None)
    if (repo / "pnpm-workspace.yaml").is_file():
        return Workspace("pnpm", "pnpm-workspace.yaml", pnpm_patterns(repo), lock if lock == "pnpm-lock.yaml" else None,
                         turbo_version(repo, package), pnpm.group(1) if pnpm else None, package_manager=manager_field)
    if npm_patterns(package):
        yarn = lock == "yarn.lock" or manager_field.startswith("yarn@")
        berry = yarn and ((repo / ".yarnrc.yml").is_file() or bool(re.match(r"yarn@[2-9]", manager_field)))
        yarn_version = re.fullmatch(r"yarn@(\d+\.\d+\.\d+)(?:\+\S+)?", manager_field)
        return Workspace("yarn" if yarn else "npm", "package.json workspaces", npm_patterns(package), lock,
                         turbo_version(repo, package), berry=berry, package_manager=manager_field,
                         linker=yarn_linker(repo) if berry else "", yarn=yarn_version.group(1) if yarn_version else None)
    if (repo / "nx.json").is_file():
        return Workspace("nx", "nx.json", (), lock)
    return None


@dataclass(frozen=True)
class Member:
    """A package of the workspace that a service uses."""

    name: str
    dir: str  # relative to the root
    builds: bool  # it has a build script (built before the service)


def local_dependencies(repo: Path, workspace: Workspace, package: dict) -> tuple[Member, ...]:
    """The workspace packages `package` depends on, however indirectly, each after the
    ones it uses (the order they build in)."""
    by_name: dict[str, tuple[Path, dict]] = {}
    for folder in members(repo, workspace):
        manifest = read_json(folder / "package.json")
        if isinstance(manifest.get("name"), str):
            by_name[manifest["name"]] = (folder, manifest)
    ordered: list[Member] = []

    def visit(manifest: dict, path: tuple[str, ...]) -> None:
        for name in sorted(dependencies(manifest)):
            if name in by_name and name not in path and name not in [m.name for m in ordered]:
                folder, used = by_name[name]
                visit(used, (*path, name))
                scripts = used.get("scripts", {})
                ordered.append(Member(name, folder.relative_to(repo).as_posix(), isinstance(scripts, dict) and "build" in scripts))

    visit(package, (package.get("name", ""),))
    return tuple(ordered)


def members(repo: Path, workspace: Workspace) -> list[Path]:
    """The package folders the workspace declares (each holding a package.json)."""
    found: list[Path] = []
    for pattern in workspace.patterns:
        if pattern.startswith("!"):
            continue
        for folder in sorted(repo.glob(pattern.rstrip("/"))):
            if folder.is_dir() and (folder / "package.json").is_file() and "node_modules" not in folder.parts and folder not in found:
                found.append(folder)
    return found
