"""A stack that comes back by itself: the prod stack (both apps, Postgres, Redis, nginx,
certbot, backup) on an engine of the test's own, under a write load through nginx;
then `kill -9` of that engine's dockerd, and later a power cut of its whole machine.
After each, only the engine is started again (what systemd does after a crash or at
boot), no plano command: nginx must serve both apps again, and every write that was
acknowledged must be in Postgres.

The engine is Debian bookworm's docker.io 20.10 (the one CI's machines and the shared
harness run) in a container (`plano-test/dind:bookworm`, ../shared/docs/
offline-test-environment.md), with its /var/lib/docker on a volume so that it
survives the power cut. The shared engine, which other modules use at the same time,
is never touched. Images reach the inner engine from the harness's registry, read
through a second, read-only registry process inside the container (the inner
engine's 127.0.0.1 is its own)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest

from tests import testrun
from tests.integration.innerengine import (
    DAEMON_JSON,
    NODE_IMAGE,
    Engine,
    node_args,
    stand_in_in_registry,
)
from tests.integration.net import free_ports, unverified_tls
from tests.integration.stackfixtures import (
    REGISTRY,
    STAND_INS,
    build_image,
    docker,
    make_workspace,
    plano,
)

pytestmark = pytest.mark.expected_seconds(300)  # on a 2-core machine

APPS = ("app1", "app2")
BACK_WITHIN = 120  # seconds after the engine is started again


def plano_on(engine: Engine, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=cwd, check=False, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "DOCKER_HOST": engine.host})
    assert proc.returncode == 0, f"plano {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def set_env(path: Path, **values: str) -> None:
    lines = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in values]
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, engine, test_run):
    """The prod stack up on the inner engine; its https port as the host's 127.0.0.1 sees it."""
    phases: dict[str, float] = {}
    t = time.monotonic()
    ws = make_workspace(tmp_path_factory.mktemp("crash"))
    manifest = ws.infra / "plano.yml"
    text = manifest.read_text()
    for key in ("nginx", "postgres", "redis", "certbot"):
        text = text.replace(f"  {key}: {STAND_INS[key]} ", f"  {key}: {stand_in_in_registry(ws.name, key)} ", 1)
    # nginx's ports are published inside the container, which publishes them on the host's loopback.
    manifest.write_text(text.replace("  bind: 127.0.0.1\n", "  bind: 0.0.0.0\n", 1))
    plano("render", cwd=ws.infra)
    for app in APPS:
        for role in ("backend", "frontend"):
            image = f"{REGISTRY}/{ws.name}/{app}-{role}:1.0.0"
            build_image(image, ws.root / app / role)
            docker("push", image, timeout=600)
            docker("rmi", image)
    set_env(ws.infra / ".env.prod", **{f"{app.upper()}_{role.upper()}_TAG": "1.0.0" for app in APPS for role in ("backend", "frontend")})
    phases["images built and pushed"] = time.monotonic() - t

    t = time.monotonic()
    sockets = ws.root / "engine"
    https = free_ports(1)[0]
    node = f"{ws.name}-node"
    docker("run", "-d", "--init", "--name", node, "--label", f"{testrun.LABEL}={test_run}", *node_args(sockets),
           "-v", "/var/lib/docker", "-v", f"{ws.root}:{ws.root}",
           "-p", f"127.0.0.1:{https}:{ws.ports['prod_https']}", NODE_IMAGE)
    inner = Engine(node, sockets)
    try:
        inner.start()
        phases["inner engine started"] = time.monotonic() - t
        t = time.monotonic()
        plano_on(inner, "prod", "up", cwd=ws.infra, timeout=1200)
        phases["plano prod up on it"] = time.monotonic() - t
        print("set-up: " + "; ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()))
        yield ws, inner, https
    finally:
        inner.remove_containers()
        docker("rm", "-f", "-v", node, check=False)


# ---------------------------------------------------------------- the load and the probes


def request(port: int, host: str, method: str, path: str, body: bytes | None = None, timeout: float = 5):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.sock = unverified_tls().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=timeout),
                                                 server_hostname=host)
        headers = {"Host": host, "Connection": "close", **({"Content-Type": "application/json"} if body else {})}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def serves_both(port: int) -> bool:
    """Both apps answer through nginx: the backend's health (Postgres and Redis up) and the frontend's page."""
    for app in APPS:
        try:
            status, body = request(port, f"{app}.example.com", "GET", "/api/health", timeout=2)
            if status != 200 or json.loads(body).get("database") != "up":
                return False
            status, body = request(port, f"{app}.example.com", "GET", "/", timeout=2)
            if status != 200 or b"frontend" not in body:
                return False
        except (OSError, http.client.HTTPException, ValueError):
            return False
    return True


