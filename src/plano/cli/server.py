"""`plano -e NAME ...` and `plano server setup|trust -e NAME`: environments operated over SSH."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plano.cli.context import session
from plano.cli.output import console
from plano.core.errors import UsageError

ROOT_VALUED = ("-C", "--dir", "-e", "--environment")  # the root's options whose value is the next word


def forwarded(raw: list[str]) -> list[str]:
    """The command line as the server's plano gets it: the root's own options left out
    (they are about this machine), the command and everything after it kept as typed."""
    rest = list(raw)
    while rest and rest[0].startswith("-"):  # --dir=X, -eX and the flags are one word each
        if rest.pop(0) in ROOT_VALUED:
            rest = rest[1:]
    return rest


DEFAULT_DASHBOARD_PORT = 8800
HELP = frozenset({"-h", "--help"})


def dispatch(ctx: click.Context, environment: str, raw: list[str], accept_host_key: bool, discard: bool) -> None:
    """With -e, the command runs on the environment's server (its exit code is plano's),
    except `server ...` and `k8s ...` (run here, about the environment: its server, its
    Kubernetes namespace) and the commands about this infra's files."""
    from plano.ops import remote

    command = ctx.invoked_subcommand or ""
    if command in remote.HERE:
        return
    if command == "dashboard" and (port := dashboard_port(forwarded(raw))) is not None:
        ctx.exit(remote.dashboard(session(ctx), environment, port, accept_host_key=accept_host_key, force=discard))
    if command in remote.LOCAL_ONLY:
        raise UsageError(f"-e {environment}: plano {command} works on this machine's infra; run it without -e and commit, "
                         "the next command with -e brings the server to that commit")
    args = forwarded(raw)
    if command == "status" and "--all-environments" in args:
        raise UsageError(f"-e {environment}: status --all-environments asks every environment from here; run it without -e")
    code = remote.forward(session(ctx), environment, args, tty=sys.stdin.isatty() and sys.stdout.isatty(),
                          accept_host_key=accept_host_key, force=discard)
    ctx.exit(code)


def dashboard_port(args: list[str]) -> int | None:
    """The port of a bare `dashboard [--port N]` (served: through ssh -L from here); None for
    `dashboard passwd|token ...` or a help page, which the server's plano runs as any command."""
    if (len(args) > 1 and not args[1].startswith("-")) or HELP & set(args):
        return None
    options = args[1:]
    if not options:
        return DEFAULT_DASHBOARD_PORT
    if len(options) == 2 and options[0] == "--port":
        value = options[1]
    elif len(options) == 1 and options[0].startswith("--port="):
        value = options[0].removeprefix("--port=")
    else:
        value = ""
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise UsageError(f"dashboard {' '.join(options)}: with -e, plano dashboard takes --port N (1-65535) only")
    return int(value)


@click.group("server")
def server_group() -> None:
    """Prepare and trust the servers of plano.yml's environments (with -e NAME)."""


def environment_of(ctx: click.Context) -> str:
    name = ctx.find_root().meta.get("plano.environment")
    if not name:
        raise UsageError(f"{ctx.command_path}: which server? give -e NAME (an environment of plano.yml)")
    return name


@server_group.command("trust")
@click.option("--fingerprint", metavar="SHA256:...", help="Trust the server only if it offers this key.")
@click.pass_context
def trust_cmd(ctx, fingerprint) -> None:
    """Record the server's SSH host key in ssh_known_hosts (commit that file): shown, then trusted."""
    from plano.ops import remote

    name = environment_of(ctx)
    made = session(ctx)
    new, prints = remote.trust(made, remote.server(made, name), fingerprint)
    for line in prints:
        console().print(f"  {line}", highlight=False)
    console().print(f"{name}: {'trusted now' if new else 'already trusted'}; commit ssh_known_hosts so that your team and CI trust the same key")


@server_group.command("setup")
@click.option("--force", is_flag=True, help="Overwrite files changed by hand in the server's infra.")
@click.option("--deploy-key", type=click.Path(path_type=Path, dir_okay=False), metavar="PATH.pub",
              help="The public key the deploy user (environments.NAME.deploy_user) accepts; default: your ssh agent's first key.")
@click.pass_context
def setup_cmd(ctx, force, deploy_key) -> None:
    """Make the server ready and start prod: docker, git and python3-venv (through sudo),
    the deploy user when plano.yml names one, plano in ~/.plano/venv, the infra at this
    commit, .env.NAME as its .env.prod, prod up."""
    from plano.ops import remote

    root = ctx.find_root()
    result = remote.setup(session(ctx), environment_of(ctx), root.meta.get("plano.accept_host_key", False), force, deploy_key)
    out = console()
    for line in result.done:
        out.print(f"  done: {line}", highlight=False)
    for line in result.kept:
        out.print(f"  kept: {line}", highlight=False)
    if result.note:
        out.print(result.note, highlight=False)


def commands() -> list[click.Command]:
    return [server_group]
