"""On a swarm (`target: swarm`): each app's Postgres role and database and its Redis
user, made by two jobs on the data node from the apps' own Swarm secrets. Postgres and
Redis themselves mount only their admin password there (render/stack.py), so a new app
password is no change to either: it never restarts them (both update stop-first, and
every app would lose its database or Redis meanwhile).

- database: the same SQL as the init script on one server (render/sql.py: role,
  database, REVOKEs), run against the database service as its admin; idempotent. The
  password goes to the login that .env.prod's URL names (one of naming.db_logins): the
  other keeps its own while tasks still use it, and `finish` retires it;
- redis: ACL SETUSER of each app's user (its rules from naming.redis_rules) with the
  password its secret holds, then ACL SAVE into data/redis/ on the data node, which
  Redis reads back whenever it starts again. `keep_old` adds the password beside the
  user's others (while tasks with the old one still log in); `finish` leaves it alone.

`plano swarm up` runs them (ops/swarm.py): before it deploys, when Postgres and Redis
already run (new passwords work before any task uses them), else as soon as they run;
and `finish` once every service converged (no task uses an old password any more).
No password is on a command line: the jobs read them from their secret files.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from plano.core import naming as n
from plano.core import secrets
from plano.core.manifest import Manifest
from plano.core.session import Session
from plano.ops import job
from plano.render import sql

PSQL = "psql -v ON_ERROR_STOP=1 --no-psqlrc --username postgres"
SHELL = ["sh", "-c"]


def as_admin() -> str:
    """The job's shell: psql reaches the database service as its admin (the password from
    its secret file, in the job's environment: on no command line)."""
    return (f'set -eu; PGPASSWORD="$(cat {n.secret_in_container("POSTGRES_PASSWORD")})"; '
            "export PGPASSWORD PGHOST=database\n")


def psql(database: str, text: str, **values: str) -> str:
    """One psql run on a quoted here-document (nothing in it is expanded by the shell)."""
    flags = "".join(f" -v {key}={shlex.quote(value)}" for key, value in values.items())
    return f"{PSQL} --dbname {shlex.quote(database)}{flags} <<'SQL'\n{text}SQL\n"


def database_script(manifest: Manifest, env: dict[str, str]) -> str:
    """Every app's role, database and schema rules, and the password of its login now."""
    script = as_admin() + psql("postgres", sql.HARDEN_SQL)
    for app, entry in manifest.apps.items():
        if entry.database:
            password = n.secret_in_container(n.db_password_var(app))
            script += psql("postgres", "\\set password `cat :'password_file'`\n" + sql.CREATE_SQL + sql.LOGIN_SQL,
                           app=n.db_role(app), login=n.db_login(app, env), password_file=password)
            script += psql(n.db_name(app), sql.SCHEMA_SQL, app=n.db_role(app))
    return script


def retire_script(manifest: Manifest, env: dict[str, str]) -> str:
    """The logins the URLs do not name log in no more."""
    return as_admin() + "".join(psql("postgres", sql.RETIRE_SQL, login=n.db_other_login(app, env))
                                for app, entry in manifest.apps.items() if entry.database)


def redis_script(manifest: Manifest, keep_old: bool) -> str:
    """ACL SETUSER for each app with Redis, then ACL SAVE, on redis-cli's stdin (the
    passwords from the secret files, through the shell's own printf: on no command
    line); anything Redis answers but OK is an error."""
    reset = "" if keep_old else "resetpass "
    lines = [f'printf \'%s\\n\' "ACL SETUSER {n.redis_user(app)} on {reset}>$(cat {n.secret_in_container(n.redis_password_var(app))})'
             f' {n.redis_rules(app)}"' for app, entry in manifest.apps.items() if entry.redis]
    return (f'set -eu; REDISCLI_AUTH="$(cat {n.secret_in_container(n.REDIS_ADMIN_VAR)})"; export REDISCLI_AUTH; '
            f"said=$({{ {'; '.join(lines)}; echo 'ACL SAVE'; }} | redis-cli -h redis --no-auth-warning --user {n.REDIS_ADMIN}); "
            "bad=$(printf '%s\\n' \"$said\" | grep -vx OK || true); "
            "[ -z \"$bad\" ] || { echo \"plano: redis answered: $bad\" >&2; exit 1; }; "
            "echo \"plano: redis users saved\"")


def database_job(image: str, script: str, what: str) -> job.Job:
    return job.Job("database", image, [script], what, entrypoint=SHELL, timeout=300, every_secret=True)


def redis_job(manifest: Manifest, image: str, keep_old: bool) -> job.Job:
    return job.Job("redis", image, [redis_script(manifest, keep_old)], "making the apps' Redis users",
                   entrypoint=SHELL, timeout=300, every_secret=True)


def image(manifest: Manifest, service: str, tags: dict[str, str]) -> str:
    return f"{n.swarm_infra_image(manifest, service)}:{tags[service]}"


def has(manifest: Manifest, what: str) -> bool:
    return any(getattr(app, what) for app in manifest.apps.values())


def provision(session: Session, tags: dict[str, str], keep_old: bool = False) -> None:
    """Every app's role and database, and its Redis user, with the passwords of .env.prod."""
    run_jobs(session, tags, database_script, "making the apps' database roles", keep_old)


def finish(session: Session, tags: dict[str, str]) -> None:
    """Once no task uses an old password: the other logins retired, Redis's users with
    their current password alone."""
    run_jobs(session, tags, retire_script, "retiring the apps' unused database logins", keep_old=False)


def run_jobs(session: Session, tags: dict[str, str], script: Callable[[Manifest, dict[str, str]], str], what: str,
             keep_old: bool) -> None:
    """The database job (`script`, for the logins .env.prod names) where an app has a
    database, then the Redis job where one has Redis."""
    manifest, env = session.manifest, secrets.read_env(session.root / n.ENV_PROD)
    if has(manifest, "database"):
        job.run(session, database_job(image(manifest, "database", tags), script(manifest, env), what))
    if has(manifest, "redis"):
        job.run(session, redis_job(manifest, image(manifest, "redis", tags), keep_old))
