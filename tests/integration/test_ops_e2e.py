"""`plano doctor` and `plano status` against a real prod stack: each doctor check made to
fail on purpose (an expiring certificate from the test ACME server, a hand-edited
file, a committed secret, a taken port, a stale backup, a crash-looping container),
then all ok on a healthy stack; `status --json` matches what runs."""

import datetime as dt
import json
import socket
import subprocess

import pytest

from plano.ops.doctor import disk_finding
from tests.integration.acme import acme_server
from tests.integration.net import wait_for
from tests.integration.stackfixtures import docker, make_workspace, plano, prod_running
from tests.integration.test_deploy_e2e import ROLES, publish_app1
from tests.integration.test_prod_e2e import set_env
from tests.unit.test_certs import self_signed

pytestmark = pytest.mark.expected_seconds(130)  # on a 2-core machine

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("ops"), apps=("app1",))
    with acme_server(ws, tmp_path_factory.mktemp("pebble"), validity=10 * 86400):
        publish_app1(ws)
        subprocess.run([*GIT, "-C", str(ws.infra), "add", "-A"], check=True)
        subprocess.run([*GIT, "-C", str(ws.infra), "commit", "-qm", "infra"], check=True)
        with prod_running(ws):
            yield ws


def doctor(ws) -> tuple[int, dict[str, dict]]:
    proc = plano("doctor", "--json", cwd=ws.infra, check=False, timeout=600)
    return proc.returncode, {f["check"]: f for f in json.loads(proc.stdout)}


def test_1_an_expiring_certificate_from_the_acme_server_fails(site):
    ws = site
    plano("certs", "issue", "app1", cwd=ws.infra, timeout=600)  # pebble issues for 10 days here
    code, found = doctor(ws)
    assert code == 1
    assert found["certificates"]["status"] == "fail" and found["certificates"]["reason"] == "app1 expires in 9 days"
    assert "plano certs renew" in found["certificates"]["fix"]


def test_2_a_healthy_stack_reads_ok(site):
    ws = site
    chain, key = self_signed(["app1.example.com", "www.app1.example.com"], days=90, now=dt.datetime.now(dt.UTC))
    (ws.infra / "own").mkdir()
    (ws.infra / "own/app1.pem").write_bytes(chain)
    (ws.infra / "own/app1.key").write_bytes(key)
    manifest = ws.infra / "plano.yml"
    manifest.write_text(manifest.read_text().replace(
        "  app1:\n", "  app1:\n    tls:\n      certificate: own/app1.pem\n      key: own/app1.key\n", 1))
    plano("certs", "issue", "app1", cwd=ws.infra)
    plano("backup", "run", cwd=ws.infra, timeout=900)
    code, found = doctor(ws)
    statuses = {name: f["status"] for name, f in found.items()}
    # disk depends on the machine this runs on: doctor must read it as the check does.
    disk = statuses.pop("disk")
    assert disk == disk_finding(ws.infra).status
    assert statuses == dict.fromkeys(statuses, "ok"), found
    assert set(statuses) == {"engine", "rendered files", "compose config (dev)", "compose config (prod)", "nginx -t",
                             ".env.prod keys", "secret files", "secrets in git", "ports", "services", "deploy switches", "restarts", "memory", "crash recovery", "certificates", "backups"}
    assert code == (1 if disk == "fail" else 0)


