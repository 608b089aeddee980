"""Day-to-day operations, pure parts: doctor's decisions, clone's reading of git,
status rows, dev test argv. The real runs are in tests/integration/test_ops_e2e.py,
test_clone_e2e.py and test_dev_e2e.py."""

import datetime as dt

import pytest

from plano.cli.output import text_table
from plano.core import manifest as mf
from plano.core.errors import UsageError
from plano.core.mode import Mode
from plano.engine import inspect
from plano.engine.compose import ComposeContext
from plano.engine.stack import Stack
from plano.ops import clone, devtest, doctor, status

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def stack(tmp_path) -> Stack:
    text = mf.new_document("acme", "registry.example.com/acme", "ops@example.com").replace(
        "apps: {}", "apps:\n  app1:\n    domains: [app1.example.com]\n"
        "  site:\n    domains: [site.example.com]\n    backend: {enabled: false}\n    database: false\n"
        "  api:\n    domains: [api.example.com]\n    frontend: {enabled: false}\n    backend: {source: ../repos/api/backend}\n")
    ctx = ComposeContext(("docker", "compose"), "acme-dev", ("docker-compose.yml", "docker-compose.dev.yml"), (".env.dev",))
    return Stack(tmp_path, mf.load_text(text), Mode.DEV, ctx)


def test_doctor_decisions():
    assert doctor.decide_engine(None, None).status == "fail"
    assert doctor.decide_engine("20.10", None).reason == "Docker 20.10, but no compose v2"
    assert doctor.decide_engine("20.10", "2.40.3") == doctor.Finding("engine", "ok", "Docker 20.10, compose 2.40.3")
    assert doctor.decide_rendered(["a"], ["docker/nginx/nginx.conf"]).reason == "edited by hand: docker/nginx/nginx.conf"
    assert doctor.decide_rendered(["a", "b"], []).reason == "2 out of date with plano.yml: a, b"
    assert doctor.decide_secret_files({".env.prod": 0o644}, {".env.prod": True}).fix == "chmod 600 .env.prod"
    assert doctor.decide_secret_files({".env.prod": 0o600}, {".env.prod": False}).status == "fail"
    assert doctor.decide_secret_files({".env.prod": 0o600}, {".env.prod": True}).status == "ok"
    assert doctor.decide_dns({"a.example.com": ["192.0.2.1"]}, {"192.0.2.9"}).status == "fail"
    assert doctor.decide_dns({"a.example.com": None}, {"192.0.2.9"}).reason == "a.example.com do not resolve"
    assert doctor.decide_dns({"a.example.com": ["192.0.2.9"]}, {"192.0.2.9"}).status == "ok"
    assert doctor.decide_ports([(80, False), (443, True)], ours_running=False).reason == "80 held by another process"
    assert doctor.decide_ports([(80, False), (443, False)], ours_running=True).reason == "held by our nginx"
    assert doctor.decide_disk(50 * 10**9, 100 * 10**9).status == "ok"
    assert doctor.decide_disk(10 * 10**9, 100 * 10**9).status == "warn"
    assert doctor.decide_disk(3 * 10**9, 100 * 10**9).status == "fail"
    assert doctor.decide_certs({"a": 9, "b": 20, "c": 80}, []).reason == "a expires in 9 days (+1 more)"
    assert doctor.decide_certs({"c": 80}, ["d"]).status == "warn"
    assert doctor.decide_backup(None, None, NOW).status == "warn"
    assert doctor.decide_backup("2026-11-29T03:30:00Z", None, NOW).reason == "last success 8.5 h ago"
    assert doctor.decide_backup("2026-11-27T03:30:00Z", None, NOW).reason == "the last success is 56 h old (daily schedule)"
    assert doctor.decide_backup("2026-11-29T03:30:00Z", "2026-11-29T04:00:00Z", NOW).status == "fail"
    assert doctor.decide_restarts({"x-1": (False, 0), "y-1": (False, 5)}).reason == "restarting in a loop: y-1"
    assert doctor.exit_code([doctor.Finding("a", "warn", "")]) == 0
    assert doctor.exit_code([doctor.Finding("a", "fail", "")]) == 1


