"""Prod, for real: app images built and pushed to a local registry, a fresh clone of
the infra alone with only .env.prod added, `plano prod up` pulling and serving over
HTTPS before any real certificate; persistence, isolation and faults on that stack;
then the seed's raw compose commands without plano."""

import json
import os
import shutil
import subprocess
import threading
import time

import pytest

from tests.integration.net import http_get, https_json, https_request, wait_for
from tests.integration.stackfixtures import (
    REGISTRY,
    build_image,
    docker,
    make_workspace,
    plano,
    project_containers,
    remove_project,
)

pytestmark = pytest.mark.expected_seconds(200)  # on a 2-core machine

APPS = ("app1", "app2")
ROLES = ("backend", "frontend")


def build_and_push(ws, version: str) -> None:
    for app in APPS:
        for role in ROLES:
            image = f"{REGISTRY}/{ws.name}/{app}-{role}:{version}"
            build_image(image, ws.root / app / role)
            docker("push", image)
            docker("rmi", image)  # prod must pull it back from the registry


def set_env(path, **values) -> None:
    lines = [line for line in path.read_text().splitlines() if line.split("=", 1)[0] not in values]
    path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in values.items())]) + "\n")


@pytest.fixture(scope="module")
def prod(tmp_path_factory, engine):
    assert subprocess.run(["curl", "-fsS", f"http://{REGISTRY}/v2/"], capture_output=True).returncode == 0, \
        "no local registry: scripts/harness/registry.sh start (scripts/test.sh does)"
    ws = make_workspace(tmp_path_factory.mktemp("prod"))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "-C", str(ws.infra), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(ws.infra), "commit", "-qm", "infra"], check=True)
    build_and_push(ws, "1.0.0")
    server = ws.root / "server"
    subprocess.run(["git", "clone", "-q", str(ws.infra), str(server / "infra")], check=True)
    clone = server / "infra"
    assert not (clone / ".env").exists() and not (clone / ".env.prod").exists()
    shutil.copy(ws.infra / ".env.prod", clone / ".env.prod")
    os.chmod(clone / ".env.prod", 0o600)
    tags = {f"{app.upper()}_{role.upper()}_TAG": "1.0.0" for app in APPS for role in ROLES}
    set_env(clone / ".env.prod", **tags)
    try:
        up = plano("prod", "up", cwd=clone, timeout=1200)
        yield ws, clone, up
    finally:
        plano("prod", "down", cwd=clone, check=False)
        remove_project(ws.name)


def api(ws, app, path, method="GET", payload=None):
    return https_json(ws.ports["prod_https"], f"{app}.example.com", path, method, payload)


def test_prod_up_pulls_and_serves_https_before_any_certificate(prod):
    ws, clone, up = prod
    assert f"app1: https://app1.example.com:{ws.ports['prod_https']}" in up.stdout
    assert not (clone.parent / "app1").exists(), "prod needs no app source"
    for app in APPS:
        status, health = api(ws, app, "/api/health")
        assert status == 200 and health["database"] == "up" and health["redis"] == "up"
        status, headers, body = https_request(ws.ports["prod_https"], f"www.{app}.example.com", "/")
        assert status == 200 and b"frontend" in body
        status, headers, _ = http_get(ws.ports["prod_http"], f"{app}.example.com", "/x?y=1")
        assert status == 308 and headers["location"] == f"https://{app}.example.com/x?y=1"
    cert = (clone / "data/certs/plano/app1/fullchain.pem")
    assert cert.is_file(), "the placeholder certificate lives under data/certs"


def test_prod_keeps_its_state_in_data_only(prod):
    """No container mounts a Docker volume: every image-declared VOLUME is covered by a
    bind mount into data/ or a tmpfs, so `prod down` leaves no anonymous volume behind."""
    ws, _, _ = prod
    volumes = []
    for name in project_containers(ws.name):
        mounts = json.loads(docker("inspect", "-f", "{{json .Mounts}}", name).stdout)
        volumes += [(name, m["Destination"]) for m in mounts if m["Type"] == "volume"]
    assert volumes == []


