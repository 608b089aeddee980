"""`plano deploy`, `plano rollback`, `plano releases` and `plano maintenance`."""

from __future__ import annotations

import json
import shlex

import click

from plano.cli.stack import load

SERVICE = click.Choice(["backend", "frontend"])


def deployer(ctx: click.Context, timeout: float):
    from plano.cli.main import console
    from plano.engine import stack
    from plano.ops.deploy import Deployer

    st, runner = load(ctx, "prod")
    stack.require_engine(runner)
    out = console()
    return Deployer(st, runner, lambda line: out.print(line, highlight=False), timeout=timeout)


def report(records) -> None:
    from plano.ops.deploy import LOG

    for record in records:
        click.echo(f"{record.service}: {record.from_tag} -> {record.to_tag}, done; recorded in .env.prod and data/{LOG}")


@click.command("deploy")
@click.argument("app")
@click.option("--service", "role", type=SERVICE, help="Only this service [both].")
@click.option("--tag", required=True, help="The image tag to run, e.g. 1.2.3 or a commit SHA.")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds the new container has to become healthy.")
@click.option("--dry-run", is_flag=True, help="Print the compose commands of the first steps instead of running them.")
@click.pass_context
def deploy_cmd(ctx, app, role, tag, timeout, dry_run) -> None:
    """Replace APP's containers with TAG with no failed request: pull, release command,
    start next to the old one, wait for health, switch nginx, drain, stop the old one.
    When the new one is not healthy in time it is removed and the old one keeps serving."""
    from plano.ops import deploy

    if dry_run:
        st, _ = load(ctx, "prod")
        for target in deploy.targets(st, app, role, tag):
            click.echo(shlex.join(deploy.pull_argv(st, target)))
            release = st.manifest.apps[app].services()[target.role].release
            if release:
                click.echo(shlex.join(deploy.release_argv(st, target, release)))
            click.echo(shlex.join(deploy.scale_up_argv(st, target)))
        return
    d = deployer(ctx, timeout)
    report(d.deploy(deploy.targets(d.stack, app, role, tag)))


@click.command("rollback")
@click.argument("app")
@click.option("--service", "role", type=SERVICE, help="Only this service [both].")
@click.option("--timeout", default=180.0, show_default=True, help="Seconds the old version has to become healthy.")
@click.pass_context
def rollback_cmd(ctx, app, role, timeout) -> None:
    """Deploy the tag that ran before the current one (from the deploy log), the same zero-downtime way."""
    from plano.core.errors import RefusedError
    from plano.ops import deploy

    d = deployer(ctx, timeout)
    records = deploy.read_log(d.stack.root)
    targets = []
    for target in deploy.targets(d.stack, app, role, "latest"):
        current = d.current_tag(target)
        previous = deploy.previous_tag(records, target.service, current)
        if previous is None:
            if role:
                raise RefusedError(f"{target.service}: no deploy to {current} in data/{deploy.LOG}; nothing to roll back to")
            continue
        targets.append(deploy.Target(target.app, target.role, previous))
    if not targets:
        raise RefusedError(f"{app}: no deploy in data/{deploy.LOG} led to the tags running now; nothing to roll back to")
    report(d.deploy(targets, action="rollback"))


@click.command("releases")
@click.argument("app", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def releases_cmd(ctx, app, as_json) -> None:
    """The deploy log: who deployed what, when, and how it ended."""
    from dataclasses import asdict

    from plano.cli.main import console, infra_root
    from plano.ops import deploy, infra

    loaded = infra.load(infra_root(ctx))
    records = [r for r in deploy.read_log(loaded.root) if app is None or r.app == app]
    if as_json:
        click.echo(json.dumps([asdict(r) for r in records], indent=2))
        return
    from rich.table import Table

    table = Table("time", "user", "service", "from", "to", "action", "result", box=None)
    for r in records:
        table.add_row(r.time, r.user, r.service, r.from_tag, r.to_tag, r.action, r.result)
    console().print(table if records else "no deploys yet")


@click.command("maintenance")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.argument("app")
@click.option("--dev", is_flag=True, help="The dev stack instead of prod.")
@click.pass_context
def maintenance_cmd(ctx, state, app, dev) -> None:
    """nginx answers APP's requests with a 503 maintenance page (on) or serves it again (off).
    The other apps, ACME challenges and healthchecks are not affected."""
    from plano.cli.main import infra_root
    from plano.core import naming
    from plano.core.manifest import require_app
    from plano.ops import infra

    loaded = infra.load(infra_root(ctx))
    require_app(loaded.manifest, app)
    flag = loaded.root / naming.maintenance_flag(app, "dev" if dev else "prod")
    flag.parent.mkdir(parents=True, exist_ok=True)
    if state == "on":
        flag.write_text("on\n")
    else:
        flag.unlink(missing_ok=True)
    click.echo(f"{app}: maintenance {state} (nginx checks data/{'dev/' if dev else ''}nginx/maintenance/{app} on every request)")
