"""`plano swarm init|join|label|nodes|up|status|ps|logs|down`: the swarm target."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import console, echo_json, table
from plano.core import naming as n
from plano.core.mode import Mode

ROLE = click.Choice(n.SWARM_ROLES)
DRY = click.option("--dry-run", is_flag=True, help="Print the commands instead of running them.")


@click.group("swarm")
def swarm_group() -> None:
    """Run prod on a Docker Swarm of several servers (target: swarm in plano.yml)."""


@swarm_group.command("init")
@click.option("--advertise-addr", "advertise", metavar="IP", type=P.IP_ADDRESS, help="The address other servers reach this one at.")
@click.option("--role", "roles", multiple=True, type=ROLE, help="This server's roles (repeatable; default all three).")
@DRY
@click.pass_context
def init_cmd(ctx, advertise, roles, dry_run) -> None:
    """Make this server the swarm's first manager and give it its roles."""
    from plano.ops import swarm

    join = swarm.init(session(ctx, Mode.PROD, dry_run), advertise, tuple(roles))
    if not dry_run:
        click.echo(f"swarm ready; on each other server run:\n  {join}\nthen here: plano swarm label NODE edge|data|apps")


@swarm_group.command("join")
@click.option("--manager", is_flag=True, help="The command for a new manager instead of a worker.")
@click.pass_context
def join_cmd(ctx, manager) -> None:
    """Print the command that adds a server to the swarm."""
    from plano.ops import swarm

    click.echo(swarm.join_command(session(ctx, Mode.PROD), "manager" if manager else "worker"))


@swarm_group.command("label")
@click.argument("node", type=P.NODE)
@click.argument("roles", nargs=-1, required=True, type=ROLE)
@click.option("--remove", is_flag=True, help="Take the roles away instead.")
@DRY
@click.pass_context
def label_cmd(ctx, node, roles, remove, dry_run) -> None:
    """Give NODE roles: edge (nginx, certbot, ports 80/443), data (Postgres, Redis,
    backups, data/), apps (the app services). One node may hold several."""
    from plano.ops import swarm

    swarm.label(session(ctx, Mode.PROD, dry_run), node, roles, remove)
    if not dry_run:
        click.echo(f"{node}: {'removed' if remove else 'added'} {', '.join(roles)}")


@swarm_group.command("nodes")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def nodes_cmd(ctx, as_json) -> None:
    """The swarm's servers, their state and roles."""
    from plano.ops import swarm

    found = swarm.node_list(session(ctx, Mode.PROD))
    if as_json:
        echo_json(found)
        return
    table(("node", "status", "availability", "manager", "roles", "address"),
          [(x.hostname, x.status, x.availability, x.manager or "-", " ".join(x.roles) or "-", x.address) for x in found],
          "no nodes")


@swarm_group.command("up")
@click.option("--timeout", type=P.SECONDS, default=600, show_default=True, help="Seconds to wait until every service converges.")
@DRY
@click.pass_context
def up_cmd(ctx, timeout, dry_run) -> None:
    """Build and push the infra images, then deploy docker-stack.yml and wait until every
    service runs its replicas, healthy."""
    from plano.ops import swarm

    found = swarm.up(session(ctx, Mode.PROD, dry_run), timeout)
    if found:
        print_services(found)


def print_services(found) -> None:
    table(("service", "replicas", "image", "update"),
          [(s.name, f"{s.running}/{s.desired}", s.image, s.update or "-") for s in found], "no services")


@swarm_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, as_json) -> None:
    """The nodes and the stack's services; exit 1 when a service is short of replicas."""
    from plano.ops import swarm

    found = swarm.status(session(ctx, Mode.PROD))
    if as_json:
        echo_json(found)
    else:
        table(("node", "status", "roles"), [(x.hostname, x.status, " ".join(x.roles) or "-") for x in found.nodes], "no nodes")
        console().print()
        print_services(found.services)
    if not found.services or not all(s.converged for s in found.services):
        ctx.exit(1)


@swarm_group.command("ps")
@click.pass_context
def ps_cmd(ctx) -> None:
    """The stack's tasks: where each runs, its state, and why one failed."""
    from plano.ops import swarm

    ctx.exit(swarm.tasks(session(ctx, Mode.PROD)))


@swarm_group.command("logs")
@click.argument("service", type=P.SERVICE_NAME)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", "lines", type=P.LINES, default="100", show_default=True, help="Lines from the end of each task's log, or all.")
@click.pass_context
def logs_cmd(ctx, service, follow, lines) -> None:
    """A service's logs, from every task on every node."""
    from plano.ops import swarm

    ctx.exit(swarm.logs(session(ctx, Mode.PROD), service, lines, follow))


@swarm_group.command("down")
@DRY
@click.pass_context
def down_cmd(ctx, dry_run) -> None:
    """Remove the stack's services and networks; data/ and volumes stay on the nodes."""
    from plano.ops import swarm

    swarm.down(session(ctx, Mode.PROD, dry_run))
    if not dry_run:
        click.echo("stack removed; data/ is kept")


def commands() -> list[click.Command]:
    return [swarm_group]