def test_persistence_across_down_up_and_a_database_restart(prod):
    ws, clone, _ = prod
    status, created = api(ws, "app1", "/api/rows", "POST", {"value": "kept"})
    assert status == 201
    status, _, _ = https_request(ws.ports["prod_https"], "app1.example.com", "/api/uploads/photo.txt", "PUT", b"pixels")
    assert status == 201
    assert (clone / "data/uploads/app1/photo.txt").read_bytes() == b"pixels"

    plano("prod", "down", cwd=clone)
    assert project_containers(ws.name) == []
    plano("prod", "up", cwd=clone, timeout=600)
    status, rows = api(ws, "app1", "/api/rows")
    assert status == 200 and {"id": created["id"], "value": "kept"}.items() <= rows["rows"][0].items()

    plano("prod", "restart", "database", cwd=clone)
    wait_for(lambda: api(ws, "app1", "/api/health")[0] == 200, "app1 never recovered after the database restart", 60)
    assert api(ws, "app1", "/api/rows")[1]["rows"][0]["value"] == "kept"
    status, _, body = https_request(ws.ports["prod_https"], "app1.example.com", "/api/uploads/photo.txt")
    assert (status, body) == (200, b"pixels")
    assert (clone / "data/database/PG_VERSION").is_file()


def exec_in(clone, service, *command):
    return plano("prod", "exec", service, "--", *command, cwd=clone, check=False)


def test_isolation_between_apps(prod):
    ws, clone, _ = prod
    env = ws.env("prod", clone)
    app2_db = env["APP2_DB_PASSWORD"]
    for database in ("app1", "postgres"):
        out = exec_in(clone, "database", "psql", f"postgresql://app2:{app2_db}@127.0.0.1:5432/{database}", "-c", "select 1")
        assert out.returncode != 0 and "permission denied for database" in out.stderr, out.stderr
    ok = exec_in(clone, "database", "psql", f"postgresql://app2:{app2_db}@127.0.0.1:5432/app2", "-Atc", "select 1")
    assert ok.returncode == 0 and ok.stdout.strip() == "1"

    assert api(ws, "app1", "/api/cache/secret", "POST", {"value": "app1-only"})[0] in (200, 201)
    cli = ["redis-cli", "--no-auth-warning", "--user", "app2", "--pass", env["APP2_REDIS_PASSWORD"]]
    for command in (["get", "app1:secret"], ["keys", "*"], ["flushall"], ["scan", "0"], ["set", "app1:x", "1"]):
        out = exec_in(clone, "redis", *cli, *command)
        assert "NOPERM" in out.stdout + out.stderr, (command, out.stdout, out.stderr)
    out = exec_in(clone, "redis", *cli, "set", "app2:x", "1")
    assert out.stdout.strip() == "OK"
    out = exec_in(clone, "redis", "redis-cli", "get", "app1:secret")
    assert "NOPERM" in out.stdout + out.stderr, "the default user must not read keys"


def container(ws, service) -> str:
    return docker("ps", "-q", "--filter", f"label=com.docker.compose.project={ws.name}",
                  "--filter", f"label=com.docker.compose.service={service}").stdout.strip()


def test_infra_secrets_are_in_no_inspect_and_no_command_line(prod):
    """database, redis and backup read their passwords from files owned by their own
    user (0400): `docker inspect` and `ps` show none; the apps keep their URLs."""
    ws, clone, _ = prod
    env = ws.env("prod", clone)
    passwords = {key: value for key, value in env.items() if key.endswith("_PASSWORD")}
    assert {"POSTGRES_PASSWORD", "APP1_DB_PASSWORD", "APP2_REDIS_PASSWORD"} <= set(passwords)
    owners = {"database": "999", "redis": "999", "backup": "1000"}
    for service, uid in owners.items():
        cid = container(ws, service)
        inspected = docker("inspect", cid).stdout
        assert [k for k, v in passwords.items() if v in inspected] == [], service
        processes = docker("top", cid, "-eo", "pid,args").stdout
        assert [k for k, v in passwords.items() if v in processes] == [], (service, processes)
        files = docker("exec", cid, "sh", "-c", "stat -c '%n %a %u' /run/secrets/*").stdout.split("\n")
        assert files and all(line.endswith(f" 400 {uid}") for line in files if line), (service, files)
    assert passwords["APP1_DB_PASSWORD"] in docker("inspect", container(ws, "app1-backend")).stdout
    assert docker("exec", container(ws, "backup"), "id", "-u").stdout.strip() == "1000"
    assert docker("exec", container(ws, "certbot"), "id", "-u").stdout.strip() == "1001"


