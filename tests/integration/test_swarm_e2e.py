"""plano on a real three-node Docker Swarm (issue 16): an infra with two apps, rendered
for `target: swarm`, labelled and deployed by `plano swarm ...` with DOCKER_HOST at the
manager, and served through nginx with HTTPS.

The swarm (tests/integration/swarmnodes.py): node 1 is the manager, the edge node and
an apps node (it sees the infra at the same path, as the server plano runs on does),
node 2 the data node, node 3 an apps node. What this machine's kernel lacks is left out
on purpose: no IPsec (`swarm.encrypted: false`, see the README) and no IPVS (the stack
never uses a VIP). The infra images are built on the manager, from the stand-in base
images in the harness registry, and pushed through the manager's registry.
"""

import dataclasses
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from tests.integration.acme import Pebble, new_pebble
from tests.integration.innerengine import stand_in_in_registry
from tests.integration.loadgen import Load
from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import (
    REGISTRY,
    STAND_INS,
    build_image,
    docker,
    make_workspace,
)
from tests.integration.swarmnodes import swarm
from tests.integration.test_deploy_e2e import build_broken
from tests.integration.test_prod_e2e import set_env

pytestmark = pytest.mark.expected_seconds(360)  # on a 2-core machine

APPS = ("app1", "app2")


