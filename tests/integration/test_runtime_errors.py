"""Bad input to the runtime: one clear line, a non-zero exit, nothing half-started."""

import socket

import pytest

from tests.integration.stackfixtures import (
    make_workspace,
    plano,
    project_containers,
    remove_project,
)

pytestmark = pytest.mark.expected_seconds(10)  # on a 2-core machine


@pytest.fixture
def ws(tmp_path, engine):
    workspace = make_workspace(tmp_path, apps=("app1",))
    yield workspace
    remove_project(workspace.name)


def one_error_line(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_env_prod(ws):
    (ws.infra / ".env.prod").unlink()
    proc = plano("prod", "up", cwd=ws.infra, check=False)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("error: .env.prod: missing; copy it from the machine where plano created it")
    assert project_containers(ws.name) == []


def test_unreachable_registry(ws):
    text = (ws.infra / "plano.yml").read_text()
    (ws.infra / "plano.yml").write_text(text.replace(f"registry: 127.0.0.1:5000/{ws.name}", "registry: 127.0.0.1:5999/nowhere"))
    plano("render", cwd=ws.infra)
    proc = plano("prod", "up", cwd=ws.infra, check=False)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert line.startswith("error: prod pull failed, nothing was started:") and "127.0.0.1:5999" in line, line
    assert project_containers(ws.name) == []


def test_port_already_taken(ws):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ws.ports["prod_https"]))
        squatter.listen()
        proc = plano("prod", "up", cwd=ws.infra, check=False)
    assert proc.returncode == 2
    port = ws.ports["prod_https"]
    assert one_error_line(proc) == (
        f"error: prod/https_port: port {port} on 127.0.0.1 is taken by another process; stop it or pick another port in plano.yml"
    )
    assert project_containers(ws.name) == []
