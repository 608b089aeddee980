"""Per-app Postgres roles and databases: the SQL (shared with the init script) and
the command lines that apply it to the running database service."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from plano.core import fields, secrets
from plano.core import naming as n
from plano.core.errors import ManifestError, PlanoError, UsageError
from plano.core.manifest import require_app
from plano.core.session import Session
from plano.engine.stack import Stack, exec_argv, open_stack
from plano.render.sql import CREATE_SQL, HARDEN_SQL, LOGIN_SQL, SCHEMA_SQL

DROP_SQL = """\
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'app') \\gexec
SELECT format('DROP ROLE IF EXISTS %I', :'alt') \\gexec
SELECT format('DROP ROLE IF EXISTS %I', :'app') \\gexec
"""

LIST_SQL = """\
SELECT d.datname, pg_get_userbyid(d.datdba), pg_database_size(d.datname)
FROM pg_database d WHERE NOT d.datistemplate AND d.datname <> 'postgres' ORDER BY 1;
"""

SAFE_PASSWORD = re.compile(r"[A-Za-z0-9._~-]{16,}", re.ASCII)


def psql_argv(database: str = "postgres", user: str = "postgres", *extra: str) -> list[str]:
    """psql inside the database service, over its local socket (trusted there)."""
    return ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-U", user, "-d", database, *extra]


def psql_quote(value: str) -> str:
    """A psql meta-command argument in single quotes: quotes doubled, backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def with_vars(sql: str, **values: str) -> str:
    """Set psql variables on stdin, so secrets never appear in a process list."""
    sets = "".join(f"\\set {key} {psql_quote(value)}\n" for key, value in values.items())
    return sets + sql


def checked_password(app: str, password: str | None, env_file: str) -> str:
    var = n.db_password_var(app)
    if not password:
        raise ManifestError(env_file, f"{var} is missing; run 'plano render' to generate it")
    if not SAFE_PASSWORD.fullmatch(password):
        raise ManifestError(f"{env_file}/{var}", "use at least 16 characters from A-Z a-z 0-9 . _ ~ - (plano's generated secrets do)")
    return password


def create_scripts(app: str, password: str) -> list[tuple[str, str]]:
    """(database to connect to, stdin script) for `db create`, in order: both of the
    app's logins get the password, as in the init script (its URL names one of them)."""
    own, alt = n.db_logins(app)
    return [
        ("postgres", with_vars(HARDEN_SQL + CREATE_SQL + LOGIN_SQL, app=app, password=password, login=own)
         + with_vars(LOGIN_SQL, login=alt)),
        (n.db_name(app), with_vars(SCHEMA_SQL, app=app)),
    ]


@dataclass(frozen=True)
class DatabaseRow:
    database: str
    owner: str
    size_bytes: int


def parse_list(output: str) -> list[DatabaseRow]:
    rows = []
    for line in output.strip().splitlines():
        name, owner, size = line.split("|")
        rows.append(DatabaseRow(name, owner, int(size)))
    return rows


# ---------------------------------------------------------------- the operations


def psql_in_database(stack: Stack, database: str = "postgres", user: str = "postgres", *extra: str) -> list[str]:
    """psql in the running database service, over its local socket."""
    return exec_argv(stack, "database", tuple(psql_argv(database, user, *extra)), tty=False)


def shown_script(argv: list[str], script: str, secret: str | None = None) -> str:
    """How a dry run shows psql with its stdin script (a secret masked)."""
    shown = script.replace(secret, "********") if secret else script
    return shlex.join(argv) + " <<'SQL'\n" + shown + "SQL"


def app_with_database(session: Session, app: str) -> None:
    if not require_app(session.manifest, app).database:
        raise UsageError(f"apps/{app}: has no database (database: false in plano.yml)")


def create(session: Session, app: str) -> int:
    """APP's role and database (idempotent), with nothing granted to PUBLIC."""
    app_with_database(session, app)
    st = open_stack(session)
    env_name = st.mode.env_file
    password = checked_password(app, secrets.read_env(st.root / env_name).get(n.db_password_var(app)), env_name)
    for database, script in create_scripts(app, password):
        argv = psql_in_database(st, database)
        code = session.act_stream(argv, stdin=script, shown=shown_script(argv, script, password))
        if code:
            return code
    return 0


def check_drop(app: str) -> str:
    """APP may be an app already removed from plano.yml, but it is an app's name."""
    return fields.given("APP", fields.app_name, app)


def drop(session: Session, app: str) -> int:
    """APP's database and role: deleted."""
    check_drop(app)
    st = open_stack(session)
    argv = psql_in_database(st)
    script = with_vars(DROP_SQL, app=app, alt=n.db_logins(app)[1])
    return session.act_stream(argv, stdin=script, shown=shown_script(argv, script))


def listing(session: Session) -> list[DatabaseRow]:
    st = open_stack(session)
    result = session.query(psql_in_database(st, "postgres", "postgres", "-At", "-c", LIST_SQL))
    if not result.ok:
        raise PlanoError(f"db list failed: {result.last_line}; is the {st.mode} stack up? ('plano {st.mode} up')")
    return parse_list(result.out)


def psql(session: Session, app: str, tty: bool) -> int:
    """psql as APP's own role in APP's database, on the terminal."""
    app_with_database(session, app)
    st = open_stack(session)
    return session.act_stream(exec_argv(st, "database", ("psql", "-U", n.db_role(app), "-d", n.db_name(app)), tty))
