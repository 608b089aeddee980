"""Operations as exact sequences of commands, against a scripted engine: what each one
runs, in order, on success and on each kind of failure, and what it leaves on disk."""

import json
import socket
from pathlib import Path

import pytest

from plano.core import secrets
from plano.core.errors import PlanoError, RefusedError
from plano.core.mode import Mode
from plano.engine import compose
from plano.ops import backup, certs, deploy, devtest, infra, stack
from tests import scripted
from tests.scripted import Answer, ScriptedRunner

OLD, NEW = "old0c0ffee", "new0c0ffee"
NGINX_TEST = ["exec", "-T", "nginx", "nginx", "-c", "/etc/plano/nginx/nginx.conf", "-t", "-q"]
NGINX_RELOAD = ["exec", "-T", "nginx", "/etc/plano/nginx/bin/plano-reload.sh"]
EMERG = ('nginx: [emerg] unknown directive "bogus" in /etc/plano/nginx/sites-enabled/app1.conf:3\n'
         "nginx: configuration file /etc/plano/nginx/nginx.conf test failed\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An infra made by plano itself: app1 (a release command) and app2, prod on free ports."""
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(tmp_path / "dev-ca"))
    where = tmp_path / "infra"
    made = scripted.made_infra(where, lambda text: text.replace(
        "prod:\n  bind: 0.0.0.0\n  http_port: 80\n  https_port: 443\n",
        f"prod:\n  bind: 127.0.0.1\n  http_port: {free_port()}\n  https_port: {free_port()}\n"))
    infra.add_app(made, "app1", {"domains": ["app1.example.com"], "backend": {"release": ["npm", "run", "migrate"]}})
    infra.add_app(made, "app2", {"domains": ["app2.example.com"]})
    return where


def binary() -> list[str]:
    return list(compose.find_binary(ScriptedRunner().query()))


def compose_argv(mode: Mode, *args: str) -> list[str]:
    project = "acme" if mode is Mode.PROD else "acme-dev"
    return [*binary(), "-p", project, "--env-file", ".env", "--env-file", mode.env_file,
            "-f", "docker-compose.yml", "-f", mode.compose_files[1], *args]


def prod(*args: str) -> list[str]:
    return compose_argv(Mode.PROD, *args)


def tagged(tag: str, *args: str, role: str = "backend") -> list[str]:
    return ["env", f"APP1_{role.upper()}_TAG={tag}", *prod(*args)]


def details(health: str, address: str) -> Answer:
    return Answer(0, json.dumps([{"Name": "/acme-app1-backend-2", "State": {"Running": True, "Health": {"Status": health, "Log": [
        {"ExitCode": 1, "Output": "GET /api/health: 503"}]}}, "NetworkSettings": {"Networks": {"acme_app1-net": {"IPAddress": address}}}}]))


def engine(*running: str) -> ScriptedRunner:
    runner = ScriptedRunner().query("compose", "version").query("docker", "info")
    runner.query("label=com.docker.compose.service=database", answers=Answer(0, "c0ffee\n" if "database" in running else ""))
    return runner.query("ps", "--status", "running", "--services", answers=Answer(0, "\n".join(running)))


READY = ("/etc/plano/nginx/bin/plano-probe.sh", "ready")
DRAINED = ("/etc/plano/nginx/bin/plano-probe.sh", "drained")


def deploy_engine(health: str = "healthy", release: Answer = scripted.OK, ready: Answer | None = None) -> ScriptedRunner:
    if ready is None:  # the health route answers when Docker finds the container healthy
        ready = scripted.OK if health == "healthy" else Answer(1, "http://172.18.0.7:3000/api/health 503\n")
    runner = engine("nginx", "app1-backend")
    runner.query("label=com.docker.compose.service=app1-backend", answers=[Answer(0, f"{OLD}\n"), Answer(0, f"{OLD}\n{NEW}\n")])
    runner.query("docker", "inspect", OLD, answers=details("healthy", "172.18.0.5"))
    runner.query("docker", "inspect", NEW, answers=details(health, "172.18.0.7"))
    runner.query("docker", "logs", answers=Answer(0, "Nest application failed to start\n"))
    runner.on("run", "--rm", "--no-deps", "-T", "app1-backend", answers=release)
    runner.on(*READY, answers=ready).on(*DRAINED)
    return runner.on("env").on("compose").on("docker", "stop").on("docker", "rm")


