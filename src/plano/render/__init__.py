"""Pure rendering: Manifest (+ secret values) -> Tree of files. No I/O here."""

from __future__ import annotations

from plano.core.files import Tree
from plano.core.manifest import Manifest
from plano.render import compose, envfiles, nginx, repo, services, stack


def render_infra(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    """The whole infra repo. `env_values` maps env file name -> values already chosen."""
    tree: Tree = {}
    for family in (compose, stack, nginx, services, envfiles, repo):
        tree.update(family.render(manifest, env_values))
    return tree
