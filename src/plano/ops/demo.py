"""`plano demo`: a workspace with an infra and one small app, validated, and started
where a Docker engine answers.

The demo app (templates/demo-app) is a tiny Node backend and frontend with the
shape of a real app repo: Dockerfiles with dev and prod targets, health endpoints,
Postgres and Redis use. The end-to-end tests run it too.
"""

from __future__ import annotations

from pathlib import Path

from plano.core.errors import RefusedError, UsageError
from plano.core.manifest import DEFAULT_IMAGES
from plano.core.runner import Runner
from plano.ops import infra
from plano.ops.scaffold import copy_template

DEMO_APP = "demo-app"


def copy_demo_app(dest: Path) -> None:
    """The demo app's backend/ and frontend/ into dest (e.g. workspace/app1)."""
    copy_template(DEMO_APP, dest)


def parse_images(pairs: tuple[str, ...]) -> dict[str, str]:
    images = {}
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or name not in DEFAULT_IMAGES or not ref:
            raise UsageError(f"--image {pair}: write NAME=REF with NAME one of {', '.join(DEFAULT_IMAGES)}")
        images[name] = ref
    return images


def create(workspace: Path, runner: Runner, images: dict[str, str] | None = None) -> Path:
    """workspace/infra + workspace/app1; returns the infra folder."""
    if workspace.exists() and any(workspace.iterdir()):
        raise RefusedError(f"{workspace}: not empty; give 'plano demo' a new folder, or remove this one")
    root = workspace / "infra"
    infra.init(root, "registry.example.com/demo", "ops@example.com", "demo", False, runner, images)
    copy_demo_app(workspace / "app1")
    infra.add_app(infra.load(root), "app1", infra.app_entry(["app1.example.com"], {}, {}))
    return root
