"""`plano maintenance on|off APP`: nginx answers the app's requests with its 503 page
while a flag file exists; the other apps, ACME challenges and healthchecks go on."""

from __future__ import annotations

from plano.core.manifest import require_app
from plano.core.session import Session
from plano.engine import nginx


def switch(session: Session, app: str, on: bool) -> str:
    """Returns the flag file's path, relative to the infra."""
    require_app(session.manifest, app)
    return nginx.set_maintenance(session, app, on)


def is_on(session: Session, app: str) -> bool:
    """Whether nginx answers the app's requests with its maintenance page now."""
    from plano.core import naming as n

    return (session.root / n.maintenance_flag(app, session.stack_mode)).is_file()