def curl_status(port: int, sni: str, host: str, *extra: str, scheme: str = "https") -> str:
    argv = ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *extra,
            "--resolve", f"{sni}:{port}:127.0.0.1", "-H", f"Host: {host}", f"{scheme}://{sni}:{port}/"]
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30).stdout.strip()


def test_a_host_of_another_app_than_the_sni_is_misdirected(prod):
    ws, _, _ = prod
    https, http = ws.ports["prod_https"], ws.ports["prod_http"]
    for version in ("--http1.1", "--http2"):
        assert curl_status(https, "app1.example.com", "app2.example.com", version) == "421"
        assert curl_status(https, "app2.example.com", "app1.example.com", version) == "421"
        assert curl_status(https, "app1.example.com", "app1.example.com", version) == "200"
        assert curl_status(https, "www.app1.example.com", "app1.example.com", version) == "200"
    # Plain HTTP has no SNI: redirects as before. Without SNI, TLS is refused as before (000).
    assert curl_status(http, "app1.example.com", "app2.example.com", scheme="http") == "308"
    assert curl_status(https, "127.0.0.1", "app1.example.com") == "000"


def test_a_crashed_app_container_comes_back(prod):
    """A crash (the container's process killed from the host) brings the restart
    policy into play. Docker 20.10 treats `docker kill` as a manual stop and does not
    restart after it; see the README."""
    ws, _, _ = prod
    for app in APPS:
        for role in ROLES:
            cid = container(ws, f"{app}-{role}")
            pid = docker("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip()
            os.kill(int(pid), 9)
        seconds = wait_for(lambda: api(ws, app, "/api/health")[0] == 200
                           and https_request(ws.ports["prod_https"], f"{app}.example.com", "/")[0] == 200,
                           f"{app} never came back after its containers crashed", seconds=90)
        print(f"{app}: served again {seconds:.1f} s after the crash")


def test_database_restart_under_light_load(prod):
    ws, clone, _ = prod
    results: list[int] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 2000:
            try:
                results.append(api(ws, "app1", "/api/rows", "POST", {"value": "load"})[0])
            except OSError:
                results.append(0)
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(1)
    plano("prod", "restart", "database", cwd=clone)
    wait_for(lambda: api(ws, "app1", "/api/health")[0] == 200, "app1 did not recover after the restart", 60)
    time.sleep(1)
    stop.set()
    worker.join()
    assert results[-1] == 201, results[-20:]
    print(f"database restart under load: {results.count(201)} ok, {len(results) - results.count(201)} failed of {len(results)}")


def test_nginx_serves_the_other_apps_when_one_is_absent(prod):
    from plano.core.mode import Mode
    from plano.core.runner import SubprocessRunner
    from plano.engine import stack
    from tests.scripted import session

    ws, clone, _ = prod
    plano("prod", "down", cwd=clone)
    st = stack.open_stack(session(clone, SubprocessRunner(), Mode.PROD))
    subprocess.run(st.argv("up", "-d", "--wait", "nginx", "app1-backend", "app1-frontend"),
                   cwd=clone, check=True, capture_output=True, timeout=600)
    assert container(ws, "app2-backend") == ""
    assert api(ws, "app1", "/api/health")[0] == 200
    assert https_request(ws.ports["prod_https"], "app2.example.com", "/")[0] == 502
    plano("prod", "up", cwd=clone, timeout=600)
    wait_for(lambda: api(ws, "app2", "/api/health")[0] == 200, "app2 not served after it started", 30)


def test_the_seeds_raw_commands_work_without_plano(prod):
    """docker compose -f docker-compose.yml -f docker-compose.prod.yml pull && ... up -d.
    Compose reads variables from .env only, so the server's .env is its .env.prod."""
    ws, clone, _ = prod
    plano("prod", "down", cwd=clone)
    os.symlink(".env.prod", clone / ".env")
    raw = ["docker", "compose", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]
    for args in (["pull"], ["up", "-d", "--wait"]):
        proc = subprocess.run([*raw, *args], cwd=clone, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
    for app in APPS:
        assert api(ws, app, "/api/health")[0] == 200
    subprocess.run([*raw, "down"], cwd=clone, capture_output=True, timeout=300)
    os.unlink(clone / ".env")

