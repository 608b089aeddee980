"""`plano dev ...`, `plano prod ...` and `plano db ...`: the stack's commands.

Each prints the exact compose command it runs with --dry-run, streams its output,
and exits with compose's exit code.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click

from plano.core.errors import PlanoError


def emit(argv: list[str], dry_run: bool, runner, root: Path, stdin: str | None = None) -> int:
    if dry_run:
        click.echo(shlex.join(argv))
        return 0
    click.echo(f"$ {shlex.join(argv)}", err=True)
    return runner.stream(argv, cwd=root, stdin=stdin)


def finish(code: int) -> None:
    if code:
        raise click.exceptions.Exit(code)


def load(ctx: click.Context, mode: str):
    from plano.cli.main import infra_root

    return load_root(infra_root(ctx), mode)


def load_root(root: Path, mode: str):
    from plano.core.runner import SubprocessRunner
    from plano.engine import stack
    from plano.ops import infra

    runner = SubprocessRunner()
    loaded = infra.load(root)
    return stack.open_stack(loaded.root, loaded.manifest, mode, runner), runner


def warn_if_stale(st) -> None:
    from plano.ops import infra

    if infra.plan(st.root, st.manifest).changed:
        click.echo("warning: rendered files are out of date with plano.yml; run 'plano render'", err=True)


def up(root: Path, mode: str, dry_run: bool, build: bool, wait: bool) -> None:
    from plano.engine import stack

    st, runner = load_root(root, mode)
    if dry_run:
        if mode == "prod":
            emit(stack.simple_argv(st, "pull", ()) + ["--ignore-buildable"], True, runner, st.root)
        emit(stack.up_argv(st, build, wait), True, runner, st.root)
        return
    from plano.ops import infra

    stack.require_engine(runner)
    warn_if_stale(st)
    stack.check_ports(st, runner)
    # A fresh clone has no data/: Docker would create the bind sources as root,
    # and the apps (non-root) could not write their uploads.
    infra.ensure_data_dirs(st.root, st.manifest)
    running = stack.running_services(st, runner)
    was_running = bool(running)
    renewed = dev_certificates(st) if mode == "dev" else []
    if mode == "prod":
        pulled = runner.run(stack.simple_argv(st, "pull", ()) + ["--ignore-buildable", "--quiet"], cwd=st.root, timeout=1800)
        if not pulled.ok:
            raise PlanoError(f"prod pull failed, nothing was started: {last_line(pulled.output)}; check the registry in plano.yml and 'docker login'")
    code = emit(stack.up_argv(st, build, wait), False, runner, st.root)
    if code:
        if not was_running:
            click.echo("stopping what this attempt started (data is kept)", err=True)
            runner.run(stack.down_argv(st), cwd=st.root, timeout=300)
        raise PlanoError(f"{mode} up failed (compose exit code {code}); see the output above and 'plano {mode} logs'")
    if renewed and "nginx" in running:
        from plano.ops.certs import reload_nginx

        reload_nginx(st, runner)
    for app, url in stack.urls(st.manifest, mode).items():
        click.echo(f"{app}: {url}")
    if mode == "prod":
        hint_placeholders(st)


def hint_placeholders(st) -> None:
    from plano.ops.certs import installed_facts

    waiting = [app for app in sorted(st.manifest.apps) if (facts := installed_facts(st.root, "prod", app)) is None or facts.placeholder]
    if waiting:
        click.echo(f"HTTPS of {', '.join(waiting)} uses a self-signed placeholder: run 'plano certs issue --all'", err=True)


def dev_certificates(st) -> list[str]:
    """dev serves https://APP.localhost with certificates of the local dev CA (never in prod)."""
    from plano.core import naming
    from plano.ops import devca

    domains = {app: naming.dev_domains(st.manifest, app) for app in st.manifest.apps}
    if not all(devca.allowed(name) for names in domains.values() for name in names):
        click.echo(f"warning: dev/domain_suffix is not {devca.PERMITTED}: dev keeps self-signed placeholder certificates", err=True)
        return []
    ca, created, renewed = devca.install_dev_certs(st.root, domains)
    if created:
        click.echo(f"created the plano development CA: {ca.path}", err=True)
        click.echo(devca.trust_hint(ca.path), err=True)
    return renewed


