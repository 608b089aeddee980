"""App repositories: the files plano adds to an app repo (CI pipelines for now).

Every file is created only when missing: an existing file is never overwritten, so
the same tree serves a new repo and the adoption of an existing one.
"""

from __future__ import annotations

from .files import File, Kind, Tree
from .render.templating import render_app_template

T = "app-repo"
# Stored without the leading dot so that every packaging tool ships them.
CI_FILES = {
    ".github/workflows/ci.yml": f"{T}/github/workflows/ci.yml.j2",
    ".gitlab-ci.yml": f"{T}/gitlab-ci.yml.j2",
}


def registry_host(registry: str) -> str:
    """registry.example.com/acme -> registry.example.com (what `docker login` takes)."""
    return registry.split("/", 1)[0]


def ci_tree(app: str, registry: str) -> Tree:
    values = {"app": app, "registry": registry, "registry_host": registry_host(registry)}
    return {path: File(render_app_template(template, **values), kind=Kind.USER) for path, template in CI_FILES.items()}
