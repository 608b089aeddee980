"""The swarm harness itself (swarmnodes.py): three Debian bookworm engines in containers
form a real swarm (one manager, two workers); a stack deployed on it with the host's
docker CLI (`docker stack deploy --with-registry-auth --detach=false`) runs two
health-checked replicas of the stand-in nginx on the nodes labelled `apps`, pulled by
each node from the harness registry, and each answers on the host's 127.0.0.1 through
its node's host-mode published port. At the end nothing of it is left."""

import json
import textwrap
import time
import urllib.request
import uuid

import pytest

from tests.integration.innerengine import stand_in_in_registry
from tests.integration.stackfixtures import docker
from tests.integration.swarmnodes import swarm

pytestmark = pytest.mark.expected_seconds(60)  # on a 2-core machine

PORT = 8080
SITE = """server {
    listen 80;
    location = /health { return 200 "ok\\n"; }
    location / { return 200 "$hostname\\n"; }
}
"""


def stack_file(image: str) -> str:
    return textwrap.dedent(f"""\
        services:
          web:
            image: {image}
            configs:
              - source: site
                target: /etc/nginx/conf.d/site.conf
            healthcheck:
              test: ["CMD", "curl", "-fsS", "http://127.0.0.1/health"]
              interval: 2s
              timeout: 2s
              retries: 3
            deploy:
              replicas: 2
              endpoint_mode: dnsrr
              placement:
                constraints: [node.labels.role == apps]
              update_config: {{parallelism: 1, order: stop-first, failure_action: rollback, monitor: 5s}}
            ports:
              - {{target: 80, published: {PORT}, mode: host}}
        configs:
          site:
            file: ./site.conf
        """)


def answer(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as response:
        assert response.status == 200
        return response.read().decode().strip()


def test_a_three_node_swarm_runs_a_stack_reachable_on_loopback(engine, test_run, tmp_path):
    name = f"e2e-swarm-{uuid.uuid4().hex[:6]}"
    phases: dict[str, float] = {}
    t = time.monotonic()
    with swarm(name, ports=(PORT,), run=test_run) as cluster:
        phases["swarm formed"] = time.monotonic() - t
        nodes = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}").stdout.split("\n")
        assert sorted(line for line in nodes if line) == [f"{name}-1 Ready Leader", f"{name}-2 Ready ", f"{name}-3 Ready "]
        cluster.label(1, role="apps")
        cluster.label(2, role="apps")

        t = time.monotonic()
        image = stand_in_in_registry(name, "nginx")
        (tmp_path / "site.conf").write_text(SITE)
        (tmp_path / "docker-stack.yml").write_text(stack_file(image))
        cluster.docker("stack", "deploy", "--with-registry-auth", "--detach=false", "-c", str(tmp_path / "docker-stack.yml"),
                       name, timeout=180)
        phases["stack deployed (image pulled by 2 nodes)"] = time.monotonic() - t

        tasks = [json.loads(line) for line in cluster.docker("service", "ps", f"{name}_web", "--filter", "desired-state=running",
                                                             "--format", "{{json .}}").stdout.splitlines()]
        assert sorted((task["Node"], task["CurrentState"].split()[0]) for task in tasks) == [
            (f"{name}-2", "Running"), (f"{name}-3", "Running")]
        for index in (1, 2):
            health = cluster.exec(index, "docker", "ps", "--filter", f"label=com.docker.swarm.service.name={name}_web",
                                  "--format", "{{.Status}}").stdout
            assert "(healthy)" in health, health
        hostnames = {answer(cluster.published(index, PORT)) for index in (1, 2)}
        assert len(hostnames) == 2, hostnames  # one task on each apps node
        with pytest.raises(OSError):  # the manager is not an apps node: nothing listens there
            answer(cluster.published(0, PORT))
        usage = cluster.usage()
        t = time.monotonic()
    phases["removed"] = time.monotonic() - t
    assert not docker("ps", "-aq", "--filter", f"name={name}-").stdout.strip()
    assert docker("network", "inspect", name, check=False).returncode != 0
    print("; ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items()) + f"; per node: {usage}")
