"""dashboard.domain: the unix socket `plano dashboard` opens for nginx (a stale one
replaced, a live one refused), and the client address read from nginx's X-Real-IP on
that socket only. nginx itself in front: tests/integration/test_certs_e2e.py."""

import asyncio
import socket
import stat

import pytest

from plano.core.errors import RefusedError, UsageError
from plano.dashboard import security, server


def test_the_socket_is_open_to_nginx_and_never_taken_from_a_running_dashboard(tmp_path):
    path = tmp_path / "dashboard.sock"
    with pytest.raises(RefusedError, match=r"dashboard/domain: .*/nope does not exist yet; start the stack first"):
        server.unix_socket(tmp_path / "nope" / "dashboard.sock")
    first = server.unix_socket(path)
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o666
    first.listen(1)
    with pytest.raises(RefusedError, match="another plano dashboard already listens on"):
        server.unix_socket(path)
    first.close()  # killed: its file stays, and nothing answers on it
    second = server.unix_socket(path)
    second.listen(1)
    assert server.answers(path)  # a new socket, not the dead one's file
    server.remove_own(path, path.stat().st_ino + 1)  # not the file this dashboard bound: kept
    assert path.exists()
    server.remove_own(path, path.stat().st_ino)
    assert not path.exists()
    second.close()


def test_a_socket_path_too_long_for_unix_is_said(tmp_path):
    deep = tmp_path / ("x" * 100)
    deep.mkdir()
    with pytest.raises(UsageError, match="dashboard/domain: the socket path .* is longer than a unix socket's 107 bytes"):
        server.unix_socket(deep / "dashboard.sock")


def test_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(RefusedError, match=rf"--port {port}: 127.0.0.1:{port} cannot be served .*give another --port"):
            server.tcp_socket(port)


def seen_by_the_app(client, headers: list[tuple[bytes, bytes]]) -> dict:
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    asyncio.run(security.FromNginx(app)({"type": "http", "client": client, "scheme": "http", "headers": headers}, None, None))
    return seen


def test_only_the_socket_nginx_uses_reads_the_client_from_x_real_ip():
    forwarded = [(b"x-real-ip", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]
    through_nginx = seen_by_the_app(None, forwarded)  # a unix socket's request has no client address
    assert (through_nginx["client"], through_nginx["scheme"]) == (("203.0.113.7", 0), "https")
    local = seen_by_the_app(("127.0.0.1", 50000), forwarded)  # 127.0.0.1: the headers are whatever a local client sent
    assert (local["client"], local["scheme"]) == (("127.0.0.1", 50000), "http")
    assert seen_by_the_app(None, [])["client"] is None


def test_a_dashboard_stopped_by_sigterm_removes_its_socket(tmp_path):
    """systemd stops a service with SIGTERM: the dashboard ends with 143, its socket gone."""
    import signal
    import subprocess
    import sys
    import time

    def plano(*args: str, stdin: str = "") -> None:
        done = subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=tmp_path / "infra", input=stdin, check=False,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    (tmp_path / "infra").mkdir()
    plano("init", ".", "--registry", "registry.example.com/acme", "--email", "ops@example.com")
    plano("app", "add", "app1", "--domain", "app1.example.com")
    manifest = tmp_path / "infra/plano.yml"
    manifest.write_text(manifest.read_text().replace("\napps:\n", "\ndashboard: {domain: ops.example.com}\napps:\n", 1))
    plano("dashboard", "passwd", "ops", "--role", "viewer", stdin="a long enough passphrase\n")
    (tmp_path / "infra/data/nginx").mkdir(parents=True, exist_ok=True)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    sock = tmp_path / "infra/data/nginx/dashboard.sock"
    proc = subprocess.Popen([sys.executable, "-m", "plano.cli", "dashboard", "--port", str(port)], cwd=tmp_path / "infra",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (sock.exists() and server.answers(sock)) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert server.answers(sock), proc.communicate(timeout=5)
        with socket.socket(socket.AF_UNIX) as client:  # through the socket, as nginx asks
            client.connect(str(sock))
            client.sendall(b"GET /login HTTP/1.1\r\nHost: ops.example.com\r\nX-Real-IP: 203.0.113.7\r\nConnection: close\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.1 200")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert not sock.exists() and "Traceback" not in err
