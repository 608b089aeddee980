"""Pure rendering: Manifest (+ secret values) -> Tree of files. No I/O here."""

from __future__ import annotations

from plano.core.files import Tree
from plano.core.manifest import Manifest
from plano.render import compose, envfiles, kubernetes, nginx, repo, services, stack


def render_infra(manifest: Manifest, env_values: dict[str, dict[str, str]], with_kubernetes: bool = False) -> Tree:
    """The whole infra repo. `env_values` maps env file name -> values already chosen;
    `with_kubernetes`: the Kubernetes export too (k8s/, once `plano export kubernetes` made it)."""
    tree: Tree = {}
    for family in (compose, stack, nginx, services, envfiles, repo):
        tree.update(family.render(manifest, env_values))
    if with_kubernetes:
        tree.update(kubernetes.render(manifest))
    return tree
