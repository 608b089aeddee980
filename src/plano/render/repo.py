"""Repository-level files: README.md, .gitignore and the user-owned starters."""

from __future__ import annotations

from plano.core import naming as n
from plano.core.files import File, Kind, Tree
from plano.core.manifest import Manifest
from plano.render.templating import generated, render_template


def service_summary(path: str, port: int, enabled: bool) -> str:
    return f"`{path}` -> :{port}" if enabled else "-"


def readme_rows(manifest: Manifest) -> list[dict[str, object]]:
    return [
        {
            "name": name,
            "domains": app.domains,
            "backend": service_summary(app.backend.path, app.backend.port, app.backend.enabled),
            "frontend": service_summary(app.frontend.path, app.frontend.port, app.frontend.enabled),
            "dev_domain": n.dev_domains(manifest, name)[0],
        }
        for name, app in manifest.apps.items()
    ]


def user_files(manifest: Manifest) -> Tree:
    tree: Tree = {f"docker/nginx/{n.CUSTOM_SNIPPETS}/README.md": File(render_template("infra/custom-README.md"), kind=Kind.USER)}
    for name, app in manifest.apps.items():
        for role in app.services():
            text = render_template("infra/env/service.env.j2", service=n.service(name, role))
            tree[n.env_file(name, role)] = File(text, kind=Kind.USER)
    return tree


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    del env_values
    tree: Tree = {}
    tree |= generated(
        "README.md",
        "infra/README.md.j2",
        name=manifest.name,
        registry=manifest.registry,
        apps=readme_rows(manifest),
        dev_suffix=manifest.dev.domain_suffix,
        dev_database_port=manifest.dev.database_port,
    )
    tree |= generated(".gitignore", "infra/gitignore.j2", environments=sorted(manifest.environments))
    tree |= user_files(manifest)
    return tree