def log_lines(root: Path) -> list[dict]:
    path = root / "data/logs/deploys.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def overrides(root: Path) -> list[str]:
    """The DNS overrides a deploy left behind (none once it ended, whatever happened)."""
    return sorted(p.name for p in (root / "data/nginx/dns").glob("*")) if (root / "data/nginx/dns").exists() else []


PROBE_READY = prod("exec", "-T", "nginx", *READY, "5", "http://172.18.0.7:3000/api/health")
PROBE_DRAINED = prod("exec", "-T", "-e", "PLANO_PROBE_AFTER=1.3", "nginx", *DRAINED, "30", "050012AC:0BB8")


# ---------------------------------------------------------------- deploy


def test_deploy_switches_with_no_gap(root, monkeypatch):
    from plano.core import files

    written = []
    real_write = files.write_atomic

    def spy(path, content, mode, **kw):
        written.append((str(path.relative_to(root)), content))
        return real_write(path, content, mode, **kw)

    monkeypatch.setattr(files, "write_atomic", spy)
    runner = deploy_engine()
    records = deploy.deploy(scripted.session(root, runner), "app1", "backend", "2.0.0")
    assert runner.actions == [
        tagged("2.0.0", "pull", "--quiet", "app1-backend"),
        tagged("2.0.0", "run", "--rm", "--no-deps", "-T", "app1-backend", "npm", "run", "migrate"),
        tagged("2.0.0", "up", "-d", "--no-deps", "--no-recreate", "--scale", "app1-backend=2", "app1-backend"),
        PROBE_READY,  # from nginx's side, until it answers
        PROBE_DRAINED,  # after the switch: until nginx holds no connection to the old container
        ["docker", "stop", "--time", "30", OLD], ["docker", "rm", "--force", OLD],
    ]
    assert written[:2] == [("data/nginx/dns/app1-backend", "172.18.0.5 app1-backend\n"),  # pinned to the old container
                           ("data/nginx/dns/app1-backend", "172.18.0.7 app1-backend\n")]  # switched to the new one
    assert overrides(root) == []  # back to Docker's answer: the new container only
    assert [(r.service, r.from_tag, r.to_tag, r.result) for r in records] == [("app1-backend", "latest", "2.0.0", "ok")]
    assert secrets.read_env(root / ".env.prod")["APP1_BACKEND_TAG"] == "2.0.0"
    assert [line["result"] for line in log_lines(root)] == ["ok"]


def test_an_unhealthy_new_container_is_removed_and_the_old_one_serves_on(root):
    runner = deploy_engine(health="unhealthy", ready=Answer(1, "http://172.18.0.7:3000/api/health 503\n"))
    with pytest.raises(deploy.DeployFailed) as failed:
        deploy.deploy(scripted.session(root, runner), "app1", "backend", "2.0.0")
    assert str(failed.value).splitlines()[:3] == [
        "the new container acme-app1-backend-2 is unhealthy", "its last healthchecks:", "  exit 1: GET /api/health: 503"]
    assert "Nest application failed to start" in str(failed.value)
    assert runner.actions == [
        tagged("2.0.0", "pull", "--quiet", "app1-backend"),
        tagged("2.0.0", "run", "--rm", "--no-deps", "-T", "app1-backend", "npm", "run", "migrate"),
        tagged("2.0.0", "up", "-d", "--no-deps", "--no-recreate", "--scale", "app1-backend=2", "app1-backend"),
        PROBE_READY,
        ["docker", "rm", "--force", NEW],
    ]
    assert overrides(root) == []
    assert secrets.read_env(root / ".env.prod")["APP1_BACKEND_TAG"] == "latest"
    assert log_lines(root)[-1]["result"] == "failed: the new container acme-app1-backend-2 is unhealthy"


def test_a_new_container_that_never_answers_is_removed_at_the_deadline(root):
    runner = deploy_engine(health="starting", ready=Answer(1, "http://172.18.0.7:3000/api/health 000\n"))
    session = scripted.session(root, runner)
    with pytest.raises(deploy.DeployFailed) as failed:
        deploy.deploy(session, "app1", "backend", "2.0.0", timeout=1)
    assert str(failed.value).splitlines()[0] == (
        "the new container acme-app1-backend-2 did not answer /api/health with 2xx or 3xx within 1 s (its last answer: no connection)")
    assert runner.actions[-2:] == [prod("exec", "-T", "nginx", *READY, "1", "http://172.18.0.7:3000/api/health"),
                                   ["docker", "rm", "--force", NEW]]
    assert overrides(root) == []


