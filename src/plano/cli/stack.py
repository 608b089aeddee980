"""`plano dev ...`, `plano prod ...` and `plano db ...`: the stack's commands.

Each stack command is defined once and attached to both `dev` and `prod` (its mode
is the group it is called through). Each prints the exact compose command it runs
(with --dry-run instead of running it), streams its output, and exits with
compose's exit code.
"""

from __future__ import annotations

import sys

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import echo_json, finish
from plano.core.mode import Mode

DRY = click.option("--dry-run", is_flag=True, help="Print the commands instead of running them.")
PROD = click.option("--prod", "prod", is_flag=True, help="Act on the prod stack (default: dev).")


def stack_session(ctx: click.Context, dry_run: bool = False):
    """The session of the group the command was called through: dev or prod."""
    return session(ctx, Mode.named(ctx.parent.info_name), dry_run)


def print_started(started) -> None:
    for app, url in started.urls.items():
        click.echo(f"{app}: {url}")
    if started.placeholders:
        click.echo(f"HTTPS of {', '.join(started.placeholders)} uses a self-signed placeholder: run 'plano certs issue --all'", err=True)


@click.command("up", help="Start the stack, wait until it is healthy, print each app's URL.")
@DRY
@click.option("--build", is_flag=True, help="Rebuild images first.")
@click.option("--no-wait", is_flag=True, help="Do not wait for healthchecks.")
@click.pass_context
def up_cmd(ctx, dry_run, build, no_wait):
    from plano.ops import stack

    s = stack_session(ctx, dry_run)
    started = stack.up(s, build, not no_wait)
    if not dry_run:
        print_started(started)


@click.command("down", help="Stop and remove the containers. data/ is always kept.")
@DRY
@click.option("--volumes", is_flag=True, help="Also remove compose volumes (asks first). data/ is never removed.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def down_cmd(ctx, dry_run, volumes, yes):
    from plano.ops import stack

    s = stack_session(ctx, dry_run)
    if volumes and not dry_run and not yes:
        click.confirm(f"Remove the {s.stack_mode} stack's compose volumes (node_modules caches and other volumes; data/ stays)?", abort=True)
    finish(stack.down(s, volumes))


@click.command("ps", help="List the stack's containers.")
@DRY
@click.pass_context
def ps_cmd(ctx, dry_run):
    from plano.ops import stack

    finish(stack.ps(stack_session(ctx, dry_run)))


@click.command("logs", help="Show logs, of every service or of SERVICE...")
@DRY
@click.option("-f", "--follow", is_flag=True)
@click.option("--tail", type=P.LINES, help="Lines from the end, e.g. 100.")
@click.argument("services", nargs=-1, type=P.SERVICE_NAME)
@click.pass_context
def logs_cmd(ctx, dry_run, follow, tail, services):
    from plano.ops import stack

    finish(stack.logs(stack_session(ctx, dry_run), services, follow, tail))


@click.command("exec", help="Run a command in a running service: plano dev|prod exec SERVICE -- CMD...")
@DRY
@click.argument("service", type=P.SERVICE_NAME)
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_cmd(ctx, dry_run, service, command):
    from plano.ops import stack

    finish(stack.exec_in(stack_session(ctx, dry_run), service, command, sys.stdin.isatty()))


@click.command("restart", help="Restart every service or SERVICE...")
@DRY
@click.argument("services", nargs=-1, type=P.SERVICE_NAME)
@click.pass_context
def restart_cmd(ctx, dry_run, services):
    from plano.ops import stack

    finish(stack.restart(stack_session(ctx, dry_run), services))


def fetch_cmd(verb: str, help_text: str) -> click.Command:
    """`dev build` and `prod pull`: one operation, named after what the mode does."""
    @click.command(verb, help=help_text)
    @DRY
    @click.argument("services", nargs=-1, type=P.SERVICE_NAME)
    @click.pass_context
    def fetch_images(ctx, dry_run, services):
        from plano.ops import stack

        finish(stack.fetch_images(stack_session(ctx, dry_run), services))

    return fetch_images


@click.command("test", help="Run APP's tests in its dev container (the service's `test` command, default npm test), "
               "with a throwaway database APP_test; exits with the tests' exit code. ARGS go after --.")
@DRY
@click.option("--service", "role", type=click.Choice(["backend", "frontend"]), help="Which service [backend].")
@click.argument("app", type=P.APP)
@click.argument("args", nargs=-1)
@click.pass_context
def test_cmd(ctx, dry_run, role, app, args):
    from plano.ops import devtest

    finish(devtest.run_tests(stack_session(ctx, dry_run), app, role, args))


def stack_group(mode: Mode) -> click.Group:
    files = " + ".join(mode.compose_files)
    group = click.Group(mode.value, help=f"Run the {mode} stack: {files}, env files .env then .env.{mode}.")
    for command in (up_cmd, down_cmd, ps_cmd, logs_cmd, exec_cmd, restart_cmd):
        group.add_command(command)
    if mode.is_dev:
        group.add_command(test_cmd)
        group.add_command(fetch_cmd("build", "Build the images (apps from ../<app>/<role>)."))
    else:
        group.add_command(fetch_cmd("pull", "Pull the images from the registry."))
    return group


# ---------------------------------------------------------------- db


@click.group("db")
def db_group() -> None:
    """Provision app databases in the running Postgres (same rules as the init scripts)."""


def db_session(ctx: click.Context, prod: bool, dry_run: bool = False):
    return session(ctx, Mode.of(not prod), dry_run)


@db_group.command("create")
@PROD
@DRY
@click.argument("app", type=P.APP)
@click.pass_context
def db_create(ctx, prod, dry_run, app):
    """Create APP's role and database (idempotent), with nothing granted to PUBLIC."""
    from plano.core import naming as n
    from plano.ops import db

    s = db_session(ctx, prod, dry_run)
    finish(db.create(s, app))
    if not dry_run:
        click.echo(f"database {app} ready (role {app}, password {n.db_password_var(app)} from {s.stack_mode.env_file})")


@db_group.command("drop")
@PROD
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.argument("app", type=P.APP)
@click.pass_context
def db_drop(ctx, prod, yes, app):
    """Drop APP's database and role. Asks first: this deletes the data."""
    from plano.ops import db

    s = db_session(ctx, prod)
    db.check_drop(app)
    if not yes:
        click.confirm(f"Drop the database {app!r} and its role in the {s.stack_mode} stack? Its data is deleted", abort=True)
    finish(db.drop(s, app))
    click.echo(f"dropped database and role {app}")


@db_group.command("list")
@PROD
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def db_list(ctx, prod, as_json):
    """List the app databases, their owners and sizes."""
    from plano.ops import db

    rows = db.listing(db_session(ctx, prod))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row.database:<32} owner {row.owner:<32} {row.size_bytes / 1e6:.1f} MB")


@db_group.command("psql")
@PROD
@click.argument("app", type=P.APP)
@click.pass_context
def db_psql(ctx, prod, app):
    """Open psql as APP's own role in APP's database."""
    from plano.ops import db

    finish(db.psql(db_session(ctx, prod), app, sys.stdin.isatty()))


def commands() -> list[click.Command]:
    return [stack_group(Mode.DEV), stack_group(Mode.PROD), db_group]
