"""Workspace repos made at test time the way teams make them: the ecosystem's own
generators (`@nestjs/cli new`, `create-next-app`, from the npm registry) run inside
`apps/` of a workspace root, a shared workspace package the backend imports, and the
root's install making the one lock.

The root's few files (package.json, turbo.json, pnpm-workspace.yaml) are written here:
`create-turbo` downloads its starter from github.com, which these machines cannot reach.
An Nx workspace is made by `create-nx-workspace` and Nx's own Next.js generator.
Each repo serves `GET /api` -> "hello from shop v1" (through the shared package, but
in Nx's) and a page saying "web v1"; `bump()` makes v2 of both.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

NEST_CLI = "@nestjs/cli@12.0.8"
CREATE_NEXT_APP = "create-next-app@16.4.3"
PNPM = "10.34.9"  # plano's pin (scaffold.PNPM_VERSION); the repo's packageManager names it
TURBO = "2.11.13"
YARN = "4.18.1"  # yarn berry, from the npm registry (@yarnpkg/cli-dist): corepack's source, repo.yarnpkg.com, is unreachable
CREATE_NX_WORKSPACE = "create-nx-workspace@23.2.1"
# The registry here lacks sass-embedded 1.108's packages for other platforms (it has
# 1.105.0 of all of them); the lock npm writes without them is refused by the Node
# image's npm 12 (`npm ci`: "Missing: sass-embedded-win32-x64@ from lock file").
SASS_EMBEDDED = "1.105.0"
YARN_CLASSIC = "1.22.22"
LAYOUTS = ("turbo", "pnpm", "berry", "nx", "npm", "classic")


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(argv)} in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: the generated code changed, no {old!r}"
    path.write_text(text.replace(old, new, 1))


def generators(manager: str) -> dict[str, list[str]]:
    return {
        "api": ["npx", "-y", NEST_CLI, "new", "api", "--package-manager", manager, "--skip-git", "--skip-install"],
        "web": ["npx", "-y", CREATE_NEXT_APP, "web", "--ts", "--app", "--eslint", "--no-tailwind", "--no-src-dir",
                "--import-alias", "@/*", f"--use-{manager}", "--disable-git", "--empty", "--yes", "--skip-install"],
    }


def run_generators(cwd: Path, argvs: dict[str, list[str]], env: dict[str, str]) -> dict[str, str]:
    """Run the generators side by side in cwd; each one's output, by name (a failure fails the test)."""
    procs = {name: subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, argv in argvs.items()}
    outputs = {}
    for name, proc in procs.items():
        outputs[name], _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{' '.join(argvs[name])}:\n{outputs[name][-3000:]}"
    return outputs


def generate_apps(apps: Path, manager: str, env: dict[str, str]) -> None:
    apps.mkdir(parents=True)
    run_generators(apps, generators(manager), env)


def shared_package(repo: Path) -> None:
    shared = repo / "packages/shared"
    shared.mkdir(parents=True)
    (shared / "package.json").write_text(json.dumps(
        {"name": "@shop/shared", "version": "1.0.0", "type": "module", "main": "index.js", "types": "index.d.ts"}, indent=2))
    (shared / "index.js").write_text("export const greeting = (who) => `hello from ${who}`;\n")
    (shared / "index.d.ts").write_text("export declare const greeting: (who: string) => string;\n")


def use_shared(repo: Path, spec: str, env: dict[str, str]) -> None:
    """The backend imports the shared package, under /api; the page says its version."""
    api = repo / "apps/api"
    run(["npm", "pkg", "set", f"dependencies.@shop/shared={spec}"], api, env)
    edit(api / "src/app.service.ts", "return 'Hello World!';", "return greeting('shop v1');")
    (api / "src/app.service.ts").write_text("import { greeting } from '@shop/shared';\n" + (api / "src/app.service.ts").read_text())
    edit(api / "src/main.ts", "  const app = await NestFactory.create(AppModule);\n",
         "  const app = await NestFactory.create(AppModule);\n  app.setGlobalPrefix('api');\n")
    edit(repo / "apps/web/app/page.tsx", "<div>Hello world!</div>", "<div>web v1</div>")


