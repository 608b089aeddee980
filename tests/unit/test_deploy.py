"""Deploys: exact argv, reading docker inspect, the env file edit, the audit log and
the lock (pure parts; the real switch under load is tests/integration/test_deploy_e2e.py)."""

import json
from pathlib import Path

import pytest

from plano.core import manifest as mf
from plano.core import secrets
from plano.core.errors import PlanoError, RefusedError, UsageError
from plano.core.mode import Mode
from plano.engine import inspect, nginx
from plano.engine.compose import ComposeContext
from plano.engine.stack import Stack
from plano.ops import deploy

COMPOSE = ["docker", "compose", "-p", "acme", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]


@pytest.fixture
def stack(tmp_path) -> Stack:
    text = mf.new_document("acme", "registry.example.com/acme", "ops@example.com").replace(
        "apps: {}", "apps:\n  app1:\n    domains: [app1.example.com]\n    backend:\n      release: [npm, run, migrate]\n"
        "  site:\n    domains: [site.example.com]\n    backend: {enabled: false}\n")
    ctx = ComposeContext(("docker", "compose"), "acme", ("docker-compose.yml", "docker-compose.prod.yml"), (".env.prod",))
    return Stack(tmp_path, mf.load_text(text), Mode.PROD, ctx)


def test_targets(stack):
    assert deploy.targets(stack, "app1", None, "1.2.3") == [deploy.Target("app1", "backend", "1.2.3"),
                                                             deploy.Target("app1", "frontend", "1.2.3")]
    assert deploy.targets(stack, "site", None, "abc") == [deploy.Target("site", "frontend", "abc")]
    for app, role, tag, message in (("nope", None, "1", "apps/nope: no such app"),
                                    ("site", "backend", "1", "--service backend: app site has no backend; it has frontend"),
                                    ("app1", None, "a b", "--tag 'a b': not an image tag"),
                                    ("app1", None, "1.0\nX=1", "not an image tag"), ("app1", None, "${POSTGRES_PASSWORD}", "not an image tag")):
        with pytest.raises(UsageError, match=message):
            deploy.targets(stack, app, role, tag)


def test_argv(stack):
    target = deploy.Target("app1", "backend", "2.0.0")
    front = deploy.Target("app1", "frontend", "2.0.0")
    env = ["env", "APP1_BACKEND_TAG=2.0.0"]
    assert deploy.pull_argv(stack, [target]) == [*env, *COMPOSE, "pull", "--quiet", "app1-backend"]
    assert deploy.release_argv(stack, target, ["npm", "run", "migrate"]) == [
        *env, *COMPOSE, "run", "--rm", "--no-deps", "-T", "app1-backend", "npm", "run", "migrate"]
    assert deploy.scale_up_argv(stack, [target]) == [
        *env, *COMPOSE, "up", "-d", "--no-deps", "--no-recreate", "--scale", "app1-backend=2", "app1-backend"]
    assert deploy.scale_up_argv(stack, [target, front]) == [
        *env, "APP1_FRONTEND_TAG=2.0.0", *COMPOSE, "up", "-d", "--no-deps", "--no-recreate",
        "--scale", "app1-backend=2", "--scale", "app1-frontend=2", "app1-backend", "app1-frontend"]
    assert deploy.scale_up_argv(stack, [target], [2])[-3:] == ["--scale", "app1-backend=3", "app1-backend"]  # after a deploy cut short
    assert inspect.service_argv("acme", "app1-backend") == [
        "docker", "ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=acme",
        "--filter", "label=com.docker.compose.service=app1-backend"]
    assert deploy.stop_argv("c1") == ["docker", "stop", "--time", "30", "c1"]
    assert nginx.hosts_lines(["172.18.0.5", "172.18.0.7"], "app1-backend") == "172.18.0.5 app1-backend\n172.18.0.7 app1-backend\n"
    assert nginx.ready_argv(stack, 5, ["http://172.18.0.7:3000/api/health"]) == [
        *COMPOSE, "exec", "-T", "nginx", "/etc/plano/nginx/bin/plano-probe.sh", "ready", "5", "http://172.18.0.7:3000/api/health"]
    assert nginx.drained_argv(stack, 30, [("172.18.0.5", 3000), ("10.0.0.1", 80)], after=1.3) == [
        *COMPOSE, "exec", "-T", "-e", "PLANO_PROBE_AFTER=1.3", "nginx", "/etc/plano/nginx/bin/plano-probe.sh", "drained", "30", "050012AC:0BB8", "0100000A:0050"]
    details = {"Name": "/acme-app1-backend-2", "NetworkSettings": {"Networks": {
        "acme_edge": {"IPAddress": "172.20.0.3"}, "acme_app1-net": {"IPAddress": "172.18.0.5"}}}}
    assert inspect.network_address(details, "acme_app1-net") == "172.18.0.5"
    with pytest.raises(PlanoError, match="acme-app1-backend-2 has no address on the network acme_app2-net"):
        inspect.network_address(details, "acme_app2-net")
    assert stack.manifest.apps["app1"].backend.release == ["npm", "run", "migrate"]


