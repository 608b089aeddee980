"""Renewal with no human: pebble issues 2-minute certificates, the stack's certbot
service (its renew loop, every few seconds here) renews when due, its deploy hook
installs the new certificate, and nginx's workers load it by themselves (no reload):
the served serial changes while nobody runs a command, and no request fails meanwhile,
keep-alive clients included."""

import socket
import ssl
import time

import pytest

from tests.integration.acme import acme_server
from tests.integration.loadgen import Load
from tests.integration.stackfixtures import docker, make_workspace, plano, prod_running
from tests.integration.test_certs_e2e import workers
from tests.integration.test_deploy_e2e import publish_app1
from tests.integration.test_prod_e2e import set_env

pytestmark = pytest.mark.expected_seconds(130)  # on a 2-core machine

LIFETIME = 120  # seconds: certbot renews such a certificate in its last third


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("renewal"), apps=("app1",))
    with acme_server(ws, tmp_path_factory.mktemp("pebble"), validity=LIFETIME) as pebble:
        publish_app1(ws)
        set_env(ws.infra / ".env.prod", PLANO_RENEW_INTERVAL_SECONDS="5")
        with prod_running(ws):
            yield ws, pebble


def served_serial(port: int, root: str) -> str:
    context = ssl.create_default_context(cadata=root)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname="app1.example.com") as tls:
        return format(int(tls.getpeercert()["serialNumber"], 16), "x")


def test_the_stack_renews_and_serves_the_new_certificate_by_itself(site):
    ws, pebble = site
    port = ws.ports["prod_https"]
    plano("certs", "issue", "app1", cwd=ws.infra, timeout=600)
    root = pebble.root()
    first = served_serial(port, root)
    pids = workers(ws)
    traffic = Load(port, "app1.example.com", workers=2, max_seconds=200).start()
    kept = Load(port, "app1.example.com", workers=2, max_seconds=200, keepalive=True).start()
    try:
        deadline = time.monotonic() + 2 * LIFETIME
        current = first
        while current == first and time.monotonic() < deadline:
            time.sleep(1)
            current = served_serial(port, root)
        waited = 2 * LIFETIME - (deadline - time.monotonic())
    finally:
        traffic.stop()
        kept.stop()
    print(f"renewed and served after {waited:.0f} s with no command; load: {traffic.summary()}; "
          f"keep-alive clients: {kept.summary()}")
    assert current != first, "the served certificate never changed"
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert kept.failures == [], kept.explain(f"{ws.name}-nginx-1")
    assert workers(ws) == pids, "nginx was reloaded"
    certbot = docker("logs", f"{ws.name}-certbot-1").stdout
    nginx = docker("logs", f"{ws.name}-nginx-1").stdout + docker("logs", f"{ws.name}-nginx-1").stderr
    assert "plano: installed the renewed certificate for app1" in certbot
    assert "nginx reloaded" not in nginx  # the former renewal watcher
