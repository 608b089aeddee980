"""Dev, for real: `plano dev up` builds ../app1 and ../app2 from source, nginx routes
app1.localhost and app2.localhost, and an edit in ../app1/backend reaches the
running container through the bind mount (hot reload) without a rebuild."""

import json
import subprocess

import pytest

from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import (
    make_workspace,
    plano,
    project_containers,
    remove_project,
)

pytestmark = pytest.mark.expected_seconds(70)  # on a 2-core machine


@pytest.fixture(scope="module")
def dev(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("dev"))
    try:
        up = plano("dev", "up", cwd=ws.infra, timeout=1200)
        yield ws, up
    finally:
        plano("dev", "down", "--volumes", "--yes", cwd=ws.infra, check=False)
        remove_project(f"{ws.name}-dev")


def get(ws, host, path):
    return https_request(ws.ports["dev_https"], host, path)


def test_up_prints_urls_and_routes_each_app(dev):
    ws, up = dev
    port = ws.ports["dev_https"]
    assert f"app1: https://app1.localhost:{port}" in up.stdout
    assert f"app2: https://app2.localhost:{port}" in up.stdout
    for app in ("app1", "app2"):
        status, headers, body = get(ws, f"{app}.localhost", "/")
        assert status == 200 and b"frontend" in body, body
        status, _, body = get(ws, f"{app}.localhost", "/api/health")
        health = json.loads(body)
        assert status == 200 and health["database"] == "up" and health["redis"] == "up", health
        assert "strict-transport-security" in headers


def test_dev_https_is_signed_by_the_local_dev_ca(dev, dev_ca_dir):
    import socket
    import ssl

    ws, up = dev
    ca = dev_ca_dir / "ca.pem"
    assert ca.is_file()  # made by the first `dev up` of this test session, with how to trust it
    context = ssl.create_default_context(cafile=str(ca))  # verifies the chain and the name
    for app in ("app1", "app2"):
        with socket.create_connection(("127.0.0.1", ws.ports["dev_https"]), timeout=5) as sock, \
                context.wrap_socket(sock, server_hostname=f"{app}.localhost") as tls:
            assert tls.getpeercert()["subjectAltName"] == (("DNS", f"{app}.localhost"),)
    again = plano("dev", "up", cwd=ws.infra, timeout=600)
    assert "created the plano development CA" not in again.stderr


def test_unknown_host_is_refused(dev):
    ws, _ = dev
    import ssl

    with pytest.raises(ssl.SSLError):
        get(ws, "nobody.localhost", "/")


def test_backend_edit_reloads_through_the_bind_mount(dev):
    ws, _ = dev
    before = json.loads(get(ws, "app1.localhost", "/api/version")[2])
    server = ws.root / "app1/backend/server.js"
    server.write_text(server.read_text() + "\n// edited by the hot reload test\n")
    (ws.root / "app1/backend/VERSION").write_text("hot-reloaded\n")

    def reloaded() -> bool:
        status, _, body = get(ws, "app1.localhost", "/api/version")
        now = json.loads(body) if status == 200 else {}
        return now.get("pid") != before["pid"] and now.get("version") == "hot-reloaded"

    seconds = wait_for(reloaded, "the edit of ../app1/backend/server.js never reached the container", seconds=60)
    print(f"hot reload through nginx: {seconds:.1f} s")
    assert json.loads(get(ws, "app2.localhost", "/api/version")[2])["version"] != "hot-reloaded"


def test_ps_and_dry_run(dev):
    ws, _ = dev
    assert len(project_containers(f"{ws.name}-dev")) == 9  # nginx certbot database redis backup + 2 x (backend, frontend)
    dry = plano("dev", "restart", "--dry-run", "app1-backend", cwd=ws.infra)
    assert dry.stdout.strip().endswith("restart app1-backend")


def test_db_commands_provision_an_app_added_after_initialisation(dev):
    ws, _ = dev
    plano("app", "add", "app3", "--domain", "app3.example.com", cwd=ws.infra)
    password = ws.env("dev")["APP3_DB_PASSWORD"]
    for _ in range(2):  # idempotent
        plano("db", "create", "app3", cwd=ws.infra)

    def as_app3(database: str):
        return plano("dev", "exec", "database", "--", "psql", f"postgresql://app3:{password}@127.0.0.1:5432/{database}",
                     "-Atc", "select current_user", cwd=ws.infra, check=False)

    own = as_app3("app3")
    assert own.returncode == 0 and own.stdout.strip() == "app3", own.stderr
    other = as_app3("app1")
    assert other.returncode != 0 and "permission denied for database" in other.stderr

    listed = json.loads(plano("db", "list", "--json", cwd=ws.infra).stdout)
    assert {row["database"]: row["owner"] for row in listed} == {"app1": "app1", "app2": "app2", "app3": "app3"}
    plano("db", "drop", "app3", "--yes", cwd=ws.infra)
    assert [row["database"] for row in json.loads(plano("db", "list", "--json", cwd=ws.infra).stdout)] == ["app1", "app2"]
    plano("app", "remove", "app3", cwd=ws.infra)


def test_dev_test_runs_the_apps_tests_in_its_container(dev):
    ws, _ = dev
    passed = plano("dev", "test", "app1", cwd=ws.infra, check=False, timeout=600)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "exec -T -e DATABASE_URL app1-backend npm test" in passed.stderr
    assert "tests get the throwaway database app1_test" in passed.stderr


def test_dev_test_propagates_failure_and_never_touches_dev_data(dev):
    ws, _ = dev
    manifest = ws.infra / "plano.yml"
    original = manifest.read_text()
    script = 'echo "url=$DATABASE_URL"; exit 3'
    manifest.write_text(original.replace("  app2:\n", f"  app2:\n    backend:\n      test: [sh, -c, '{script}']\n", 1))
    try:
        failed = plano("dev", "test", "app2", cwd=ws.infra, check=False, timeout=600)
        assert failed.returncode == 3, failed.stdout + failed.stderr
        assert "@database:5432/app2_test" in failed.stdout and "@database:5432/app2\n" not in failed.stdout
        # Not running: a one-off container, same result.
        subprocess.run(["docker", "stop", f"{ws.name}-dev-app2-backend-1"], check=True, capture_output=True)
        oneoff = plano("dev", "test", "app2", "--service", "backend", cwd=ws.infra, check=False, timeout=600)
        assert oneoff.returncode == 3 and "run --rm -T -e DATABASE_URL app2-backend sh -c" in oneoff.stderr
        listed = [row["database"] for row in json.loads(plano("db", "list", "--json", cwd=ws.infra).stdout)]
        assert "app2_test" not in listed and "app2" in listed  # dropped after the run; dev data kept
    finally:
        manifest.write_text(original)
        subprocess.run(["docker", "start", f"{ws.name}-dev-app2-backend-1"], capture_output=True)