def wait_serving(port: int, since: float) -> float:
    while time.monotonic() - since < BACK_WITHIN:
        if serves_both(port):
            return time.monotonic() - since
        time.sleep(0.25)
    return -1.0


@dataclass
class Writes:
    """One writer per app: POST /api/rows with a value of its own, one at a time, each on
    a new TLS connection, until stopped (bounded by max_seconds)."""

    port: int
    tag: str
    max_seconds: float = 300
    acked: dict[str, set[str]] = field(default_factory=lambda: {app: set() for app in APPS})
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(APPS, 0))  # an HTTP error answer
    unanswered: dict[str, set[str]] = field(default_factory=lambda: {app: set() for app in APPS})

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.write, args=(app,), daemon=True) for app in APPS]

    def write(self, app: str) -> None:
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            n += 1
            value = f"{self.tag}-{app}-{n}"
            try:
                status, body = request(self.port, f"{app}.example.com", "POST", "/api/rows", json.dumps({"value": value}).encode())
            except (OSError, http.client.HTTPException):
                self.unanswered[app].add(value)
                time.sleep(0.05)
                continue
            if status == 201 and isinstance(json.loads(body).get("id"), int):
                self.acked[app].add(value)
            else:
                self.refused[app] += 1
                time.sleep(0.05)

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        return sum(len(values) for values in self.acked.values())


def stored(ws, inner: Engine, app: str, tag: str) -> set[str]:
    out = inner.docker("exec", f"{ws.name}-database-1", "psql", "-U", "postgres", "-d", app, "-At", "-c",
                       f"SELECT value FROM items WHERE value LIKE '{tag}-%'").stdout
    return set(out.split())


def started_at(ws, inner: Engine) -> dict[str, str]:
    """Each of the project's containers: its start time, or '' when it is not running."""
    ids = inner.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={ws.name}").stdout.split()
    infos = json.loads(inner.docker("inspect", *ids).stdout)
    return {i["Config"]["Labels"]["com.docker.compose.service"]: i["State"]["StartedAt"] if i["State"]["Running"] else ""
            for i in infos if i["Config"]["Labels"].get("com.docker.compose.oneoff") != "True"}


def policies(ws, inner: Engine) -> dict[str, str]:
    ids = inner.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={ws.name}").stdout.split()
    return {i["Name"].lstrip("/"): i["HostConfig"]["RestartPolicy"]["Name"] for i in json.loads(inner.docker("inspect", *ids).stdout)}


def waited_for(inner: Engine, since: str) -> list[str]:
    """The containers the restarted engine's restore waited for until their stop timeout
    (dockerd's log says "failed to exit within"), by name."""
    ids = {line.split("container=")[1].split()[0] for line in inner.log().splitlines()
           if "failed to exit within" in line and line.split('"')[1] >= since and "container=" in line}
    return sorted(inner.docker("inspect", "-f", "{{.Name}}", i).stdout.strip().lstrip("/") for i in ids)


def check_writes(ws, inner: Engine, writes: Writes) -> str:
    lost = {app: sorted(writes.acked[app] - stored(ws, inner, app, writes.tag)) for app in APPS}
    unanswered = {app: len(writes.unanswered[app]) for app in APPS}
    kept = {app: len(writes.unanswered[app] & stored(ws, inner, app, writes.tag)) for app in APPS}
    figure = (f"writes acknowledged {writes.count()}, present {writes.count() - sum(map(len, lost.values()))}; "
              f"unanswered {sum(unanswered.values())} (of which stored {sum(kept.values())}); "
              f"refused with an HTTP error {sum(writes.refused.values())}")
    assert not any(lost.values()), f"acknowledged writes missing from Postgres: {lost}; {figure}"
    return figure