def test_doctor_compares_the_encrypted_secrets_by_key_names():
    assert doctor.decide_encrypted({".env.prod": []}) == doctor.Finding(
        "encrypted secrets", "ok", ".env.prod: the same values as the encrypted copies")
    assert doctor.decide_encrypted({}).status == "ok"
    assert doctor.decide_encrypted({".env.dev": [], ".env.prod": ["APP1_DB_PASSWORD", "NEW"]}) == doctor.Finding(
        "encrypted secrets", "warn", ".env.prod and .env.prod.enc differ (APP1_DB_PASSWORD, NEW)",
        "plano secrets encrypt keeps .env.prod's values; plano secrets decrypt --force the committed ones")
    assert doctor.decide_encrypted({".env.dev": ["A"]}).fix.startswith("plano secrets encrypt --dev keeps .env.dev's values")
    assert doctor.decide_encrypted({".env.prod": None}) == doctor.Finding(
        "encrypted secrets", "warn", "cannot decrypt .env.prod.enc with an age key here",
        "put the key in ~/.config/sops/age/keys.txt or set SOPS_AGE_KEY_FILE")


def test_clone_reads_git_status_and_finds_the_repo_folder(stack):
    out = "# branch.oid abc\n# branch.head main\n# branch.upstream origin/main\n# branch.ab +2 -1\n1 .M N... 100644 a b\n"
    assert clone.parse_status(out) == {"branch": "main", "dirty": True, "ahead": 2, "behind": 1}
    assert clone.parse_status("# branch.head dev\n") == {"branch": "dev", "dirty": False, "ahead": None, "behind": None}
    assert clone.repo_dir(stack.manifest, "app1") == "../app1"
    assert clone.repo_dir(stack.manifest, "site") == "../site"
    assert clone.repo_dir(stack.manifest, "api") == "../repos/api"
    assert clone.clone_argv("git@example.com:acme/app1.git", stack.root / "x") == [
        "git", "clone", "--quiet", "--", "git@example.com:acme/app1.git", str(stack.root / "x")]


def test_dev_test_argv(stack):
    compose = ["docker", "compose", "-p", "acme-dev", "--env-file", ".env.dev", "-f", "docker-compose.yml", "-f", "docker-compose.dev.yml"]
    assert devtest.test_argv(stack, "app1", "backend", True, ("--grep", "x"), True) == [
        *compose, "exec", "-T", "-e", "DATABASE_URL", "app1-backend", "npm", "test", "--grep", "x"]
    assert devtest.test_argv(stack, "site", "frontend", False, (), False) == [*compose, "run", "--rm", "-T", "site-frontend", "npm", "test"]
    assert devtest.role_of(stack, "site", None) == "frontend"
    assert devtest.test_db_url("app1", "pw") == "postgres://app1:pw@database:5432/app1_test"
    assert "CREATE DATABASE %I OWNER %I" in devtest.create_db_script("app1") and "\\set db 'app1_test'" in devtest.create_db_script("app1")
    with pytest.raises(UsageError, match="--service backend: app site has no backend"):
        devtest.role_of(stack, "site", "backend")


def test_status_rows():
    info = {"Config": {"Image": "127.0.0.1:5000/acme/app1-backend:1.2.0"},
            "State": {"Status": "running", "Running": True, "StartedAt": "2026-11-29T11:00:00.123456789Z", "Health": {"Status": "healthy"}},
            "RestartCount": 1}
    row = status.service_row("app1", "backend", info, "1.2.0", "https://app1.example.com", NOW)
    assert row == status.ServiceRow(
        app="app1", service="app1-backend", state="running", image="127.0.0.1:5000/acme/app1-backend:1.2.0",
        tag="1.2.0", recorded_tag="1.2.0", matches=True, health="healthy", uptime_seconds=3600,
        restarts=1, url="https://app1.example.com")
    assert status.service_row("app1", "backend", info, "1.3.0", "u", NOW).matches is False
    assert status.service_row("app1", "backend", None, "1.3.0", "u", NOW).state == "absent"
    assert inspect.parse_started("0001-01-01T00:00:00Z") is None
    assert [status.uptime(s) for s in (None, 65, 3700, 90000)] == ["-", "1m05s", "1h01m", "1d1h"]


