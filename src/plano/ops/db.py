"""Per-app Postgres roles and databases: the SQL (shared with the init script) and
the command lines that apply it to the running database service."""

from __future__ import annotations

import re

from plano.core import naming as n
from plano.core.errors import ManifestError
from plano.render.sql import CREATE_SQL, HARDEN_SQL, SCHEMA_SQL

DROP_SQL = """\
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'app') \\gexec
SELECT format('DROP ROLE IF EXISTS %I', :'app') \\gexec
"""

LIST_SQL = """\
SELECT d.datname, pg_get_userbyid(d.datdba), pg_database_size(d.datname)
FROM pg_database d WHERE NOT d.datistemplate AND d.datname <> 'postgres' ORDER BY 1;
"""

SAFE_PASSWORD = re.compile(r"^[A-Za-z0-9._~-]{16,}$")


def psql_argv(database: str = "postgres", user: str = "postgres", *extra: str) -> list[str]:
    """psql inside the database service, over its local socket (trusted there)."""
    return ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-U", user, "-d", database, *extra]


def with_vars(sql: str, **values: str) -> str:
    """Set psql variables on stdin, so secrets never appear in a process list."""
    sets = "".join(f"\\set {key} '{value}'\n" for key, value in values.items())
    return sets + sql


def checked_password(app: str, password: str | None, env_file: str) -> str:
    var = n.db_password_var(app)
    if not password:
        raise ManifestError(env_file, f"{var} is missing; run 'plano render' to generate it")
    if not SAFE_PASSWORD.match(password):
        raise ManifestError(f"{env_file}/{var}", "use at least 16 characters from A-Z a-z 0-9 . _ ~ - (plano's generated secrets do)")
    return password


def create_scripts(app: str, password: str) -> list[tuple[str, str]]:
    """(database to connect to, stdin script) for `db create`, in order."""
    return [
        ("postgres", with_vars(HARDEN_SQL + CREATE_SQL, app=app, password=password)),
        (n.db_name(app), with_vars(SCHEMA_SQL, app=app)),
    ]


def parse_list(output: str) -> list[dict[str, object]]:
    rows = []
    for line in output.strip().splitlines():
        name, owner, size = line.split("|")
        rows.append({"database": name, "owner": owner, "size_bytes": int(size)})
    return rows
