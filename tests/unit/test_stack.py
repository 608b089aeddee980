"""Exact command lines of the stack commands, and their pure decisions."""

from pathlib import Path

import pytest

from plano.core import manifest as mf
from plano.core.errors import ManifestError, PlanoError
from plano.core.mode import Mode
from plano.engine import stack
from plano.engine.compose import ComposeContext
from plano.ops import db
from tests.conftest import manifest_text

BIN = ("docker", "compose")


def make(name: str) -> stack.Stack:
    mode = Mode(name)
    m = mf.load_text(manifest_text(apps=2))
    env = (".env", f".env.{mode}")
    files = ("docker-compose.yml", f"docker-compose.{mode}.yml")
    return stack.Stack(Path("/infra"), m, mode, ComposeContext(BIN, "acme" if mode == "prod" else "acme-dev", files, env))


PROD = ["docker", "compose", "-p", "acme", "--env-file", ".env", "--env-file", ".env.prod",
        "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]
DEV = ["docker", "compose", "-p", "acme-dev", "--env-file", ".env", "--env-file", ".env.dev",
       "-f", "docker-compose.yml", "-f", "docker-compose.dev.yml"]


def test_up():
    assert stack.up_argv(make("prod")) == [*PROD, "up", "-d", "--remove-orphans", "--build", "--wait", "--wait-timeout", "300"]
    assert stack.up_argv(make("dev"), build=True, wait=False) == [*DEV, "up", "-d", "--remove-orphans", "--build"]


def test_down_keeps_volumes_unless_asked():
    assert stack.down_argv(make("prod")) == [*PROD, "down"]
    assert stack.down_argv(make("prod"), volumes=True) == [*PROD, "down", "--volumes"]


def test_logs_exec_restart():
    assert stack.logs_argv(make("dev"), ("nginx",), True, "50") == [*DEV, "logs", "--follow", "--tail", "50", "nginx"]
    assert stack.exec_argv(make("dev"), "app1-backend", ("npm", "test"), tty=False) == [*DEV, "exec", "-T", "app1-backend", "npm", "test"]
    assert stack.exec_argv(make("dev"), "database", ("psql",), tty=True) == [*DEV, "exec", "database", "psql"]
    assert stack.simple_argv(make("prod"), "restart", ("app1-backend",)) == [*PROD, "restart", "app1-backend"]


def test_env_files_need_the_mode_file(tmp_path):
    (tmp_path / ".env.prod").write_text("")
    assert stack.env_files(tmp_path, Mode.PROD) == (".env.prod",)
    (tmp_path / ".env").write_text("")
    assert stack.env_files(tmp_path, Mode.PROD) == (".env", ".env.prod")
    with pytest.raises(PlanoError) as caught:
        stack.env_files(tmp_path, Mode.DEV)
    assert str(caught.value) == ".env.dev: missing; run 'plano render' to create it"
    (tmp_path / ".env.prod").unlink()
    with pytest.raises(PlanoError, match=r"^\.env\.prod: missing; copy it from the machine where plano created it"):
        stack.env_files(tmp_path, Mode.PROD)


def test_urls():
    m = mf.load_text(manifest_text(apps=2))
    assert stack.urls(m, Mode.DEV) == {"app1": "https://app1.localhost", "app2": "https://app2.localhost"}
    assert stack.urls(m, Mode.PROD) == {"app1": "https://app1.example.com", "app2": "https://app2.example.com"}
    m = mf.load_text(manifest_text(apps=1).replace("  https_port: 443\n  database_port", "  https_port: 8443\n  database_port"))
    assert stack.urls(m, Mode.DEV) == {"app1": "https://app1.localhost:8443"}


def test_published_ports():
    m = mf.load_text(manifest_text())
    assert stack.published_ports(m, Mode.PROD) == [("0.0.0.0", 80, "prod/http_port"), ("0.0.0.0", 443, "prod/https_port")]
    assert [p[1] for p in stack.published_ports(m, Mode.DEV)] == [80, 443, 5432, 6379]


def test_port_taken_is_detected():
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert not stack.port_is_free("127.0.0.1", held.getsockname()[1])


def test_db_scripts_keep_the_password_off_argv():
    scripts = db.create_scripts("app1", "p" * 43)
    assert [database for database, _ in scripts] == ["postgres", "app1"]
    assert scripts[0][1].startswith("\\set app 'app1'\n\\set password '" + "p" * 43 + "'\n")
    # Both of the app's logins get the password (its URL names one of them).
    assert scripts[0][1].count("SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'login', :'password')") == 2
    assert "\\set login 'app1'\n" in scripts[0][1] and "\\set login 'app1_alt'\n" in scripts[0][1]


def test_db_password_rules():
    with pytest.raises(ManifestError, match="APP1_DB_PASSWORD is missing"):
        db.checked_password("app1", None, ".env.dev")
    with pytest.raises(ManifestError, match="^.env.dev/APP1_DB_PASSWORD: use at least 16"):
        db.checked_password("app1", "x'; DROP TABLE", ".env.dev")


def test_db_list_parsing():
    assert db.parse_list("app1|app1|7000000\napp2|app2|8000\n") == [
        db.DatabaseRow("app1", "app1", 7000000), db.DatabaseRow("app2", "app2", 8000)]


def test_psql_variables_cannot_leave_their_quotes():
    assert db.with_vars("SELECT 1;\n", app="it's\\") == "\\set app 'it''s\\\\'\nSELECT 1;\n"
