"""The rendered nginx config, run for real in the stack's nginx image: routing, TLS
before any certificate, redirects, unknown hosts, headers on every response, and an
app that starts after nginx does.

The apps are stand-ins (the test nginx image answering JSON) on a network of the
test's own; traffic goes only to ports published on 127.0.0.1.
"""

import http.client
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from plano.core import manifest as mf
from plano.core import naming as n
from plano.core.runner import SubprocessRunner
from plano.ops import check
from tests.integration.net import http_get, https_request, wait_for
from tests.integration.test_validators import make_infra

pytestmark = pytest.mark.expected_seconds(12)  # on a 2-core machine

STAND_IN_APP = """\
events {}
http {
    server {
        listen %(port)d;
        default_type application/json;
        location = /api/missing { return 404 '{"error":"missing"}'; }
        location / {
            add_header X-Powered-By Express;
            return 200 '{"service":"%(name)s","uri":"$request_uri","xff":"$http_x_forwarded_for","proto":"$http_x_forwarded_proto"}';
        }
    }
}
"""


def docker(*args: str, check_ok: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check_ok:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class Stack:
    """Containers on one network, removed at the end even when a test fails."""

    def __init__(self, image: str, workdir: Path) -> None:
        self.image = image
        self.workdir = workdir
        self.network = f"plano-it-{uuid.uuid4().hex[:8]}"
        self.containers: list[str] = []
        docker("network", "create", self.network)

    def app(self, alias: str, port: int = 3000) -> None:
        conf = self.workdir / f"{alias}.conf"
        conf.write_text(STAND_IN_APP % {"port": port, "name": alias})
        name = f"{self.network}-{alias}"
        docker("run", "-d", "--name", name, "--network", self.network, "--network-alias", alias,
               "-v", f"{conf}:/etc/nginx/nginx.conf:ro", self.image)
        self.containers.append(name)

    def nginx(self, tag: str, root: Path, webroot: Path) -> tuple[int, int]:
        name = f"{self.network}-nginx"
        docker("run", "-d", "--name", name, "--network", self.network, "-p", "127.0.0.1::80", "-p", "127.0.0.1::443",
               "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/var/cache/nginx", "--tmpfs", "/run",
               "--tmpfs", "/etc/nginx/certs", "--tmpfs", "/etc/plano/runtime", "--tmpfs", n.LOGS_IN_NGINX,
               "-v", f"{(root / 'docker/nginx').resolve()}:/etc/plano/nginx:ro",
               "-v", f"{webroot}:/var/www/certbot:ro", tag, "nginx", "-c", n.NGINX_CONF, "-g", "daemon off;")
        self.containers.append(name)
        ports = [int(docker("port", name, f"{p}/tcp").splitlines()[0].rsplit(":", 1)[1]) for p in (80, 443)]
        wait_for(lambda: http_get(ports[0], "app1.example.com", "/")[0] == 308, f"nginx never answered:\n{self.logs(name)}")
        return ports[0], ports[1]

    def logs(self, name: str) -> str:
        return docker("logs", name, check_ok=False)

    def close(self) -> None:
        for name in self.containers:
            docker("rm", "-f", name, check_ok=False)
        docker("network", "rm", self.network, check_ok=False)


@pytest.fixture
def stack(workspace, capsys, engine):
    root = make_infra(workspace, capsys, 2, engine)
    manifest = mf.load_text((root / "plano.yml").read_text())
    runner = SubprocessRunner()
    build = runner.run(check.nginx_build_argv(root, manifest), timeout=900)
    assert build.ok, build.output
    webroot = workspace / "webroot"
    (webroot / ".well-known/acme-challenge").mkdir(parents=True)
    (webroot / ".well-known/acme-challenge/token123").write_text("token123.key")
    running = Stack(engine, workspace)
    try:
        running.app("app1-backend")
        running.app("app1-frontend")
        ports = running.nginx(check.nginx_tag(root, manifest), root, webroot)
        yield running, ports
    finally:
        running.close()


SECURITY_HEADERS = ("strict-transport-security", "x-content-type-options", "x-frame-options", "referrer-policy")


def test_routes_tls_and_headers(stack):
    running, (http_port, https_port) = stack

    status, headers, _ = http_get(http_port, "app1.example.com", "/some/page?q=1")
    assert status == 308 and headers["location"] == "https://app1.example.com/some/page?q=1"
    status, _, body = http_get(http_port, "www.app1.example.com", "/.well-known/acme-challenge/token123")
    assert (status, body) == (200, b"token123.key")

    status, headers, body = https_request(https_port, "app1.example.com", "/api/users", headers={"X-Forwarded-For": "6.6.6.6"})
    assert status == 200 and b'"service":"app1-backend"' in body and b'"uri":"/api/users"' in body
    assert b'"xff":"' in body and b"6.6.6.6" not in body, "X-Forwarded-For must be replaced, not appended"
    assert b'"proto":"https"' in body
    assert all(h in headers for h in SECURITY_HEADERS), headers
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert headers.get("server") == "nginx" and "x-powered-by" not in headers

    status, headers, body = https_request(https_port, "app1.localhost", "/")
    assert status == 200 and b'"service":"app1-frontend"' in body

    status, headers, _ = https_request(https_port, "app1.example.com", "/api/missing")
    assert status == 404 and all(h in headers for h in SECURITY_HEADERS)


def test_unknown_hosts_get_nothing(stack):
    running, (http_port, https_port) = stack
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        http_get(http_port, "evil.example.net", "/")
    with pytest.raises(ssl.SSLError):
        https_request(https_port, "evil.example.net", "/")


def test_absent_app_answers_502_then_is_served_once_it_starts(stack):
    running, (_, https_port) = stack
    status, headers, _ = https_request(https_port, "app2.example.com", "/api/x")
    assert status == 502 and "strict-transport-security" in headers
    running.app("app2-backend")
    wait_for(lambda: https_request(https_port, "app2.example.com", "/api/x")[0] == 200,
             "nginx did not pick up app2-backend after it started", seconds=15)
    # app1 kept working throughout.
    assert https_request(https_port, "app1.example.com", "/api/ok")[0] == 200