def test_reading_docker_inspect():
    assert inspect.health_of({"Running": False}) == "exited"
    assert inspect.health_of({"Running": True}) == "running"
    assert inspect.health_of({"Running": True, "Health": {"Status": "starting"}}) == "starting"
    state = {"Running": True, "Health": {"Status": "unhealthy", "Log": [
        {"ExitCode": 1, "Output": "a"}, {"ExitCode": 1, "Output": "b\n  c"}, {"ExitCode": 1, "Output": ""}, {"ExitCode": 1, "Output": "d"}]}}
    assert inspect.health_output(state) == ["exit 1: b c", "exit 1: ", "exit 1: d"]


def test_env_file_edit_keeps_everything_else():
    text = "# note\nAPP1_DB_PASSWORD=s3cret\nAPP1_BACKEND_TAG=1.0.0\nOTHER=x\n"
    assert secrets.set_env_value(text, "APP1_BACKEND_TAG", "2.0.0") == "# note\nAPP1_DB_PASSWORD=s3cret\nAPP1_BACKEND_TAG=2.0.0\nOTHER=x\n"
    assert secrets.set_env_value("A=1\n", "B", "2") == "A=1\nB=2\n"


def record(service, from_tag, to_tag, result="ok", action="deploy"):
    return deploy.Record("2026-11-29T10:00:00+00:00", "ops", "app1", service, from_tag, to_tag, action, result)


def test_previous_tag_follows_the_log():
    log = [record("app1-backend", "1.0.0", "2.0.0"), record("app1-backend", "2.0.0", "3.0.0", "failed: x"),
           record("app1-frontend", "1.0.0", "2.0.0"), record("app1-backend", "2.0.0", "2.1.0")]
    assert deploy.previous_tag(log, "app1-backend", "2.1.0") == "2.0.0"
    assert deploy.previous_tag(log, "app1-backend", "2.0.0") == "1.0.0"
    assert deploy.previous_tag(log, "app1-backend", "3.0.0") is None  # never ran
    assert deploy.previous_tag(log, "app1-frontend", "9") is None


def test_audit_log_round_trip_skips_torn_lines(tmp_path):
    deploy.append_log(tmp_path, record("app1-backend", "1", "2"))
    with (tmp_path / "data/logs/deploys.jsonl").open("a") as handle:
        handle.write('{"torn": \n')
    deploy.append_log(tmp_path, record("app1-backend", "2", "3"))
    assert [r.to_tag for r in deploy.read_log(tmp_path)] == ["2", "3"]
    assert json.loads((tmp_path / "data/logs/deploys.jsonl").read_text().splitlines()[0])["from_tag"] == "1"


def test_one_deploy_per_app_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    with deploy.deploy_lock(tmp_path, "app1", ("deploy", "app1", "--tag", "2")):
        with pytest.raises(RefusedError, match=r"^a deploy of app1 is already running: alice on laptop-7 since \d{4}-\d\d-\d\d "
                                               r"\d\d:\d\d:\d\d UTC \(plano deploy app1 --tag 2, pid \d+\); wait for it to end"):
            with deploy.deploy_lock(tmp_path, "app1"):
                pass
        with deploy.deploy_lock(tmp_path, "app2"):  # other apps are free
            pass
    with deploy.deploy_lock(tmp_path, "app1"):  # released
        pass
    assert Path(tmp_path / "data/logs/.deploy-app1.lock").read_text() == ""


def test_a_failed_containers_log_shows_how_it_started_and_how_it_ended():
    assert deploy.log_excerpt("") == ["(none)"]
    assert deploy.log_excerpt("a\nb\n", head=1, tail=1) == ["a", "b"]
    assert deploy.log_excerpt("\n".join(map(str, range(10))), head=2, tail=3) == ["0", "1", "... (5 lines)", "7", "8", "9"]
