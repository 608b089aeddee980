"""Limits per service, for real: a prod stack of two apps where app1's backend has a
small memory limit and a route that allocates until the kernel kills it. Only that
container is killed and restarted by its restart policy; app2 serves on through nginx
with 0 failed requests meanwhile; `plano status` and `plano doctor` report the OOM
kill, naming the plano.yml setting to raise. `docker inspect` shows every limit applied."""

import json
import time
from pathlib import Path

import pytest

from plano.core import manifest as mf
from tests import testrun
from tests.integration.loadgen import Load
from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import (
    REGISTRY,
    STAND_INS,
    build_image,
    docker,
    make_workspace,
    plano,
    prod_running,
)
from tests.integration.test_prod_e2e import set_env

pytestmark = pytest.mark.expected_seconds(200)  # on a 2-core machine

MIB = 1024 * 1024
HOG_MEMORY = "128m"
# Test-only code, in the test's own copy of app1's backend (never in the demo app):
# preloaded by node, it answers GET /api/hog with 202, then keeps 16 MiB buffers,
# filled so that every page is touched, until the kernel kills the process.
HOG_JS = """\
'use strict';
const http = require('node:http');
const create = http.createServer;
http.createServer = (handler) => create((req, res) => {
  if (req.url !== '/api/hog') return handler(req, res);
  res.writeHead(202, { 'content-type': 'text/plain' });
  res.end('allocating until killed\\n');
  const kept = [];
  setInterval(() => kept.push(Buffer.alloc(16 << 20, 1)), 20);
});
"""
# What the defaults and app1's own limit render to: (memory, memory + swap, NanoCpus, PidsLimit);
# NanoCpus 0: no CPU cap (the shared services and backup).
EXPECTED = {
    "app1-backend": (128 * MIB, 128 * MIB, 10**9, 256),
    "app1-frontend": (256 * MIB, 256 * MIB, 10**9, 256),
    "app2-backend": (256 * MIB, 256 * MIB, 10**9, 256),
    "app2-frontend": (256 * MIB, 256 * MIB, 10**9, 256),
    "database": (320 * MIB, 320 * MIB, 0, 256),
    "nginx": (128 * MIB, 128 * MIB, 0, 128),
    "redis": (64 * MIB, 64 * MIB, 0, 64),
    "certbot": (64 * MIB, 64 * MIB, 5 * 10**8, 64),
    "backup": (128 * MIB, 128 * MIB, 0, 128),
}


def limit_app1_backend(infra: Path) -> None:
    """apps.app1.backend.limits.memory in plano.yml (a round-trip edit), then render."""
    path = infra / "plano.yml"
    data = mf.parse(path.read_text())
    data["apps"]["app1"].setdefault("backend", {})["limits"] = {"memory": HOG_MEMORY}
    path.write_text(mf.dump(data))
    plano("render", cwd=infra)


def publish(ws) -> None:
    """Both apps' images in the local registry; app1's backend with the hog preloaded."""
    backend = ws.root / "app1" / "backend"
    (backend / "hog.js").write_text(HOG_JS)
    with (backend / "Dockerfile").open("a") as dockerfile:
        dockerfile.write('CMD ["node", "--require", "./hog.js", "server.js"]\n')
    for app in ("app1", "app2"):
        for role in ("backend", "frontend"):
            image = f"{REGISTRY}/{ws.name}/{app}-{role}:1.0.0"
            build_image(image, ws.root / app / role)
            docker("push", image)
    set_env(ws.infra / ".env.prod", **{f"{app.upper()}_{role.upper()}_TAG": "1.0.0" for app in ("app1", "app2")
                                       for role in ("backend", "frontend")})


@pytest.fixture(scope="module")
def stack(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("limits"))
    limit_app1_backend(ws.infra)
    publish(ws)
    with prod_running(ws):
        yield ws


