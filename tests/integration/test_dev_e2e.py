"""Dev, for real: `plano dev up` builds ../app1 and ../app2 from source, nginx routes
app1.localhost and app2.localhost, and an edit in ../app1/backend reaches the
running container through the bind mount (hot reload) without a rebuild."""

import json

import pytest

from tests.integration.net import https_request, wait_for
from tests.integration.stackfixtures import make_workspace, plano, project_containers, remove_project


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
    assert len(project_containers(f"{ws.name}-dev")) == 8  # nginx certbot database redis + 2 x (backend, frontend)
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