def sources(repo: Path) -> tuple[Path, Path]:
    """The files that say the version: the backend's service and the page."""
    if (repo / "nx.json").is_file():
        return repo / "apps/api/src/app/app.service.ts", repo / "apps/web/src/app/page.tsx"
    return repo / "apps/api/src/app.service.ts", repo / "apps/web/app/page.tsx"


def bump(repo: Path, old: str, new: str) -> None:
    """The next version of both services: v1 -> v2."""
    api, web = sources(repo)
    edit(api, f"shop {old}'", f"shop {new}'")
    edit(web, f"web {old}", f"web {new}")


# The generated lock would take vite 8.4.0, whose optional Windows-only package is not
# in the registry here: the containers' npm 12 then refuses `npm ci`.
VITE = "8.3.8"


def turbo_repo(repo: Path, env: dict[str, str]) -> None:
    """npm workspaces with Turborepo: apps/api, apps/web, packages/shared."""
    (repo / "package.json").write_text(json.dumps({
        "name": "shop", "private": True, "workspaces": ["apps/*", "packages/*"],
        "scripts": {"build": "turbo run build", "dev": "turbo run dev"},
        "devDependencies": {"turbo": TURBO},
        "packageManager": f"npm@{run(['npm', '--version'], repo, env).strip()}",  # turbo requires it
        "overrides": {"vite": VITE},
    }, indent=2))
    (repo / "turbo.json").write_text(json.dumps({"tasks": {
        "build": {"dependsOn": ["^build"], "outputs": ["dist/**", ".next/**", "!.next/cache/**"]},
        "dev": {"cache": False, "persistent": True}}}, indent=2))
    shared_package(repo)
    generate_apps(repo / "apps", "npm", env)
    use_shared(repo, "*", env)
    run(["npm", "install", "--no-audit", "--no-fund"], repo, env)


def npm_repo(repo: Path, env: dict[str, str]) -> None:
    """npm workspaces alone (no Turborepo): apps/api, apps/web, packages/shared."""
    (repo / "package.json").write_text(json.dumps({"name": "shop", "private": True, "workspaces": ["apps/*", "packages/*"],
                                                   "overrides": {"vite": VITE}}, indent=2))
    shared_package(repo)
    generate_apps(repo / "apps", "npm", env)
    use_shared(repo, "*", env)
    run(["npm", "install", "--no-audit", "--no-fund"], repo, env)


def classic_repo(repo: Path, env: dict[str, str]) -> None:
    """A yarn 1 workspace: apps/api, apps/web, packages/shared (yarn 1 links it by version: "*")."""
    (repo / "package.json").write_text(json.dumps({"name": "shop", "private": True, "workspaces": ["apps/*", "packages/*"],
                                                   "resolutions": {"vite": VITE}}, indent=2))
    shared_package(repo)
    classic = {**env, "PATH": f"{repo.parent / 'shims-classic'}:{env['PATH']}"}
    generate_apps(repo / "apps", "yarn", classic)
    use_shared(repo, "*", env)
    # --ignore-engines: this machine's Node 20 is older than the generated packages ask
    # for (yarn 1 refuses, npm warns); the images run Node 24.
    run(["yarn", "install", "--non-interactive", "--ignore-engines"], repo, classic)


def pnpm_repo(repo: Path, env: dict[str, str]) -> None:
    """A pnpm workspace: apps/api, apps/web, packages/shared (a workspace:* dependency)."""
    (repo / "package.json").write_text(json.dumps({"name": "shop", "private": True, "packageManager": f"pnpm@{PNPM}"}, indent=2))
    shared_package(repo)
    generate_apps(repo / "apps", "pnpm", env)
    # create-next-app --use-pnpm writes its build-script settings in the app's own
    # pnpm-workspace.yaml; in a workspace they belong to the root's (as the user moves them).
    nested = repo / "apps/web/pnpm-workspace.yaml"
    settings = nested.read_text() if nested.is_file() else ""
    nested.unlink(missing_ok=True)
    (repo / "pnpm-workspace.yaml").write_text("packages:\n  - apps/*\n  - packages/*\n" + settings)
    use_shared(repo, "workspace:*", env)
    run(["pnpm", "install"], repo, env)


