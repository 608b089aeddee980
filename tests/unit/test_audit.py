"""Who changed what: the deploy lock's holder (who, from where, since when, which
command), across processes started at the same moment; the audit log's lines, field by
field, one O_APPEND write each; which commands count as changing something (decided once,
in core.commands) and what a server reached with -e is told about who runs it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from plano.cli.main import command_line, main
from plano.core import actor, commands
from plano.core import manifest as mf
from plano.core.errors import RefusedError
from plano.engine import server as srv
from plano.engine import ssh
from plano.ops import audit, deploy, remote
from tests.cli.test_dry_runs import engine_script
from tests.cli.test_dry_runs import infra as dry_infra  # noqa: F401 (a fixture)
from tests.scripted import Answer, Rule

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


# ---------------------------------------------------------------- which commands change something


def test_the_command_groups_are_the_command_lines():
    tree = command_line()
    groups = {name for name, cmd in tree.commands.items() if isinstance(cmd, click.Group)}
    assert commands.GROUPS == groups
    paths = {f"{name} {sub}" if isinstance(cmd, click.Group) else name
             for name, cmd in tree.commands.items() for sub in (cmd.commands if isinstance(cmd, click.Group) else [""])}
    assert commands.CHANGING <= {p.strip() for p in paths}
    assert commands.INTERACTIVE <= commands.CHANGING


@pytest.mark.parametrize(("args", "path", "changes", "detached"), [
    (["deploy", "app1", "--tag", "2"], "deploy", True, True),
    (["deploy", "app1", "--tag", "2", "--dry-run"], "deploy", False, False),  # changes nothing: attached
    (["deploy", "--help"], "deploy", False, False),
    (["prod", "up"], "prod up", True, True),
    (["prod", "ps"], "prod ps", False, False),
    (["prod", "exec", "database", "--", "psql"], "prod exec", True, False),  # needs the terminal
    (["prod", "exec", "app1", "--", "tool", "--dry-run"], "prod exec", True, False),  # the tool's --dry-run, not plano's
    (["certs", "status"], "certs status", False, False),
    (["backup", "run", "app1"], "backup run", True, True),
    (["status", "--json"], "status", False, False),
    (["audit", "-n", "5"], "audit", False, False),
    (["prod", "--help"], "prod", False, False),
    ([], "", False, False),
])
def test_what_changes_and_what_runs_detached(args, path, changes, detached):
    assert commands.path(args) == path
    assert commands.changes(args) is changes
    assert commands.detached(args) is detached


# ---------------------------------------------------------------- who


def test_the_actor_is_the_one_sent_along_else_this_machines(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "deploy")
    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7\n")
    assert actor.current() == actor.Actor("alice", "laptop-7", "deploy")
    monkeypatch.delenv("PLANO_USER")
    monkeypatch.delenv("PLANO_HOST")
    import socket

    assert actor.current() == actor.Actor("deploy", socket.gethostname(), "deploy")
    monkeypatch.setenv("PLANO_USER", "eve\x1b[2J" + "x" * 100)
    assert actor.current().user == "eve?[2J" + "x" * 57


def test_a_server_is_told_who_runs_the_command_from_where(monkeypatch):
    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    target = remote.Server("production", mf.Environment(host="deploy@srv1.example.com"),
                           ssh.Remote("deploy@srv1.example.com", None, Path("/k"), Path("/c")))
    opts = ssh.options(target.remote)
    assert remote.run_argv(target, ["deploy", "app1", "--tag", "2"]) == [
        "ssh", *opts, "-T", "deploy@srv1.example.com",
        shlex.join(["sh", "-c", srv.RUN_DETACHED, "plano", "infra", "alice", "laptop-7", "deploy", "app1", "--tag", "2"])]
    assert remote.run_argv(target, ["prod", "exec", "database", "--", "psql"], tty=True) == [
        "ssh", *opts, "-t", "deploy@srv1.example.com",
        shlex.join(["sh", "-c", srv.RUN, "plano", "infra", "alice", "laptop-7", "prod", "exec", "database", "--", "psql"])]


def test_the_servers_plano_gets_them_in_its_environment(tmp_path):
    """RUN as the server's sh runs it: $2 and $3 reach plano as PLANO_USER and PLANO_HOST,
    and the command's words stay as typed."""
    fake = tmp_path / ".plano/venv/bin/plano"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "$PLANO_USER|$PLANO_HOST|$PWD|$*"\n')
    fake.chmod(0o755)
    (tmp_path / "infra").mkdir()
    script = srv.RUN.replace("sudo -n ", "")  # as root already, or not: no sudo here
    got = subprocess.run(["sh", "-c", script, "plano", "infra", "alice", "laptop 7", "deploy", "app1", "--tag", "a b"], cwd=tmp_path,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
    assert got.stdout == f"alice|laptop 7|{tmp_path / 'infra'}|deploy app1 --tag a b\n"


# ---------------------------------------------------------------- the lock


HOLD = """
import os, sys, time
from pathlib import Path
from plano.ops import deploy
from plano.core.errors import RefusedError
root, me = Path(sys.argv[1]), os.environ["PLANO_USER"]
(root / f"ready-{me}").touch()
while not (root / "go").exists():  # all start at once, however long their imports took
    time.sleep(0.005)
try:
    with deploy.deploy_lock(root, "app1", ("deploy", "app1", "--tag", me)):
        print("held", flush=True)
        deadline = time.time() + 20
        while not (root / "release").exists() and time.time() < deadline:  # until the others have tried
            time.sleep(0.01)
except RefusedError as exc:
    print(exc, flush=True)
    sys.exit(3)
"""


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "the deploy processes did not get there in time"
        time.sleep(0.01)


def test_of_deploys_started_at_the_same_moment_one_runs_the_others_are_refused_naming_it(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={"PATH": "/usr/bin:/bin", "PLANO_USER": f"user{i}", "PLANO_HOST": f"host{i}"})
             for i in range(4)]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 4)
    (tmp_path / "go").touch()
    wait_for(lambda: sum(proc.poll() is not None for proc in procs) >= 3)
    (tmp_path / "release").touch()
    results = [(proc.wait(timeout=30), proc.stdout.read().strip()) for proc in procs]
    winners = [i for i, (code, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    w = winners[0]
    for i, (code, out) in enumerate(results):
        if i != w:
            assert code == 3
            assert out.startswith(f"a deploy of app1 is already running: user{w} on host{w} since ")
            assert f" UTC (plano deploy app1 --tag user{w}, pid {procs[w].pid}); wait for it to end, then run again" in out
    assert (tmp_path / "data/logs/.deploy-app1.lock").read_text() == ""  # released, and no holder left


def test_a_lock_whose_holder_has_not_written_yet_is_read_again(tmp_path):
    import fcntl

    lock = tmp_path / "data/logs/.deploy-app1.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # taken, nothing written (yet)
        with pytest.raises(RefusedError, match=r"^a deploy of app1 is already running: another plano, which did not say who;"):
            with deploy.deploy_lock(tmp_path, "app1"):
                pass


# ---------------------------------------------------------------- the audit log


def test_a_deploy_leaves_one_audit_line_field_by_field(dry_infra, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    monkeypatch.delenv("SUDO_USER", raising=False)
    subprocess.run(["git", "init", "-q"], cwd=dry_infra, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=dry_infra, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dry_infra, capture_output=True, text=True, check=True).stdout.strip()
    assert main(["-C", str(dry_infra), "deploy", "app1", "--tag", "2.0.0"], runner=engine_script(), sleep=lambda _: None) == 0
    assert main(["deploy", "app1", "--tag", "2.0.0", "--dry-run"], runner=engine_script(), sleep=lambda _: None) == 0
    assert main(["deploy", "app1", "--tag", "a b"], runner=engine_script()) == 2  # refused for its input: nothing ran
    assert main(["prod", "ps"], runner=engine_script()) == 0  # changes nothing
    lines = (dry_infra / "data/logs/audit.jsonl").read_text().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert list(line) == ["started", "ended", "user", "host", "login", "commit", "command", "result", "exit"]
    assert __import__("re").fullmatch(TIME, line["started"]) and line["ended"] >= line["started"]
    import getpass

    assert (line["user"], line["host"], line["login"], line["commit"]) == ("alice", "laptop-7", getpass.getuser(), head)
    assert line["command"] == ["plano", "deploy", "app1", "--tag", "2.0.0"]  # the root's options left out
    assert (line["result"], line["exit"]) == ("ok", 0)
    assert oct((dry_infra / "data/logs/audit.jsonl").stat().st_mode & 0o777) == "0o640"

    capsys.readouterr()
    assert main(["audit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [line]
    assert main(["audit"]) == 0
    shown = capsys.readouterr().out
    assert "alice" in shown and "laptop-7" in shown and head[:12] in shown and "plano deploy app1 --tag 2.0.0" in shown


def test_a_failed_command_is_logged_with_its_error_and_code_secrets_masked(dry_infra, monkeypatch, capsys):  # noqa: F811
    from plano.core import secrets as sec

    password = sec.read_env(dry_infra / ".env.prod")["APP1_DB_PASSWORD"]
    runner = engine_script()
    runner.rules.insert(0, Rule(("pull",), [Answer(1, "", f"cannot reach postgres://app1:{password}@database/app1")]))
    assert main(["deploy", "app1", "--tag", "2.0.0"], runner=runner, sleep=lambda _: None) == 1
    assert main(["prod", "exec", "database", "--", "psql", "-c", f"select '{password}'"], runner=engine_script()) == 0
    first, second = (json.loads(text) for text in (dry_infra / "data/logs/audit.jsonl").read_text().splitlines())
    assert first["exit"] == 1 and first["result"].startswith("failed: pulling app1-backend:2.0.0")
    assert "postgres://app1:*****@database/app1" in first["result"] and "\n" not in first["result"]
    assert second["command"] == ["plano", "prod", "exec", "database", "--", "psql", "-c", "select '*****'"]
    assert password not in (dry_infra / "data/logs/audit.jsonl").read_text()


def test_a_refused_second_deploy_is_logged_naming_the_holder(dry_infra, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PLANO_USER", "bob")
    with deploy.deploy_lock(dry_infra, "app1", ("deploy", "app1", "--tag", "9")):
        assert main(["deploy", "app1", "--tag", "2.0.0"], runner=engine_script(), sleep=lambda _: None) == 3
    (line,) = audit.read(dry_infra)
    assert line.exit == 3 and line.result.startswith("failed: a deploy of app1 is already running: bob on ")


WRITER = """
import sys
from pathlib import Path
from plano.core.actor import Actor
from plano.ops import audit
for i in range(100):
    audit.append(Path(sys.argv[1]), audit.Entry("s", "e", sys.argv[2], "h", "l", "c", ["plano", "x" * (i * 30)], "ok", 0))
"""


def test_concurrent_appends_never_interleave(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{i}"]) for i in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    lines = (tmp_path / "data/logs/audit.jsonl").read_text().splitlines()
    assert len(lines) == 600 and all(json.loads(text)["result"] == "ok" for text in lines)


def test_a_huge_command_is_cut_to_one_atomic_line():
    item = audit.Entry("s", "e", "u", "h", "l", "c", ["plano", "prod", "exec", *["y" * 100] * 100], "ok", 0)
    cut = audit.line(item)
    assert len(cut) <= audit.LINE_LIMIT + 1 and json.loads(cut)["command"][-1] == "..."


def test_the_servers_infra_is_not_checked_out_under_a_running_deploy(tmp_path, monkeypatch):
    infra = tmp_path / "infra"
    subprocess.run(["git", "init", "-q", str(infra)], check=True)
    monkeypatch.setenv("PLANO_USER", "alice")
    with deploy.deploy_lock(infra, "app1", ("deploy", "app1", "--tag", "2")):
        got = subprocess.run(["sh", "-c", srv.CHECKOUT, "plano", str(infra), "HEAD", ""], capture_output=True, text=True)
    assert got.returncode == 3
    assert got.stderr.startswith('a deploy runs on the server ({"user": "alice", ') and "wait for it to end" in got.stderr
