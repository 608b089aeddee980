"""`plano secrets rotate APP`: new database and Redis passwords for one app, in the
running prod stack, with no failed request.

  1. two new passwords (CSPRNG);
  2. Redis: the app's user gets the new password beside the old one (ACL SETUSER >new),
     so both log in while containers change;
  3. Postgres: ALTER ROLE ... PASSWORD; the connections already open (the app's pool)
     keep working, only new logins need it;
  4. .env.prod gets the new values (and the infra's secret files with them);
  5. a rolling restart of the services that use them, through the deploy's switch (same
     tag, no release command): new containers start with the new URLs and take the
     traffic once healthy, the old ones drain;
  6. Redis: the old password is removed (ACL SETUSER <old).
Should 3, 4 or 5 fail, the old passwords are put back (ALTER ROLE, .env.prod, Redis) and
the old containers never stopped serving. Nothing is printed or passed on a command line
with a password in it: SQL and Redis commands go on stdin, dry runs show them masked.
"""

from __future__ import annotations

from dataclasses import dataclass

from plano.core import naming as n
from plano.core import secrets
from plano.core.errors import PlanoError, UsageError
from plano.core.manifest import App, require_app
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine.stack import Stack, exec_argv, open_stack, require_engine
from plano.ops import db
from plano.ops.deploy import Deployer, Record, Target, current_tag

ALTER_SQL = "SELECT format('ALTER ROLE %I PASSWORD %L', :'app', :'password') \\gexec\n"


class RotateFailed(PlanoError):
    pass


@dataclass(frozen=True)
class Rotated:
    app: str
    database: bool
    redis: bool
    restarted: list[Record]
    reencrypt: str = ""  # what became of .env.prod.enc, when there is one


def redis_admin_argv(stack: Stack) -> list[str]:
    """redis-cli in the redis service as plano's admin user; the password is read from its
    secret file inside the container, the commands come on stdin."""
    script = (f'REDISCLI_AUTH="$(cat {n.secret_in_container(n.REDIS_ADMIN_VAR)})" '
              f"exec redis-cli --no-auth-warning --user {n.REDIS_ADMIN}")
    return exec_argv(stack, "redis", ("sh", "-c", script), tty=False)


def users_of(entry: App) -> list[str]:
    """The app's services whose environment holds its database or Redis password: the
    backend (DATABASE_URL, REDIS_URL), and a service whose env: maps a password or URL."""
    return [role for role, svc in entry.services().items()
            if role == "backend" and (entry.database or entry.redis) or any(ref.endswith((".password", ".url")) for ref in svc.env.values())]