def berry_repo(repo: Path, env: dict[str, str]) -> None:
    """A yarn 4 workspace (node_modules linker): apps/api, apps/web, packages/shared."""
    (repo / "package.json").write_text(json.dumps({"name": "shop", "private": True, "workspaces": ["apps/*", "packages/*"],
                                                   "packageManager": f"yarn@{YARN}"}, indent=2))
    (repo / ".yarnrc.yml").write_text("nodeLinker: node-modules\nenableTelemetry: false\n")
    shared_package(repo)
    generate_apps(repo / "apps", "yarn", env)
    use_shared(repo, "workspace:*", env)
    run(["yarn", "install"], repo, {**env, "YARN_ENABLE_IMMUTABLE_INSTALLS": "false"})


def nx_repo(repo: Path, env: dict[str, str]) -> None:
    """create-nx-workspace's nest preset (one package.json at the root, apps/api), then
    its Next.js plugin's app (apps/web), as Nx's docs add one."""
    nx_env = {**env, "NX_DAEMON": "false", "NX_NO_CLOUD": "true", "NX_SKIP_NX_CACHE": "true"}
    repo.rmdir()  # create-nx-workspace makes the folder
    run(["npx", "-y", CREATE_NX_WORKSPACE, repo.name, "--preset=nest", "--appName=api", "--nxCloud=skip",
         "--packageManager=npm", "--workspaces=false", "--interactive=false"], repo.parent, nx_env)
    run(["npx", "nx", "add", "@nx/next"], repo, nx_env)
    # No e2e project: its Playwright browsers come from a CDN these machines cannot reach.
    run(["npx", "nx", "g", "@nx/next:app", "apps/web", "--e2eTestRunner=none", "--no-interactive"], repo, nx_env)
    run(["npm", "pkg", "set", f"overrides.sass-embedded={SASS_EMBEDDED}"], repo, env)
    run(["npm", "install", "--no-audit", "--no-fund"], repo, env)
    api, web = sources(repo)
    edit(api, "getData(): { message: string } {\n    return { message: 'Hello API' };",
         "getData(): string {\n    return 'hello from shop v1';")
    edit(web, "Welcome web", "Welcome web v1")


def make(layout: str, repo: Path) -> None:
    shims = repo.parent / "shims"
    shims.mkdir(exist_ok=True)
    (shims / "pnpm").write_text(f'#!/bin/sh\nexec npx -y pnpm@{PNPM} "$@"\n')
    (shims / "pnpm").chmod(0o755)
    (shims / "yarn").write_text(f'#!/bin/sh\nexec npx -y -p @yarnpkg/cli-dist@{YARN} yarn "$@"\n')
    (shims / "yarn").chmod(0o755)
    classic = repo.parent / "shims-classic"  # first on the PATH for a yarn 1 repo
    classic.mkdir(exist_ok=True)
    (classic / "yarn").write_text(f'#!/bin/sh\nexec npx -y yarn@{YARN_CLASSIC} "$@"\n')
    (classic / "yarn").chmod(0o755)
    scratch = repo.parent / "scratch"  # Nx installs its plugins into TMPDIR and leaves them (212 MB a run)
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}", "CI": "1", "NEXT_TELEMETRY_DISABLED": "1",
           "npm_config_yes": "true", "TURBO_TELEMETRY_DISABLED": "1", "TMPDIR": str(scratch)}
    {"turbo": turbo_repo, "pnpm": pnpm_repo, "berry": berry_repo, "nx": nx_repo, "npm": npm_repo,
     "classic": classic_repo}[layout](repo, env)