def containers(ws) -> dict[str, dict]:
    """service -> `docker inspect` of its container."""
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={ws.name}").stdout.split()
    found = json.loads(docker("inspect", *ids).stdout)
    return {info["Config"]["Labels"]["com.docker.compose.service"]: info for info in found}


def identity(info: dict) -> tuple:
    return info["Id"], info["RestartCount"], info["State"]["StartedAt"], info["State"]["OOMKilled"]


def peak_mib(info: dict) -> str:
    """The container's peak memory use (cgroup v1, page cache included), where the host shows it."""
    path = Path(f"/sys/fs/cgroup/memory/docker/{info['Id']}/memory.max_usage_in_bytes")
    return f"{int(path.read_text()) / MIB:.0f}" if path.is_file() else "?"


def redis_fills_up_to_its_maxmemory(ws) -> str:
    """4 MiB values as app2's Redis user until Redis refuses one; the refusal, the keys
    then deleted. The client runs in a container of its own on app2's network, as an
    app's would: inside Redis's container, it would count against Redis's limit."""
    cli = ["run", "--rm", "-i", "--network", f"{ws.name}_app2-net", "--label", f"{testrun.LABEL}={testrun.current()}",
           "--entrypoint", "redis-cli", STAND_INS["redis"], "-h", "redis", "--no-auth-warning", "--user", "app2",
           "--pass", ws.env("prod")["APP2_REDIS_PASSWORD"]]
    answer = ""
    for n in range(30):  # 120 MiB at most: over Redis's limit (64m)
        answer = docker(*cli, "-x", "set", f"app2:fill{n}", input_text="x" * (4 * MIB)).stdout.strip()
        if answer != "OK":
            break
    docker(*cli, "del", *(f"app2:fill{i}" for i in range(30)))
    return answer


def memory_finding(ws) -> dict:
    out = plano("doctor", "--json", cwd=ws.infra, check=False)
    return next(f for f in json.loads(out.stdout) if f["check"] == "memory")


def test_1_every_limit_is_applied(stack):
    ws = stack
    found = containers(ws)
    applied = {service: (info["HostConfig"]["Memory"], info["HostConfig"]["MemorySwap"], info["HostConfig"]["NanoCpus"],
                         info["HostConfig"]["PidsLimit"]) for service, info in found.items()}
    assert applied == EXPECTED
    assert "NODE_OPTIONS=--max-old-space-size=96" in found["app1-backend"]["Config"]["Env"]
    assert "NODE_OPTIONS=--max-old-space-size=192" in found["app2-backend"]["Config"]["Env"]
    # V8's heap limit inside the 128m container: 96 MiB of old space, plus the young generation.
    heap = docker("exec", f"{ws.name}-app1-backend-1", "node", "-p", "require('v8').getHeapStatistics().heap_size_limit").stdout
    assert 96 <= int(heap) / MIB < 128, heap
    assert redis_fills_up_to_its_maxmemory(ws) == "OOM command not allowed when used memory > 'maxmemory'."
    assert containers(ws)["redis"]["RestartCount"] == 0  # refused writes, not killed
    out = plano("status", cwd=ws.infra)
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith("app1-backend "))
    assert row[-4:-1] == ["128m", "1", "256"], out.stdout
    report = json.loads(plano("status", "--json", cwd=ws.infra).stdout)
    assert {r["service"]: r["limits"] for r in report["apps"]}["app2-frontend"] == {"memory": "256m", "cpus": 1.0, "pids": 256}
    infra = {r["service"]: r["limits"] for r in report["infra"]}
    assert infra["redis"] == {"memory": "64m", "cpus": None, "pids": 64} and infra["certbot"]["cpus"] == 0.5
    assert report["oom_kills"] == []
    assert memory_finding(ws)["status"] == "ok"


