"""A service that does not run is a failure for `plano status` and `plano doctor`: the
exact rows, problems, findings and exit codes against a scripted engine whose
containers are running, stopped, restarting or missing. The real stopped stack is
in tests/integration/test_stop_e2e.py."""

from __future__ import annotations

import json
import os

import pytest

from plano.cli.main import main
from plano.ops import doctor
from tests.cli.test_cli import INIT
from tests.scripted import Answer, ScriptedRunner

SERVICES = ("nginx", "certbot", "database", "redis", "backup", "app1-backend", "app1-frontend")


@pytest.fixture
def infra(workspace, capsys):
    assert main(INIT) == 0
    os.chdir(workspace / "infra")
    assert main(["app", "add", "app1", "--domain", "app1.example.com"]) == 0
    capsys.readouterr()
    return workspace / "infra"


def container(project: str, service: str, status_: str, health: str | None = "healthy") -> dict:
    """What `docker inspect` says of a compose container (only the fields status reads)."""
    running = status_ in ("running", "restarting", "paused")  # as Docker says
    state = {"Status": status_, "Running": running, "Restarting": status_ == "restarting",
             "StartedAt": "2026-12-05T07:00:00.1Z", "ExitCode": 0 if running else 143}
    if health:
        state["Health"] = {"Status": health, "Log": []}  # a stopped container keeps its last health
    return {"Name": f"/{project}-{service}-1", "Config": {"Image": f"{project}-{service}:1.0.0", "Labels": {
        "com.docker.compose.project": project, "com.docker.compose.service": service}},
        "State": state, "RestartCount": 0}


def engine(containers: list[dict]) -> ScriptedRunner:
    ids = "".join(f"id{i}\n" for i in range(len(containers)))
    return (ScriptedRunner().query("compose", "version").query("version").query("docker", "info")
            .query("docker", "ps", "-aq", answers=Answer(0, ids)).query("docker", "inspect", answers=Answer(0, json.dumps(containers))))


def project_engine(infra, states: dict[str, str], health: str | None = "healthy") -> ScriptedRunner:
    return engine([container(infra.name, service, state, health) for service, state in states.items()])


def test_status_on_a_stopped_stack_exits_1_naming_each_service_and_what_to_run(infra, capsys):
    code = main(["status"], runner=project_engine(infra, dict.fromkeys(SERVICES, "exited")))
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    assert "healthy" not in out  # each stopped container kept its last health: "healthy"
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[2:9]}
    assert rows == {service: ["exited", "-"] for service in SERVICES}
    assert out.splitlines()[-7:] == [f"fail: {service} is exited; run: plano prod up" for service in sorted(SERVICES)]


def test_status_json_lists_the_problems_and_exits_1(infra, capsys):
    states = {"nginx": "running", "certbot": "running", "database": "running", "redis": "paused", "backup": "restarting",
              "app1-backend": "exited"}  # app1-frontend: no container
    code = main(["status", "--json"], runner=project_engine(infra, states))
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["problems"] == [
        {"service": "app1-backend", "state": "exited", "fix": "plano prod up"},
        {"service": "app1-frontend", "state": "absent", "fix": "plano prod up"},
        {"service": "backup", "state": "restarting", "fix": "plano prod logs backup (it fails as it starts), then plano prod up"},
        {"service": "redis", "state": "paused", "fix": "plano prod restart redis"},
    ]
    assert [(r["service"], r["state"], r["health"]) for r in report["apps"]] == [
        ("app1-backend", "exited", None), ("app1-frontend", "absent", None)]
    assert [(r["service"], r["state"], r["health"]) for r in report["infra"]] == [
        ("backup", "restarting", "healthy"), ("certbot", "running", "healthy"), ("database", "running", "healthy"),
        ("nginx", "running", "healthy"), ("redis", "paused", "healthy")]


