"""`plano dashboard`: the dashboard served by uvicorn on 127.0.0.1 only, until interrupted
(or, with --until-eof, until stdin closes: `plano -e NAME dashboard` runs a server's so,
reached through `ssh -L`, see ops/remote.py)."""

from __future__ import annotations

from plano.core.errors import RefusedError
from plano.core.session import Session
from plano.ops import access

HOST = "127.0.0.1"
GRACE_SECONDS = 3


def serve(session: Session, port: int, until_eof: bool = False) -> None:
    import uvicorn

    from plano.dashboard.app import create_app

    root = session.root
    session.infra  # noqa: B018 - a plano.yml that does not load is said before anything is served
    if not access.users(root):
        raise RefusedError("no dashboard user yet: add one with plano dashboard passwd USER --role operator, then start it again")
    app = create_app(root)
    session.out.note(f"plano dashboard: http://{HOST}:{port}/ (ctrl-c stops it)")
    config = uvicorn.Config(app, host=HOST, port=port, log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, date_header=True, lifespan="off",
                            timeout_graceful_shutdown=GRACE_SECONDS)  # a page following a log holds its request open
    served = uvicorn.Server(config)
    if until_eof:
        stop_at_eof(served)
    try:
        served.run()
    finally:
        app.state.board.followers.stop_all()  # no `docker logs --follow` outlives the dashboard


def stop_at_eof(served) -> None:
    """Stop the server when stdin closes: run by `plano -e NAME dashboard` over SSH, whose
    end (ctrl-c there, or a dropped connection) closes it."""
    import sys
    import threading

    def wait() -> None:
        while sys.stdin.buffer.read1(4096) if hasattr(sys.stdin.buffer, "read1") else sys.stdin.buffer.read(1):
            pass
        served.should_exit = True

    threading.Thread(target=wait, name="plano-dashboard-eof", daemon=True).start()
