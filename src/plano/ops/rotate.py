"""`plano secrets rotate APP`: new database and Redis passwords for one app, in the
running prod stack, with no failed request.

  1. two new passwords (CSPRNG);
  2. Redis: the app's user gets the new password beside the old one (ACL SETUSER >new),
     so both log in while containers change;
  3. Postgres: the app's other login role (naming.db_logins; render/sql.py LOGIN_SQL)
     gets the new password; the one in use keeps the old, so running containers still
     open connections (a pool grows, or replaces an idle one) while others change;
  4. .env.prod gets the new values, the URL the other login (and the infra's secret
     files with them);
  5. a rolling restart of the services that use them, through the deploy's switch (same
     tag, no release command): new containers start with the new URLs and take the
     traffic once healthy, the old ones drain;
  6. the old login logs in no more (PASSWORD NULL), and Redis drops the old password
     (ACL SETUSER <old).
Should 3, 4 or 5 fail, the old passwords are put back (.env.prod, Redis; the new login
retired) and the old containers never stopped serving. Nothing is printed or passed on a command line
with a password in it: SQL and Redis commands go on stdin, dry runs show them masked.

On a swarm (`on_swarm`), .env.prod gets the new passwords and `plano swarm up` does the
rest the same way: its provisioning jobs (ops/provision.py) do 2 and 3, Swarm's own
start-first update does 5, and the last two jobs do 6; Postgres and Redis mount no app
password there, so they never restart.
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
from plano.ops.deploy import (
    Deployer,
    Record,
    Target,
    append_log,
    now,
    recorded_tag,
    who,
)
from plano.render.sql import LOGIN_SQL, RETIRE_SQL


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
        self.env_text = (stack.root / n.ENV_PROD).read_text()  # as it was, for an undo

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

    def set_database(self, login: str, password: str) -> None:
        """The login's password (LOGIN_SQL), as its SCRAM verifier (secrets.scram_verifier)."""
        argv = db.psql_in_database(self.stack)
        verifier = secrets.scram_verifier(password)
        script = db.with_vars(LOGIN_SQL, app=n.db_role(self.app), login=login, password=verifier)
        got = self.session.act(argv, stdin=script, shown=db.shown_script(argv, script, verifier), timeout=60)
        if not got.ok:
            raise RotateFailed(f"ALTER ROLE {login} failed: {got.last_line}")

    def retire(self, login: str) -> None:
        """The login no task uses any more logs in no more."""
        argv = db.psql_in_database(self.stack)
        script = db.with_vars(RETIRE_SQL, login=login)
        got = self.session.act(argv, stdin=script, shown=db.shown_script(argv, script), timeout=60)
        if not got.ok:
            raise RotateFailed(f"ALTER ROLE {login} PASSWORD NULL failed: {got.last_line}")

    def write_env(self, values: dict[str, str]) -> None:
        write_env(self.session, values)

    def put_back_env(self) -> None:
        write_env(self.session, {}, self.env_text)

    def restart(self, records: list[Record]) -> None:
        """One service after the other, each through the deploy's switch with its own tag."""
        deployer = Deployer(self.session, self.stack, releases=False)
        for role in users_of(self.entry):
            records += deployer.deploy([Target(self.app, role, recorded_tag(self.stack.root, self.app, role))], action="rotate")

    def run(self) -> Rotated:
        db_var, redis_var, user_var = n.db_password_var(self.app), n.redis_password_var(self.app), n.db_user_var(self.app)
        new, old = new_passwords(self.session, self.app, self.entry)
        if redis_var in new:
            self.set_redis(add=new[redis_var])
        records: list[Record] = []
        try:
            if db_var in new:
                self.set_database(new[user_var], new[db_var])
            self.write_env(new)
            self.restart(records)
        except BaseException as exc:
            if records:  # a service already runs with the new passwords: they stay
                raise RotateFailed(f"{', '.join(r.service for r in records)} run with the new passwords, the rest failed "
                                   f"({str(exc).splitlines()[0]}); run plano secrets rotate {self.app} again") from exc
            self.session.out.note(f"{self.app}: rotation failed; putting the old passwords back")
            self.undo(old, new)
            raise
        if db_var in new:
            self.retire(old[user_var])
        if redis_var in new:
            self.set_redis(remove=old[redis_var])
        return Rotated(self.app, db_var in new, redis_var in new, records, reencrypt(self.session))

    def undo(self, old: dict[str, str], new: dict[str, str]) -> None:
        """The old passwords, everywhere: each step is tried, the first error kept for the end."""
        db_var, redis_var, user_var = n.db_password_var(self.app), n.redis_password_var(self.app), n.db_user_var(self.app)
        steps = []
        if db_var in old:
            steps.append(lambda: self.retire(new[user_var]))
        steps.append(self.put_back_env)
        if redis_var in new:
            steps.append(lambda: self.set_redis(remove=new[redis_var]))
        for step in steps:
            try:
                step()
            except PlanoError as exc:
                self.session.out.note(f"{self.app}: could not undo a step: {exc}")