def dev_test(ctx: click.Context, app: str, role: str | None, args: tuple[str, ...], dry_run: bool) -> None:
    from plano.core import naming as n
    from plano.core import secrets
    from plano.engine import stack
    from plano.ops import db, devtest

    st, runner = load(ctx, "dev")
    role = devtest.role_of(st, app, role)
    with_db = st.manifest.apps[app].database
    running = stack.running_services(st, runner) if not dry_run else {n.service(app, role)}
    argv = devtest.test_argv(st, app, role, n.service(app, role) in running, args, with_db)
    if dry_run:
        click.echo(shlex.join(argv))
        return
    stack.require_engine(runner)
    env = None
    psql = psql_in_database(st, *db.psql_argv("postgres")[1:])
    if with_db:
        password = db.checked_password(app, secrets.read_env(st.root / n.ENV_DEV).get(n.db_password_var(app)), n.ENV_DEV)
        if "database" not in running:
            code = runner.stream(st.argv("up", "-d", "--wait", "database"), cwd=st.root)
            if code:
                raise PlanoError("the dev database did not start; see plano dev logs database")
        if runner.stream(psql, cwd=st.root, stdin=devtest.create_db_script(app)):
            raise PlanoError(f"could not create the test database {devtest.test_db(app)}; is {app}'s role provisioned? (plano db create {app})")
        env = {"DATABASE_URL": devtest.test_db_url(app, password)}
        click.echo(f"{app}: tests get the throwaway database {devtest.test_db(app)}", err=True)
    try:
        click.echo(f"$ {shlex.join(argv)}", err=True)
        code = runner.stream(argv, cwd=st.root, env=env)
    finally:
        if with_db:  # throwaway: dropped whatever the result
            runner.stream(psql, cwd=st.root, stdin=devtest.drop_db_script(app))
    finish(code)


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def make_group(mode: str) -> click.Group:
    @click.group(name=mode, help=f"Run the {mode} stack: docker-compose.yml + docker-compose.{mode}.yml, env files .env then .env.{mode}.")
    def group() -> None:
        pass

    dry = click.option("--dry-run", is_flag=True, help="Print the compose command instead of running it.")

    @group.command("up", help="Start the stack, wait until it is healthy, print each app's URL.")
    @dry
    @click.option("--build", is_flag=True, help="Rebuild images first.")
    @click.option("--no-wait", is_flag=True, help="Do not wait for healthchecks.")
    @click.pass_context
    def up_cmd(ctx, dry_run, build, no_wait):
        from plano.cli.main import infra_root

        up(infra_root(ctx), mode, dry_run, build, not no_wait)

    @group.command("down", help="Stop and remove the containers. data/ is always kept.")
    @dry
    @click.option("--volumes", is_flag=True, help="Also remove compose volumes (asks first). data/ is never removed.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.pass_context
    def down_cmd(ctx, dry_run, volumes, yes):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        if volumes and not dry_run and not yes:
            click.confirm(f"Remove the {mode} stack's compose volumes (node_modules caches and other volumes; data/ stays)?", abort=True)
        finish(emit(stack.down_argv(st, volumes), dry_run, runner, st.root))

    @group.command("ps", help="List the stack's containers.")
    @dry
    @click.pass_context
    def ps_cmd(ctx, dry_run):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        finish(emit(stack.simple_argv(st, "ps"), dry_run, runner, st.root))

    @group.command("logs", help="Show logs, of every service or of SERVICE...")
    @dry
    @click.option("-f", "--follow", is_flag=True)
    @click.option("--tail", help="Lines from the end, e.g. 100.")
    @click.argument("services", nargs=-1)
    @click.pass_context
    def logs_cmd(ctx, dry_run, follow, tail, services):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        finish(emit(stack.logs_argv(st, services, follow, tail), dry_run, runner, st.root))

    @group.command("exec", help="Run a command in a running service: plano %s exec SERVICE -- CMD..." % mode)
    @dry
    @click.argument("service")
    @click.argument("command", nargs=-1, required=True)
    @click.pass_context
    def exec_cmd(ctx, dry_run, service, command):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        finish(emit(stack.exec_argv(st, service, command, sys.stdin.isatty()), dry_run, runner, st.root))

    @group.command("restart", help="Restart every service or SERVICE...")
    @dry
    @click.argument("services", nargs=-1)
    @click.pass_context
    def restart_cmd(ctx, dry_run, services):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        finish(emit(stack.simple_argv(st, "restart", services), dry_run, runner, st.root))

    if mode == "dev":
        @group.command("test", help="Run APP's tests in its dev container (the service's `test` command, default npm test), "
                       "with a throwaway database APP_test; exits with the tests' exit code. ARGS go after --.")
        @dry
        @click.option("--service", "role", type=click.Choice(["backend", "frontend"]), help="Which service [backend].")
        @click.argument("app")
        @click.argument("args", nargs=-1)
        @click.pass_context
        def test_cmd(ctx, dry_run, role, app, args):
            dev_test(ctx, app, role, args, dry_run)

    verb, verb_help = ("build", "Build the images (apps from ../<app>/<role>).") if mode == "dev" else ("pull", "Pull the images from the registry.")

    @group.command(verb, help=verb_help)
    @dry
    @click.argument("services", nargs=-1)
    @click.pass_context
    def verb_cmd(ctx, dry_run, services):
        from plano.engine import stack

        st, runner = load(ctx, mode)
        extra = ["--ignore-buildable"] if verb == "pull" else []
        finish(emit(stack.simple_argv(st, verb, services) + extra, dry_run, runner, st.root))

    return group


# ---------------------------------------------------------------- db


mode_option = click.option("--prod", "prod", is_flag=True, help="Act on the prod stack (default: dev).")


@click.group("db")
def db_group() -> None:
    """Provision app databases in the running Postgres (same rules as the init scripts)."""


def db_context(ctx: click.Context, prod: bool, app: str | None):
    from plano.core import secrets

    mode = "prod" if prod else "dev"
    st, runner = load(ctx, mode)
    if app is not None and (app not in st.manifest.apps or not st.manifest.apps[app].database):
        from plano.core.errors import ManifestError

        raise ManifestError(f"apps/{app}", "no such app with a database in plano.yml; add it first with 'plano app add'")
    env_name = st.ctx.env_files[-1]
    return st, runner, secrets.read_env(st.root / env_name), env_name


def psql_in_database(st, *psql_args: str) -> list[str]:
    from plano.engine import stack

    return stack.exec_argv(st, "database", ("psql", *psql_args), tty=False)


@db_group.command("create")
@mode_option
@click.option("--dry-run", is_flag=True)
@click.argument("app")
@click.pass_context
def db_create(ctx, prod, dry_run, app):
    """Create APP's role and database (idempotent), with nothing granted to PUBLIC."""
    from plano.core import naming as n
    from plano.ops import db

    st, runner, env, env_name = db_context(ctx, prod, app)
    password = db.checked_password(app, env.get(n.db_password_var(app)), env_name)
    for database, script in db.create_scripts(app, password):
        argv = psql_in_database(st, *db.psql_argv(database)[1:])
        shown = script.replace(password, "********")
        if dry_run:
            click.echo(shlex.join(argv) + " <<'SQL'\n" + shown + "SQL")
            continue
        finish(runner.stream(argv, cwd=st.root, stdin=script))
    if not dry_run:
        click.echo(f"database {app} ready (role {app}, password {n.db_password_var(app)} from {env_name})")


@db_group.command("drop")
@mode_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("app")
@click.pass_context
def db_drop(ctx, prod, yes, app):
    """Drop APP's database and role. Asks first: this deletes the data."""
    from plano.ops import db

    st, runner, _, _ = db_context(ctx, prod, None)
    if not yes:
        click.confirm(f"Drop the database {app!r} and its role in the {st.mode} stack? Its data is deleted", abort=True)
    argv = psql_in_database(st, *db.psql_argv()[1:])
    finish(runner.stream(argv, cwd=st.root, stdin=db.with_vars(db.DROP_SQL, app=app)))
    click.echo(f"dropped database and role {app}")


@db_group.command("list")
@mode_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def db_list(ctx, prod, as_json):
    """List the app databases, their owners and sizes."""
    from plano.ops import db

    st, runner, _, _ = db_context(ctx, prod, None)
    argv = psql_in_database(st, *db.psql_argv("postgres", "postgres", "-At", "-c", db.LIST_SQL)[1:])
    result = runner.run(argv, cwd=st.root, timeout=60)
    if not result.ok:
        raise PlanoError(f"db list failed: {last_line(result.output)}; is the {st.mode} stack up? ('plano {st.mode} up')")
    rows = db.parse_list(result.out)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['database']:<32} owner {row['owner']:<32} {row['size_bytes'] / 1e6:.1f} MB")


@db_group.command("psql")
@mode_option
@click.argument("app")
@click.pass_context
def db_psql(ctx, prod, app):
    """Open psql as APP's own role in APP's database."""
    from plano.core import naming as n
    from plano.engine import stack

    st, runner, _, _ = db_context(ctx, prod, app)
    argv = stack.exec_argv(st, "database", ("psql", "-U", n.db_role(app), "-d", n.db_name(app)), sys.stdin.isatty())
    finish(runner.stream(argv, cwd=st.root))