def wait_acks(writes: Writes, at_least: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while writes.count() < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writes.count() >= at_least, f"only {writes.count()} writes acknowledged in {seconds} s"


# ---------------------------------------------------------------- the tests


def test_1_after_kill_9_of_the_engine_the_stack_serves_again_with_no_command(stack):
    ws, inner, port = stack
    assert serves_both(port)
    before = started_at(ws, inner)
    assert all(before.values()) and len(before) == 9, before
    with Writes(port, "crash") as writes:
        wait_acks(writes, 20)
        inner.kill()
        killed = time.monotonic()
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        time.sleep(2)  # systemd's RestartSec for docker.service
        at_kill = writes.count()
        restarted = time.monotonic()
        answered_in = inner.start()
        back = wait_serving(port, restarted)
        after = started_at(ws, inner)
        assert back >= 0, (f"nginx did not serve both apps within {BACK_WITHIN} s of the engine's restart; "
                           f"started at: {after}; restart policies: {policies(ws, inner)}")
        wait_acks(writes, writes.count() + 20)  # writes go on after the crash
    figure = check_writes(ws, inner, writes)
    # The crash path really ran: the restarted engine stopped every container and started it again.
    assert all(after[service] and after[service] != before[service] for service in before), (before, after)
    print(f"engine killed with {at_kill} writes acknowledged; dockerd answered {answered_in:.1f} s after its start; "
          f"nginx served both apps {back:.1f} s after the engine's start ({restarted - killed + back:.1f} s after the kill); "
          f"{figure}; the restore waited for its stop timeout for: {', '.join(waited_for(inner, since)) or 'none'}")


def test_2_after_a_power_cut_the_stack_serves_again_when_the_engine_starts(stack):
    """Every process of the machine killed at once (the container's stop signal is
    SIGKILL; its /run is a fresh tmpfs afterwards, as after a reboot), then only dockerd started."""
    ws, inner, port = stack
    assert serves_both(port)
    with Writes(port, "power") as writes:
        wait_acks(writes, 20)
        docker("restart", "--time", "0", inner.node)
        booted = time.monotonic()
        inner.start()
        back = wait_serving(port, booted)
        assert back >= 0, f"nginx did not serve both apps within {BACK_WITHIN} s of the boot; containers: {started_at(ws, inner)}"
        wait_acks(writes, writes.count() + 20)
    figure = check_writes(ws, inner, writes)
    assert all(started_at(ws, inner).values())
    print(f"after the power cut: nginx served both apps {back:.1f} s after the machine's start; {figure}")


def test_3_with_live_restore_an_engine_crash_stops_no_container(stack):
    """The daemon setting `plano doctor` reports: with live-restore (reloaded by SIGHUP,
    no engine restart) the restarted engine adopts the running containers."""
    ws, inner, port = stack
    (inner.sockets / "daemon.json").write_text(json.dumps({**DAEMON_JSON, "live-restore": True}))
    inner.inside("sh", "-c", "kill -HUP $(pgrep -x dockerd)")
    assert inner.docker("info", "--format", "{{.LiveRestoreEnabled}}").stdout.strip() == "true"
    doctor = subprocess.run([sys.executable, "-m", "plano.cli", "doctor", "--json"], cwd=ws.infra, check=False, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "DOCKER_HOST": inner.host})
    found = {f["check"]: f for f in json.loads(doctor.stdout)}
    assert found["crash recovery"]["status"] == "ok", found["crash recovery"]
    assert found["crash recovery"]["reason"] == "9 containers with restart: always; live-restore on: an engine crash leaves them running"
    before = started_at(ws, inner)
    with Writes(port, "live") as writes:
        wait_acks(writes, 20)
        inner.kill()
        time.sleep(2)
        restarted = time.monotonic()
        inner.start()
        back = wait_serving(port, restarted)
        assert back >= 0
        wait_acks(writes, writes.count() + 20)
    figure = check_writes(ws, inner, writes)
    assert started_at(ws, inner) == before, "live-restore: no container restarted"
    print(f"with live-restore: serving {back:.1f} s after the engine's start, no container restarted; {figure}")
