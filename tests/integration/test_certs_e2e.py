"""HTTPS for real: certificates from a real ACME server (Debian's pebble, HTTP-01
validated through the rendered nginx, no PEBBLE_VA_ALWAYS_VALID), installed with
no reload (nginx's workers load them at the handshake), renewed under load,
failures explained, TLS checked by sslyze."""

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.acme import acme_server
from tests.integration.loadgen import Load, Probe
from tests.integration.net import http_get
from tests.integration.stackfixtures import (
    REGISTRY,
    docker,
    make_workspace,
    plano,
    prod_running,
)
from tests.integration.test_prod_e2e import build_and_push, set_env

pytestmark = pytest.mark.expected_seconds(170)  # on a 2-core machine

NAMES = {"app1": ["app1.example.com", "www.app1.example.com"], "app2": ["app2.example.com", "www.app2.example.com"]}
BLOCKED = "blocked-domain.example"  # pebble's blocklist (scripts/harness/pebble.sh)
VALIDITY = 90 * 86400  # like Let's Encrypt; sslyze's Mozilla check wants <= 366 days


@pytest.fixture(scope="module")
def workspace_with_acme(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("certs"))
    with acme_server(ws, tmp_path_factory.mktemp("pebble"), VALIDITY) as server:
        yield ws, server


@pytest.fixture(scope="module")
def pebble(workspace_with_acme):
    return workspace_with_acme[1]


@pytest.fixture(scope="module")
def site(workspace_with_acme):
    ws, _ = workspace_with_acme
    # A third app whose only name pebble refuses; it reuses app1's frontend image.
    plano("app", "add", "blocked", "--domain", BLOCKED, "--no-backend", "--no-database", "--no-redis",
          "--frontend-image", f"{REGISTRY}/{ws.name}/app1-frontend", cwd=ws.infra)
    build_and_push(ws, "1.0.0")
    set_env(ws.infra / ".env.prod", APP1_BACKEND_TAG="1.0.0", APP1_FRONTEND_TAG="1.0.0", APP2_BACKEND_TAG="1.0.0",
            APP2_FRONTEND_TAG="1.0.0", BLOCKED_FRONTEND_TAG="1.0.0")
    with prod_running(ws):
        yield ws


def verified(port: int, name: str, root: str) -> dict:
    """A TLS handshake that must verify against pebble's current root, for `name`."""
    context = ssl.create_default_context(cadata=root)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname=name) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        head = tls.recv(64)
        cert = tls.getpeercert()
    assert head.startswith(b"HTTP/1.1 200"), head
    return cert


def workers(ws) -> dict[str, str]:
    """nginx's worker processes: pid -> their groups (a reload would replace every one)."""
    script = ('for f in /proc/[0-9]*/cmdline; do d=${f%/cmdline}; case "$(tr "\\0" " " < "$f" 2>/dev/null)" in '
              '"nginx: worker"*) echo "${d#/proc/} $(grep ^Gid: $d/status | cut -f2) $(grep ^Groups: $d/status | cut -f2)";; '
              'esac; done')
    out = docker("exec", f"{ws.name}-nginx-1", "sh", "-c", script).stdout
    found = dict(line.split(" ", 1) for line in out.splitlines() if line.strip())
    assert found, "no nginx worker process found"
    return found


def status(ws) -> dict[str, dict]:
    return {row["domain"]: row for row in json.loads(plano("certs", "status", "--json", cwd=ws.infra).stdout)}


def test_1_issue_for_two_apps_one_certificate_each(site, pebble):
    ws = site
    before = status(ws)
    assert before["app1.example.com"]["source"] == "placeholder" and before["app1.example.com"]["serving"]
    pids = workers(ws)
    # The workers run with certbot's group (1001), which lets them read the keys (0640).
    assert all(groups.split()[0] == "1001" for groups in pids.values()), pids
    out = plano("certs", "issue", "app1", "app2", cwd=ws.infra, timeout=600)
    assert "nginx serves the new certificates (no reload)" in out.stdout
    assert workers(ws) == pids  # no reload: the same workers serve the new certificates
    print(f"certs issue: nginx workers unchanged ({len(pids)}: {' '.join(sorted(pids))})")
    rows = status(ws)
    for app, names in NAMES.items():
        for name in names:
            cert = verified(ws.ports["prod_https"], name, pebble.root())
            assert sorted(v for k, v in cert["subjectAltName"]) == sorted(names)
            row = rows[name]
            assert row["source"] == "acme" and row["serving"] and row["covers_domain"] and "Pebble" in row["issuer"], row
            served_until = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), dt.UTC)
            assert dt.datetime.fromisoformat(row["not_after"]) == served_until
            assert row["days_left"] in (89, 90)
    assert (ws.infra / "data/certs/live/app1/fullchain.pem").is_file()
    key = (ws.infra / "data/certs/plano/app1/privkey.pem").stat()
    # Written by certbot's own user (not root); nginx's workers read it through that group.
    assert (oct(key.st_mode & 0o777), key.st_uid, key.st_gid) == ("0o640", 1001, 1001)
    certbot = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={ws.name}",
                     "--filter", "label=com.docker.compose.service=certbot").stdout.strip()
    assert docker("exec", certbot, "id", "-u").stdout.strip() == "1001"