def write_env(session: Session, values: dict[str, str], text: str | None = None) -> None:
    """.env.prod with `values` (in `text`, else in the file as it is), and the infra's
    own copies (data/secrets/) from it."""
    path = session.root / n.ENV_PROD
    text = path.read_text() if text is None else text
    for key, value in values.items():
        text = secrets.set_env_value(text, key, value)
    session.write(path, text, 0o600)
    if not session.dry_run:
        from plano.ops.infra import write_secret_files

        write_secret_files(session.root, session.manifest)


def reencrypt(session: Session) -> str:
    """.env.prod.enc follows .env.prod, where this machine holds the key."""
    from plano.ops import secrets as encrypted

    if session.dry_run or not (session.root / n.encrypted(n.ENV_PROD)).is_file():
        return ""
    try:
        encrypted.encrypt(session, n.ENV_PROD)
    except PlanoError as exc:
        return (f"{n.encrypted(n.ENV_PROD)} still holds the old passwords ({str(exc).splitlines()[0]}): "
                "run plano secrets encrypt where the key is, and commit it")
    return f"re-encrypted {n.encrypted(n.ENV_PROD)}: commit it"


def new_passwords(session: Session, app: str, entry: App) -> tuple[dict[str, str], dict[str, str]]:
    """(new, old): a new password for each of APP's database and Redis, and the one in
    use; with a database, also the login its URL names: the other of its two (db_logins)."""
    db_var, redis_var = n.db_password_var(app), n.redis_password_var(app)
    new = {var: secrets.new_secret() for var, wanted in ((db_var, entry.database), (redis_var, entry.redis)) if wanted}
    current = secrets.read_env(session.root / n.ENV_PROD)
    old = {var: current.get(var, "") for var in new}
    if any(not value for value in old.values()):
        raise UsageError(f"{n.ENV_PROD}: {', '.join(var for var, value in old.items() if not value)} missing; "
                         "run plano render, then plano prod up")
    if entry.database:
        new[n.db_user_var(app)], old[n.db_user_var(app)] = n.db_other_login(app, current), n.db_login(app, current)
    return new, old


def on_swarm(session: Session, app: str, entry: App) -> Rotated:
    """On a swarm: .env.prod gets the new passwords, then `plano swarm up` does the rest
    (ops/swarm.py): the provisioning jobs give APP's role the new password and its Redis
    user both, Swarm rolls APP's services start-first to the new URLs, then Redis drops
    the old password. Postgres and Redis never restart (they hold no app password). On
    a failure the old passwords are written back and brought up the same way."""
    from plano.ops import swarm

    new, _ = new_passwords(session, app, entry)
    before = (session.root / n.ENV_PROD).read_text()
    write_env(session, new)
    try:
        swarm.up(session)
    except PlanoError as exc:
        session.out.note(f"{app}: rotation failed ({str(exc).splitlines()[0]}); putting the old passwords back")
        write_env(session, {}, before)
        try:
            swarm.up(session)
        except PlanoError as again:
            session.out.note(f"{app}: bringing the old passwords back failed too: {again}")
        raise RotateFailed(f"{app}: rotation failed, the old passwords are back: {str(exc).splitlines()[0]}") from exc
    records = [Record(now(), who(), app, n.service(app, role), tag, tag, "rotate", "ok")
               for role in users_of(entry) for tag in [recorded_tag(session.root, app, role)]]
    for record in records if not session.dry_run else []:
        append_log(session.root, record)
    return Rotated(app, n.db_password_var(app) in new, n.redis_password_var(app) in new, records, reencrypt(session))


def rotate(session: Session, app: str) -> Rotated:
    """APP's database and Redis passwords, changed in the running prod stack."""
    session = session.with_mode(Mode.PROD)
    entry = require_app(session.manifest, app, "APP " + app)
    if not (entry.database or entry.redis):
        raise UsageError(f"APP {app}: has neither a database nor Redis; nothing to rotate")
    if session.manifest.target == "swarm":
        return on_swarm(session, app, entry)
    stack = open_stack(session)
    require_engine(session.runner)
    return Rotation(session, stack, app).run()
