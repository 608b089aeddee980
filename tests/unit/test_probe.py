"""The apps' compose healthcheck, run for real with the machine's Node against a local
HTTP server: healthy means 2xx or 3xx from the health route, nothing else."""

import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plano.render.compose import node_probe

STATUS = {"/ok": 200, "/no-content": 204, "/moved": 302, "/missing": 404, "/auth": 401, "/error": 500, "/down": 503}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        status = STATUS.get(self.path, 404)
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/missing")  # followed, it would be a 404
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path, healthy", [("/ok", True), ("/no-content", True), ("/moved", True), ("/missing", False),
                                           ("/auth", False), ("/error", False), ("/down", False)])
def test_healthy_means_2xx_or_3xx(server, path, healthy):
    node = shutil.which("node")
    assert node, "the test needs Node on the machine (Debian's nodejs)"
    probe = node_probe(server, path)
    assert probe[:3] == ["CMD", "node", "-e"]
    result = subprocess.run([node, "-e", probe[3]], capture_output=True, text=True, timeout=30)
    assert (result.returncode == 0) is healthy, (path, result.stderr)


def test_a_closed_port_is_not_healthy():
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as httpd:
        port = httpd.server_address[1]  # closed again when the block ends
    result = subprocess.run([shutil.which("node") or "node", "-e", node_probe(port, "/ok")[3]], capture_output=True, timeout=30)
    assert result.returncode == 1
