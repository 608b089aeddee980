"""Backups: exact argv and the reading of data/backups/ (pure parts; the real runs are
tests/integration/test_backup_e2e.py)."""

import json

import pytest

from plano.core import manifest as mf
from plano.core.errors import UsageError
from plano.core.mode import Mode
from plano.engine.compose import ComposeContext
from plano.engine.stack import Stack
from plano.ops import backup

COMPOSE = ["docker", "compose", "-p", "acme", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]
SCRIPT = [*COMPOSE, "run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", "backup"]


@pytest.fixture
def stack(tmp_path) -> Stack:
    text = mf.new_document("acme", "registry.example.com/acme", "ops@example.com").replace(
        "apps: {}", "apps:\n  app1:\n    domains: [app1.example.com]\n")
    ctx = ComposeContext(("docker", "compose"), "acme", ("docker-compose.yml", "docker-compose.prod.yml"), (".env.prod",))
    return Stack(tmp_path, mf.load_text(text), Mode.PROD, ctx)


def test_argv(stack):
    assert backup.script_argv(stack, *backup.run_args([])) == [*SCRIPT, "run"]
    assert backup.script_argv(stack, *backup.run_args(["app1"], prune=False)) == [*SCRIPT, "run", "--no-prune", "app1"]
    assert backup.script_argv(stack, *backup.verify_args(None)) == [*SCRIPT, "verify"]
    assert backup.script_argv(stack, *backup.restore_args("20261129T033000Z", "app1", "app1_copy")) == [
        *SCRIPT, "restore", "20261129T033000Z", "app1", "--to-scratch", "app1_copy"]
    assert backup.script_argv(stack, "prune") == [*SCRIPT, "prune"]


def test_input_checks(stack):
    for bad in ("latest", "20261129T033000Z\n", "2026112٩T033000Z"):  # a newline, a non-ASCII digit
        with pytest.raises(UsageError, match="is not a backup ID; they look like 20261129T033000Z"):
            backup.check_id(bad)
    assert backup.check_id("20261129T033000Z") == "20261129T033000Z"
    for name in ("app1", "postgres"):
        with pytest.raises(UsageError, match=f"--to-scratch: '{name}' is an existing database; give a new database name"):
            backup.check_scratch(name, stack.manifest)
    with pytest.raises(UsageError, match="--to-scratch: 'Bad-Name' is not a database name; use lower-case letters"):
        backup.check_scratch("Bad-Name", stack.manifest)
    assert backup.check_scratch("app1_before_friday", stack.manifest) == "app1_before_friday"


def test_status_log():
    text = ("ok 2026-11-28T03:30:12Z 20261128T033000Z\nok 2026-11-28T03:30:14Z verify 20261128T033000Z\n"
            "failed 2026-11-29T03:30:05Z run 20261129T033000Z did not complete\n")
    assert backup.parse_status(text) == {"last_success": "2026-11-28T03:30:12Z", "last_failure": "2026-11-29T03:30:05Z",
                                         "failure": "run 20261129T033000Z did not complete"}
    assert backup.parse_status("") == {"last_success": None, "last_failure": None, "failure": None}


def test_entries_and_interrupted_runs(tmp_path):
    done = tmp_path / "20261129T033000Z"
    done.mkdir()
    (done / "manifest.json").write_text(json.dumps({"postgres": "17.6", "files": [
        {"name": "app1.dump", "bytes": 100}, {"name": "app1-uploads.tar", "bytes": 20}, {"name": "app2-uploads.tar", "bytes": 3},
        {"name": "globals.sql", "bytes": 7}]}))
    (tmp_path / ".partial-20261130T033000Z").mkdir()
    (tmp_path / "notes").mkdir()
    [entry] = backup.entries(tmp_path)
    assert (entry.id, entry.bytes, entry.apps, entry.postgres) == ("20261129T033000Z", 130, ["app1", "app2"], "17.6")
    assert backup.status(tmp_path)["interrupted"] == ["20261130T033000Z"]