def test_2_a_refused_name_is_explained_and_the_others_are_unaffected(site, pebble):
    ws = site
    serials = {name: status(ws)[name]["serial"] for name in ("app1.example.com", "app2.example.com")}
    proc = plano("certs", "issue", "--all", cwd=ws.infra, check=False, timeout=600)
    assert proc.returncode == 1
    assert f"error: blocked: {BLOCKED}: the ACME server refuses to issue for this name" in proc.stderr
    assert "no new certificate for blocked" in proc.stderr
    rows = status(ws)
    assert rows[BLOCKED]["source"] == "placeholder"
    for name, serial in serials.items():
        assert rows[name]["serial"] == serial and rows[name]["serving"]
        verified(ws.ports["prod_https"], name, pebble.root())


def test_3_forced_renewal_under_load_fails_no_request(site, pebble):
    ws = site
    port = ws.ports["prod_https"]
    context = ssl.create_default_context(cadata=pebble.root())
    before = status(ws)["app1.example.com"]["serial"]
    stop = threading.Event()
    results: list[tuple[bool, str]] = []

    def load() -> None:
        deadline = time.monotonic() + 240  # bounded even if the test fails
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
                        context.wrap_socket(sock, server_hostname="app1.example.com") as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: app1.example.com\r\nConnection: close\r\n\r\n")
                    head = tls.recv(16)
                    serial = format(int(tls.getpeercert()["serialNumber"], 16), "x")
                results.append((head.startswith(b"HTTP/1.1 200"), serial))
            except OSError as exc:
                results.append((False, repr(exc)))

    threads = [threading.Thread(target=load) for _ in range(4)]
    # Keep-alive clients too: no reload closes their connections.
    pids = workers(ws)
    kept = Load(port, "app1.example.com", workers=2, max_seconds=240, keepalive=True, probes=(Probe("GET", "/"),))
    for thread in threads:
        thread.start()
    kept.start()
    try:
        time.sleep(1)
        out = plano("certs", "renew", "--force", cwd=ws.infra, timeout=600)
        time.sleep(2)
    finally:
        stop.set()
        kept.stop()
        for thread in threads:
            thread.join(timeout=30)
    after = status(ws)["app1.example.com"]["serial"]
    failures = [detail for ok, detail in results if not ok]
    serials = {detail for ok, detail in results if ok}
    print(f"renewal under load: {len(results)} requests, {len(failures)} failed, serials seen {len(serials)}; "
          f"keep-alive clients: {kept.summary()}")
    assert "app1/fullchain.pem (success)" in out.stdout and "app2/fullchain.pem (success)" in out.stdout
    assert after != before and {before, after} <= serials
    assert len(results) > 50 and failures == []
    assert kept.failures == [], kept.explain(f"{ws.name}-nginx-1")
    assert workers(ws) == pids, "nginx was reloaded"
    print(f"certs renew: nginx workers unchanged ({len(pids)})")


