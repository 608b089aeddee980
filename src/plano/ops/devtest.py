"""`plano dev test`: an app's own tests inside its dev container (the seed's "tests
on the host and in the container"), against a throwaway database of their own.

The service's `test` command (plano.yml, default `npm test`) runs with `compose exec`
when the service runs, else in a one-off `compose run --rm` container. When the app
has a database, `<app>_test` is created fresh (owned by the app's role) before the
run and dropped after it; DATABASE_URL points there, never at the app's dev data.
"""

from __future__ import annotations

from plano.core import naming as n
from plano.core import secrets
from plano.core.errors import PlanoError
from plano.core.manifest import require_app, require_role
from plano.core.session import Session
from plano.engine.stack import Stack, open_stack, require_engine, running_services
from plano.ops import db
from plano.ops.db import with_vars

CREATE_TEST_DB_SQL = """\
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'app') \\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \\gexec
"""

DROP_TEST_DB_SQL = """\
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \\gexec
"""


def test_db(app: str) -> str:
    return f"{n.db_name(app)}_test"


def test_db_url(app: str, password: str) -> str:
    return f"postgres://{n.db_role(app)}:{password}@database:5432/{test_db(app)}"


def role_of(stack: Stack, app: str, role: str | None) -> str:
    if role is not None:
        return require_role(stack.manifest, app, role)
    services = require_app(stack.manifest, app).services()
    return "backend" if "backend" in services else next(iter(services))


def create_db_script(app: str) -> str:
    return with_vars(CREATE_TEST_DB_SQL, db=test_db(app), app=n.db_role(app))


def drop_db_script(app: str) -> str:
    return with_vars(DROP_TEST_DB_SQL, db=test_db(app))


def test_argv(stack: Stack, app: str, role: str, running: bool, args: tuple[str, ...], with_db: bool) -> list[str]:
    """DATABASE_URL is passed by name: its value (a password) comes from plano's
    environment, never from the command line."""
    command = [*stack.manifest.apps[app].services()[role].test, *args]
    env = ["-e", "DATABASE_URL"] if with_db else []
    service = n.service(app, role)
    if running:
        return stack.argv("exec", "-T", *env, service, *command)
    return stack.argv("run", "--rm", "-T", *env, service, *command)


def run_tests(session: Session, app: str, role: str | None, args: tuple[str, ...]) -> int:
    """The app's tests in its dev container (exec when it runs, else a one-off run),
    with a fresh APP_test database when the app has one, dropped whatever the result.
    Returns the tests' exit code."""
    st = open_stack(session)
    role = role_of(st, app, role)
    require_engine(session.runner)
    with_db = st.manifest.apps[app].database
    running = running_services(st, session.runner)
    argv = test_argv(st, app, role, n.service(app, role) in running, args, with_db)
    env = None
    psql = db.psql_in_database(st, "postgres")
    if with_db:
        password = db.checked_password(app, secrets.read_env(st.root / n.ENV_DEV).get(n.db_password_var(app)), n.ENV_DEV)
        if "database" not in running and session.act_stream(st.argv("up", "-d", "--wait", "database")):
            raise PlanoError("the dev database did not start; see plano dev logs database")
        if session.act_stream(psql, stdin=create_db_script(app), shown=db.shown_script(psql, create_db_script(app))):
            raise PlanoError(f"could not create the test database {test_db(app)}; is {app}'s role provisioned? (plano db create {app})")
        env = {"DATABASE_URL": test_db_url(app, password)}
        session.out.note(f"{app}: tests get the throwaway database {test_db(app)}")
    try:
        return session.act_stream(argv, env=env)
    finally:
        if with_db:  # throwaway: dropped whatever the result
            session.act_stream(psql, stdin=drop_db_script(app), shown=db.shown_script(psql, drop_db_script(app)))
