"""`plano clone`: the seed's workspace (infra, app1, app2 side by side) from a
cloned infra: every app repo named in plano.yml that is missing is cloned where
the manifest expects it; present ones are reported (branch, dirty, ahead/behind).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.manifest import Manifest, select_apps
from plano.core.runner import Runner
from plano.core.session import Session


@dataclass(frozen=True)
class RepoState:
    app: str
    path: str  # relative to the infra, as in plano.yml
    repo: str | None
    state: str  # cloned | present | failed | no repo
    branch: str | None = None
    dirty: bool | None = None
    ahead: int | None = None
    behind: int | None = None
    detail: str = ""



def repo_dir(manifest: Manifest, app_name: str) -> str:
    """Where the app's repo lives: the common folder of its services' sources
    (../app1 for ../app1/backend and ../app1/frontend)."""
    app = manifest.apps[app_name]
    contexts = [svc.workspace for svc in app.services().values() if svc.workspace]
    if contexts:  # a workspace's root is its repo's (or inside it)
        return os.path.commonpath(contexts)
    sources = [n.source(app_name, app, role) for role in app.services()]
    if len(sources) == 1:
        only = sources[0].rstrip("/")
        head, tail = os.path.split(only)
        return head if tail in ("backend", "frontend") and head not in ("", "..") else only
    return os.path.commonpath(sources)


def clone_apps(session: Session, app: str | None = None) -> list[RepoState]:
    """`plano clone [--app APP]`: every app's repo, or APP's."""
    apps = select_apps(session.manifest, (app,) if app else (), False, flag="--app")
    return clone(session.root, session.manifest, apps, session.runner)


def clone_argv(url: str, target: Path) -> list[str]:
    return ["git", "clone", "--quiet", "--", url, str(target)]


def status_argv(target: Path) -> list[str]:
    return ["git", "-C", str(target), "status", "--porcelain=v2", "--branch"]


def parse_status(output: str) -> dict:
    """branch, dirty, ahead, behind from `git status --porcelain=v2 --branch`."""
    facts: dict = {"branch": None, "dirty": False, "ahead": None, "behind": None}
    for line in output.splitlines():
        if line.startswith("# branch.head "):
            facts["branch"] = line.split(" ", 2)[2]
        elif line.startswith("# branch.ab "):
            ahead, behind = line.split(" ")[2:4]
            facts["ahead"], facts["behind"] = int(ahead), -int(behind)
        elif line and not line.startswith("#"):
            facts["dirty"] = True
    return facts


def clone(root: Path, manifest: Manifest, apps: list[str], runner: Runner) -> list[RepoState]:
    states = []
    for app in apps:
        rel = repo_dir(manifest, app)
        target = (root / rel).resolve()
        url = manifest.apps[app].repo
        if target.exists() and any(target.iterdir()):
            got = runner.run(status_argv(target), timeout=60)
            if got.ok:
                states.append(RepoState(app, rel, url, "present", **parse_status(got.out)))
            else:
                states.append(RepoState(app, rel, url, "present", detail="not a git repository"))
            continue
        if not url:
            states.append(RepoState(app, rel, None, "no repo",
                                    detail=f"missing; set apps/{app}/repo in plano.yml (git URL) or put the code at {rel}"))
            continue
        result = runner.run(clone_argv(url, target), timeout=1800)
        if result.ok:
            facts = parse_status(runner.run(status_argv(target), timeout=60).out)
            states.append(RepoState(app, rel, url, "cloned", **facts))
        else:
            reason = next((line.strip() for line in result.output.splitlines() if line.strip().startswith("fatal:")), result.output.strip())
            states.append(RepoState(app, rel, url, "failed", detail=reason.removeprefix("fatal: ")))
    return states