def plano_on(cluster, *args: str, cwd, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """plano with DOCKER_HOST at the swarm's manager."""
    proc = subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DOCKER_HOST": cluster.manager.host}, check=False)
    if check:
        assert proc.returncode == 0, f"plano {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def publish(ws, app: str, version: str) -> None:
    """The app's stand-in images, pushed to the harness registry (the nodes pull them there)."""
    for role in ("backend", "frontend"):
        source = ws.root / app / role
        (source / "VERSION").write_text(f"{version}\n")
        image = f"{REGISTRY}/{ws.name}/{app}-{role}:{version}"
        build_image(image, source)
        docker("push", image)


def swarm_manifest(ws, apps: tuple[str, ...] = APPS) -> None:
    """target: swarm, no IPsec (this kernel has none), 80/443 on the edge node, and the
    stand-in base images by their registry names (the manager builds from them)."""
    path = ws.infra / "plano.yml"
    text = path.read_text()
    for key in ("nginx", "postgres", "redis", "certbot"):
        text = text.replace(f"  {key}: {STAND_INS[key]} ", f"  {key}: {stand_in_in_registry(ws.name, key)} ", 1)
    text = text.replace(f"  http_port: {ws.ports['prod_http']}\n  https_port: {ws.ports['prod_https']}\n",
                        "  http_port: 80\n  https_port: 443\n", 1)
    path.write_text(text + "target: swarm\nswarm: {replicas: 2, encrypted: false}\n")
    set_env(ws.infra / ".env.prod", **{f"{app.upper()}_{role}_TAG": "1.0.0" for app in apps for role in ("BACKEND", "FRONTEND")})


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    """A real ACME server, started by `deployed` once the edge node's port 80 is known."""
    server = new_pebble(tmp_path_factory.mktemp("pebble"))
    yield server
    server.stop()


def point_at(ws, pebble: Pebble, cluster) -> None:
    """pebble checks HTTP-01 at 127.0.0.1 at the edge node's port 80; plano.yml's acme
    settings name it and its CA (in its folder, which the nodes see). It listens on the
    host's address on the swarm's network: docker0's (172.17.0.1) is, inside a node, the
    node's own engine's bridge."""
    gateway = docker("network", "inspect", cluster.name, "--format", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    pebble = dataclasses.replace(pebble, listen=gateway)
    pebble.run("start", str(cluster.published(0, 80)))
    settings = pebble.settings()
    manifest = ws.infra / "plano.yml"
    manifest.write_text(manifest.read_text().replace(
        "  server: https://acme-v02.api.letsencrypt.org/directory\n",
        f"  server: {settings['PLANO_PEBBLE_URL']}\n  ca_bundle: {settings['PLANO_PEBBLE_CA']}\n"))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, engine, pebble):
    ws = make_workspace(tmp_path_factory.mktemp("swarm"), apps=APPS)
    publish(ws, "app1", "2.0.0")
    for app in APPS:
        publish(ws, app, "1.0.0")
    build_broken(ws)
    swarm_manifest(ws)
    with swarm(f"{ws.name}-sw", ports=(80, 443), shared=(ws.root, pebble.folder), writable_registry=True) as cluster:
        point_at(ws, pebble, cluster)
        subprocess.run([sys.executable, "-m", "plano.cli", "render"], cwd=ws.infra, check=True, capture_output=True, timeout=300)
        nodes = cluster.nodes
        plano_on(cluster, "swarm", "label", nodes[0], "edge", "apps", cwd=ws.infra)
        plano_on(cluster, "swarm", "label", nodes[1], "data", cwd=ws.infra)
        plano_on(cluster, "swarm", "label", nodes[2], "apps", cwd=ws.infra)
        started = time.monotonic()
        up = plano_on(cluster, "swarm", "up", "--timeout", "240", cwd=ws.infra, check=False)
        print(f"plano swarm up: {time.monotonic() - started:.1f} s\n{up.stdout}")
        if up.returncode:
            tasks_now = cluster.docker("stack", "ps", ws.name, "--no-trunc", check=False).stdout
            pytest.fail(f"plano swarm up exited {up.returncode}:\n{up.stderr[-3000:]}\ntasks:\n{tasks_now[-4000:]}")
        yield ws, cluster


def tasks(cluster, stack: str) -> dict[str, list[str]]:
    """service -> the nodes its running tasks are on."""
    rows = cluster.docker("stack", "ps", stack, "--filter", "desired-state=running", "--format", "{{json .}}").stdout
    found: dict[str, list[str]] = {}
    for row in (json.loads(line) for line in rows.splitlines() if line.strip()):
        found.setdefault(row["Name"].split(".")[0].removeprefix(f"{stack}_"), []).append(row["Node"])
    return found


def test_1_every_service_runs_where_its_role_says(deployed):
    ws, cluster = deployed
    edge, data, apps = cluster.nodes
    placed = tasks(cluster, ws.name)
    assert {name: sorted(set(where)) for name, where in placed.items()} == {
        "nginx": [edge], "certbot": [edge], "database": [data], "redis": [data], "backup": [data],
        **{f"{app}-{role}": sorted({edge, apps}) for app in APPS for role in ("backend", "frontend")}}, placed
    assert all(len(placed[f"{app}-{role}"]) == 2 for app in APPS for role in ("backend", "frontend"))
    status = plano_on(cluster, "swarm", "status", "--json", cwd=ws.infra)
    found = json.loads(status.stdout)
    assert {s["name"]: (s["running"], s["desired"]) for s in found["services"]} == {
        **dict.fromkeys(("nginx", "certbot", "database", "redis", "backup"), (1, 1)),
        **{f"{app}-{role}": (2, 2) for app in APPS for role in ("backend", "frontend")}}
    assert sorted((x["hostname"], tuple(x["roles"])) for x in found["nodes"]) == [
        (edge, ("edge", "apps")), (data, ("data",)), (apps, ("apps",))]
    report = json.loads(plano_on(cluster, "status", "--json", cwd=ws.infra).stdout)  # exit 0: nothing is wrong
    assert {r["service"]: (r["state"], r["tag"], r["matches"]) for r in report["apps"]} == {
        f"{app}-{role}": ("running", "1.0.0", True) for app in APPS for role in ("backend", "frontend")}
    assert {r["service"]: r["state"] for r in report["infra"]} == dict.fromkeys(("backup", "certbot", "database", "nginx", "redis"), "running")
    doctor = plano_on(cluster, "doctor", "--json", cwd=ws.infra, check=False)  # other checks may warn here (no backup yet)
    findings = {f["check"]: (f["status"], f["reason"]) for f in json.loads(doctor.stdout)}
    assert (findings["swarm"], findings["services"]) == (("ok", "3 nodes ready; every role has one"), ("ok", "9 services running")), findings


def test_2_both_apps_answer_through_nginx_with_https_and_reach_their_database(deployed):
    ws, cluster = deployed
    port = cluster.published(0, 443)
    for app in APPS:
        wait_for(lambda a=app: https_request(port, f"{a}.example.com", "/api/health")[0] == 200,
                 f"{app}'s health through nginx on the swarm", 120, 1)
        health = json.loads(https_request(port, f"{app}.example.com", "/api/health")[2])
        assert (health["database"], health["redis"], health["version"]) == ("up", "up", "1.0.0"), health
        status, _, body = https_request(port, f"{app}.example.com", "/api/rows", "POST", json.dumps({"value": f"{app}-row"}).encode(),
                                        headers={"Content-Type": "application/json"})
        assert status == 201, body
        status, _, body = https_request(port, f"{app}.example.com", "/")
        assert status == 200 and b"frontend 1.0.0" in body
    rows = cluster.exec(1, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={ws.name}_database").stdout.split()
    assert len(rows) == 1  # the database runs on the data node
    values = cluster.exec(1, "docker", "exec", rows[0], "psql", "-U", "postgres", "-d", "app1", "-At", "-c",
                          "SELECT value FROM items").stdout.split()
    assert values == ["app1-row"]


# ---------------------------------------------------------------- one-off jobs (ops/job.py)


def publish_backend(ws, app: str, version: str) -> None:
    source = ws.root / app / "backend"
    (source / "VERSION").write_text(f"{version}\n")
    image = f"{REGISTRY}/{ws.name}/{app}-backend:{version}"
    build_image(image, source)
    docker("push", image)


def jobs_left(cluster, stack: str) -> list[str]:
    """Job services of the stack still there (plano removes each one it started)."""
    return [name for name in cluster.docker("service", "ls", "--format", "{{.Name}}").stdout.split() if name.startswith(f"{stack}_job-")]


def service_image(cluster, stack: str, service: str) -> str:
    return cluster.docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{stack}_{service}").stdout.strip()


def test_2b_a_release_command_runs_as_a_job_in_the_new_image_and_a_failing_one_stops_the_deploy(deployed):
    """app2's backend gets a release command: one that fails stops the deploy before
    any task changes (one-line error with its last lines, in the deploy log); one that
    works runs once, in the new image, with the service's mounts, on an apps node."""
    ws, cluster = deployed
    publish_backend(ws, "app2", "2.0.0")
    manifest = ws.infra / "plano.yml"
    original, env = manifest.read_text(), (ws.infra / ".env.prod").read_bytes()
    failing = "[sh, -c, 'echo migrating to $(cat VERSION) >&2; echo migration failed >&2; exit 4']"
    manifest.write_text(original.replace("  app2:\n", f"  app2:\n    backend:\n      release: {failing}\n", 1))
    try:
        proc = plano_on(cluster, "deploy", "app2", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra, check=False)
        assert proc.returncode == 1, proc.stderr
        error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and error[0].startswith("error: the release command of app2-backend failed (exit 4 on "), proc.stderr
        assert error[0].endswith("): migrating to 2.0.0 | migration failed; no task was updated"), error
        assert service_image(cluster, ws.name, "app2-backend").startswith(f"{REGISTRY}/{ws.name}/app2-backend:1.0.0")
        assert (ws.infra / ".env.prod").read_bytes() == env and jobs_left(cluster, ws.name) == []
        last = json.loads((ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()[-1])
        assert (last["service"], last["to_tag"]) == ("app2-backend", "2.0.0")
        assert last["result"].startswith("failed: the release command of app2-backend failed (exit 4"), last

        manifest.write_text(original.replace("  app2:\n", "  app2:\n    backend:\n      release: [sh, -c, 'touch /data/uploads/released-$(cat VERSION)']\n", 1))
        started = time.monotonic()
        out = plano_on(cluster, "deploy", "app2", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra)
        print(f"deploy of app2-backend with a release job: {time.monotonic() - started:.1f} s; "
              + next(line for line in (out.stdout + out.stderr).splitlines() if "release command done" in line))
    finally:
        manifest.write_text(original)
    marker = f"{ws.infra}/data/uploads/app2/released-2.0.0"
    on = [i for i in (0, 2) if cluster.exec(i, "test", "-f", marker, check=False).returncode == 0]
    assert len(on) == 1, on  # once, on one apps node (each keeps its own uploads/)
    assert service_image(cluster, ws.name, "app2-backend").startswith(f"{REGISTRY}/{ws.name}/app2-backend:2.0.0")
    port = cluster.published(0, 443)
    wait_for(lambda: json.loads(https_request(port, "app2.example.com", "/api/health")[2])["version"] == "2.0.0",
             "app2's backend 2.0.0 through nginx", 60, 1)
    assert jobs_left(cluster, ws.name) == []


def test_2c_backups_run_list_verify_and_restore_as_jobs_on_the_data_node(deployed):
    ws, cluster = deployed
    started = time.monotonic()
    made = plano_on(cluster, "backup", "run", cwd=ws.infra)
    run_seconds = time.monotonic() - started
    backup_id = made.stdout.split()[1]
    on_data = cluster.exec(1, "ls", f"{ws.infra}/data/backups/{backup_id}").stdout.split()
    assert {"app1.dump", "app2.dump", "manifest.json", "SHA256SUMS"} <= set(on_data), on_data
    assert not (ws.infra / "data/backups" / backup_id).exists()  # the data node's data/, not the manager's
    listed = json.loads(plano_on(cluster, "backup", "list", "--json", cwd=ws.infra).stdout)
    assert [b["id"] for b in listed["backups"]] == [backup_id] and listed["backups"][0]["apps"] == ["app1", "app2"], listed
    started = time.monotonic()
    plano_on(cluster, "backup", "verify", backup_id, cwd=ws.infra)
    verify_seconds = time.monotonic() - started
    print(f"on the swarm: plano backup run {run_seconds:.1f} s, verify {verify_seconds:.1f} s")
    plano_on(cluster, "backup", "restore", backup_id, "app1", "--to-scratch", "app1_scratch", "--yes", cwd=ws.infra)
    database = cluster.exec(1, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={ws.name}_database").stdout.split()[0]
    assert cluster.exec(1, "docker", "exec", database, "psql", "-U", "postgres", "-d", "app1_scratch", "-At", "-c",
                        "SELECT value FROM items").stdout.split() == ["app1-row"]
    proc = plano_on(cluster, "backup", "verify", "20990101T000000Z", cwd=ws.infra, check=False)
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(error) == 1, proc.stderr
    assert error[0].startswith(f"error: verification failed (exit 1 on {cluster.nodes[1]}): "), error
    assert "20990101T000000Z" in error[0], error
    listed = json.loads(plano_on(cluster, "backup", "list", "--json", cwd=ws.infra).stdout)["backups"]
    report = json.loads(plano_on(cluster, "status", "--json", cwd=ws.infra).stdout)  # the data node's backups, by a job
    assert (report["backup"]["last"], report["backup"]["count"]) == (listed[-1]["id"], len(listed)), report["backup"]
    findings = {f["check"]: f for f in json.loads(plano_on(cluster, "doctor", "--json", cwd=ws.infra, check=False).stdout)}
    assert findings["backups"]["status"] == "ok" and findings["backups"]["reason"].startswith("last success 0.0 h ago"), findings["backups"]
    assert jobs_left(cluster, ws.name) == []


def loads(cluster) -> dict[str, Load]:
    port = cluster.published(0, 443)
    return {kind: Load(port, "app1.example.com", workers=3, keepalive=kind == "keep-alive", max_seconds=600).start()
            for kind in ("new connection", "keep-alive")}


def versions(cluster, count: int = 20) -> set[str]:
    port, seen = cluster.published(0, 443), set()
    for _ in range(count):
        seen.add("backend " + json.loads(https_request(port, "app1.example.com", "/api/version")[2])["version"])
        body = https_request(port, "app1.example.com", "/")[2]
        seen.add("frontend " + body.split(b'id="version">frontend ')[1].split(b"<")[0].decode())
    return seen


def database_rows(ws, cluster) -> set[str]:
    container = cluster.exec(1, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={ws.name}_database").stdout.split()[0]
    return set(cluster.exec(1, "docker", "exec", container, "psql", "-U", "postgres", "-d", "app1", "-At", "-c",
                            "SELECT value FROM items WHERE value LIKE 'load-%'").stdout.split())


def test_3_a_rolling_update_under_load_replaces_every_task_with_no_failed_request(deployed):
    """Swarm's own start-first update of both services, one task at a time, under two
    loads (new connections and keep-alive, GETs and POSTs); then only the new version
    answers, and the update is in the deploy log. nginx keeps no connection to a task on
    a swarm, so a task that Swarm stops gets no request it could drop."""
    ws, cluster = deployed
    running = loads(cluster)
    try:
        started = time.monotonic()
        out = plano_on(cluster, "deploy", "app1", "--tag", "2.0.0", cwd=ws.infra)
        seconds = time.monotonic() - started
    finally:
        for load in running.values():
            load.stop()
    print(f"swarm rolling update of app1 (2 services x 2 tasks) in {seconds:.1f} s: "
          + "; ".join(f"{kind}: {load.summary()}" for kind, load in running.items()))
    assert "app1-backend: 1.0.0 -> 2.0.0" in out.stdout + out.stderr, out
    rows = database_rows(ws, cluster)
    for load in running.values():
        assert load.failures == [], load.failures[:5]
        acked, unanswered = load.writes()
        assert acked and acked <= rows and not unanswered
    assert versions(cluster) == {"backend 2.0.0", "frontend 2.0.0"}
    placed = tasks(cluster, ws.name)
    assert len(placed["app1-backend"]) == 2 and len(placed["app1-frontend"]) == 2
    log = [json.loads(line) for line in (ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()]
    assert [(r["service"], r["to_tag"], r["result"]) for r in log if r["app"] == "app1"] == [
        ("app1-backend", "2.0.0", "ok"), ("app1-frontend", "2.0.0", "ok")]


def test_4_an_image_that_never_gets_healthy_is_rolled_back_by_swarm(deployed):
    """Under both loads: the broken task never joins the service's name (it is never
    healthy) and the old ones never stop, so no request may fail."""
    ws, cluster = deployed
    env = (ws.infra / ".env.prod").read_bytes()
    running = loads(cluster)
    try:
        started = time.monotonic()
        proc = plano_on(cluster, "deploy", "app1", "--service", "backend", "--tag", "broken", cwd=ws.infra, check=False)
        seconds = time.monotonic() - started
    finally:
        for load in running.values():
            load.stop()
    print(f"a broken image on the swarm, rolled back in {seconds:.1f} s: "
          + "; ".join(f"{kind}: {load.summary()}" for kind, load in running.items()))
    assert proc.returncode == 1 and "error: Swarm rolled app1-backend back" in proc.stderr, proc.stderr
    rows = database_rows(ws, cluster)
    for load in running.values():
        assert load.failures == [], load.failures[:5]
        acked, unanswered = load.writes()
        assert acked <= rows and not unanswered
    assert (ws.infra / ".env.prod").read_bytes() == env
    assert versions(cluster, 10) == {"backend 2.0.0", "frontend 2.0.0"}
    last = json.loads((ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()[-1])
    assert last["to_tag"] == "broken" and last["result"].startswith("failed: Swarm rolled app1-backend back")


def served_by_pebble(port: int, name: str, root: str) -> bytes | None:
    """The certificate nginx serves for `name` (DER) if it verifies against pebble's root."""
    context = ssl.create_default_context(cadata=root)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, context.wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def test_5_certificates_from_acme_through_the_edge_nodes_nginx(deployed, pebble):
    """`plano certs issue` on a swarm: certbot in its task on the edge node, HTTP-01 answered
    by nginx there (pebble checks the node's port 80), the files in the edge node's
    data/certs, served by nginx with no reload; then `plano certs renew --force` is served.
    (plano runs beside the edge node here, not on it: its own wait for the new certificate
    at 127.0.0.1:443 finds nothing and warns; the test checks the node's port instead.)"""
    ws, cluster = deployed
    port, root = cluster.published(0, 443), pebble.root()
    out = plano_on(cluster, "certs", "issue", "app1", "app2", cwd=ws.infra, timeout=600)
    for app in APPS:
        assert f"{app}: certificate installed" in out.stdout + out.stderr, out
        wait_for(lambda a=app: served_by_pebble(port, f"{a}.example.com", root), f"{app}'s certificate from pebble, on the edge node", 30, 0.5)
    first = served_by_pebble(port, "app1.example.com", root)
    renewed = plano_on(cluster, "certs", "renew", "--force", cwd=ws.infra, timeout=600)
    assert "/etc/letsencrypt/live/app1/fullchain.pem (success)" in renewed.stdout, renewed
    wait_for(lambda: served_by_pebble(port, "app1.example.com", root) not in (None, first), "app1's renewed certificate, served", 30, 0.5)


def test_5b_maintenance_switches_one_app_on_the_edge_nodes_nginx(deployed):
    """The flag file is in the edge node's data/, which its nginx checks on every request."""
    ws, cluster = deployed
    port = cluster.published(0, 443)
    plano_on(cluster, "maintenance", "on", "app2", cwd=ws.infra)
    try:
        wait_for(lambda: https_request(port, "app2.example.com", "/")[0] == 503, "app2's maintenance page on the swarm", 10, 0.2)
        assert https_request(port, "app1.example.com", "/")[0] == 200  # the other app goes on
    finally:
        plano_on(cluster, "maintenance", "off", "app2", cwd=ws.infra)
    wait_for(lambda: https_request(port, "app2.example.com", "/")[0] == 200, "app2 served again after maintenance", 10, 0.2)


def test_6_down_removes_the_stack_and_keeps_the_data(deployed):
    ws, cluster = deployed
    plano_on(cluster, "swarm", "down", cwd=ws.infra)
    assert cluster.docker("service", "ls", "-q").stdout.split() == []
    database = cluster.exec(1, "ls", f"{ws.infra}/data/database").stdout.split()
    assert "PG_VERSION" in database  # the data node's data/ is where it was
