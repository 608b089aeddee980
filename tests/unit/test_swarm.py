"""The swarm target's operations as exact sequences of commands against a scripted
engine (tests/integration/test_swarm_e2e.py runs them on a real three-node swarm)."""

import json
from pathlib import Path

import pytest
import yaml

from plano.core import naming as n
from plano.core.errors import PlanoError, UsageError
from plano.core.manifest import load_infra
from plano.core.mode import Mode
from plano.engine import swarm as sw
from plano.ops import infra, swarm
from tests import scripted
from tests.scripted import Answer, ScriptedRunner
from tests.unit.test_sequences import prod

MANAGER = Answer(0, json.dumps({"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "n1"}))
NODES = Answer(0, "\n".join(json.dumps(row) for row in (
    {"ID": "n1", "Hostname": "srv1", "Status": "Ready", "Availability": "Active", "ManagerStatus": "Leader"},
    {"ID": "n2", "Hostname": "srv2", "Status": "Ready", "Availability": "Active", "ManagerStatus": ""})))
INSPECTED = Answer(0, json.dumps([
    {"ID": "n1", "Spec": {"Labels": {"plano.edge": "true", "plano.apps": "true"}}, "Status": {"Addr": "10.0.0.1"}},
    {"ID": "n2", "Spec": {"Labels": {"plano.data": "true", "plano.apps": "true"}}, "Status": {"Addr": "10.0.0.2"}}]))
SERVICE_NAMES = ("nginx", "certbot", "database", "redis", "backup", "app1-backend", "app1-frontend")


def listed(states: dict[str, tuple[str, str]]) -> tuple[Answer, Answer]:
    """`docker service ls` and `docker service inspect` answers: name -> (replicas, update state)."""
    rows = "\n".join(json.dumps({"Name": f"acme_{name}", "Replicas": reps, "Image": f"img/{name}:1@sha256:ab", "Ports": ""})
                     for name, (reps, _) in states.items())
    details = [{"Spec": {"Name": f"acme_{name}"}, **({"UpdateStatus": {"State": state, "Message": f"update {state}"}} if state else {})}
               for name, (_, state) in states.items()]
    return Answer(0, rows), Answer(0, json.dumps(details))


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An infra made by plano with app1, on the swarm target."""
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(tmp_path / "dev-ca"))
    where = tmp_path / "infra"
    made = scripted.made_infra(where, lambda text: text + "target: swarm\n")
    infra.add_app(made, "app1", {"domains": ["app1.example.com"]})
    return where


def engine(runner: ScriptedRunner, services: list[tuple[Answer, Answer]] | None = None) -> ScriptedRunner:
    ready = listed(dict.fromkeys(SERVICE_NAMES, ("1/1", "")) | {"app1-backend": ("2/2", "completed")})
    rows, details = zip(*(services or [ready]), strict=True)
    return (runner.query("compose", "version").query("docker", "info", "--format", "{{json .Swarm}}", answers=MANAGER)
            .query("docker", "node", "ls", answers=NODES).query("docker", "node", "inspect", answers=INSPECTED)
            .query("docker", "service", "ls", answers=list(rows)).query("docker", "service", "inspect", answers=list(details))
            .query("docker", "service", "ps", answers=Answer(0, json.dumps({"CurrentState": "Complete 1 second ago", "DesiredState": "Shutdown"})))
            .query("docker", "secret", "ls", answers=Answer(0, "acme-database-postgres-password-000000000000\n"))
            .query("docker", "service", "logs")
            .on("docker"))


def test_up_builds_pushes_prepares_the_data_nodes_deploys_and_waits(root):
    runner = engine(ScriptedRunner())
    session = scripted.session(root, runner, Mode.PROD)
    found = swarm.up(session)
    tags = swarm.image_tags(root, session.manifest)
    assert set(tags) == {"nginx", "certbot", "database", "redis", "backup"} and all(len(t) == 12 for t in tags.values())
    job = "acme-plano-folders"
    jobs = [a[3] for a in runner.actions if a[:3] == ["docker", "service", "rm"] and a[3].startswith("acme_job-")]
    assert [name.rsplit("-", 1)[0] for name in jobs] == ["acme_job-database", "acme_job-redis"] * 2
    assert runner.actions == [
        prod("build", "nginx", "certbot", "database", "redis", "backup"),
        *[argv for name in tags for argv in (
            ["docker", "tag", f"acme-{name}", f"registry.example.com/acme/acme-{name}:{tags[name]}"],
            ["docker", "push", f"registry.example.com/acme/acme-{name}:{tags[name]}"])],
        ["docker", "service", "rm", job],
        sw.job_argv(job, f"registry.example.com/acme/acme-database:{tags['database']}",
                    swarm.folders_script(root, session.manifest), ["type=bind,source=/,target=/host"]),
        ["docker", "service", "rm", job],
        # Postgres and Redis run: the apps' roles and Redis users first (Redis keeps old passwords too) ...
        sw.job_deploy_argv("acme"), ["docker", "service", "rm", jobs[0]],
        sw.job_deploy_argv("acme"), ["docker", "service", "rm", jobs[1]],
        ["docker", "stack", "deploy", "--with-registry-auth", "--prune", "-c", "docker-stack.yml", "acme"],
        # ... and at the end, the logins no URL names retired, Redis's users with their passwords of now alone
        sw.job_deploy_argv("acme"), ["docker", "service", "rm", jobs[2]],
        sw.job_deploy_argv("acme"), ["docker", "service", "rm", jobs[3]],
        ["docker", "secret", "rm", "acme-database-postgres-password-000000000000"],  # an older version
    ]
    stdins = [yaml.safe_load(c.stdin) for c in runner.calls if c.argv == sw.job_deploy_argv("acme")]
    specs = [next(iter(stdin["services"].values())) for stdin in stdins]
    assert [spec["image"].rsplit(":", 1) for spec in specs] == [
        [f"registry.example.com/acme/acme-{name}", tags[name]] for name in ("database", "redis") * 2]
    assert [sorted(s["target"] for s in spec["secrets"]) for spec in specs] == [
        ["APP1_DB_PASSWORD", "POSTGRES_PASSWORD"], ["APP1_REDIS_PASSWORD", "REDIS_ADMIN_PASSWORD"]] * 2
    assert [" on resetpass >" in spec["command"][0] for spec in specs[1::2]] == [False, True]
    assert "-v login=app1 " in specs[0]["command"][0] and "-v login=app1_alt " in specs[2]["command"][0]
    assert "PASSWORD NULL" in specs[2]["command"][0] and "-v password_file=/run/secrets/APP1_DB_PASSWORD" in specs[0]["command"][0]
    deploy = next(c for c in runner.calls if c.argv == sw.deploy_argv("acme"))
    password = (root / "data/secrets/database/POSTGRES_PASSWORD").read_text()
    assert deploy.env["POSTGRES_PASSWORD"] == password and password not in " ".join(deploy.argv)
    assert deploy.env["PLANO_NGINX_IMAGE_TAG"] == tags["nginx"]
    assert len(deploy.env["PLANO_SECRET_DATABASE_POSTGRES_PASSWORD"]) == 12
    assert [(s.name, s.running, s.desired) for s in found][:2] == [("app1-backend", 2, 2), ("app1-frontend", 1, 1)]


def test_a_first_up_makes_the_apps_roles_and_users_once_postgres_and_redis_run(root):
    """No stack yet: deploy, wait for Postgres and Redis only, then the provisioning jobs
    (the app tasks fail their healthcheck until then, and Swarm starts them again)."""
    ready = listed(dict.fromkeys(SERVICE_NAMES, ("1/1", "")))
    runner = engine(ScriptedRunner(), [listed({}), ready])
    swarm.up(scripted.session(root, runner, Mode.PROD))
    order = [("deploy" if a == sw.deploy_argv("acme") else a[3].rsplit("-", 1)[0])
             for a in runner.actions if a == sw.deploy_argv("acme") or a[:3] == ["docker", "service", "rm"] and "_job-" in a[3]]
    assert order == ["deploy", "acme_job-database", "acme_job-redis", "acme_job-database", "acme_job-redis"]


def test_up_waits_while_an_update_runs_and_fails_on_a_rollback(root):
    updating = listed(dict.fromkeys(SERVICE_NAMES, ("1/1", "")) | {"app1-backend": ("2/2", "updating")})
    rolled = listed(dict.fromkeys(SERVICE_NAMES, ("1/1", "")) | {"app1-backend": ("2/2", "rollback_completed")})
    runner = engine(ScriptedRunner(), [updating, updating, rolled])
    with pytest.raises(PlanoError, match=r"app1-backend: Swarm rolled the update back \(update rollback_completed\)"):
        swarm.up(scripted.session(root, runner, Mode.PROD))
    assert sum(1 for q in runner.queries if q[:3] == ["docker", "service", "ls"]) == 3
    assert not any(a[:3] == ["docker", "secret", "rm"] for a in runner.actions)


def test_up_refuses_a_compose_target_a_worker_and_a_missing_role(root):
    text = (root / "plano.yml").read_text()
    (root / "plano.yml").write_text(text.replace("target: swarm\n", ""))
    with pytest.raises(UsageError, match="^target: plano.yml runs prod with compose"):
        swarm.up(scripted.session(root, ScriptedRunner(), Mode.PROD))
    (root / "plano.yml").write_text(text)
    worker = ScriptedRunner().query("docker", "info", answers=Answer(0, json.dumps({"LocalNodeState": "active", "ControlAvailable": False})))
    with pytest.raises(PlanoError, match="is a swarm worker: run plano on a manager"):
        swarm.up(scripted.session(root, worker, Mode.PROD))
    no_edge = (ScriptedRunner().query("docker", "info", answers=MANAGER).query("docker", "node", "ls", answers=NODES)
               .query("docker", "node", "inspect", answers=Answer(0, INSPECTED.out.replace('"plano.edge": "true", ', ""))))
    with pytest.raises(PlanoError, match=r"^no ready node for the edge role \(no node has it\): plano swarm label NODE edge$"):
        swarm.up(scripted.session(root, no_edge, Mode.PROD))
    assert no_edge.actions == []
    elsewhere = (ScriptedRunner().query("docker", "info", answers=Answer(0, MANAGER.out.replace('"n1"', '"n2"')))
                 .query("docker", "node", "ls", answers=NODES).query("docker", "node", "inspect", answers=INSPECTED))
    with pytest.raises(PlanoError, match=r"^this node \(srv2\) is not the edge node; .*: plano swarm label srv2 edge, or run plano"):
        swarm.up(scripted.session(root, elsewhere, Mode.PROD))


def test_init_labels_the_first_node_with_every_role_and_prints_the_join_command(root):
    runner = (ScriptedRunner().query("docker", "info", answers=[Answer(0, json.dumps({"LocalNodeState": "inactive"})), MANAGER])
              .query("join-token", answers=Answer(0, "To add a worker:\n\n    docker swarm join --token SWMTKN-1-x 10.0.0.1:2377\n"))
              .on("docker"))
    join = swarm.init(scripted.session(root, runner, Mode.PROD), "10.0.0.1", ())
    assert join == "docker swarm join --token SWMTKN-1-x 10.0.0.1:2377"
    assert runner.actions == [["docker", "swarm", "init", "--advertise-addr", "10.0.0.1"],
                              *(["docker", "node", "update", "--label-add", f"plano.{role}=true", "n1"] for role in ("edge", "data", "apps"))]


def test_label_and_down(root):
    runner = (ScriptedRunner().query("docker", "info", answers=MANAGER)
              .query("docker", "network", "ls", answers=[Answer(0, "net1\n"), Answer(0, "")]).on("docker"))
    session = scripted.session(root, runner, Mode.PROD)
    swarm.label(session, "srv2", ("data", "apps"), remove=True)
    swarm.down(session)
    assert runner.actions == [["docker", "node", "update", "--label-rm", "plano.data", "srv2"],
                              ["docker", "node", "update", "--label-rm", "plano.apps", "srv2"],
                              ["docker", "stack", "rm", "acme"]]
    with pytest.raises(UsageError, match="^ROLE: 'db' is not a role; give edge, data, apps$"):
        swarm.label(session, "srv2", ("db",))


def test_the_data_folders_script_makes_and_gives_away_the_prod_folders_only(root):
    script = swarm.folders_script(root, load_infra(root).manifest)
    top = f"/host{root}/data"
    made, *owned = script.split("; ")
    assert made.startswith("mkdir -p ") and f"{top}/database" in made and f"{top}/uploads/app1" in made and "/data/dev" not in made
    assert f"{top}/redis" in made  # Redis's users (ACL SAVE), on a swarm only
    assert owned == [f"chown 1001:1001 {top}/certs", f"chown 1001:1001 {top}/logs/certbot", f"chown 1000:1000 {top}/backups",
                     f"chown 1000:1000 {top}/uploads", f"chown 999:999 {top}/redis", f"chmod 700 {top}/redis",
                     f"chown 1000:1000 {top}/uploads/app1"]


def test_nodes_and_services_are_read_from_the_clis_json():
    found = sw.nodes(NODES.out, INSPECTED.out)
    assert [(x.hostname, x.roles, x.manager, x.address, x.usable) for x in found] == [
        ("srv1", ("edge", "apps"), "Leader", "10.0.0.1", True), ("srv2", ("data", "apps"), "", "10.0.0.2", True)]
    rows, details = listed({"app1-backend": ("1/2", "updating"), "nginx": ("1/1 (max 1 per node)", "")})
    services = sw.services("acme", rows.out, details.out)
    assert [(s.name, s.image, s.running, s.desired, s.update, s.converged) for s in services] == [
        ("app1-backend", "img/app1-backend:1", 1, 2, "updating", False), ("nginx", "img/nginx:1", 1, 1, "", True)]
    assert n.swarm_constraint("data") == "node.labels.plano.data == true"


def running_tasks(*nodes: str) -> Answer:
    """`docker service ps --filter desired-state=running` lines: a running task on each of `nodes`."""
    return Answer(0, "\n".join(json.dumps({"Node": node, "CurrentState": "Running 3 seconds ago", "DesiredState": "Running"})
                               for node in nodes))


SPREAD = running_tasks("srv1", "srv2")


def swarm_deploy_engine(states: list[tuple[Answer, Answer]], placed: Answer = SPREAD) -> ScriptedRunner:
    rows, details = zip(*states, strict=True)
    return (ScriptedRunner().query("compose", "version").query("docker", "info", "--format", "{{json .Swarm}}", answers=MANAGER)
            .query("docker", "info").query("docker", "service", "ls", answers=list(rows))
            .query("docker", "service", "inspect", answers=list(details))
            .query("docker", "stack", "ps", answers=Answer(0, json.dumps({"Name": "acme_app1-backend.1", "Error": "task: non-zero exit (1)"})))
            .query("docker", "node", "ls", answers=NODES).query("docker", "node", "inspect", answers=INSPECTED)
            .query("docker", "service", "ps", answers=placed)
            .on("docker", "service", "update").on("docker", "service", "scale"))


def test_deploy_on_a_swarm_is_swarms_rolling_update_recorded_as_on_one_server(root):
    from plano.ops import deploy

    both = ("app1-backend", "app1-frontend")
    runner = swarm_deploy_engine([listed(dict.fromkeys(both, ("2/2", "updating"))),
                                  listed({"app1-backend": ("2/2", "completed"), "app1-frontend": ("2/2", "updating")}),
                                  listed(dict.fromkeys(both, ("2/2", "completed")))])
    records = deploy.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert runner.actions == [
        ["docker", "service", "update", "--detach", "--with-registry-auth", "--image",
         f"registry.example.com/acme/app1-{role}:2.0.0", f"acme_app1-{role}"] for role in ("backend", "frontend")]
    assert [(r.service, r.from_tag, r.to_tag, r.action, r.result) for r in records] == [
        ("app1-backend", "latest", "2.0.0", "deploy", "ok"), ("app1-frontend", "latest", "2.0.0", "deploy", "ok")]
    env = (root / ".env.prod").read_text()
    assert "APP1_BACKEND_TAG=2.0.0" in env and "APP1_FRONTEND_TAG=2.0.0" in env


def test_a_service_whose_tasks_an_update_left_on_one_node_is_spread_again(root):
    """Both tasks on srv2 of the two apps nodes: one more task (Swarm puts it on srv1),
    then back to two (Swarm removes one from srv2), each waited for."""
    from plano.ops import deploy

    runner = swarm_deploy_engine([listed({"app1-backend": ("2/2", "completed")}), listed({"app1-backend": ("2/3", "completed")}),
                                  listed({"app1-backend": ("3/3", "completed")}), listed({"app1-backend": ("3/2", "completed")}),
                                  listed({"app1-backend": ("2/2", "completed")})], placed=running_tasks("srv2", "srv2"))
    session = scripted.session(root, runner)
    records = deploy.deploy(session, "app1", "backend", "2.0.0")
    assert runner.actions == [
        ["docker", "service", "update", "--detach", "--with-registry-auth", "--image", "registry.example.com/acme/app1-backend:2.0.0",
         "acme_app1-backend"],
        ["docker", "service", "scale", "--detach", "acme_app1-backend=3"], ["docker", "service", "scale", "--detach", "acme_app1-backend=2"]]
    assert len([call for call in runner.queries if call[:3] == ["docker", "service", "ls"]]) == 5  # each scale waited for
    assert "app1-backend: its 2 tasks are not spread over the apps nodes; one more task, then back to 2" in session.out.notes
    assert [(r.service, r.result) for r in records] == [("app1-backend", "ok")]


def test_only_tasks_crowded_on_one_usable_apps_node_are_spread():
    assert sw.crowded(["a", "a"], ["a", "b"]) and sw.crowded(["a", "a", "a", "b"], ["a", "b", "c"])
    assert not sw.crowded(["a", "b"], ["a", "b"]) and not sw.crowded(["a", "a"], ["a"]) and not sw.crowded(["a", "b"], ["a", "b", "c"])
    assert not sw.crowded(["a", "a"], [])  # no apps node is usable: nothing to spread over
    lines = "\n".join(json.dumps({"Node": node, "CurrentState": state}) for node, state in (("a", "Running 2 minutes ago"), ("b", "Starting 1 second ago")))
    assert sw.running_on(lines) == ["a"]


def test_a_swarm_rollback_fails_the_deploy_and_leaves_the_tags(root):
    from plano.ops import deploy

    env = (root / ".env.prod").read_bytes()
    runner = swarm_deploy_engine([listed({"app1-backend": ("2/2", "rollback_completed")})])
    with pytest.raises(deploy.DeployFailed, match=r"^Swarm rolled app1-backend back: update rollback_completed \(its task: task: non-zero exit \(1\)\)$"):
        deploy.deploy(scripted.session(root, runner), "app1", "backend", "broken")
    assert (root / ".env.prod").read_bytes() == env
    last = json.loads((root / n.DEPLOY_LOG).read_text().splitlines()[-1])
    assert (last["service"], last["to_tag"], last["result"]) == ("app1-backend", "broken", "failed: Swarm rolled app1-backend back: update rollback_completed (its task: task: non-zero exit (1))")


def test_prod_up_refuses_a_swarm_target_and_runs_nothing(root):
    from plano.ops import stack

    runner = ScriptedRunner()
    with pytest.raises(UsageError, match=r"^target: plano.yml runs prod on a swarm; plano swarm up starts it there"):
        stack.up(scripted.session(root, runner, Mode.PROD))
    assert runner.calls == []


def test_status_on_a_swarm_reads_the_stacks_services_and_names_what_does_not_run(root):
    from plano.ops import status

    rows, details = listed(dict.fromkeys(SERVICE_NAMES[:4], ("1/1", "")) | {"app1-backend": ("1/2", "completed"), "app1-frontend": ("2/2", "")})
    runner = (ScriptedRunner().query("docker", "info", "--format", "{{json .Swarm}}", answers=MANAGER).query("docker", "info")
              .query("docker", "service", "ls", answers=rows).query("docker", "service", "inspect", answers=details))
    here = scripted.session(root, runner, Mode.PROD)
    report = status.collect(here)
    assert report.project == "acme on a swarm"
    # The backups are the data node's, read by a job of the backup service, which is not running.
    assert report.backup == status.BackupSummary(None, 0, None, None)
    assert here.out.notes == ["warning: the data node's backups could not be read: the backup service is not in the stack; "
                              "start it first (plano swarm up)"]
    assert [(r.service, r.state, r.health, r.tag, r.recorded_tag, r.matches) for r in report.apps] == [
        ("app1-backend", "1/2 tasks", "1/2 healthy, update completed", "1", "latest", False),
        ("app1-frontend", "running", "2/2 healthy", "1", "latest", False)]
    assert [(r.service, r.state) for r in report.infra] == [
        ("backup", "absent"), ("certbot", "running"), ("database", "running"), ("nginx", "running"), ("redis", "running")]
    assert [(p.service, p.state, p.fix) for p in report.problems] == [
        ("app1-backend", "1/2 tasks", "plano swarm ps app1-backend (why its tasks stop), then plano swarm up"),
        ("backup", "absent", "plano swarm up")]
    assert status.exit_code(report) == 1
    assert not any(c.argv[0] != "docker" or c.argv[1] == "compose" for c in runner.calls), runner.calls


def test_doctor_on_a_swarm_names_a_missing_role_a_node_away_and_a_service_short_of_tasks():
    from plano.ops import doctor

    def node(name: str, *roles: str, status: str = "Ready") -> sw.Node:
        return sw.Node(name, name, status, "Active", "", roles)

    ready = [node("srv1", "edge", "apps"), node("srv2", "data"), node("srv3", "apps")]
    assert doctor.decide_swarm(ready) == doctor.Finding("swarm", "ok", "3 nodes ready; every role has one")
    assert doctor.decide_swarm([*ready[:2], node("srv3", "apps", status="Down")]) == doctor.Finding(
        "swarm", "warn", "not ready: srv3 (Down, Active); Swarm runs their tasks elsewhere when it can",
        "start srv3's Docker engine, or docker node rm srv3")
    assert doctor.decide_swarm([ready[0], node("srv2", "data", status="Down")]) == doctor.Finding(
        "swarm", "fail", "no ready node for the data role: its services cannot run", "plano swarm label NODE data (plano swarm nodes lists them)")
    assert doctor.decide_services({"nginx": "running", "app1-backend": "1/2 tasks", "backup": "absent"}, cli="swarm") == doctor.Finding(
        "services", "fail", "2 of 3 not running: app1-backend (1/2 tasks), backup (absent)", "plano swarm logs app1-backend, then plano swarm up")
    assert doctor.decide_services({"nginx": "running", "backup": "absent"}, cli="swarm").fix == "plano swarm up"
    # Uploads stay on the node that took them: a warning where a backend may run on several.
    assert doctor.decide_uploads({"app1": 2, "app2": 1}, ["srv1", "srv3"]) == doctor.Finding(
        "uploads", "warn", "app1: uploads stay on the apps node that took them (2 apps nodes), unseen by the other tasks and "
        "outside the backups", "if app1 stores uploads: apps.app1.backend.replicas: 1 and one apps node, or a shared volume "
        "at data/uploads/ on every apps node")
    assert doctor.decide_uploads({"app1": 2}, ["srv1"]).status == doctor.decide_uploads({"app1": 1}, ["srv1", "srv3"]).status == "ok"


def test_certs_on_a_swarm_run_certbot_in_its_task_beside_nginx_on_this_node(root):
    from plano.ops import certs

    runner = (scripted.engine(ScriptedRunner())
              .query("docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=acme_nginx", answers=Answer(0, "c0ffee\n"))
              .query("docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name=acme_certbot", answers=Answer(0, "cafe01\n"))
              .on("docker", "exec"))
    certs.issue(scripted.session(root, runner, Mode.PROD), ("app1",), False, server="https://acme.test/dir")
    assert runner.actions == [
        ["docker", "exec", "-i", "cafe01", "certbot", "certonly", "--webroot", "-w", "/var/www/certbot", "--cert-name", "app1",
         "-d", "app1.example.com", "--email", "ops@example.com", "--agree-tos", "--non-interactive", "--keep-until-expiring",
         "--server", "https://acme.test/dir"],
        ["docker", "exec", "-i", "-e", "RENEWED_LINEAGE=/etc/letsencrypt/live/app1", "cafe01", "/plano/scripts/deploy-hook.sh"]]


def test_certs_on_a_swarm_refuse_a_node_without_the_edge_tasks(root):
    from plano.ops import certs

    runner = scripted.engine(ScriptedRunner()).query("docker", "ps", "-q", answers=Answer(0, ""))
    with pytest.raises(PlanoError, match=r"^no nginx task runs on this node \(renewals are checked through it\): run plano on the edge node"):
        certs.renew(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == []


def test_secrets_rotate_on_a_swarm_is_a_swarm_up_with_new_passwords_that_never_touches_postgres_or_redis(root):
    """New passwords in .env.prod and data/secrets/, then `up`: the jobs give app1's role
    the new password and its Redis user both, the stack deploy rolls app1's services (their
    URLs changed), then Redis drops the old one. Postgres and Redis mount no app password."""
    from plano.core import secrets
    from plano.ops import rotate
    from plano.render import stack

    before = secrets.read_env(root / n.ENV_PROD)
    manifest = load_infra(root).manifest
    own = {name: stack.stack(manifest)["services"][name]["secrets"] for name in ("database", "redis")}
    assert {name: [s["target"] for s in spec] for name, spec in own.items()} == {
        "database": ["POSTGRES_PASSWORD"], "redis": ["REDIS_ADMIN_PASSWORD"]}
    runner = engine(ScriptedRunner())
    done = rotate.rotate(scripted.session(root, runner, Mode.PROD), "app1")
    after = secrets.read_env(root / n.ENV_PROD)
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {"APP1_DB_PASSWORD", "APP1_REDIS_PASSWORD", "APP1_DB_USER"} and after["APP1_DB_USER"] == "app1_alt"
    assert (root / "data/secrets/database/APP1_DB_PASSWORD").read_text().strip() == after["APP1_DB_PASSWORD"]
    deploys = [c for c in runner.calls if c.argv[:3] == ["docker", "stack", "deploy"]]
    assert [c.argv == sw.deploy_argv("acme") for c in deploys] == [False, False, True, False, False]
    assert deploys[2].env["APP1_DB_PASSWORD"] == after["APP1_DB_PASSWORD"]
    assert all(after["APP1_DB_PASSWORD"] not in " ".join(c.argv) + (c.stdin or "") for c in runner.calls)
    assert (done.database, done.redis, [(r.service, r.action) for r in done.restarted]) == (True, True, [("app1-backend", "rotate")])
    log = (root / n.DEPLOY_LOG).read_text()
    assert '"action": "rotate"' in log and after["APP1_DB_PASSWORD"] not in log


def test_a_failed_rotation_on_a_swarm_puts_the_old_passwords_back(root):
    from plano.core import secrets
    from plano.ops import rotate

    before = secrets.read_env(root / n.ENV_PROD)
    runner = engine(ScriptedRunner().on("docker", "stack", "deploy", "--with-registry-auth", "--prune",
                                         answers=[Answer(1, "", "failed to update service acme_app1-backend"), Answer(0)]))
    with pytest.raises(PlanoError, match=r"^app1: rotation failed, the old passwords are back: docker stack deploy failed: "):
        rotate.rotate(scripted.session(root, runner, Mode.PROD), "app1")
    assert secrets.read_env(root / n.ENV_PROD) == before
    assert not (root / n.DEPLOY_LOG).exists()
