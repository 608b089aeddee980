"""The harness on an engine that has never run before: a container of Debian
bookworm's docker.io (the engine scripts/harness/engine.sh installs on CI's
machines) with an empty /var/lib/docker. engine.sh starts its dockerd for the
first time, pebble.sh finds where that engine's containers reach the host (on a
first start `docker network inspect bridge` shows no Gateway), and a container of
that engine gets a certificate from that pebble through a real HTTP-01 challenge."""

import subprocess
import uuid
from pathlib import Path

import pytest

from tests import testrun
from tests.integration.stackfixtures import ENGINE_IN_A_CONTAINER, docker

pytestmark = pytest.mark.expected_seconds(45)  # on a 2-core machine

ROOT = Path(__file__).resolve().parents[2]
NODE_IMAGE = "plano-test/dind:bookworm"
CERTBOT_IMAGE = "plano-test/certbot:sid"


@pytest.fixture(scope="module")
def node(engine, test_run):
    name = f"e2e-harness-{uuid.uuid4().hex[:6]}"
    docker("run", "-d", "--init", "--name", name, "--label", f"{testrun.LABEL}={test_run}", *ENGINE_IN_A_CONTAINER,
           "--tmpfs", "/var/lib/docker:exec", "-v", f"{ROOT / 'scripts/harness'}:/harness:ro", NODE_IMAGE)
    try:
        yield name
    finally:
        docker("rm", "-f", "-v", name, check=False)


def inside(node: str, *command: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", "exec", "-i", node, *command], input=stdin, capture_output=True, timeout=300)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    if check:
        assert out.returncode == 0, f"{' '.join(command)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out


def test_a_first_engine_start_then_pebble_issues_to_one_of_its_containers(node):
    assert inside(node, "ls", "-A", "/var/lib/docker").stdout == "", "the engine must never have run"

    # Before any engine runs there is no address to find: the error says what was tried.
    early = inside(node, "/harness/pebble.sh", "start", "80", check=False)
    assert early.returncode == 1
    assert "pebble: found no address where containers reach this host; tried the IPv4 address of interface docker0" \
        in early.stderr and "the Gateway of Docker's bridge network" in early.stderr and "PLANO_PEBBLE_LISTEN" in early.stderr

    started = inside(node, "/harness/engine.sh")
    assert "engine: starting dockerd" in started.stderr and "engine: dockerd started" in started.stderr, started.stderr
    gateway = inside(node, "docker", "network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}").stdout
    bridge_ip = inside(node, "ip", "-4", "-o", "addr", "show", "dev", "docker0").stdout.split()[3].split("/")[0]
    print(f"first start: bridge network Gateway {gateway.strip()!r}, docker0 {bridge_ip}")

    inside(node, "/harness/pebble.sh", "start", "80")
    settings = dict(line.split("=", 1) for line in inside(node, "/harness/pebble.sh", "env").stdout.split())
    assert settings["PLANO_PEBBLE_URL"] == f"https://{bridge_ip}:14000/dir"

    image = subprocess.run(["docker", "save", CERTBOT_IMAGE], capture_output=True, timeout=300, check=True).stdout
    inside(node, "docker", "load", stdin=image)
    issued = inside(node, "docker", "run", "--rm", "-p", "127.0.0.1:80:80",
                    "-v", f"{settings['PLANO_PEBBLE_CA']}:/pebble-ca.pem:ro", "-e", "REQUESTS_CA_BUNDLE=/pebble-ca.pem",
                    "-v", "/tmp/letsencrypt:/etc/letsencrypt", CERTBOT_IMAGE,
                    "certonly", "--standalone", "--server", settings["PLANO_PEBBLE_URL"], "-d", "harness.example.com",
                    "--agree-tos", "-m", "ops@example.com", "-n", "--no-eff-email", check=False)
    assert issued.returncode == 0 and "Successfully received certificate" in issued.stdout, issued.stdout + issued.stderr

    inside(node, "sh", "-c", "/harness/pebble.sh root >/tmp/pebble-root.pem")
    live = "/tmp/letsencrypt/live/harness.example.com"
    verified = inside(node, "openssl", "verify", "-CAfile", "/tmp/pebble-root.pem", "-untrusted", f"{live}/chain.pem",
                      f"{live}/cert.pem")
    assert verified.stdout.strip() == f"{live}/cert.pem: OK"
