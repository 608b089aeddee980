"""Infra secrets are files, never environment values, and the services that need no
root run without it: the compose data, the scripts, and the files plano writes."""

import os
import stat

import pytest

from plano.core import manifest as mf
from plano.core.mode import Mode
from plano.ops import infra
from plano.render import compose
from tests.conftest import manifest_text

CUSTOM = manifest_text().replace("apps: {}\n", """apps:
  shop:
    domains: [shop.example.com]
    redis: false
  blog:
    domains: [blog.example.org]
    database: false
""")


@pytest.fixture
def base():
    return compose.base(mf.load_text(CUSTOM))["services"]


def test_database_reads_its_passwords_from_secret_files(base):
    db = base["database"]
    assert db["environment"] == {"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
                                 "POSTGRES_PASSWORD_FILE": "/run/secrets/POSTGRES_PASSWORD"}
    assert db["secrets"] == [{"source": "database-postgres-password", "target": "POSTGRES_PASSWORD"},
                             {"source": "database-shop-db-password", "target": "SHOP_DB_PASSWORD"}]


def test_redis_builds_its_acl_from_secret_files(base):
    assert "environment" not in base["redis"]
    assert base["redis"]["user"] == "redis"
    assert base["redis"]["secrets"] == [{"source": "redis-redis-admin-password", "target": "REDIS_ADMIN_PASSWORD"},
                                        {"source": "redis-blog-redis-password", "target": "BLOG_REDIS_PASSWORD"}]


def test_backup_runs_as_the_apps_user_with_a_passfile_and_no_capability(base):
    backup = base["backup"]
    assert backup["user"] == "1000:1000"
    assert {k: backup["environment"][k] for k in ("PGHOST", "PGUSER", "PGPASSFILE", "POSTGRES_PASSWORD_FILE")} == {
        "PGHOST": "database", "PGUSER": "postgres", "PGPASSFILE": "/tmp/plano-pgpass",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/POSTGRES_PASSWORD"}
    assert "PGPASSWORD" not in backup["environment"]
    assert backup["secrets"] == [{"source": "backup-postgres-password", "target": "POSTGRES_PASSWORD"}]
    assert (backup["cap_drop"], "cap_add" in backup, backup["read_only"]) == (["ALL"], False, True)


def test_certbot_runs_as_its_own_user_and_nginx_reads_keys_through_its_group(base):
    assert (base["certbot"]["user"], base["certbot"]["cap_drop"], "cap_add" in base["certbot"]) == ("1001:1001", ["ALL"], False)
    assert base["certbot"]["tmpfs"] == ["/tmp", "/var/lib/letsencrypt:uid=1001,gid=1001"]
    assert "group_add" not in base["nginx"]  # the nginx image lists root in group 1001 (a Swarm service has no group_add)


def test_no_infra_service_has_a_secret_in_its_environment(base):
    for name in ("database", "redis", "backup", "nginx", "certbot"):
        assert "PASSWORD}" not in str(base[name].get("environment", {})), name
    assert "${SHOP_DB_PASSWORD:?" in base["shop-backend"]["environment"]["DATABASE_URL"]


def test_secret_sources_per_mode():
    manifest = mf.load_text(CUSTOM)
    assert compose.base(manifest)["secrets"] == {
        "database-postgres-password": {"file": "./data/secrets/database/POSTGRES_PASSWORD"},
        "database-shop-db-password": {"file": "./data/secrets/database/SHOP_DB_PASSWORD"},
        "redis-redis-admin-password": {"file": "./data/secrets/redis/REDIS_ADMIN_PASSWORD"},
        "redis-blog-redis-password": {"file": "./data/secrets/redis/BLOG_REDIS_PASSWORD"},
        "backup-postgres-password": {"file": "./data/secrets/backup/POSTGRES_PASSWORD"},
    }
    assert compose.dev(manifest)["secrets"]["redis-blog-redis-password"] == {"file": "./data/dev/secrets/redis/BLOG_REDIS_PASSWORD"}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_secret_files_are_written_per_service_0400_and_owned_by_its_user(tmp_path):
    manifest = mf.load_text(CUSTOM)
    (tmp_path / ".env.prod").write_text("POSTGRES_PASSWORD=pg\nSHOP_DB_PASSWORD=shop\nBLOG_REDIS_PASSWORD=blog\n")
    infra.write_secret_files(tmp_path, manifest)
    found = {p.relative_to(tmp_path).as_posix(): (p.read_text(), stat.S_IMODE(p.stat().st_mode), p.stat().st_uid)
             for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert found == {
        "data/secrets/database/POSTGRES_PASSWORD": ("pg", 0o400, 999),
        "data/secrets/database/SHOP_DB_PASSWORD": ("shop", 0o400, 999),
        "data/secrets/redis/BLOG_REDIS_PASSWORD": ("blog", 0o400, 999),
        "data/secrets/backup/POSTGRES_PASSWORD": ("pg", 0o400, 1000),
    }
    assert stat.S_IMODE((tmp_path / "data/secrets").stat().st_mode) == 0o700
    (tmp_path / ".env.prod").write_text("POSTGRES_PASSWORD=pg2\nSHOP_DB_PASSWORD=shop\nBLOG_REDIS_PASSWORD=blog\n")
    infra.write_secret_files(tmp_path, manifest)
    assert (tmp_path / "data/secrets/backup/POSTGRES_PASSWORD").read_text() == "pg2"
    assert not list((tmp_path / "data").rglob("*.plano-tmp"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_owned_data_of_an_older_plano_goes_to_the_services_users(tmp_path):
    for mode in Mode:
        data = tmp_path / mode.data_root
        (data / "certs/plano/app1").mkdir(parents=True)
        (data / "certs/plano/app1/privkey.pem").write_text("key")
        (data / "certs/plano/app1/privkey.pem").chmod(0o600)
        (data / "certs/live").mkdir()
        (data / "certs/live/app1").symlink_to("../plano/app1")
        (data / "backups/20260101T000000Z").mkdir(parents=True)
        (data / "backups/.status").write_text("ok\n")
        (data / "uploads/app1").mkdir(parents=True)
        (data / "database").mkdir()
    infra.own_data(tmp_path)
    owners = {p.relative_to(tmp_path).as_posix(): p.lstat().st_uid for p in tmp_path.rglob("*")}
    assert owners["data/certs/plano/app1/privkey.pem"] == 1001 and owners["data/dev/certs/live/app1"] == 1001
    assert owners["data/backups/.status"] == 1000 and owners["data/dev/backups/20260101T000000Z"] == 1000
    assert owners["data/uploads"] == 1000 and owners["data/uploads/app1"] == 0  # the apps' own folders: not plano's
    assert owners["data/database"] == 0  # the database's entrypoint owns its folder
    assert stat.S_IMODE((tmp_path / "data/certs/plano/app1/privkey.pem").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "data/dev/certs/plano").stat().st_mode) == 0o775
