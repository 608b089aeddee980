"""One-off jobs on a swarm (ops/job.py) and their users: release commands before a
swarm rolling update, and backups on the data node. Exact argv, scripted engines."""

import json

import pytest
import yaml

from plano.core import naming as n
from plano.core.errors import PlanoError
from plano.core.mode import Mode
from plano.engine import swarm as sw
from plano.ops import job
from plano.render import stack as stack_file
from tests import scripted
from tests.scripted import Answer, ScriptedRunner
from tests.unit.test_swarm import INSPECTED, MANAGER, NODES, SERVICE_NAMES, listed, root  # noqa: F401 (root: a fixture)

DEPLOY = ["docker", "stack", "deploy", "--with-registry-auth", "-c", "-", "acme"]


def task(state: str, error: str = "", node: str = "srv2") -> Answer:
    return Answer(0, json.dumps({"CurrentState": state, "DesiredState": "Complete", "Error": error, "Node": node,
                                 "Name": "acme_job-x.1"}))


def job_engine(runner: ScriptedRunner, states: list[Answer], out: str = "", err: str = "") -> ScriptedRunner:
    return (runner.query("docker", "service", "ps", answers=states)
            .query("docker", "service", "logs", answers=Answer(0, out, err))
            .on("docker", "stack", "deploy").on("docker", "service", "rm"))


def job_spec(runner: ScriptedRunner, name: str) -> dict:
    """The job service that `docker stack deploy -c -` was given on stdin."""
    given = next(call for call in runner.calls if call.argv == DEPLOY)
    return yaml.safe_load(given.stdin)["services"][name]


@pytest.fixture(autouse=True)
def fixed_name(monkeypatch):
    monkeypatch.setattr(job, "job_name", lambda service: f"job-{service}-abc123")