def test_4_tls_quality(site, pebble):
    ws = site
    https, http = ws.ports["prod_https"], ws.ports["prod_http"]
    sslyze = Path(os.sys.executable).parent / "sslyze"
    root = ws.root / "pebble-root.pem"  # trusted for certificate_path_validation
    root.write_text(pebble.root())
    for name in (n for names in NAMES.values() for n in names):
        proc = subprocess.run([str(sslyze), "--mozilla_config=intermediate", "--certinfo_ca_file", str(root),
                               f"{name}:{https}{{127.0.0.1}}"],
                              capture_output=True, text=True, timeout=300)
        # sslyze exits 0 when it cannot connect: prove it did.
        assert "Connectivity errors" not in proc.stdout and "SCAN RESULTS FOR" in proc.stdout, proc.stdout[-2000:]
        assert proc.returncode == 0 and f"{name}:{https}: OK - Compliant." in proc.stdout, proc.stdout[-3000:]
    # HTTP: a 308 to HTTPS, except for ACME challenges.
    status_code, headers, _ = http_get(http, "app1.example.com", "/some/page?x=1")
    assert status_code == 308 and headers["location"] == "https://app1.example.com/some/page?x=1"
    challenge = ws.infra / "data/certs/webroot/.well-known/acme-challenge/probe-token"
    challenge.parent.mkdir(parents=True, exist_ok=True)
    challenge.write_text("probe-content")
    status_code, _, body = http_get(http, "app1.example.com", "/.well-known/acme-challenge/probe-token")
    assert status_code == 200 and body == b"probe-content"
    # An unknown Host gets no app content; an unknown SNI gets no handshake.
    with pytest.raises((ConnectionError, OSError)):
        http_get(http, "unknown.example.net", "/")
    context = ssl.create_default_context(cadata=pebble.root())
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", https), timeout=5) as sock:
        context.wrap_socket(sock, server_hostname="unknown.example.net")
    # Security headers on every response, 404s included; no versions, no X-Powered-By.
    for path in ("/", "/no-such-page", "/api/no-such-route"):
        with socket.create_connection(("127.0.0.1", https), timeout=5) as sock, \
                context.wrap_socket(sock, server_hostname="app1.example.com") as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: app1.example.com\r\nConnection: close\r\n\r\n".encode())
            raw = b""
            while chunk := tls.recv(65536):
                raw += chunk
        head = raw.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert "strict-transport-security: max-age=" in head, (path, head)
        for header in ("x-content-type-options: nosniff", "referrer-policy:", "x-frame-options:"):
            assert header in head, (path, header, head)
        assert "x-powered-by" not in head and "server: nginx\r\n" in head + "\r\n", (path, head)


