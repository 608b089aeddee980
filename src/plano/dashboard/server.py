"""`plano dashboard`: the dashboard served by uvicorn on 127.0.0.1 only, until interrupted
(or, with --until-eof, until stdin closes: `plano -e NAME dashboard` runs a server's so,
reached through `ssh -L`, see ops/remote.py)."""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import RefusedError, UsageError
from plano.core.session import Session
from plano.ops import access

HOST = "127.0.0.1"
GRACE_SECONDS = 3
SOCKET_PATH_MAX = 107  # bytes, with the final NUL: sun_path on Linux


def serve(session: Session, port: int, until_eof: bool = False) -> None:
    import uvicorn

    from plano.dashboard.app import HOSTS, create_app

    root = session.root
    manifest = session.manifest  # a plano.yml that does not load is said before anything is served
    if not access.users(root):
        raise RefusedError("no dashboard user yet: add one with plano dashboard passwd USER --role operator, then start it again")
    sockets = [tcp_socket(port)]
    edge, bound = root / n.dashboard_socket(), None
    # `plano -e NAME dashboard` (--until-eof) is one laptop's, through ssh -L: the domain
    # stays with the server's own dashboard.
    domain = None if until_eof else manifest.dashboard.domain
    try:
        if domain is not None:
            sockets.append(unix_socket(edge))
            bound = edge.stat().st_ino
        app = create_app(root, hosts=HOSTS + ((domain,) if domain else ()))
        session.out.note(f"plano dashboard: http://{HOST}:{port}/ (ctrl-c stops it)")
        if domain is not None:
            session.out.note(f"and https://{domain}/ through nginx (its socket: {n.dashboard_socket()})")
        config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False,
                                proxy_headers=False, date_header=True, lifespan="off",
                                timeout_graceful_shutdown=GRACE_SECONDS)  # a page following a log holds its request open
        served = uvicorn.Server(config)
        if until_eof:
            stop_at_eof(served)
        exit_on_sigterm()
        try:
            served.run(sockets=sockets)
        finally:
            app.state.board.followers.stop_all()  # no `docker logs --follow` outlives the dashboard
    finally:
        for sock in sockets:
            sock.close()
        if bound is not None:
            remove_own(edge, bound)


def exit_on_sigterm() -> None:
    """uvicorn stops on SIGTERM (systemd's stop, `kill`), then raises the signal again once
    it has: by default that ends the process at once, before the log followers are
    stopped and the socket file removed (below). Raised as SystemExit, they are."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, ended)


def ended(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def tcp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise RefusedError(f"--port {port}: {HOST}:{port} cannot be served ({exc.strerror}); "
                           "stop what holds it or give another --port") from None
    return sock


def unix_socket(path: Path) -> socket.socket:
    """The socket nginx proxies dashboard.domain to (data/nginx/, which nginx mounts).
    Mode 0666, as any local user may open 127.0.0.1: the dashboard's sign-in guards both."""
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise UsageError(f"dashboard/domain: the socket path {path} is longer than a unix socket's "
                         f"{SOCKET_PATH_MAX} bytes; move the infra folder to a shorter path")
    if not path.parent.is_dir():
        raise RefusedError(f"dashboard/domain: {path.parent} does not exist yet; start the stack first (plano prod up)")
    if path.exists() or path.is_symlink():
        if answers(path):
            raise RefusedError(f"dashboard/domain: another plano dashboard already listens on {path}; stop it first")
        path.unlink()  # left by a dashboard that was killed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o666)
    except OSError as exc:
        sock.close()
        raise RefusedError(f"dashboard/domain: cannot listen on {path} ({exc.strerror})") from None
    return sock


def answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def remove_own(path: Path, inode: int) -> None:
    """Remove the socket file if it is still the one this dashboard bound."""
    try:
        if path.is_socket() and path.stat().st_ino == inode:
            path.unlink()
    except OSError:
        pass


def stop_at_eof(served) -> None:
    """Stop the server when stdin closes: run by `plano -e NAME dashboard` over SSH, whose
    end (ctrl-c there, or a dropped connection) closes it."""
    import sys

    def wait() -> None:
        while sys.stdin.buffer.read1(4096) if hasattr(sys.stdin.buffer, "read1") else sys.stdin.buffer.read(1):
            pass
        served.should_exit = True

    threading.Thread(target=wait, name="plano-dashboard-eof", daemon=True).start()
