"""`plano dev|prod|db` print the exact compose commands with --dry-run."""

import os
import shlex

import pytest

from plano.cli.main import main
from tests.cli.test_cli import INIT, run
from tests.cli.test_dry_runs import engine_script
from tests.scripted import Answer, ScriptedRunner


@pytest.fixture
def infra(workspace, capsys):
    assert run(capsys, *INIT)[0] == 0
    os.chdir(workspace / "infra")
    assert run(capsys, "app", "add", "app1", "--domain", "app1.example.com")[0] == 0
    return workspace / "infra"


def tail_after_binary(line: str) -> list[str]:
    words = shlex.split(line)
    return words[words.index("-p"):]


def scripted(capsys, *args: str, runner: ScriptedRunner | None = None) -> tuple[int, str, str]:
    code = main(list(args), runner=runner or engine_script())
    out, err = capsys.readouterr()
    return code, out, err


def test_prod_up_dry_run(infra, capsys):
    code, out, _ = scripted(capsys, "prod", "up", "--dry-run")
    assert code == 0
    pull, up = out.strip().splitlines()
    files = ["--env-file", ".env", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]
    assert tail_after_binary(pull) == ["-p", "infra", *files, "pull", "--ignore-buildable", "--quiet"]
    assert tail_after_binary(up) == ["-p", "infra", *files, "up", "-d", "--remove-orphans", "--build", "--wait", "--wait-timeout", "300"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["dev", "down", "--dry-run"], ["down"]),
        (["dev", "down", "--dry-run", "--volumes"], ["down", "--volumes"]),
        (["dev", "ps", "--dry-run"], ["ps"]),
        (["dev", "logs", "--dry-run", "app1-backend"], ["logs", "app1-backend"]),
        (["dev", "restart", "--dry-run", "nginx"], ["restart", "nginx"]),
        (["dev", "build", "--dry-run"], ["build"]),
        (["dev", "exec", "--dry-run", "app1-backend", "--", "npm", "test"], ["exec", "-T", "app1-backend", "npm", "test"]),
        (["prod", "pull", "--dry-run"], ["pull", "--ignore-buildable"]),
    ],
)
def test_dry_runs(infra, capsys, args, expected):
    code, out, _ = scripted(capsys, *args)
    assert code == 0
    words = tail_after_binary(out.strip())
    mode = args[0]
    assert words[:2] == ["-p", "infra-dev" if mode == "dev" else "infra"]
    assert f".env.{mode}" in words and f"docker-compose.{mode}.yml" in words
    assert words[words.index(f"docker-compose.{mode}.yml") + 1:] == expected


def test_prod_without_its_env_file(infra, capsys):
    (infra / ".env.prod").unlink()
    code, _, err = scripted(capsys, "prod", "up", "--dry-run")
    assert code == 1 and err.startswith("error: .env.prod: missing; copy it from the machine where plano created it")


def test_db_create_dry_run_hides_the_password(infra, capsys):
    code, out, _ = scripted(capsys, "db", "create", "--dry-run", "app1")
    assert code == 0 and "\\set password '********'" in out
    secret = next(line.split("=", 1)[1] for line in (infra / ".env.dev").read_text().splitlines() if line.startswith("APP1_DB_PASSWORD="))
    assert secret not in out


def test_db_create_unknown_app(infra, capsys):
    code, _, err = scripted(capsys, "db", "create", "--dry-run", "ghost")
    assert code == 2 and err == "error: apps/ghost: no such app in plano.yml (registered: app1); see plano app list\n"


def test_the_command_exit_code_is_returned(infra, capsys):
    runner = ScriptedRunner().query("compose", "version").on("compose", answers=Answer(7))
    code, _, err = scripted(capsys, "dev", "ps", runner=runner)
    assert code == 7 and err.startswith("$ ") and runner.actions[0][-1] == "ps"