def test_status_of_a_running_stack_exits_0(infra, capsys):
    code = main(["status"], runner=project_engine(infra, dict.fromkeys(SERVICES, "running")))
    out = capsys.readouterr().out
    assert code == 0 and "fail" not in out
    code = main(["status", "--dev"], runner=engine([]))  # the dev stack is not up: every service absent
    out = capsys.readouterr().out
    assert code == 1 and out.splitlines()[-7:] == [f"fail: {s} is absent; run: plano dev up" for s in sorted(SERVICES)]


def test_doctor_fails_when_a_service_does_not_run():
    assert doctor.decide_services(dict.fromkeys(SERVICES, "running")) == doctor.Finding("services", "ok", "7 services running")
    assert doctor.decide_services(dict.fromkeys(SERVICES, "exited")) == doctor.Finding(
        "services", "fail", "7 of 7 not running: nginx (exited), certbot (exited), database (exited), redis (exited) (+3 more)",
        "plano prod up")
    assert doctor.decide_services({"nginx": "running", "app1-backend": "restarting", "redis": "absent"}) == doctor.Finding(
        "services", "fail", "2 of 3 not running: app1-backend (restarting), redis (absent)",
        "plano prod logs app1-backend, then plano prod up")


def test_doctor_reads_the_prod_containers_of_every_service(infra):
    from plano.core.mode import Mode
    from plano.engine import inspect
    from plano.engine.stack import open_stack
    from tests.scripted import session

    runner = project_engine(infra, {**dict.fromkeys(SERVICES, "running"), "app1-frontend": "exited"})
    runner.rules = [rule for rule in runner.rules if rule.words != ("docker", "ps", "-aq")]
    runner.query("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={infra.name}",
                 answers=Answer(0, "".join(f"id{i}\n" for i in range(7))))
    st = open_stack(session(infra, runner, Mode.PROD))
    finding = doctor.services_finding(st.manifest, inspect.project_containers(st.ctx.project, runner))
    assert finding == doctor.Finding("services", "fail", "1 of 7 not running: app1-frontend (exited)", "plano prod up")


def test_doctor_reads_env_prod_as_a_set_of_keys(infra):
    """A tag line moved, a comment added: the same keys and values, so nothing is out of
    date and `plano render` keeps the file as it is; a missing key is still a change."""
    from plano.core import manifest as mf
    from plano.ops import infra as infra_ops

    env = infra / ".env.prod"
    lines = env.read_text().splitlines()
    tag = next(line for line in lines if line.startswith("APP1_BACKEND_TAG="))
    moved = "\n".join([line for line in lines if line != tag] + ["# my own note", tag]) + "\n"
    env.write_text(moved)
    manifest = mf.load_infra(infra).manifest
    assert ".env.prod" not in infra_ops.plan(infra, manifest).changed
    assert doctor.rendered_finding(infra, manifest) == doctor.Finding("rendered files", "ok", "up to date with plano.yml")
    assert main(["render"]) == 0 and env.read_text() == moved
    env.write_text(moved.replace(tag + "\n", ""))
    assert doctor.rendered_finding(infra, manifest).reason == "1 out of date with plano.yml: .env.prod"


def test_a_deploy_cut_short_leaves_an_override_that_doctor_reports(tmp_path):
    from plano.ops import deploy

    assert doctor.decide_overrides({}) == doctor.Finding("deploy switches", "ok", "nginx reaches every service through Docker's DNS")
    assert doctor.decide_overrides({"app1-backend": "app1"}) == doctor.Finding(
        "deploy switches", "fail", "a deploy was cut short: nginx still reaches app1-backend through data/nginx/dns/",
        "plano deploy app1 --service backend --tag <its tag in .env.prod>, or plano prod restart nginx")
    assert not deploy.deploy_running(tmp_path, "app1")
    with deploy.deploy_lock(tmp_path, "app1"):
        assert deploy.deploy_running(tmp_path, "app1")  # doctor leaves a running deploy's overrides alone
    assert not deploy.deploy_running(tmp_path, "app1")
