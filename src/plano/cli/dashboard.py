"""`plano dashboard`: serve the web dashboard; `passwd` and `token` manage who may use it
(ops/access.py). The password is read from a prompt or from stdin, never from argv."""

from __future__ import annotations

import sys

import click

from plano.cli import params as P
from plano.cli.context import session

ROLE = click.Choice(["viewer", "operator"])


@click.group("dashboard", invoke_without_command=True)
@click.option("--port", type=P.PORT, default=8800, show_default=True, help="The port on 127.0.0.1 to serve on.")
@click.option("--until-eof", is_flag=True, hidden=True, help="Stop when stdin closes (plano -e NAME dashboard runs it so).")
@click.pass_context
def dashboard_cmd(ctx, port, until_eof) -> None:
    """Serve the web dashboard on 127.0.0.1 only. A server's, from your machine: plano -e NAME
    dashboard (it runs there, reached through the environment's SSH connection with
    ssh -L, until you stop it), then http://127.0.0.1:8800/. Without a sign-in it shows
    nothing; add users with `plano dashboard passwd` (with -e NAME: the server's)."""
    if ctx.invoked_subcommand is not None:
        return
    from plano.dashboard import server

    server.serve(session(ctx), port, until_eof)


def read_password(user: str) -> str:
    if sys.stdin.isatty():
        return click.prompt(f"password for {user}", hide_input=True, confirmation_prompt=True, err=True)
    return sys.stdin.readline().rstrip("\r\n")


@dashboard_cmd.command("passwd")
@click.argument("user")
@click.option("--role", type=ROLE, help="viewer: reads; operator: also deploys, rolls back, switches maintenance "
              "[a new user: viewer; else unchanged].")
@click.option("--remove", is_flag=True, help="Remove the user (their sessions end at their next request).")
@click.pass_context
def passwd_cmd(ctx, user, role, remove) -> None:
    """Add dashboard user USER or set their password (asked for, or one line on stdin) and role."""
    from plano.core.naming import DASHBOARD_USERS
    from plano.ops import access

    root = session(ctx).root
    access.check_name(user)
    if remove:
        found = access.remove_user(root, user)
        click.echo(f"{user}: removed" if found else f"{user}: no such user")
        return
    known = {u.name: u.role for u in access.users(root)}
    chosen = role or known.get(user, "viewer")
    new = access.set_password(root, user, chosen, access.check_password(read_password(user)))
    click.echo(f"{user}: {'added' if new else 'password set'}, role {chosen} (in {DASHBOARD_USERS}, hashed, mode 0600)")


@dashboard_cmd.command("token")
@click.argument("name")
@click.option("--role", type=ROLE, default="viewer", show_default=True, help="operator: the token also runs actions.")
@click.option("--remove", is_flag=True, help="Revoke the token of this name.")
@click.pass_context
def token_cmd(ctx, name, role, remove) -> None:
    """Make an API token called NAME (one of that name is replaced): printed once on stdout,
    only its hash is kept. Send it as `Authorization: Bearer TOKEN` to /api/..."""
    from plano.ops import access

    root = session(ctx).root
    if remove:
        found = access.remove_token(root, name)
        click.echo(f"token {name}: revoked" if found else f"token {name}: no such token", err=True)
        return
    token = access.make_token(root, name, role)
    click.echo(f"token {name} ({role}); it is shown this once:", err=True)
    click.echo(token)


def commands() -> list[click.Command]:
    return [dashboard_cmd]
