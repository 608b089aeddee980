"""`plano [-e NAME] k8s apply|secrets apply|deploy|status|maintenance`: the Kubernetes export,
run with kubectl from here (with -e: the environment's overlay, namespace, context and .env.NAME)."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import echo_json, table
from plano.core import naming as n
from plano.core.errors import UsageError
from plano.core.mode import Mode

SERVICE = click.Choice(["backend", "frontend"])
STATES = ("on", "off")
DRY = click.option("--dry-run", is_flag=True, help="Print the kubectl commands instead of running them.")


def environment(ctx: click.Context) -> str | None:
    """-e NAME: the environment whose overlay the command runs (none: prod's)."""
    return ctx.find_root().meta.get("plano.environment")


def env_file(ctx: click.Context) -> str:
    name = environment(ctx)
    return n.environment_env(name) if name else n.ENV_PROD


@click.group("k8s")
def k8s_group() -> None:
    """Run the Kubernetes export (plano export kubernetes) with kubectl, from here: the prod
    overlay on kubernetes.context (default: kubectl's current), or with -e NAME the environment's."""


@k8s_group.command("apply")
@DRY
@click.pass_context
def apply_cmd(ctx, dry_run) -> None:
    """Apply k8s/overlays/prod (with -e NAME: k8s/overlays/NAME) with each app's images at the
    tags .env.prod (.env.NAME) records (the tree says latest) and each app in maintenance kept
    so. Use it rather than a plain kubectl apply -k, which would take every app back to latest."""
    from plano.ops import k8s

    applied = k8s.apply_tree(session(ctx, Mode.PROD, dry_run), environment(ctx))
    if not dry_run:
        click.echo(f"applied {applied.objects} objects")
        for deployment, image in sorted(applied.images.items()):
            click.echo(f"  {deployment}: {image}")
        for ingress in applied.in_maintenance:
            click.echo(f"  {ingress}: kept in maintenance")


@k8s_group.group("secrets")
def secrets_group() -> None:
    """The Secrets the k8s/ tree names."""


@secrets_group.command("apply")
@DRY
@click.pass_context
def secrets_apply_cmd(ctx, dry_run) -> None:
    """Create or update every Secret the tree names from .env.prod (or its encrypted copy; with
    -e NAME: .env.NAME, made with new secrets when missing), through kubectl's stdin: no value
    on a command line, in a file or in the output."""
    from plano.ops import k8s

    applied = k8s.apply_secrets(session(ctx, Mode.PROD, dry_run), environment(ctx))
    if not dry_run:
        for secret in applied:
            click.echo(f"secret {secret.name} (namespace {secret.namespace}): {', '.join(secret.keys)}")


@k8s_group.command("deploy")
@click.argument("app", type=P.APP)
@click.option("--service", "role", type=SERVICE, help="Only this service [both].")
@click.option("--tag", required=True, type=P.IMAGE_TAG, help="The image tag to run, e.g. 1.2.3 or a commit SHA.")
@click.option("--timeout", default=300.0, type=P.SECONDS, show_default=True,
              help="Seconds each Deployment's rollout has to become ready; then it is undone.")
@DRY
@click.pass_context
def deploy_cmd(ctx, app, role, tag, timeout, dry_run) -> None:
    """Run APP's release Jobs in TAG, then roll its Deployments over to TAG (old pods serve
    until new ones are ready); a rollout not ready in time is undone. Recorded in the
    deploy log (plano releases; with -e NAME, data/logs/deploys.NAME.jsonl) and, on success,
    in .env.prod (.env.NAME)."""
    from plano.cli.deploy import report
    from plano.ops import k8s

    records = k8s.deploy(session(ctx, Mode.PROD, dry_run), app, role, tag, timeout, environment(ctx))
    if not dry_run:
        report(records, env_file(ctx), n.k8s_deploy_log(environment(ctx) or n.K8S_PROD))


@k8s_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, as_json) -> None:
    """Deployments, StatefulSets and Jobs of the namespace: ready pods, image tag (and
    .env.prod's, .env.NAME's with -e), conditions; exit 1 when one is short, failed or runs another tag."""
    from plano.ops import k8s

    rows = k8s.status(session(ctx, Mode.PROD), environment(ctx))
    if as_json:
        echo_json(rows)
    else:
        table(("kind", "name", "ready", "tag", "conditions", "ok"),
              [(r.kind, r.name, f"{r.ready}/{r.desired}", r.shown_tag, ", ".join(r.conditions) or "-", "yes" if r.ok else "NO")
               for r in rows], "no workloads in the namespace")
    if not rows or not all(r.ok for r in rows):
        ctx.exit(1)


@k8s_group.command("maintenance")
@click.argument("first", metavar="APP")
@click.argument("second", metavar="on|off")
@DRY
@click.pass_context
def maintenance_cmd(ctx, first, second, dry_run) -> None:
    """Send every request for APP to the maintenance Service's 503 page (on), or back to
    APP's services (off), by patching APP's Ingress (`on|off APP` works too, as in
    plano maintenance). A later kubectl apply of the tree switches it off."""
    from plano.ops import k8s

    app, state = (second, first) if first in STATES and second not in STATES else (first, second)
    if state not in STATES:
        raise UsageError(f"{state!r}: give on or off (plano k8s maintenance APP on|off)")
    app = P.APP.convert(app, None, ctx)
    switched = k8s.maintenance(session(ctx, Mode.PROD, dry_run), app, state == "on", environment(ctx))
    if not dry_run:
        click.echo(f"{app}: maintenance {state} (Ingress {switched.ingress}: {', '.join(switched.backends)})")


def commands() -> list[click.Command]:
    return [k8s_group]
