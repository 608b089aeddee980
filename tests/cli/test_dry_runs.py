"""Every command that has --dry-run, run twice through the CLI with the same scripted
engine: once for real, once dry. The dry run must run no action, change no file, and
print exactly the commands the real run executed (in order) and the files it changed."""

import json
import os
import shlex
from pathlib import Path

import pytest

from plano.cli.main import main
from plano.core import secrets
from plano.core.files import tree_digest
from plano.core.naming import AUDIT_LOG
from tests.cli.test_cli import INIT
from tests.scripted import Answer, RecordingOutput, ScriptedRunner

PROJECT = "infra"
OLD, NEW = "c0ffee01", "c0ffee02"


def container(network: str, address: str) -> str:
    return json.dumps([{"Name": "/infra-app1-backend-1", "State": {"Running": True, "Health": {"Status": "healthy"}},
                        "NetworkSettings": {"Networks": {network: {"IPAddress": address}}}}])


def engine_script() -> ScriptedRunner:
    """A running prod and dev stack of app1, as the engine would answer."""
    runner = ScriptedRunner()
    runner.query("compose", "version").query("docker", "info")
    runner.query("ps", "--status", "running", "--services", answers=Answer(0, "nginx\ndatabase\nredis\ncertbot\nbackup\napp1-backend\napp1-frontend\n"))
    runner.query("label=com.docker.compose.service=database", answers=Answer(0, "c0ffee\n"))
    for role in ("backend", "frontend"):
        runner.query(f"label=com.docker.compose.service=app1-{role}",
                     answers=[Answer(0, f"{OLD}{role}\n"), Answer(0, f"{OLD}{role}\n{NEW}{role}\n")])
    runner.query("docker", "inspect", answers=Answer(0, container(f"{PROJECT}_app1-net", "172.18.0.5")))
    runner.on("run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", answers=Answer(0, "20261202T040000Z\n", "plano-backup: done\n"))
    runner.on("compose")  # every other compose action succeeds
    runner.on("env")  # deploys: compose with the new tag in its environment
    runner.on("docker", "stop").on("docker", "rm")
    return runner


@pytest.fixture
def infra(workspace, capsys, monkeypatch):
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(workspace / "dev-ca"))
    assert main(INIT) == 0
    os.chdir(workspace / "infra")
    assert main(["app", "add", "app1", "--domain", "app1.example.com"]) == 0
    root = workspace / "infra"
    # app1 ran 1.0.0, then 1.1.0 (for rollback)
    env = root / ".env.prod"
    text = secrets.set_env_value(env.read_text(), "APP1_BACKEND_TAG", "1.1.0")
    env.write_text(secrets.set_env_value(text, "APP1_FRONTEND_TAG", "1.1.0"))
    (root / "data/logs").mkdir(parents=True, exist_ok=True)
    (root / "data/logs/deploys.jsonl").write_text("".join(json.dumps({
        "time": "2026-12-01T10:00:00+00:00", "user": "ops", "app": "app1", "service": f"app1-{role}", "from_tag": "1.0.0",
        "to_tag": "1.1.0", "action": "deploy", "result": "ok"}) + "\n" for role in ("backend", "frontend")))
    capsys.readouterr()
    return root


COMMANDS = [
    ["dev", "up"], ["prod", "up"], ["dev", "down"], ["prod", "down", "--volumes", "--yes"], ["dev", "ps"], ["prod", "ps"],
    ["dev", "logs", "-f"], ["prod", "logs", "nginx"], ["dev", "exec", "app1-backend", "--", "npm", "test"],
    ["prod", "exec", "database", "--", "psql", "-l"], ["dev", "restart"], ["prod", "restart", "nginx"], ["dev", "build"], ["prod", "pull"],
    ["dev", "test", "app1"], ["db", "create", "app1"], ["db", "create", "--prod", "app1"],
    ["deploy", "app1", "--tag", "2.0.0"], ["deploy", "app1", "--service", "frontend", "--tag", "2.0.0"],
    ["rollback", "app1"], ["certs", "issue", "--all"], ["certs", "renew"],
    ["backup", "run"], ["backup", "run", "app1", "--dev"], ["backup", "verify", "20261201T033000Z"],
    ["backup", "restore", "20261201T033000Z", "app1", "--yes"], ["backup", "restore", "20261201T033000Z", "app1", "--to-scratch", "app1_copy", "--yes"],
    ["backup", "prune"],
]


def secret_values(root: Path) -> list[str]:
    return [v for name in (".env.dev", ".env.prod") for v in secrets.read_env(root / name).values() if len(v) >= 16]


def shown(call, masks: list[str]) -> str:
    """How a dry run shows an action: its argv, and its stdin script with secrets masked."""
    line = shlex.join(call.argv)
    if call.stdin is None:
        return line
    script = call.stdin
    for value in masks:
        script = script.replace(value, "********")
    return line + " <<'SQL'\n" + script + "SQL"


def snapshot(root: Path) -> dict[str, tuple]:
    """Each file's content and inode: plano writes through a new file (os.replace), so a
    rewrite with the same content is seen too."""
    digest = tree_digest(root)
    return {path: (sha, (root / path).stat().st_ino, (root / path).stat().st_mtime_ns) for path, sha in digest.items()}


def changed_files(before: dict, after: dict) -> set[str]:
    """What a real run changed; the deploy lock (a dry run takes none) is no change, nor
    the audit log's line (the record of a real run: a dry run writes none)."""
    return {path for path in before.keys() | after.keys()
            if before.get(path) != after.get(path) and not Path(path).name.startswith(".deploy-") and path != AUDIT_LOG}


def planned_files(plans: list[str]) -> set[str]:
    """The files a plan changes: a file it writes and then removes (a deploy's DNS
    override) existed only while the command ran."""
    ops: dict[str, list[str]] = {}
    for line in plans:
        if line.startswith(("# write ", "# remove ")):
            op, path = line.split(" ", 2)[1:]
            ops.setdefault(path, []).append(op)
        elif line.startswith("# append to "):
            ops.setdefault(line.removeprefix("# append to ").split(":", 1)[0], []).append("append")
    transient = {path for path, done in ops.items() if done[0] == "write" and done[-1] == "remove"}
    return {path for path in ops if not path.startswith("/") and path not in transient}  # the dev CA lives outside the infra


def test_every_dry_run_is_the_real_run(infra, workspace):
    masks = secret_values(infra)
    assert len(COMMANDS) == 28  # every command that has --dry-run, dev and prod
    for argv in COMMANDS:
        before, ca_before = snapshot(infra), (workspace / "dev-ca").exists()
        dry, dry_out = engine_script(), RecordingOutput()
        words = 2 if argv[0] in ("dev", "prod", "db", "certs", "backup") else 1
        assert main([*argv[:words], "--dry-run", *argv[words:]], runner=dry, output=dry_out, sleep=lambda _: None) == 0, (argv, dry_out)
        assert dry.actions == [], f"{argv}: the dry run ran {dry.actions}"
        assert snapshot(infra) == before, f"{argv}: the dry run changed files"
        assert (workspace / "dev-ca").exists() == ca_before, f"{argv}: the dry run made the dev CA"

        real, real_out = engine_script(), RecordingOutput()
        assert main(argv, runner=real, output=real_out, sleep=lambda _: None) == 0, (argv, real_out)
        executed = [shown(call, masks) for call in real.calls if not call.query]
        printed = [line for line in dry_out.plans if not line.startswith("#")]
        assert executed, f"{argv}: the real run did nothing"
        assert printed == executed, argv
        assert planned_files(dry_out.plans) == changed_files(before, snapshot(infra)), argv
