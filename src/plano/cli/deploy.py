"""`plano deploy`, `plano rollback`, `plano releases` and `plano maintenance`."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import echo_json, table
from plano.core.mode import Mode

SERVICE = click.Choice(["backend", "frontend"])


def report(records, env_file: str = ".env.prod", log: str = "") -> None:
    from plano.core import naming as n

    for record in records:
        click.echo(f"{record.service}: {record.from_tag} -> {record.to_tag}, done; recorded in {env_file} and {log or n.DEPLOY_LOG}")


@click.command("deploy")
@click.argument("app", type=P.APP)
@click.option("--service", "role", type=SERVICE, help="Only this service [both].")
@click.option("--tag", required=True, type=P.IMAGE_TAG, help="The image tag to run, e.g. 1.2.3 or a commit SHA.")
@click.option("--timeout", default=180.0, type=P.SECONDS, show_default=True,
              help="Seconds the new containers have to answer their health route.")
@click.option("--drain-timeout", "drain", default=30.0, type=P.SECONDS, show_default=True,
              help="Seconds the old containers keep their open connections (WebSockets, long downloads) once nginx "
              "sends them nothing new; then they are stopped.")
@click.option("--dry-run", is_flag=True, help="Print every command and file change of the deploy instead of making it "
              "(it reads the running stack).")
@click.pass_context
def deploy_cmd(ctx, app, role, tag, timeout, drain, dry_run) -> None:
    """Replace APP's containers with TAG with no failed request: pull, release command,
    start new containers next to the old ones, wait until they answer their health
    route, switch nginx (no reload), drain and stop the old ones. The services switch
    together: when one is not healthy in time the new containers are removed and the
    old ones keep serving."""
    from plano.ops import deploy

    records = deploy.deploy(session(ctx, Mode.PROD, dry_run), app, role, tag, timeout, drain)
    if not dry_run:
        report(records)


@click.command("rollback")
@click.argument("app", type=P.APP)
@click.option("--service", "role", type=SERVICE, help="Only this service [both].")
@click.option("--timeout", default=180.0, type=P.SECONDS, show_default=True,
              help="Seconds the old version has to answer its health route.")
@click.option("--drain-timeout", "drain", default=30.0, type=P.SECONDS, show_default=True,
              help="Seconds the old containers keep their open connections (WebSockets, long downloads) once nginx "
              "sends them nothing new; then they are stopped.")
@click.option("--dry-run", is_flag=True, help="Print the rollback's commands instead of running them.")
@click.pass_context
def rollback_cmd(ctx, app, role, timeout, drain, dry_run) -> None:
    """Deploy the tag that ran before the current one (from the deploy log), the same zero-downtime way."""
    from plano.ops import deploy

    records = deploy.rollback(session(ctx, Mode.PROD, dry_run), app, role, timeout, drain)
    if not dry_run:
        report(records)


@click.command("releases")
@click.argument("app", required=False, type=P.APP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def releases_cmd(ctx, app, as_json) -> None:
    """The deploy log: who deployed what, when, and how it ended."""
    from plano.ops import deploy

    records = deploy.releases(session(ctx), app)
    if as_json:
        echo_json(records)
        return
    table(("time", "user", "service", "from", "to", "action", "result"),
          [(r.time, r.user, r.service, r.from_tag, r.to_tag, r.action, r.result) for r in records], "no deploys yet")


@click.command("maintenance")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.argument("app", type=P.APP)
@click.option("--dev", is_flag=True, help="The dev stack instead of prod.")
@click.pass_context
def maintenance_cmd(ctx, state, app, dev) -> None:
    """nginx answers APP's requests with a 503 maintenance page (on) or serves it again (off).
    The other apps, ACME challenges and healthchecks are not affected."""
    from plano.ops import maintenance

    flag = maintenance.switch(session(ctx, Mode.of(dev)), app, state == "on")
    click.echo(f"{app}: maintenance {state} (nginx checks {flag} on every request)")


def commands() -> list[click.Command]:
    return [deploy_cmd, rollback_cmd, releases_cmd, maintenance_cmd]
