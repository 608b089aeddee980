"""Stopping a real prod stack: `docker stop` of every service returns within 2 s on
an idle stack (each exits on its own stop signal; none is killed after the grace
period), `plano status` and `plano doctor` exit 1 on the stopped stack and say what
to run, and `plano prod down` leaves no volume that any container of the project
mounted (the one-off container of `plano backup run` included)."""

import json
import subprocess
import time

import pytest

from tests.integration.stackfixtures import (
    docker,
    make_workspace,
    plano,
    remove_images,
    remove_project,
)
from tests.integration.test_deploy_e2e import publish_app1

pytestmark = pytest.mark.expected_seconds(120)  # on a 2-core machine

STOP_SECONDS = 2.0
SERVICES = ("nginx", "certbot", "database", "redis", "backup", "app1-backend", "app1-frontend")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("stop"), apps=("app1",))
    # Streamed from now on: the engine keeps only its last 256 events for --since.
    events = subprocess.Popen(["docker", "events", "--format", "{{json .}}", "--filter", "type=container", "--filter", "type=volume",
                               "--filter", "event=create", "--filter", "event=mount"], stdout=subprocess.PIPE, text=True)
    try:
        publish_app1(ws)
        plano("prod", "up", cwd=ws.infra, timeout=1200)
        yield ws, events
    finally:
        events.kill()
        events.wait()
        plano("prod", "down", cwd=ws.infra, check=False)
        remove_project(ws.name)
        remove_images(ws.name)


def containers(ws) -> dict[str, str]:
    """service -> container name, for the project's long-running containers."""
    out = docker("ps", "-a", "--filter", f"label=com.docker.compose.project={ws.name}",
                 "--format", '{{.Label "com.docker.compose.service"}} {{.Names}} {{.Label "com.docker.compose.oneoff"}}').stdout
    return {service: name for service, name, oneoff in (line.split(" ") for line in out.splitlines()) if oneoff != "True"}


def test_1_every_service_stops_on_its_signal_within_two_seconds(stack):
    ws, _ = stack
    plano("backup", "run", cwd=ws.infra, timeout=600)  # the one-off backup container, for test 3
    found = containers(ws)
    assert sorted(found) == sorted(SERVICES)
    time.sleep(2)  # idle: no healthcheck or start-up work in flight
    figures = {}
    for service in SERVICES:
        started = time.monotonic()
        docker("stop", found[service], timeout=60)
        figures[service] = time.monotonic() - started
    states = {service: json.loads(docker("inspect", "-f", "{{json .State}}", found[service]).stdout) for service in SERVICES}
    print("\ndocker stop, idle stack (seconds, exit code):")
    for service in SERVICES:
        print(f"  {service:14} {figures[service]:5.2f}  {states[service]['ExitCode']}")
        if states[service]["ExitCode"]:
            print("    " + "\n    ".join(docker("logs", "--tail", "6", found[service]).stderr.splitlines()))
    assert {s: state["Running"] for s, state in states.items()} == dict.fromkeys(SERVICES, False)
    # 0: each exited by itself on its signal (137 would be the SIGKILL after the grace
    # period; 1 from the database was tini failing to forward the signal to Postgres).
    assert {s: state["ExitCode"] for s, state in states.items()} == dict.fromkeys(SERVICES, 0)
    assert "database system is shut down" in docker("logs", "--tail", "3", found["database"]).stderr
    assert {s: t for s, t in figures.items() if t >= STOP_SECONDS} == {}


def test_2_status_and_doctor_fail_on_the_stopped_stack(stack):
    ws, _ = stack
    proc = plano("status", cwd=ws.infra, check=False)
    print(proc.stdout)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "healthy" not in proc.stdout  # a stopped container is never shown healthy
    for service in SERVICES:
        assert f"fail: {service} is exited; run: plano prod up" in proc.stdout
    report = json.loads(plano("status", "--json", cwd=ws.infra, check=False).stdout)
    assert {row["service"]: (row["state"], row["health"]) for row in report["apps"]} == {
        "app1-backend": ("exited", None), "app1-frontend": ("exited", None)}
    assert sorted(p["service"] for p in report["problems"]) == sorted(SERVICES)

    proc = plano("doctor", "--json", cwd=ws.infra, check=False, timeout=600)
    assert proc.returncode == 1
    services = {f["check"]: f for f in json.loads(proc.stdout)}["services"]
    assert services["status"] == "fail" and services["fix"] == "plano prod up"
    assert services["reason"].startswith("7 of 7 not running: ")


def test_3_prod_down_leaves_no_volume(stack):
    ws, events = stack
    plano("prod", "up", cwd=ws.infra, timeout=600)
    plano("prod", "down", cwd=ws.infra)
    assert containers(ws) == {}
    time.sleep(1)
    events.terminate()
    seen = [json.loads(line) for line in events.communicate(timeout=30)[0].splitlines()]
    # Every container of the project (one-off runs too) and every volume mounted by one.
    ours = {e["Actor"]["ID"] for e in seen if e["Type"] == "container" and e["Action"] == "create"
            and e["Actor"]["Attributes"].get("com.docker.compose.project") == ws.name}
    mounted = {e["Actor"]["ID"] for e in seen if e["Type"] == "volume" and e["Action"] == "mount"
               and e["Actor"]["Attributes"].get("container") in ours}
    assert len(ours) >= len(SERVICES) + 1, "the events of the project's containers"
    left = set(docker("volume", "ls", "-q").stdout.split())
    labelled = docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={ws.name}").stdout.split()
    print(f"\n{len(ours)} containers of the project mounted {len(mounted)} volumes; after down: {sorted(mounted & left)}")
    assert sorted(mounted & left) == [] and labelled == []