def test_3_each_check_fails_on_purpose(site):
    ws = site
    infra = ws.infra
    # A hand-edited generated file.
    conf = infra / "docker/nginx/nginx.conf"
    original = conf.read_text()
    conf.write_text(original + "# my tweak\n")
    try:
        code, found = doctor(ws)
        assert code == 1 and found["rendered files"]["status"] == "fail"
        assert found["rendered files"]["reason"] == "edited by hand: docker/nginx/nginx.conf"
    finally:
        conf.write_text(original)

    # A secret committed to git (then taken out of the branch again).
    password = dict(line.split("=", 1) for line in (infra / ".env.prod").read_text().splitlines()
                    if "=" in line and not line.startswith("#"))["APP1_DB_PASSWORD"]
    (infra / "notes.txt").write_text(f"db password: {password}\n")
    subprocess.run([*GIT, "-C", str(infra), "add", "notes.txt"], check=True)
    subprocess.run([*GIT, "-C", str(infra), "commit", "-qm", "oops"], check=True)
    try:
        code, found = doctor(ws)
        assert code == 1 and found["secrets in git"]["status"] == "fail"
        assert "notes.txt" in found["secrets in git"]["reason"] and password not in json.dumps(found)
    finally:
        subprocess.run([*GIT, "-C", str(infra), "reset", "-q", "--hard", "HEAD~1"], check=True)

    # A taken port: our nginx stopped and another process on the HTTP port.
    docker("stop", f"{ws.name}-nginx-1")
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", ws.ports["prod_http"]))
    holder.listen()
    try:
        code, found = doctor(ws)
        assert code == 1 and found["ports"]["status"] == "fail"
        assert found["ports"]["reason"] == f"{ws.ports['prod_http']} held by another process"
    finally:
        holder.close()
        docker("start", f"{ws.name}-nginx-1")

    # A stale backup.
    status_file = infra / "data/backups/.status"
    saved = status_file.read_text()
    status_file.write_text("ok 2026-01-01T03:30:00Z 20260101T033000Z\n")
    try:
        code, found = doctor(ws)
        assert code == 1 and found["backups"]["status"] == "fail" and "h old (daily schedule)" in found["backups"]["reason"]
    finally:
        status_file.write_text(saved)

    # A crash-looping container of the project.
    custom = infra / "docker-compose.custom.yml"
    saved_custom = custom.read_text()
    custom.write_text(saved_custom.replace("services: {}", "services:\n  crasher:\n    image: plano-test/debian:sid\n"
                                           "    command: [sh, -c, 'exit 1']\n    restart: always\n"))
    compose = ["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]
    subprocess.run([*compose, "up", "-d", "crasher"], cwd=infra, check=True, capture_output=True)
    try:
        wait_for(lambda: int(docker("inspect", "--format", "{{.RestartCount}}", f"{ws.name}-crasher-1").stdout) >= 3,
                 "the crasher never restarted 3 times", 60, 0.5)
        code, found = doctor(ws)
        assert code == 1 and found["restarts"]["status"] == "fail"
        assert found["restarts"]["reason"] == f"restarting in a loop: {ws.name}-crasher-1"
    finally:
        subprocess.run([*compose, "rm", "-sf", "crasher"], cwd=infra, capture_output=True)
        custom.write_text(saved_custom)
    code, found = doctor(ws)
    failed = {k: v for k, v in found.items() if v["status"] == "fail"}
    # Only a nearly full disk on the machine that runs this may still fail.
    assert set(failed) == ({"disk"} if disk_finding(infra).status == "fail" else set()) and code == (1 if failed else 0), failed


def test_4_status_json_matches_the_running_stack(site):
    ws = site
    report = json.loads(plano("status", "--json", cwd=ws.infra).stdout)
    assert report["mode"] == "prod" and report["project"] == ws.name
    rows = {row["service"]: row for row in report["apps"]}
    for role in ROLES:
        row = rows[f"app1-{role}"]
        image = docker("inspect", "--format", "{{.Config.Image}}", f"{ws.name}-app1-{role}-1").stdout.strip()
        restarts = int(docker("inspect", "--format", "{{.RestartCount}}", f"{ws.name}-app1-{role}-1").stdout)
        assert (row["image"], row["tag"], row["recorded_tag"], row["matches"]) == (image, "1.0.0", "1.0.0", True)
        assert row["state"] == "running" and row["health"] == "healthy" and row["restarts"] == restarts
        assert row["uptime_seconds"] > 0 and row["url"] == f"https://app1.example.com:{ws.ports['prod_https']}"
    assert {row["service"] for row in report["infra"]} == {"nginx", "certbot", "database", "redis", "backup"}
    assert report["certificates"] == [{"app": "app1", "issuer": "app1.example.com", "days_left": 89, "placeholder": False}]
    assert report["backup"]["count"] >= 1 and report["backup"]["last_success"]
    assert report["data"]["bytes"] > 0
    # A tag recorded but not running shows as differing.
    set_env(ws.infra / ".env.prod", APP1_FRONTEND_TAG="2.0.0")
    rows = {row["service"]: row for row in json.loads(plano("status", "--json", cwd=ws.infra).stdout)["apps"]}
    assert rows["app1-frontend"]["matches"] is False and rows["app1-frontend"]["recorded_tag"] == "2.0.0"
    set_env(ws.infra / ".env.prod", APP1_FRONTEND_TAG="1.0.0")
    text = plano("status", cwd=ws.infra).stdout  # piped: plain text
    assert "app1-backend" in text and "\x1b[" not in text