def test_data_use_counts_regular_files_once_and_follows_no_link(tmp_path):
    (tmp_path / "db/base/1").mkdir(parents=True)
    (tmp_path / "db/base/1/16384").write_bytes(b"x" * 8192)
    (tmp_path / "db/PG_VERSION").write_bytes(b"17\n")
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads/a.png").write_bytes(b"p" * 100)
    (tmp_path / "uploads/link").symlink_to(tmp_path / "db")  # a link to a folder: not walked again
    (tmp_path / "uploads/file-link").symlink_to(tmp_path / "uploads/a.png")
    assert status.folder_bytes(tmp_path) == 8192 + 3 + 100
    assert status.folder_bytes(tmp_path / "nothing-here") == 0


def test_plain_text_table():
    assert text_table(("a", "bb"), [("xxx", "y"), ("z", "")]) == "a    bb\nxxx  y\nz"


def test_the_scram_verifier_is_the_one_postgres_stores():
    """Postgres 17 stored this for CREATE ROLE probe PASSWORD 'pencil-pencil-pencil'
    (pg_authid.rolpassword); with its salt, plano computes the same text."""
    import base64

    from plano.core.secrets import scram_verifier

    stored = ("SCRAM-SHA-256$4096:l84iAL9DCvuP+EWzs1gIPg==$9FeBx7drBk7tFBEI95KIfc+ggAysoUXS9aHAED4zahA="
              ":f3KhCK5zDB8p4yT1+Tuwc29j1YYxcpZZl/YKntVTXM8=")
    assert scram_verifier("pencil-pencil-pencil", base64.b64decode("l84iAL9DCvuP+EWzs1gIPg==")) == stored
    fresh = scram_verifier("pencil-pencil-pencil")
    assert fresh.startswith("SCRAM-SHA-256$4096:") and fresh != stored and "pencil" not in fresh  # a new salt each time


def oom_info(service: str, oom: bool, memory: int = 128 * 2**20, restarts: int = 2) -> dict:
    return {"Config": {"Image": "x:1", "Labels": {"com.docker.compose.service": service}},
            "State": {"Status": "running", "Running": True, "OOMKilled": oom, "StartedAt": "2026-11-29T11:59:00Z",
                      "FinishedAt": "2026-11-29T11:58:59.123456789Z"},
            "HostConfig": {"Memory": memory, "NanoCpus": 500_000_000, "PidsLimit": 64}, "RestartCount": restarts}


def test_status_shows_the_applied_limits_and_an_oom_kill():
    row = status.service_row("app1", "backend", oom_info("app1-backend", True), None, "u", NOW)
    assert (row.limits, row.oom_killed_at) == (status.AppliedLimits("128m", 0.5, 64), "2026-11-29 11:58:59 UTC")
    assert row.limits.cells() == ("128m", "0.5", "64")
    unlimited = {"State": {}, "HostConfig": {"Memory": 0, "NanoCpus": 0, "PidsLimit": None}}
    assert status.applied_limits(unlimited) == status.NO_LIMITS and status.NO_LIMITS.cells() == ("-", "-", "-")
    assert status.applied_limits({"State": {}, "HostConfig": {"PidsLimit": -1}}) == status.NO_LIMITS
    assert [status.size(b) for b in (2**30, 3 * 2**30, 256 * 2**20, 1536 * 2**20)] == ["1g", "3g", "256m", "1536m"]
    assert inspect.oom_killed_at({"State": {"OOMKilled": False, "FinishedAt": "2026-11-29T11:58:59Z"}}) is None


