"""`plano dashboard`: the dashboard served by uvicorn on 127.0.0.1 only (reach a server's
through `ssh -L 8800:127.0.0.1:8800 SERVER`), until interrupted."""

from __future__ import annotations

from plano.core.errors import RefusedError
from plano.core.session import Session
from plano.ops import access

HOST = "127.0.0.1"


def serve(session: Session, port: int) -> None:
    import uvicorn

    from plano.dashboard.app import create_app

    root = session.root
    session.infra  # noqa: B018 - a plano.yml that does not load is said before anything is served
    if not access.users(root):
        raise RefusedError("no dashboard user yet: add one with plano dashboard passwd USER --role operator, then start it again")
    app = create_app(root)
    session.out.note(f"plano dashboard: http://{HOST}:{port}/ (ctrl-c stops it)")
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, date_header=True, lifespan="off")
    uvicorn.Server(config).run()
