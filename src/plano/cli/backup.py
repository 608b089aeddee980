"""`plano backup run|list|verify|restore|prune`."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import console, echo_json, table
from plano.core.mode import Mode

DEV = click.option("--dev", is_flag=True, help="The dev stack's backups (data/dev/backups/) instead of prod's.")
DRY = click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")


@click.group("backup")
def backup_group() -> None:
    """Backups in data/backups/: databases (pg_dump -Fc), uploads, checked and checksummed; retention; offsite with restic."""


@backup_group.command("run")
@click.argument("apps", nargs=-1, type=P.APP)
@click.option("--all", "all_apps", is_flag=True, help="Every app (the default).")
@DEV
@DRY
@click.pass_context
def run_cmd(ctx, apps, all_apps, dev, dry_run) -> None:
    """Back up every app (or APPS) now, then apply retention and copy offsite."""
    from plano.ops import backup

    made = backup.run(session(ctx, Mode.of(dev), dry_run), apps, all_apps)
    if made:
        click.echo(f"backup {made} done")


@backup_group.command("list")
@DEV
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx, dev, as_json) -> None:
    """The backups, their size and apps, and when the last run succeeded or failed."""
    from plano.ops import backup

    listed = backup.listing(session(ctx, Mode.of(dev)))
    if as_json:
        echo_json(listed)
        return
    table(("id", "size", "apps"), [(b.id, f"{b.bytes / 1e6:.1f} MB", " ".join(b.apps)) for b in listed.backups],
          "no backups yet: plano backup run")
    out = console()
    out.print(f"last success: {listed.last_success or 'never'}")
    for run in listed.interrupted:
        out.print(f"[yellow]interrupted run {run}: not a backup (the next run removes its files)[/]", highlight=False)
    if listed.last_failure and (listed.last_success or "") < listed.last_failure:
        out.print(f"[red]last run FAILED at {listed.last_failure}: {listed.failure}[/]", highlight=False)


@backup_group.command("verify")
@click.argument("backup_id", required=False, type=P.BACKUP_ID)
@DEV
@DRY
@click.pass_context
def verify_cmd(ctx, backup_id, dev, dry_run) -> None:
    """Restore BACKUP_ID (default: the newest) into scratch databases and compare per-table
    row counts and content checksums with those taken at dump time; then drop them."""
    from plano.ops import backup

    backup.verify(session(ctx, Mode.of(dev), dry_run), backup_id)
    if not dry_run:
        click.echo("verified")


@backup_group.command("restore")
@click.argument("backup_id", type=P.BACKUP_ID)
@click.argument("app", required=False, type=P.APP)
@click.option("--to-scratch", "scratch", metavar="NAME", type=P.DATABASE, help="Restore APP's database into a new database NAME instead (nothing else changes).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@DEV
@DRY
@click.pass_context
def restore_cmd(ctx, backup_id, app, scratch, yes, dev, dry_run) -> None:
    """Restore BACKUP_ID (every app in it, or APP): its databases and uploads replace the
    current ones. A safety backup of the current state is taken first."""
    from plano.ops import backup

    s = session(ctx, Mode.of(dev), dry_run)
    backup.check_restore(s, backup_id, app, scratch)
    what = f"into the new database {scratch}" if scratch else f"over the current {'data of ' + app if app else 'data of every app in it'}"
    if not yes and not dry_run:
        click.confirm(f"restore {backup_id} {what}?", abort=True)
    backup.restore(s, backup_id, app, scratch)
    if not dry_run:
        click.echo(f"restored {backup_id} {what}")


@backup_group.command("prune")
@DEV
@DRY
@click.pass_context
def prune_cmd(ctx, dev, dry_run) -> None:
    """Apply the retention policy of plano.yml (backup: keep_daily, keep_weekly, keep_monthly) now."""
    from plano.ops import backup

    backup.prune(session(ctx, Mode.of(dev), dry_run))


def commands() -> list[click.Command]:
    return [backup_group]
