"""Plain-data views of the manifest for listings (`--json` and tables)."""

from __future__ import annotations

from typing import Any

from plano.core import naming as n
from plano.core.manifest import Manifest


def app_rows(manifest: Manifest) -> list[dict[str, Any]]:
    rows = []
    for name, app in manifest.apps.items():
        services = app.services()
        rows.append(
            {
                "name": name,
                "domains": list(app.domains),
                "dev_domains": n.dev_domains(manifest, name),
                **{
                    role: (
                        {
                            "service": n.service(name, role),
                            "port": services[role].port,
                            "path": services[role].path,
                            "health": services[role].health,
                            "source": n.source(name, app, role),
                            "build_context": n.build_context(name, app, role),
                            "image": n.prod_image(manifest, name, role),
                        }
                        if role in services
                        else None
                    )
                    for role in n.ROLES
                },
                "database": app.database,
                "redis": app.redis,
                "repo": app.repo,
            }
        )
    return rows