def test_a_failed_release_switches_nothing(root):
    runner = deploy_engine(release=Answer(1, "", "migration 42 failed: relation exists"))
    with pytest.raises(deploy.DeployFailed, match=r"^the release command failed \(exit 1\); nothing was switched:\nmigration 42"):
        deploy.deploy(scripted.session(root, runner), "app1", "backend", "2.0.0")
    assert not any("up" in argv for argv in runner.actions)
    assert overrides(root) == []


def test_rollback_deploys_the_tag_before(root):
    env = root / ".env.prod"
    env.write_text(secrets.set_env_value(env.read_text(), "APP1_BACKEND_TAG", "1.1.0"))
    (root / "data/logs/deploys.jsonl").write_text(json.dumps({
        "time": "2026-12-01T10:00:00+00:00", "user": "ops", "app": "app1", "service": "app1-backend",
        "from_tag": "1.0.0", "to_tag": "1.1.0", "action": "deploy", "result": "ok"}) + "\n")
    runner = deploy_engine()
    records = deploy.rollback(scripted.session(root, runner), "app1", None)
    assert [(r.service, r.from_tag, r.to_tag, r.action) for r in records] == [("app1-backend", "1.1.0", "1.0.0", "rollback")]
    assert runner.actions[0] == tagged("1.0.0", "pull", "--quiet", "app1-backend")
    assert secrets.read_env(env)["APP1_BACKEND_TAG"] == "1.0.0"
    with pytest.raises(RefusedError, match="app1-frontend: no deploy to latest in data/logs/deploys.jsonl"):
        deploy.rollback(scripted.session(root, deploy_engine()), "app1", "frontend")


# ---------------------------------------------------------------- up


def test_prod_up_pulls_then_starts(root):
    runner = engine().on("compose")
    started = stack.up(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == [prod("pull", "--ignore-buildable", "--quiet"),
                              prod("up", "-d", "--remove-orphans", "--build", "--wait", "--wait-timeout", "300")]
    assert started.urls["app1"].startswith("https://app1.example.com:") and started.placeholders == ["app1", "app2"]


def test_prod_up_on_a_fresh_clone_decrypts_env_prod_first(root, monkeypatch):
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(root.parent / "no-key.txt"))
    plain = (root / ".env.prod").read_text()
    (root / ".env.prod").unlink()
    (root / ".env.prod.enc").write_text("POSTGRES_PASSWORD=ENC[AES256_GCM,data:vQ==,type:str]\n")
    runner = engine().on("decrypt", answers=Answer(0, plain)).on("compose")
    made = scripted.session(root, runner, Mode.PROD)
    stack.up(made)
    decrypt = runner.calls[0].argv
    assert decrypt[3:] == ["decrypt", "--input-type", "dotenv", "--output-type", "dotenv", str(root / ".env.prod.enc")]
    assert (root / ".env.prod").read_text() == plain and (root / ".env.prod").stat().st_mode & 0o777 == 0o600
    assert made.out.notes[0] == "decrypted .env.prod.enc to .env.prod (mode 0600)"
    assert runner.actions[-2:] == [prod("pull", "--ignore-buildable", "--quiet"),
                                   prod("up", "-d", "--remove-orphans", "--build", "--wait", "--wait-timeout", "300")]


def test_render_refuses_to_generate_secrets_over_an_encrypted_copy(root):
    from plano.core.files import tree_digest

    (root / ".env.dev").unlink()
    (root / ".env.dev.enc").write_text("POSTGRES_PASSWORD=ENC[AES256_GCM,data:vQ==,type:str]\n")
    before = tree_digest(root)
    with pytest.raises(RefusedError) as refused:
        infra.render(scripted.session(root, ScriptedRunner()))
    assert str(refused.value) == (".env.dev: missing, but .env.dev.enc is here; run 'plano secrets decrypt --dev' first "
                                  "(a render would generate new secrets in its place)")
    assert tree_digest(root) == before


