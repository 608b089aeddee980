"""Nx workspaces of one package.json (create-nx-workspace's default): every project's
dependencies are the root's, and a project is a folder with a project.json, built and
served by Nx's targets (`nx build api`, `nx serve api`, `nx dev web`), not by scripts.

Pure reads of the project's files; `adopt` asks which projects are services and what
their images need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from plano.ops.workspaces import read_json

# The folder a webpack build writes: `output: { path: join(__dirname, '../../dist/apps/api') }`
WEBPACK_PATH_RE = re.compile(r"""path\s*:\s*(?:path\.)?(?:join|resolve)\(\s*__dirname\s*,\s*['"`]([^'"`]+)['"`]\s*\)""")
GENERATE_PACKAGE_RE = re.compile(r"generatePackageJson\s*:\s*true")
NEST_MAIN_RE = re.compile(r"\bNestFactory\b")


@dataclass(frozen=True)
class Project:
    """An Nx project that is a service: its name, its role, and for a backend the folder
    its build writes and whether Nx writes the bundle's package.json there."""

    name: str
    role: str  # backend | frontend
    output: str = ""  # backend: relative to the workspace root, e.g. dist/apps/api
    output_source: str = ""  # where it was read
    package_json: bool = False  # backend: generatePackageJson (the bundle's production dependencies)
    check: str = "test"  # the target that checks it (`plano dev test`): test, else lint, else build


def check_target(folder: Path, targets: dict) -> str:
    """test where it has tests (a test target, or a jest or vitest config Nx infers one
    from), else lint where it has an eslint config, else build."""
    if "test" in targets or any(folder.glob("jest.config.*")) or any(folder.glob("vitest.config.*")):
        return "test"
    if "lint" in targets or any(folder.glob("eslint.config.*")) or any(folder.glob(".eslintrc*")):
        return "lint"
    return "build"


def role(folder: Path) -> str | None:
    """frontend: a next.config; backend: a src/main.ts that starts NestJS."""
    if any(folder.glob("next.config.*")):
        return "frontend"
    try:
        main = (folder / "src/main.ts").read_text(errors="replace")
    except OSError:
        return None
    return "backend" if NEST_MAIN_RE.search(main) else None


def build_options(targets: dict) -> dict:
    """project.json's targets.build.options (a project that names its executor)."""
    build = targets.get("build")
    options = build.get("options") if isinstance(build, dict) else None
    return options if isinstance(options, dict) else {}


def project(repo: Path, folder: Path) -> Project | None:
    """The service this folder holds, if it is an Nx project that is one."""
    if not (folder / "project.json").is_file():
        return None
    kind = role(folder)
    if kind is None:
        return None
    declared = read_json(folder / "project.json")  # read once: name and targets
    name = declared["name"] if isinstance(declared.get("name"), str) and declared["name"] else folder.name
    targets = declared["targets"] if isinstance(declared.get("targets"), dict) else {}
    check = check_target(folder, targets)
    if kind == "frontend":
        return Project(name, kind, check=check)
    inner = folder.relative_to(repo).as_posix()
    options = build_options(targets)
    if isinstance(options.get("outputPath"), str):  # an executor's options, relative to the root
        return Project(name, kind, options["outputPath"].strip("/"), f"{inner}/project.json",
                       options.get("generatePackageJson") is True, check)
    config = next(iter(sorted(folder.glob("webpack.config.*"))), None)
    text = config.read_text(errors="replace") if config else ""
    written = WEBPACK_PATH_RE.search(text)
    if config is None or not written:
        return Project(name, kind, f"dist/{inner}", "", False, check)
    output = (folder / written.group(1)).resolve()
    if not output.is_relative_to(repo.resolve()):
        return Project(name, kind, "", f"{inner}/{config.name}", False, check)
    return Project(name, kind, output.relative_to(repo.resolve()).as_posix(), f"{inner}/{config.name}",
                   bool(GENERATE_PACKAGE_RE.search(text)), check)