def through_nginx(port: int, name: str, root: str, path: str, token: str = "") -> tuple[int, dict[str, str], bytes]:
    """One HTTPS request to nginx for `name`, the certificate verified against pebble's root."""
    context = ssl.create_default_context(cadata=root)
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, \
            context.wrap_socket(sock, server_hostname=name) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\n{auth}Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {key.lower(): value.strip() for key, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_4b_the_dashboard_on_its_own_domain_behind_nginx(site, pebble, tmp_path):
    """dashboard.domain: plano render adds its site (and reloads nginx), plano certs issue
    --dashboard gets its certificate from pebble, chromium signs in at
    https://ops.example.com through nginx (to the unix socket plano dashboard opens in
    data/nginx/), and the API answers a token there; once the dashboard stops, nginx
    answers 502 and the socket is gone. The screenshot is in the test's tmp dir."""
    from tests.integration.browser import LAPTOP, add_user, chromium, dashboard, sign_in
    from tests.integration.test_deploy_e2e import running_tag

    ws, name = site, "ops.example.com"
    port, root = ws.ports["prod_https"], pebble.root()
    manifest = ws.infra / "plano.yml"
    before = manifest.read_text()
    manifest.write_text(before.replace("\napps:\n", f"\ndashboard: {{domain: {name}}}\napps:\n", 1))
    sock = ws.infra / "data/nginx/dashboard.sock"
    try:
        plano("render", cwd=ws.infra)
        assert status(ws)[name]["source"] == "placeholder"
        out = plano("certs", "issue", "--dashboard", cwd=ws.infra, timeout=600)
        assert "plano: certificate installed" in out.stdout and "nginx serves the new certificates" in out.stdout
        row = status(ws)[name]
        assert (row["app"], row["source"], row["serving"], row["covers_domain"]) == ("plano", "acme", True, True), row
        add_user(ws.infra, "ops", "a long enough passphrase", "viewer")
        token = plano("dashboard", "token", "reader", cwd=ws.infra).stdout.strip().split()[-1]
        with dashboard(ws.infra, tmp_path / "dashboard.log"):
            assert oct(sock.stat().st_mode & 0o777) == "0o666"
            code, headers, _ = through_nginx(port, name, root, "/login")
            assert code == 200 and headers["strict-transport-security"].startswith("max-age=")
            assert headers["content-security-policy"].startswith("default-src 'none'")  # the dashboard's own
            code, _, body = through_nginx(port, name, root, "/api/status", token)
            assert code == 200 and {"app1", "app2"} <= {app["app"] for app in json.loads(body)["apps"]}, body[:300]
            assert through_nginx(port, name, root, "/api/status")[0] == 401
            with chromium(f"--host-resolver-rules=MAP {name} 127.0.0.1") as browser:
                page = browser.new_context(ignore_https_errors=True, viewport=LAPTOP).new_page()
                sign_in(page, f"https://{name}:{port}", "ops", "a long enough passphrase")
                for service in ("app1-backend", "app1-frontend", "app2-backend", "app2-frontend"):  # as docker inspect says
                    tag, health = running_tag(ws, service)
                    row = page.locator(f"#service-{service}")
                    assert (row.locator(".tag").inner_text(), row.locator("td[data-label=health]").inner_text()) == (tag, health)
                page.screenshot(path=str(tmp_path / "dashboard-behind-nginx.png"), full_page=True)
                cookie = next(c for c in page.context.cookies() if c["name"] == "plano_session")
                assert (cookie["domain"], cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (name, True, True, "Strict")
        assert not sock.exists()
        code, _, body = through_nginx(port, name, root, "/login")
        assert code == 502, body[:200]
        print(f"dashboard behind nginx: https://{name}/ signed in through nginx; screenshot {tmp_path}/dashboard-behind-nginx.png")
    finally:
        manifest.write_text(before)
        plano("render", cwd=ws.infra)
    assert not (ws.infra / "docker/nginx/sites-enabled/plano.conf").exists()


def test_5_with_the_acme_server_down_the_error_is_clear_and_the_site_keeps_serving(site, pebble):
    ws = site
    serial = status(ws)["app1.example.com"]["serial"]
    root = pebble.root()
    pebble.stop()
    proc = plano("certs", "issue", "app1", "--force", cwd=ws.infra, check=False, timeout=600)
    assert proc.returncode == 1
    assert "error: app1: app1.example.com, www.app1.example.com: the ACME server" in proc.stderr
    assert "is unreachable; check --server and this machine's network, then run again" in proc.stderr
    context = ssl.create_default_context(cadata=root)
    with socket.create_connection(("127.0.0.1", ws.ports["prod_https"]), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname="app1.example.com") as tls:
        assert format(int(tls.getpeercert()["serialNumber"], 16), "x") == serial


def test_6_your_own_certificate_is_used_instead_of_acme(site):
    from tests.unit.test_certs import self_signed

    ws = site
    chain, key = self_signed(NAMES["app2"], now=dt.datetime.now(dt.UTC))
    (ws.infra / "own").mkdir()
    (ws.infra / "own/app2.pem").write_bytes(chain)
    (ws.infra / "own/app2.key").write_bytes(key)
    manifest = ws.infra / "plano.yml"
    text = manifest.read_text()
    assert "  app2:\n    domains:\n" in text
    manifest.write_text(text.replace("  app2:\n", "  app2:\n    tls:\n      certificate: own/app2.pem\n      key: own/app2.key\n", 1))
    pids = workers(ws)
    out = plano("certs", "issue", "app2", cwd=ws.infra)
    assert "app2: installed your certificate (issuer app2.example.com" in out.stdout
    assert workers(ws) == pids  # no reload
    installed = (ws.infra / "data/certs/plano/app2/privkey.pem").stat()  # plano (root) wrote it for nginx's workers
    assert (oct(installed.st_mode & 0o777), installed.st_uid, installed.st_gid) == ("0o640", 1001, 1001)
    context = ssl.create_default_context(cadata=chain.decode())
    for name in NAMES["app2"]:
        with socket.create_connection(("127.0.0.1", ws.ports["prod_https"]), timeout=5) as sock, \
                context.wrap_socket(sock, server_hostname=name) as tls:
            assert format(int(tls.getpeercert()["serialNumber"], 16), "x") == "abc"
        row = status(ws)[name]
        assert row["source"] == "own" and row["serving"] and row["serial"] == "abc"
    # A key that does not match is refused before anything is installed.
    (ws.infra / "own/app2.key").write_bytes(self_signed(["x.example.com"])[1])
    bad = plano("certs", "issue", "app2", cwd=ws.infra, check=False)
    assert bad.returncode == 1 and "error: apps/app2/tls/key (own/app2.key): does not belong to the certificate" in bad.stderr
    assert status(ws)["app2.example.com"]["serial"] == "abc"