def test_a_render_that_changes_nginx_files_reloads_each_running_nginx_and_only_then(root):
    """A changed site is served once nginx reloads: the prod stack's runs here (the
    `docker ps` answer), the dev one's does not; a render that changes nothing reloads none."""
    manifest = root / "plano.yml"
    manifest.write_text(manifest.read_text().replace("\napps:\n", "\ndashboard: {domain: ops.example.com}\napps:\n", 1))
    runner = ScriptedRunner().query("compose", "version").query("docker", "ps", answers=Answer(0, "acme\nelse\n"))
    runner.on("compose")
    infra.render(scripted.session(root, runner))
    assert [c.argv for c in runner.calls if c.argv[:2] != ["docker", "compose"] or "exec" in c.argv] == [
        ["docker", "ps", "--filter", "label=com.docker.compose.service=nginx", "--format", '{{.Label "com.docker.compose.project"}}'],
        compose_argv(Mode.PROD, "exec", "-T", "nginx", "nginx", "-c", "/etc/plano/nginx/nginx.conf", "-t", "-q"),
        compose_argv(Mode.PROD, "exec", "-T", "nginx", "/etc/plano/nginx/bin/plano-reload.sh"),
    ]
    again = ScriptedRunner()  # nothing changed: not even the docker ps
    infra.render(scripted.session(root, again))
    assert again.calls == []


def test_prod_up_without_the_key_starts_nothing(root):
    (root / ".env.prod").unlink()
    (root / ".env.prod.enc").write_text("POSTGRES_PASSWORD=ENC[AES256_GCM,data:vQ==,type:str]\n")
    runner = engine().on("decrypt", answers=Answer(128, "", "Failed to get the data key required to decrypt the SOPS file.\n"))
    with pytest.raises(PlanoError, match=r"^\.env\.prod\.enc: no age key here can decrypt it"):
        stack.up(scripted.session(root, runner, Mode.PROD))
    assert [call.argv[3] for call in runner.calls] == ["decrypt"] and not (root / ".env.prod").exists()


def test_a_failed_first_up_takes_down_what_it_started(root):
    runner = engine().on("up", "-d", answers=Answer(1)).on("compose")
    with pytest.raises(PlanoError, match=r"^prod up failed \(compose exit code 1\); see the output above and 'plano prod logs'"):
        stack.up(scripted.session(root, runner, Mode.PROD))
    assert runner.actions[-2:] == [prod("up", "-d", "--remove-orphans", "--build", "--wait", "--wait-timeout", "300"), prod("down")]
    assert (root / "data/database").is_dir()  # data is kept