def test_the_job_argv_and_task_states():
    assert sw.job_deploy_argv("acme") == DEPLOY
    assert sw.job_logs_argv("acme_job-backup-abc123") == ["docker", "service", "logs", "--raw", "--no-trunc", "acme_job-backup-abc123"]
    assert sw.service_image_argv("acme_backup") == [
        "docker", "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "acme_backup"]
    assert sw.job_state("") == sw.JobState("New")
    assert sw.job_state(task("Running 1 second ago").out) == sw.JobState("Running", "srv2", "")
    done = sw.job_state(task("Complete 1 second ago").out)
    assert (done.finished, done.code) == (True, 0)
    failed = sw.job_state(task("Failed 1 second ago", '"task: non-zero exit (3)"').out)  # the CLI quotes it
    assert (failed.state, failed.error, failed.finished, failed.code) == ("Failed", "task: non-zero exit (3)", True, 3)
    rejected = sw.job_state(task("Rejected 2 seconds ago", "No such image: x:1").out)
    assert (rejected.finished, rejected.code) == (True, 1)
    assert not sw.job_state(task("Pending 3 seconds ago", "no suitable node").out).finished


def test_a_job_is_its_service_once_with_its_networks_secrets_mounts_and_placement(root):  # noqa: F811
    manifest = scripted.session(root, ScriptedRunner()).manifest
    made = stack_file.job(manifest, "backup", "job-backup-abc123", "reg/acme-backup:1@sha256:ab", ["verify"],
                          entrypoint=["plano-backup.sh"])
    whole = stack_file.stack(manifest)
    spec = made["services"]["job-backup-abc123"]
    own = whole["services"]["backup"]
    assert (spec["image"], spec["entrypoint"], spec["command"]) == ("reg/acme-backup:1@sha256:ab", ["plano-backup.sh"], ["verify"])
    assert spec["deploy"] == {"mode": "replicated-job", "replicas": 1, "endpoint_mode": "dnsrr",
                              "placement": {"constraints": ["node.labels.plano.data == true"]},
                              "restart_policy": {"condition": "none"}, "resources": own["deploy"]["resources"]}
    assert spec["healthcheck"] == {"disable": True}
    for key in ("environment", "volumes", "secrets", "networks", "user", "read_only", "cap_drop"):
        assert spec[key] == own[key], key
    assert made["networks"] == {"backup": whole["networks"]["backup"]}
    assert made["secrets"] == {"backup-postgres-password": whole["secrets"]["backup-postgres-password"]}
    app = stack_file.job(manifest, "app1-backend", "j", "img:2", ["npm", "run", "migrate"], constraint="node.hostname == srv3")
    assert "secrets" not in app and list(app["networks"]) == ["app1-net"]
    assert app["services"]["j"]["deploy"]["placement"] == {"constraints": ["node.hostname == srv3"]}
    assert stack_file.job(manifest, "app1-backend", "j", "i", ["sh", "-c", "echo $APP_VERSION ${X}"])["services"]["j"]["command"] == [
        "sh", "-c", "echo $$APP_VERSION $${X}"]  # the stack loader reads $$ as $
    assert "entrypoint" not in app["services"]["j"] and "ports" not in stack_file.job(manifest, "nginx", "j", "i", ["true"])["services"]["j"]


def test_a_job_runs_waits_returns_its_output_and_is_removed(root):  # noqa: F811
    runner = job_engine(ScriptedRunner(), [task("Pending 1 second ago"), task("Running 1 second ago"), task("Complete 1 second ago")],
                        out="done\n", err="progress\n")
    session = scripted.session(root, runner)
    result = job.run(session, job.Job("app1-backend", "registry.example.com/acme/app1-backend:2.0.0", ["npm", "run", "migrate"],
                                      "the release command"))
    assert (result.name, result.node, result.code, result.out, result.err) == ("job-app1-backend-abc123", "srv2", 0, "done\n", "progress\n")
    assert runner.actions == [DEPLOY, ["docker", "service", "rm", "acme_job-app1-backend-abc123"]]
    assert runner.queries == [["docker", "service", "ps", "acme_job-app1-backend-abc123", "--no-trunc", "--format", "{{json .}}"]] * 3 + [
        ["docker", "service", "logs", "--raw", "--no-trunc", "acme_job-app1-backend-abc123"]]
    deployed = runner.calls[0]
    spec = yaml.safe_load(deployed.stdin)["services"]["job-app1-backend-abc123"]
    assert (spec["image"], spec["command"]) == ("registry.example.com/acme/app1-backend:2.0.0", ["npm", "run", "migrate"])
    assert "APP1_DB_PASSWORD" in deployed.env and "PLANO_SECRET_DATABASE_POSTGRES_PASSWORD" in deployed.env  # not on the command line


def test_a_failed_job_is_one_line_with_its_last_lines_and_is_removed(root):  # noqa: F811
    runner = job_engine(ScriptedRunner(), [task("Failed 1 second ago", '"task: non-zero exit (4)"')],
                        out="migrating\n", err="one\ntwo\nthree\nmigration failed\n")
    with pytest.raises(job.JobFailed) as failed:
        job.run(scripted.session(root, runner), job.Job("app1-backend", "img:2", ["migrate"], "the release command of app1-backend"))
    assert str(failed.value) == "the release command of app1-backend failed (exit 4 on srv2): two | three | migration failed"
    assert runner.actions[-1] == ["docker", "service", "rm", "acme_job-app1-backend-abc123"]


def test_a_rejected_or_late_job_is_removed(root):  # noqa: F811
    runner = job_engine(ScriptedRunner(), [task("Rejected 1 second ago", "No such image: img:9")])
    with pytest.raises(job.JobFailed, match=r"^backup failed \(exit 1 on srv2\): No such image: img:9$"):
        job.run(scripted.session(root, runner), job.Job("backup", "img:9", ["run"], "backup"))
    assert runner.actions[-1] == ["docker", "service", "rm", "acme_job-backup-abc123"]
    runner = job_engine(ScriptedRunner(), [task("Pending 1 second ago", "no suitable node (scheduling constraints not satisfied on 3 nodes)", "")])
    with pytest.raises(job.JobFailed, match=r"^backup did not finish within 0 s \(its task: Pending: no suitable node .*\); its job was removed$"):
        job.run(scripted.session(root, runner), job.Job("backup", "img:1", ["run"], "backup", timeout=0))
    assert runner.actions == [DEPLOY, ["docker", "service", "rm", "acme_job-backup-abc123"]]
    runner = ScriptedRunner().on("docker", "stack", "deploy", answers=Answer(1, "", "network acme_backup not found")).on("docker", "service", "rm")
    with pytest.raises(job.JobFailed, match=r"^backup: starting its job failed: network acme_backup not found$"):
        job.run(scripted.session(root, runner), job.Job("backup", "img:1", ["run"], "backup"))
    assert runner.actions[-1] == ["docker", "service", "rm", "acme_job-backup-abc123"]


def test_a_dry_run_prints_the_job_and_waits_for_nothing(root):  # noqa: F811
    runner = ScriptedRunner()
    session = scripted.session(root, runner, dry_run=True)
    assert job.run(session, job.Job("backup", "img:1", ["run"], "backup")).code == 0
    assert runner.calls == []
    assert session.out.plans == [f"{' '.join(DEPLOY)}  # job-backup-abc123: run in img:1",
                                 "docker service rm acme_job-backup-abc123"]


# ---------------------------------------------------------------- release commands on a swarm


def with_release(root, command: str) -> None:  # noqa: F811
    path = root / "plano.yml"
    path.write_text(path.read_text().replace("  app1:\n", f"  app1:\n    backend:\n      release: {command}\n", 1))


def release_engine(states: list[Answer], err: str = "") -> ScriptedRunner:
    runner = (ScriptedRunner().query("compose", "version").query("docker", "info", "--format", "{{json .Swarm}}", answers=MANAGER)
              .query("docker", "info"))
    job_engine(runner, states, out="migrating to 2.0.0\n", err=err)
    return (runner.query("docker", "service", "ls", answers=listed({"app1-backend": ("2/2", "completed")})[0])
            .query("docker", "service", "inspect", answers=listed({"app1-backend": ("2/2", "completed")})[1])
            .query("docker", "node", "ls", answers=NODES).query("docker", "node", "inspect", answers=INSPECTED)
            .on("docker", "service", "update"))


def test_a_release_command_runs_as_a_job_in_the_new_image_before_the_rolling_update(root):  # noqa: F811
    from plano.ops import deploy

    with_release(root, "[npx, prisma, migrate, deploy]")
    runner = release_engine([task("Running 1 second ago"), task("Complete 1 second ago")])
    records = deploy.deploy(scripted.session(root, runner), "app1", "backend", "2.0.0")
    assert runner.actions == [DEPLOY, ["docker", "service", "rm", "acme_job-app1-backend-abc123"],
                              ["docker", "service", "update", "--detach", "--with-registry-auth", "--image",
                               "registry.example.com/acme/app1-backend:2.0.0", "acme_app1-backend"]]
    spec = job_spec(runner, "job-app1-backend-abc123")
    assert (spec["image"], spec["command"]) == ("registry.example.com/acme/app1-backend:2.0.0", ["npx", "prisma", "migrate", "deploy"])
    assert spec["deploy"]["placement"] == {"constraints": [n.swarm_constraint("apps")]}
    assert [(r.service, r.to_tag, r.result) for r in records] == [("app1-backend", "2.0.0", "ok")]


def test_a_failing_release_stops_the_deploy_before_any_task_changes(root):  # noqa: F811
    from plano.ops import deploy

    with_release(root, "[sh, -c, 'exit 4']")
    env = (root / ".env.prod").read_bytes()
    runner = release_engine([task("Failed 1 second ago", '"task: non-zero exit (4)"')], err="migration failed\n")
    with pytest.raises(deploy.DeployFailed, match=r"^the release command of app1-backend failed \(exit 4 on srv2\): "
                                                  r"migration failed; no task was updated$"):
        deploy.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert not any("update" in argv for argv in runner.actions)
    assert runner.actions[-1] == ["docker", "service", "rm", "acme_job-app1-backend-abc123"]
    assert (root / ".env.prod").read_bytes() == env
    log = [json.loads(line) for line in (root / n.DEPLOY_LOG).read_text().splitlines()]
    assert [(r["service"], r["to_tag"], r["result"]) for r in log] == [
        (f"app1-{role}", "2.0.0", "failed: the release command of app1-backend failed (exit 4 on srv2): migration failed; no task was updated")
        for role in ("backend", "frontend")]


# ---------------------------------------------------------------- backups on a swarm


def backup_engine(states: list[Answer], out: str = "", err: str = "", database: str = "1/1") -> ScriptedRunner:
    rows, details = listed(dict.fromkeys(SERVICE_NAMES, ("1/1", "")) | {"database": (database, "")})
    runner = (ScriptedRunner().query("docker", "service", "ls", answers=rows)
              .query("docker", "service", "inspect", "--format", answers=Answer(0, "reg/acme-backup:abc@sha256:12\n"))
              .query("docker", "service", "inspect", answers=details))
    return job_engine(runner, states, out, err)


def test_backup_run_on_a_swarm_is_the_backup_services_script_as_a_job_on_the_data_node(root):  # noqa: F811
    from plano.ops import backup

    runner = backup_engine([task("Complete 1 second ago")], out="20261205T140000Z\n", err="plano-backup: dumping app1\n")
    session = scripted.session(root, runner, Mode.PROD)
    assert backup.run(session) == "20261205T140000Z"
    assert runner.actions == [DEPLOY, ["docker", "service", "rm", "acme_job-backup-abc123"]]
    assert ["docker", "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "acme_backup"] in runner.queries
    spec = job_spec(runner, "job-backup-abc123")
    assert (spec["image"], spec["entrypoint"], spec["command"]) == ("reg/acme-backup:abc@sha256:12", ["plano-backup.sh"], ["run"])
    assert spec["deploy"]["placement"] == {"constraints": [n.swarm_constraint("data")]}
    assert session.out.notes == ["plano-backup: dumping app1"]


def test_backup_verify_on_a_swarm_fails_in_one_line_and_needs_the_database(root):  # noqa: F811
    from plano.ops import backup

    runner = backup_engine([task("Failed 1 second ago", '"task: non-zero exit (1)"')], err="plano-backup: no backup 20990101T000000Z\n")
    with pytest.raises(PlanoError, match=r"^verification failed \(exit 1 on srv2\): no backup 20990101T000000Z$"):
        backup.verify(scripted.session(root, runner, Mode.PROD), "20990101T000000Z")
    yaml_spec = job_spec(runner, "job-backup-abc123")
    assert yaml_spec["command"] == ["verify", "20990101T000000Z"]
    runner = backup_engine([], database="0/1")
    with pytest.raises(PlanoError, match=r"^the database is not running on the swarm; start the stack first \(plano swarm up\)$"):
        backup.run(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == []


def test_backup_list_on_a_swarm_reads_the_data_nodes_backups_through_a_job(root):  # noqa: F811
    from plano.ops import backup

    manifest = json.dumps({"files": [{"name": "app1.dump", "bytes": 2000}, {"name": "app1-uploads.tar", "bytes": 500}], "postgres": "17"})
    printed = (f"backup\t20261205T140000Z\t{manifest}\nbackup\t20261204T033000Z\t\npartial\t20261205T150000Z\n"
               "status\tok 2026-12-05T14:00:02Z 20261205T140000Z\nstatus\tfailed 2026-12-05T15:00:09Z pg_dump app1\n")
    runner = backup_engine([task("Complete 1 second ago")], out=printed)
    listed_now = backup.listing(scripted.session(root, runner, Mode.PROD))
    assert [(b.id, b.bytes, b.apps, b.postgres) for b in listed_now.backups] == [
        ("20261204T033000Z", 0, [], "?"), ("20261205T140000Z", 2500, ["app1"], "17")]
    assert (listed_now.last_success, listed_now.last_failure, listed_now.failure, listed_now.interrupted) == (
        "2026-12-05T14:00:02Z", "2026-12-05T15:00:09Z", "pg_dump app1", ["20261205T150000Z"])
    spec = job_spec(runner, "job-backup-abc123")
    assert spec["entrypoint"] == ["sh"] and spec["command"][0] == "-c" and "$${d%/}" in spec["command"][1]
    assert runner.actions == [DEPLOY, ["docker", "service", "rm", "acme_job-backup-abc123"]]
