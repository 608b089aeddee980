"""App repositories: the files plano adds to an app repo (CI pipelines, README).

Every file is created only when missing: an existing file is never overwritten, so
the same tree serves a new repo and the adoption of an existing one.
"""

from __future__ import annotations

from .files import File, Kind, Tree
from .render.templating import render_app_template

T = "app-repo"
# Stored without the leading dot so that every packaging tool ships them.
REPO_FILES = {
    ".github/workflows/ci.yml": f"{T}/github/workflows/ci.yml.j2",
    ".gitlab-ci.yml": f"{T}/gitlab-ci.yml.j2",
    "README.md": f"{T}/README.md.j2",
}


def registry_host(registry: str) -> str:
    """registry.example.com/acme -> registry.example.com (what `docker login` takes)."""
    return registry.split("/", 1)[0]


def repo_tree(app: str, registry: str, domain: str) -> Tree:
    values = {
        "app": app,
        "domain": domain,
        "registry": registry,
        "registry_host": registry_host(registry),
        "var_prefix": app.upper().replace("-", "_"),
    }
    return {path: File(render_app_template(template, **values), kind=Kind.USER) for path, template in REPO_FILES.items()}
