"""Dockerfiles and scripts of the infra services: certbot, database, redis, backup."""

from __future__ import annotations

from plano.core import fields
from plano.core import naming as n
from plano.core.files import Tree
from plano.core.manifest import Manifest
from plano.render import sql
from plano.render.templating import generated

T = "infra/docker"


INIT_TEMPLATE = f"{T}/database/initdb/10-plano-apps.sh.j2"
REDIS_ENTRYPOINT = f"{T}/redis/plano-entrypoint.sh.j2"


def init_values(rows: list[dict[str, object]]) -> dict[str, object]:
    """The database init script's template values, for `rows` (database_rows)."""
    return {"apps": rows, "harden_sql": sql.HARDEN_SQL, "create_sql": sql.CREATE_SQL, "login_sql": sql.LOGIN_SQL,
            "schema_sql": sql.SCHEMA_SQL, "apps_by_job": n.SWARM_APPS_BY_JOB}


def redis_entrypoint_values(manifest: Manifest) -> dict[str, object]:
    return {"users": redis_users(manifest), "admin": n.REDIS_ADMIN, "admin_file": n.secret_in_container(n.REDIS_ADMIN_VAR),
            "acl_var": n.SWARM_ACL_FILE_VAR}


def database_rows(manifest: Manifest) -> list[dict[str, object]]:
    """The apps the init script provisions a role and a database for."""
    return [database_row(name) for name, app in manifest.apps.items() if app.database]


def database_row(name: str) -> dict[str, object]:
    return {"name": name, "password_file": n.secret_in_container(n.db_password_var(name)), "alt": n.db_logins(name)[1]}


def redis_users(manifest: Manifest) -> list[dict[str, str]]:
    return [
        {"name": n.redis_user(name), "password_file": n.secret_in_container(n.redis_password_var(name)), "rules": n.redis_rules(name)}
        for name, app in manifest.apps.items()
        if app.redis
    ]


REDIS_OWN = 32 * 1024 * 1024  # at least, of its memory limit, for Redis itself and its clients' buffers


def redis_maxmemory(manifest: Manifest) -> int:
    """Redis's maxmemory in bytes: its limit less a quarter, and less at least 32 MiB.
    Measured in a 64m container: Redis's RSS is its data plus ~14 MB (code, allocator),
    and a 4 MiB write holds another copy or two while it is read."""
    limit = fields.memory_bytes(manifest.limits.redis.memory)
    return max(limit - max(limit // 4, REDIS_OWN), limit // 4)


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    del env_values
    images = manifest.images
    tree: Tree = {}
    tree |= generated("docker/certbot/Dockerfile", f"{T}/certbot/Dockerfile.j2", name=manifest.name, image=images.certbot)
    tree |= generated("docker/certbot/scripts/renew-loop.sh", f"{T}/certbot/scripts/renew-loop.sh.j2", mode=0o755,
                      webroot=n.WEBROOT, deploy_hook=n.CERTBOT_DEPLOY_HOOK)
    tree |= generated("docker/certbot/scripts/deploy-hook.sh", f"{T}/certbot/scripts/deploy-hook.sh", mode=0o755)
    tree |= generated("docker/database/Dockerfile", f"{T}/database/Dockerfile.j2", name=manifest.name, image=images.postgres)
    tree |= generated("docker/database/initdb/10-plano-apps.sh", INIT_TEMPLATE, mode=0o755, **init_values(database_rows(manifest)))
    tree |= generated("docker/redis/Dockerfile", f"{T}/redis/Dockerfile.j2", name=manifest.name, image=images.redis)
    tree |= generated("docker/redis/redis.conf", f"{T}/redis/redis.conf.j2", maxmemory=redis_maxmemory(manifest))
    tree |= generated("docker/redis/plano-entrypoint.sh", REDIS_ENTRYPOINT, mode=0o755, **redis_entrypoint_values(manifest))
    tree |= generated("docker/shared-scripts/backup.sh", f"{T}/shared-scripts/backup.sh.j2", mode=0o755, project=manifest.name)
    tree |= generated("docker/backup/Dockerfile", f"{T}/backup/Dockerfile.j2", name=manifest.name, image=images.postgres)
    for script in ("plano-backup.sh", "backup-loop.sh", "backup-health.sh"):
        tree |= generated(f"docker/backup/scripts/{script}", f"{T}/backup/scripts/{script}", mode=0o755)
    return tree