class Rotation:
    def __init__(self, session: Session, stack: Stack, app: str) -> None:
        self.session, self.stack, self.app = session, stack, app
        self.entry = require_app(stack.manifest, app)
        self.env_path = stack.root / n.ENV_PROD
        self.old = secrets.read_env(self.env_path)

    def redis(self, command: str, shown: str) -> None:
        argv = redis_admin_argv(self.stack)
        got = self.session.act(argv, stdin=command + "\n", shown=f"{' '.join(argv)} <<< {shown!r}", timeout=60)
        if not got.ok or (not self.session.dry_run and got.out.strip() != "OK"):
            raise RotateFailed(f"redis: {shown} failed: {(got.out.strip() or got.last_line)[:200]}")

    def set_redis(self, add: str | None = None, remove: str | None = None) -> None:
        user = n.redis_user(self.app)
        rule = " ".join(([f">{add}"] if add else []) + ([f"<{remove}"] if remove else []))
        self.redis(f"ACL SETUSER {user} {rule}", f"ACL SETUSER {user} " + " ".join(
            ([">*****"] if add else []) + (["<*****"] if remove else [])))

    def set_database(self, password: str) -> None:
        """ALTER ROLE with the SCRAM verifier, not the password (secrets.scram_verifier)."""
        argv = db.psql_in_database(self.stack)
        verifier = secrets.scram_verifier(password)
        script = db.with_vars(ALTER_SQL, app=n.db_role(self.app), password=verifier)
        got = self.session.act(argv, stdin=script, shown=db.shown_script(argv, script, verifier), timeout=60)
        if not got.ok:
            raise RotateFailed(f"ALTER ROLE {n.db_role(self.app)} failed: {got.last_line}")

    def write_env(self, values: dict[str, str]) -> None:
        text = self.env_path.read_text()
        for key, value in values.items():
            text = secrets.set_env_value(text, key, value)
        self.session.write(self.env_path, text, 0o600)
        if not self.session.dry_run:  # the infra's own copies (data/secrets/), from the env file
            from plano.ops.infra import write_secret_files

            write_secret_files(self.stack.root, self.stack.manifest)

    def restart(self, records: list[Record]) -> None:
        """One service after the other, each through the deploy's switch with its own tag."""
        deployer = Deployer(self.session, self.stack, releases=False)
        for role in users_of(self.entry):
            target = Target(self.app, role, "latest")
            records += deployer.deploy([Target(self.app, role, current_tag(self.stack.root, target))], action="rotate")

    def run(self) -> Rotated:
        db_var, redis_var = n.db_password_var(self.app), n.redis_password_var(self.app)
        new = {var: secrets.new_secret() for var, wanted in ((db_var, self.entry.database), (redis_var, self.entry.redis)) if wanted}
        old = {var: self.old.get(var, "") for var in new}
        if any(not value for value in old.values()):
            raise UsageError(f"{n.ENV_PROD}: {', '.join(var for var, value in old.items() if not value)} missing; "
                             "run plano render, then plano prod up")
        if redis_var in new:
            self.set_redis(add=new[redis_var])
        records: list[Record] = []
        try:
            if db_var in new:
                self.set_database(new[db_var])
            self.write_env(new)
            self.restart(records)
        except BaseException as exc:
            if records:  # a service already runs with the new passwords: they stay
                raise RotateFailed(f"{', '.join(r.service for r in records)} run with the new passwords, the rest failed "
                                   f"({str(exc).splitlines()[0]}); run plano secrets rotate {self.app} again") from exc
            self.session.out.note(f"{self.app}: rotation failed; putting the old passwords back")
            self.undo(old, new)
            raise
        if redis_var in new:
            self.set_redis(remove=old[redis_var])
        return Rotated(self.app, db_var in new, redis_var in new, records, self.reencrypt())

    def reencrypt(self) -> str:
        """.env.prod.enc follows .env.prod, where this machine holds the key."""
        from plano.ops import secrets as encrypted

        if self.session.dry_run or not (self.stack.root / n.encrypted(n.ENV_PROD)).is_file():
            return ""
        try:
            encrypted.encrypt(self.session, n.ENV_PROD)
        except PlanoError as exc:
            return (f"{n.encrypted(n.ENV_PROD)} still holds the old passwords ({str(exc).splitlines()[0]}): "
                    "run plano secrets encrypt where the key is, and commit it")
        return f"re-encrypted {n.encrypted(n.ENV_PROD)}: commit it"

    def undo(self, old: dict[str, str], new: dict[str, str]) -> None:
        """The old passwords, everywhere: each step is tried, the first error kept for the end."""
        db_var, redis_var = n.db_password_var(self.app), n.redis_password_var(self.app)
        steps = []
        if db_var in old:
            steps.append(lambda: self.set_database(old[db_var]))
        steps.append(lambda: self.write_env(old))
        if redis_var in new:
            steps.append(lambda: self.set_redis(remove=new[redis_var]))
        for step in steps:
            try:
                step()
            except PlanoError as exc:
                self.session.out.note(f"{self.app}: could not undo a step: {exc}")


def rotate(session: Session, app: str) -> Rotated:
    """APP's database and Redis passwords, changed in the running prod stack."""
    session = session.with_mode(Mode.PROD)
    entry = require_app(session.manifest, app, "APP " + app)
    if not (entry.database or entry.redis):
        raise UsageError(f"APP {app}: has neither a database nor Redis; nothing to rotate")
    if session.manifest.target == "swarm":
        # Swarm secrets cannot change: new passwords are new secrets, and Postgres and Redis
        # would restart to read theirs (a stop-first update: every app's requests fail meanwhile).
        raise PlanoError("plano secrets rotate does not run on a swarm yet: Postgres and Redis would restart to read "
                         "new Swarm secrets, and every app's requests fail meanwhile")
    stack = open_stack(session)
    require_engine(session.runner)
    return Rotation(session, stack, app).run()