def test_a_failed_pull_starts_nothing(root):
    runner = engine().on("pull", answers=Answer(1, "", "manifest unknown")).on("compose")
    with pytest.raises(PlanoError, match="prod pull failed, nothing was started: manifest unknown"):
        stack.up(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == [prod("pull", "--ignore-buildable", "--quiet")]


# ---------------------------------------------------------------- certs, backups, dev tests


def test_certs_issue_goes_on_when_one_app_is_refused(root):
    refused = Answer(1, "", "Domain: app2.example.com\nType: unauthorized\nDetail: 404 for the challenge\n")
    runner = engine("nginx").on("--cert-name", "app2", answers=refused).on("compose")
    here = scripted.session(root, runner, Mode.PROD)
    with pytest.raises(certs.CertError, match="^no new certificate for app2 \\(see above\\); nginx keeps serving"):
        certs.issue(here, (), True, server="https://acme.test/dir")
    names = [argv[argv.index("--cert-name") + 1] if "--cert-name" in argv else argv[-1] for argv in runner.actions]
    assert names == ["app1", "certbot", "app2"]  # app1 issued and installed; no nginx reload (nginx loads it at the handshake)
    assert here.out.infos == ["app1: certificate installed"]
    assert any("app2.example.com: the ACME server could not validate it" in note for note in here.out.notes)


def test_certs_renew_runs_certbot_only_no_reload(root):
    said = "  /etc/letsencrypt/live/app1/fullchain.pem (success)\n"
    runner = engine("nginx").on("renew", answers=Answer(0, said)).on("compose")
    renewed, late = certs.renew(scripted.session(root, runner, Mode.PROD), force=True)
    assert renewed == ["/etc/letsencrypt/live/app1/fullchain.pem (success)"]
    assert late == ["app1"]  # nothing installed in this scripted run: nothing nginx could serve
    certbot = ["run", "--rm", "--no-deps", "-T", "--entrypoint", "certbot", "certbot", "renew", "--non-interactive",
               "--no-random-sleep-on-renew", "--webroot", "-w", "/var/www/certbot",
               "--deploy-hook", "/plano/scripts/deploy-hook.sh", "--force-renewal"]
    assert runner.actions == [prod(*certbot)]  # certbot's deploy hook installs; nginx loads it by itself


def test_backup_restore_takes_a_safety_backup_first(root):
    runner = engine("database").on("plano-backup.sh", "backup", "run", answers=Answer(0, "20261202T050000Z\n")).on("compose")
    safety = backup.restore(scripted.session(root, runner, Mode.PROD), "20261201T033000Z", "app1", None)
    script = ["run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", "backup"]
    assert safety == "20261202T050000Z"
    assert runner.actions == [prod(*script, "run", "--no-prune", "app1"), prod(*script, "restore", "20261201T033000Z", "app1")]


def test_backup_refuses_without_a_database(root):
    runner = engine("nginx").on("compose")
    with pytest.raises(PlanoError, match=r"the database is not running; start the stack first \(plano prod up\)"):
        backup.run(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == []
    # The engine is asked whether it answers only once the database was not found running.
    assert runner.queries == [["docker", "compose", "version"], DATABASE_RUNNING, ["docker", "info", "--format", "{{.ServerVersion}}"]]


DATABASE_RUNNING = ["docker", "ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=acme",
                    "--filter", "label=com.docker.compose.service=database"]


def test_backup_asks_the_engine_one_question_before_it_runs(root):
    """A compose call costs 0.2-0.5 s of a backup that should take the dump's time."""
    runner = engine("database").on("plano-backup.sh", "backup", "run", answers=Answer(0, "20261202T050000Z\n"))
    assert backup.run(scripted.session(root, runner, Mode.PROD), ("app1",)) == "20261202T050000Z"
    assert runner.queries == [["docker", "compose", "version"], DATABASE_RUNNING]
    assert runner.actions == [prod("run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", "backup", "run", "app1")]


def test_backup_without_an_engine_says_so(root):
    runner = ScriptedRunner().query("compose", "version").query("docker", "ps", answers=Answer(1)).query("docker", "info", answers=Answer(1))
    with pytest.raises(PlanoError, match=r"^no Docker engine answers \(docker info failed\)"):
        backup.run(scripted.session(root, runner, Mode.PROD))
    assert runner.actions == []


def test_dev_test_gets_a_throwaway_database(root):
    runner = engine("app1-backend").on("compose", answers=[Answer(0), Answer(0), Answer(3), Answer(0)])
    code = devtest.run_tests(scripted.session(root, runner, Mode.DEV), "app1", None, ("--runInBand",))
    password = secrets.read_env(root / ".env.dev")["APP1_DB_PASSWORD"]
    psql = compose_argv(Mode.DEV, "exec", "-T", "database", "psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-U", "postgres", "-d", "postgres")
    calls = [c for c in runner.calls if not c.query]
    assert code == 3  # the tests' own exit code
    assert [c.argv for c in calls] == [
        compose_argv(Mode.DEV, "up", "-d", "--wait", "database"), psql,
        compose_argv(Mode.DEV, "exec", "-T", "-e", "DATABASE_URL", "app1-backend", "npm", "test", "--runInBand"), psql]
    assert "CREATE DATABASE" in calls[1].stdin and "DROP DATABASE" in calls[3].stdin  # dropped after a failure too
    assert calls[2].env == {"DATABASE_URL": f"postgres://app1:{password}@database:5432/app1_test"}
    assert not any(password in word for c in runner.calls for word in c.argv)


# ---------------------------------------------------------------- secrets rotate


def rotate_engine(health: str = "healthy", alter: Answer = scripted.OK) -> ScriptedRunner:
    runner = deploy_engine(health=health)
    runner.rules.insert(0, scripted.Rule(("exec", "-T", "redis"), [Answer(0, "OK\n")]))
    runner.rules.insert(0, scripted.Rule(("exec", "-T", "database"), [alter, scripted.OK]))
    return runner


REDIS_ADMIN = prod("exec", "-T", "redis", "sh", "-c",
                   'REDISCLI_AUTH="$(cat /run/secrets/REDIS_ADMIN_PASSWORD)" exec redis-cli --no-auth-warning --user plano')
PSQL = prod("exec", "-T", "database", "psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-U", "postgres", "-d", "postgres")


def test_secrets_rotate_gives_redis_both_passwords_alters_the_role_and_restarts_without_release(root):
    from plano.ops import rotate

    old = secrets.read_env(root / ".env.prod")
    runner = rotate_engine()
    done = rotate.rotate(scripted.session(root, runner), "app1")
    new = secrets.read_env(root / ".env.prod")
    db_old, db_new, redis_old, redis_new = old["APP1_DB_PASSWORD"], new["APP1_DB_PASSWORD"], old["APP1_REDIS_PASSWORD"], new["APP1_REDIS_PASSWORD"]
    assert len({db_old, db_new}) == 2 and len({redis_old, redis_new}) == 2
    assert runner.actions == [
        REDIS_ADMIN, PSQL,  # Redis: old + new; Postgres: new
        ["env", "APP1_BACKEND_TAG=latest", *prod("pull", "--quiet", "app1-backend")],  # no release command
        ["env", "APP1_BACKEND_TAG=latest", *prod("up", "-d", "--no-deps", "--no-recreate", "--scale", "app1-backend=2", "app1-backend")],
        PROBE_READY, PROBE_DRAINED,
        ["docker", "stop", "--time", "30", OLD], ["docker", "rm", "--force", OLD],
        PSQL, REDIS_ADMIN,  # Postgres: the old login retired; Redis: the old password removed
    ]
    stdins = [call.stdin for call in runner.calls if call.stdin]
    assert stdins[0] == f"ACL SETUSER app1 >{redis_new}\n" and stdins[-1] == f"ACL SETUSER app1 <{redis_old}\n"
    assert "SCRAM-SHA-256$4096:" in stdins[1] and db_new not in stdins[1]  # the verifier, never the password
    # The other login gets the new password, and the URL names it; the one in use is retired after.
    assert "\\set login 'app1_alt'" in stdins[1] and "\\set login 'app1'\nSELECT format('ALTER ROLE %I PASSWORD NULL'" in stdins[-2]
    assert (old.get("APP1_DB_USER"), new["APP1_DB_USER"]) == (None, "app1_alt")
    assert not [call.argv for call in runner.calls if any(v in word for v in (db_new, redis_new, db_old, redis_old) for word in call.argv)]
    assert (root / "data/secrets/redis/APP1_REDIS_PASSWORD").read_text() == redis_new
    assert (root / "data/secrets/database/APP1_DB_PASSWORD").read_text() == db_new
    assert [(r.service, r.action, r.from_tag, r.to_tag) for r in done.restarted] == [("app1-backend", "rotate", "latest", "latest")]
    assert [line["action"] for line in log_lines(root)] == ["rotate"]


def test_a_rotation_whose_new_container_fails_puts_the_old_passwords_back(root):
    from plano.ops import rotate

    before = (root / ".env.prod").read_text()
    old = secrets.read_env(root / ".env.prod")
    runner = rotate_engine(health="unhealthy")
    with pytest.raises(deploy.DeployFailed):
        rotate.rotate(scripted.session(root, runner), "app1")
    assert (root / ".env.prod").read_text() == before
    assert (root / "data/secrets/redis/APP1_REDIS_PASSWORD").read_text() == old["APP1_REDIS_PASSWORD"]
    psql = [call.stdin for call in runner.calls if call.argv == PSQL]
    redis = [call.stdin for call in runner.calls if call.argv == REDIS_ADMIN]
    assert len(psql) == 2 and len(redis) == 2  # the new login's password set, then retired; Redis: + new, then - new
    assert "PASSWORD NULL" in psql[1] and "\\set login 'app1_alt'" in psql[1]
    assert redis[1].startswith("ACL SETUSER app1 <") and redis[1] != f"ACL SETUSER app1 <{old['APP1_REDIS_PASSWORD']}\n"
    assert [line["result"][:6] for line in log_lines(root)] == ["failed"]


def test_a_failed_alter_role_leaves_everything_as_it_was(root):
    from plano.ops import rotate

    before = (root / ".env.prod").read_text()
    runner = rotate_engine(alter=Answer(1, "", "psql: error: connection refused"))
    with pytest.raises(rotate.RotateFailed, match="ALTER ROLE app1_alt failed: psql: error: connection refused"):
        rotate.rotate(scripted.session(root, runner), "app1")
    assert (root / ".env.prod").read_text() == before
    assert [a for a in runner.actions if "pull" in a] == []  # nothing restarted
