"""`plano demo`: a workspace with an infra and one small app, validated, and started
where a Docker engine answers.

The demo app (templates/demo-app) is a tiny Node backend and frontend with the
shape of a real app repo: Dockerfiles with dev and prod targets, health endpoints,
Postgres and Redis use. The end-to-end tests run it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plano.core.errors import PlanoError, RefusedError, UsageError
from plano.core.manifest import DEFAULT_IMAGES
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine.stack import require_engine
from plano.ops import check, infra, stack
from plano.ops.check import Outcome
from plano.ops.scaffold import TEMPLATE_NODE_IMAGE, copy_template
from plano.ops.stack import Started

DEMO_APP = "demo-app"


def copy_demo_app(dest: Path, node_image: str = DEFAULT_IMAGES["node"]) -> None:
    """The demo app's backend/ and frontend/ into dest (e.g. workspace/app1)."""
    copy_template(DEMO_APP, dest, {TEMPLATE_NODE_IMAGE: node_image})


def parse_images(pairs: tuple[str, ...]) -> dict[str, str]:
    images = {}
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or name not in DEFAULT_IMAGES or not ref:
            raise UsageError(f"--image {pair}: write NAME=REF with NAME one of {', '.join(DEFAULT_IMAGES)}")
        images[name] = ref
    return images


@dataclass
class Demo:
    root: Path  # the infra folder
    checks: list[Outcome]
    started: Started | None = None
    not_started: str | None = None  # why the stack was not started


def create(session: Session, workspace: Path, images: dict[str, str] | None = None) -> Demo:
    """workspace/infra + workspace/app1, validated, and the dev stack started where an engine answers."""
    if workspace.exists() and any(workspace.iterdir()):
        raise RefusedError(f"{workspace}: not empty; give 'plano demo' a new folder, or remove this one")
    root = workspace / "infra"
    here = session.at(root)
    infra.init(here, root, "registry.example.com/demo", "ops@example.com", "demo", False, images)
    copy_demo_app(workspace / "app1", (images or {}).get("node", DEFAULT_IMAGES["node"]))
    infra.add_app(here, "app1", infra.app_entry(["app1.example.com"], {}, {}))
    made = Demo(root, check.run_all(here))
    try:
        require_engine(here.runner)
    except PlanoError as exc:
        made.not_started = str(exc)
        return made
    made.started = stack.up(here.with_mode(Mode.DEV))
    return made
