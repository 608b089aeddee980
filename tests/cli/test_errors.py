"""The error boundary: each class of failure is one `error:` line naming what to fix,
the documented exit code, no traceback, and nothing written."""

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from plano.cli.main import main
from plano.core.errors import BAD_INPUT, ENVIRONMENT
from plano.core.files import tree_digest as all_files
from plano.core.naming import AUDIT_LOG
from plano.core.runner import SubprocessRunner
from plano.ops import devca
from tests.cli.test_cli import INIT
from tests.cli.test_dry_runs import engine_script, secret_values
from tests.scripted import Answer, Rule, ScriptedRunner


def tree_digest(root):
    """Every file but the audit log: a failed command that could have changed something
    leaves its line there (tests/unit/test_audit.py), and nothing else."""
    return {path: sha for path, sha in all_files(root).items() if path != AUDIT_LOG}


@pytest.fixture
def infra(workspace, capsys):
    assert main(INIT) == 0
    os.chdir(workspace / "infra")
    assert main(["app", "add", "app1", "--domain", "app1.example.com"]) == 0
    capsys.readouterr()
    return workspace / "infra"


def failing(capsys, infra, *args: str, runner=None) -> tuple[int, str]:
    before = tree_digest(infra)
    code = main(list(args), runner=runner or engine_script())
    out, err = capsys.readouterr()
    assert tree_digest(infra) == before, "a failing command changed files"
    assert "Traceback" not in err and err.count("error:") == 1 and err.endswith("\n") and err.startswith("error: "), err
    return code, err.removeprefix("error: ").strip()


def test_a_folder_where_a_file_belongs_names_the_path(infra, capsys):
    (infra / "data/nginx/maintenance").rmdir()
    (infra / "data/nginx/maintenance").write_text("")
    code, message = failing(capsys, infra, "maintenance", "on", "app1")
    assert code == ENVIRONMENT
    assert message == f"{infra}/data/nginx/maintenance: cannot use it: File exists; a file is where a folder belongs; move it away"


def test_an_unreadable_plano_yml_names_it(infra, capsys):
    (infra / "plano.yml").unlink()
    (infra / "plano.yml").mkdir()  # a folder where the manifest belongs
    code, message = failing(capsys, infra, "-C", str(infra), "render")
    assert code == BAD_INPUT and message == f"{infra}/plano.yml: a folder, not a file; move the folder away"


def test_db_drop_takes_only_an_app_name(infra, capsys):
    runner = ScriptedRunner()  # nothing may run
    code, message = failing(capsys, infra, "db", "drop", "x'; DROP ROLE postgres; --", "--yes", runner=runner)
    assert code == BAD_INPUT and message.startswith("APP \"x'; DROP ROLE postgres; --\": app names are lower-case letters")
    assert runner.calls == []


def test_a_bad_tag_is_refused_before_anything_runs(infra, capsys):
    for tag in ("1.0\nAPP1_DB_PASSWORD=x", "${POSTGRES_PASSWORD}", "a'b"):
        runner = engine_script()
        code, message = failing(capsys, infra, "deploy", "app1", "--tag", tag, runner=runner)
        assert code == BAD_INPUT and message.startswith("--tag ") and "not an image tag" in message
        assert runner.actions == []


def test_a_tool_that_cannot_run_is_a_result_not_a_crash(tmp_path):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")  # not executable
    got = SubprocessRunner().run([str(tool)])
    assert got.code == 126 and got.err == f"{tool}: cannot run it: Permission denied"
    huge = SubprocessRunner().run(["true", "x" * (256 * 1024)] * 64)
    assert huge.code == 126 and huge.err == "true: argument list too long (128 arguments)"
    assert SubprocessRunner().run(["/nonexistent/tool"]).code == 127


def test_doctor_never_puts_a_secret_on_a_command_line(infra, capsys):
    os.system("git -C . add -A >/dev/null && git -c user.email=t@e -c user.name=t commit -qm init >/dev/null")
    runner = ScriptedRunner().query("rev-list", answers=Answer(0, "0123abcd\n")).query()  # the rest: "ok, nothing"
    main(["doctor", "--json"], runner=runner)
    capsys.readouterr()
    values = secret_values(infra)
    assert values and runner.calls
    assert not [call.argv for call in runner.calls if any(v in word for v in values for word in call.argv)]
    greps = [call for call in runner.calls if "grep" in call.argv]
    assert len(greps) == 2 and all(call.stdin and all(v in call.stdin for v in values) for call in greps)


def test_no_command_with_a_dry_run_puts_a_secret_on_a_command_line(infra, capsys, monkeypatch):
    """The deploy, backup, db and dev test commands, run for real against a scripted engine."""
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(infra.parent / "dev-ca"))
    values = secret_values(infra)
    for argv in (["deploy", "app1", "--tag", "2.0.0"], ["backup", "run"], ["db", "create", "app1"], ["db", "create", "--prod", "app1"],
                 ["dev", "test", "app1"], ["backup", "restore", "20261201T033000Z", "--yes"]):
        runner = engine_script()
        assert main(argv, runner=runner, sleep=lambda _: None) == 0, argv
        assert not [c.argv for c in runner.calls if any(v in w for v in values for w in c.argv)], argv
    capsys.readouterr()


def test_a_corrupt_own_certificate_names_the_field_and_the_file(infra, capsys):
    text = (infra / "plano.yml").read_text() + "    tls: {certificate: certs/app1.pem, key: certs/app1.key}\n"
    assert text != (infra / "plano.yml").read_text()
    (infra / "plano.yml").write_text(text)
    (infra / "certs").mkdir()
    (infra / "certs/app1.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    (infra / "certs/app1.key").write_bytes(devca.key_pem(ec.generate_private_key(ec.SECP256R1())))
    before = tree_digest(infra)
    runner = engine_script()
    code = main(["certs", "issue", "app1"], runner=runner)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and tree_digest(infra) == before
    assert err.splitlines() == [
        "error: apps/app1/tls/certificate (certs/app1.pem): not a readable X.509 certificate (corrupt PEM data); give the fullchain PEM file",
        "error: no new certificate for app1 (see above); nginx keeps serving what it served, fix the cause and run the same command again"]
    assert runner.actions == []  # nothing installed, nginx not reloaded


def test_a_secret_a_tool_prints_is_masked_in_the_error(infra, capsys):
    """A release command that fails printing its DATABASE_URL: the error shows the
    tool's output with the password masked."""
    from plano.core import secrets as sec

    password = sec.read_env(infra / ".env.prod")["APP1_DB_PASSWORD"]
    text = (infra / "plano.yml").read_text().replace("    domains:", "    backend: {release: [npm, run, migrate]}\n    domains:", 1)
    (infra / "plano.yml").write_text(text)
    assert main(["render"]) == 0
    capsys.readouterr()
    runner = engine_script()
    runner.rules.insert(0, Rule(("run", "--rm", "--no-deps", "-T", "app1-backend"),
                                [Answer(1, "", f"error: cannot connect to postgres://app1:{password}@database/app1")]))
    code = main(["deploy", "app1", "--service", "backend", "--tag", "2.0.0"], runner=runner, sleep=lambda _: None)
    err = capsys.readouterr().err
    assert code == 1 and password not in err and "postgres://app1:*****@database/app1" in err, err