def test_2_an_app_over_its_memory_is_restarted_alone_and_the_other_serves_on(stack):
    ws = stack
    before = containers(ws)
    traffic = Load(ws.ports["prod_https"], "app2.example.com", workers=4, max_seconds=180, max_requests=50_000).start()
    try:
        time.sleep(3)
        status, _, body = https_request(ws.ports["prod_https"], "app1.example.com", "/api/hog")
        assert (status, body) == (202, b"allocating until killed\n")
        started = time.monotonic()
        wait_for(lambda: containers(ws)["app1-backend"]["State"]["OOMKilled"], "app1-backend was never killed", 60, 0.2)
        killed = time.monotonic() - started
        wait_for(lambda: https_request(ws.ports["prod_https"], "app1.example.com", "/api/health")[0] == 200,
                 "app1's backend never served again", 90, 0.5)
        back = time.monotonic() - started
        time.sleep(3)
    finally:
        traffic.stop()
    after = containers(ws)
    peaks = ", ".join(f"{service} {peak_mib(info)}" for service, info in sorted(after.items()))
    print(f"app1-backend killed {killed:.1f} s after the hog began, serving again after {back:.1f} s; "
          f"app2 meanwhile: {traffic.summary()}; peak memory (MiB): {peaks}")
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert len(traffic.results) >= 200
    hog = after["app1-backend"]
    assert hog["Id"] == before["app1-backend"]["Id"] and hog["RestartCount"] >= 1 and hog["State"]["Running"]
    assert {s: identity(i) for s, i in after.items() if s != "app1-backend"} == \
        {s: identity(i) for s, i in before.items() if s != "app1-backend"}

    out = plano("status", cwd=ws.infra, check=False)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "fail: app1-backend was killed at " in out.stdout and "it went over its memory limit (128m)" in out.stdout
    fix = "raise apps/app1/backend/limits/memory in plano.yml, then plano render and plano deploy app1 --service backend --tag 1.0.0"
    assert fix in out.stdout, out.stdout
    report = json.loads(plano("status", "--json", cwd=ws.infra, check=False).stdout)
    assert [(k["service"], k["memory"], k["setting"]) for k in report["oom_kills"]] == [
        ("app1-backend", "128m", "apps/app1/backend/limits/memory")]
    assert [r["service"] for r in report["apps"] + report["infra"] if r["oom_killed_at"]] == ["app1-backend"]
    finding = memory_finding(ws)
    assert finding["status"] == "fail" and finding["reason"].startswith("app1-backend was killed at "), finding
    assert finding["fix"].startswith(fix), finding


def test_3_the_fix_it_names_applies_the_new_limit_with_no_downtime(stack):
    """Raise the limit, render, and the deploy that the report names: a new container
    with the new limit, the OOM kill no longer reported."""
    ws = stack
    path = ws.infra / "plano.yml"
    path.write_text(path.read_text().replace(f"memory: {HOG_MEMORY}", "memory: 192m"))
    plano("render", cwd=ws.infra)
    traffic = Load(ws.ports["prod_https"], "app1.example.com", workers=2, max_seconds=120, max_requests=20_000).start()
    try:
        time.sleep(2)
        plano("deploy", "app1", "--service", "backend", "--tag", "1.0.0", cwd=ws.infra)
        time.sleep(2)
    finally:
        traffic.stop()
    print(f"deploy of app1-backend with its new limit, under load on app1: {traffic.summary()}")
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    backend = containers(ws)["app1-backend"]
    assert backend["State"]["Running"] and not backend["State"]["OOMKilled"]
    assert (backend["HostConfig"]["Memory"], backend["HostConfig"]["MemorySwap"]) == (192 * MIB, 192 * MIB)
    assert "NODE_OPTIONS=--max-old-space-size=144" in backend["Config"]["Env"]
    report = json.loads(plano("status", "--json", cwd=ws.infra).stdout)
    assert report["oom_kills"] == [] and {r["service"]: r["limits"]["memory"] for r in report["apps"]}["app1-backend"] == "192m"
    assert memory_finding(ws)["status"] == "ok"