def test_an_oom_kill_names_the_setting_to_raise(stack):
    manifest = stack.manifest
    assert status.memory_setting(manifest, "app1-backend") == "apps/app1/backend/limits/memory"
    assert status.memory_setting(manifest, "site-frontend") == "apps/site/frontend/limits/memory"
    assert status.memory_setting(manifest, "database") == "limits/database/memory"
    assert status.memory_setting(manifest, "site-backend") is None  # disabled: not a service of the stack
    assert status.memory_setting(manifest, "mailpit") is None
    found = {"app1-backend": oom_info("app1-backend", True), "api-backend": oom_info("api-backend", False),
             "redis": oom_info("redis", True, 64 * 2**20, 0), "mailpit": oom_info("mailpit", True, 0, 1)}
    kills = status.oom_kills(manifest, found)
    assert kills == [
        status.OomKill("app1-backend", "2026-11-29 11:58:59 UTC", "128m", 2, "apps/app1/backend/limits/memory",
                       "plano deploy app1 --service backend --tag 1"),
        status.OomKill("mailpit", "2026-11-29 11:58:59 UTC", None, 1, None, "plano prod up"),
        status.OomKill("redis", "2026-11-29 11:58:59 UTC", "64m", 0, "limits/redis/memory", "plano prod up"),
    ]
    assert kills[0].reason() == "app1-backend was killed at 2026-11-29 11:58:59 UTC: it went over its memory limit (128m)"
    assert kills[0].fix() == ("raise apps/app1/backend/limits/memory in plano.yml, then plano render and "
                              "plano deploy app1 --service backend --tag 1 (or find the leak: plano prod logs app1-backend)")
    assert kills[1].fix() == ("raise its mem_limit in docker-compose.custom.yml, then plano render and plano prod up "
                              "(or find the leak: plano prod logs mailpit)")
    assert kills[2].fix().startswith("raise limits/redis/memory in plano.yml, then plano render and plano prod up (")
    assert doctor.decide_memory(kills) == doctor.Finding(
        "memory", "fail", "app1-backend was killed at 2026-11-29 11:58:59 UTC: it went over its memory limit (128m) "
        "(+2 more: mailpit, redis)", kills[0].fix())
    assert doctor.decide_memory([]) == doctor.Finding("memory", "ok", "no service was killed for going over its memory limit")


def test_doctor_crash_recovery():
    always = {"acme-nginx-1": "always", "acme-database-1": "always"}
    assert doctor.decide_recovery(always, "enabled", live_restore=False) == doctor.Finding(
        "crash recovery", "ok", "2 containers with restart: always; live-restore off: an engine crash restarts them",
        'optional: "live-restore": true in /etc/docker/daemon.json, then systemctl reload docker')
    assert doctor.decide_recovery(always, None, live_restore=True) == doctor.Finding(
        "crash recovery", "ok", "2 containers with restart: always; live-restore on: an engine crash leaves them running")
    assert doctor.decide_recovery(always, "disabled", live_restore=True) == doctor.Finding(
        "crash recovery", "fail", "docker.service is disabled: after a reboot the stack stays down", "systemctl enable docker.service")
    assert doctor.decide_recovery(always, "indirect", live_restore=True).status == "fail"  # socket-activated only
    old = {f"acme-{name}-1": "unless-stopped" for name in ("redis", "nginx", "database", "certbot")} | {"acme-backup-1": "always"}
    assert doctor.decide_recovery(old, "enabled", live_restore=False) == doctor.Finding(
        "crash recovery", "warn", "restart: unless-stopped on acme-certbot-1, acme-database-1, acme-nginx-1 (+1 more): "
        "down after an engine crash", "plano prod up (recreates them with restart: always)")
    assert doctor.decide_recovery({"acme-nginx-1": ""}, None, live_restore=False).reason == \
        "restart: no on acme-nginx-1: down after an engine crash"
    assert doctor.decide_recovery({}, "enabled", live_restore=False).reason == \
        "no prod container (plano prod up starts them with restart: always)"
