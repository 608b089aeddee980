"""`plano backup run|list|verify|restore|prune`."""

from __future__ import annotations

import json
import shlex

import click

from plano.cli.stack import load

DEV = click.option("--dev", is_flag=True, help="The dev stack's backups (data/dev/backups/) instead of prod's.")


def mode_of(dev: bool) -> str:
    return "dev" if dev else "prod"


def execute(ctx: click.Context, dev: bool, build_argv, dry_run: bool = False, what: str = "backup") -> str:
    """Run the backup script in a one-off container of the backup service; its output streams by."""
    from plano.core.errors import PlanoError
    from plano.engine import stack

    st, runner = load(ctx, mode_of(dev))
    argv = build_argv(st)
    if dry_run:
        click.echo(shlex.join(argv))
        return ""
    stack.require_engine(runner)
    if "database" not in stack.running_services(st, runner):
        raise PlanoError(f"the database is not running; start the stack first (plano {st.mode} up)")
    result = runner.run(argv, cwd=st.root, timeout=6 * 3600)
    click.echo(result.err, err=True, nl=False)
    if not result.ok:
        lines = [line for line in result.err.splitlines() if line.startswith("plano-backup:")]
        raise PlanoError(f"{what} failed: {lines[-1].removeprefix('plano-backup: ') if lines else result.output[-500:]}")
    return result.out


@click.group("backup")
def backup_group() -> None:
    """Backups in data/backups/: databases (pg_dump -Fc), uploads, checked and checksummed; retention; offsite with restic."""


@backup_group.command("run")
@click.argument("apps", nargs=-1)
@click.option("--all", "all_apps", is_flag=True, help="Every app (the default).")
@DEV
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
@click.pass_context
def run_cmd(ctx, apps, all_apps, dev, dry_run) -> None:
    """Back up every app (or APPS) now, then apply retention and copy offsite."""
    from plano.cli.main import infra_root
    from plano.ops import backup, infra

    chosen = backup.chosen(infra.load(infra_root(ctx)).manifest, apps, all_apps)
    out = execute(ctx, dev, lambda st: backup.run_argv(st, chosen), dry_run)
    if out:
        click.echo(f"backup {out.split()[-1]} done")


@backup_group.command("list")
@DEV
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx, dev, as_json) -> None:
    """The backups, their size and apps, and when the last run succeeded or failed."""
    from plano.cli.main import console, infra_root
    from plano.ops import backup, infra

    loaded = infra.load(infra_root(ctx))
    folder = backup.backups_dir(loaded.root, mode_of(dev))
    found, state = backup.entries(folder), backup.status(folder)
    if as_json:
        rows = [{"id": e.id, "bytes": e.bytes, "apps": e.apps, "postgres": e.postgres} for e in found]
        click.echo(json.dumps({"backups": rows, **state}, indent=2))
        return
    from rich.table import Table

    table = Table("id", "size", "apps", box=None)
    for e in found:
        table.add_row(e.id, f"{e.bytes / 1e6:.1f} MB", " ".join(e.apps))
    out = console()
    out.print(table if found else "no backups yet: plano backup run")
    out.print(f"last success: {state['last_success'] or 'never'}")
    for run in state["interrupted"]:
        out.print(f"[yellow]interrupted run {run}: not a backup (the next run removes its files)[/]", highlight=False)
    if state["last_failure"] and (state["last_success"] or "") < state["last_failure"]:
        out.print(f"[red]last run FAILED at {state['last_failure']}: {state['failure']}[/]", highlight=False)


@backup_group.command("verify")
@click.argument("backup_id", required=False)
@DEV
@click.pass_context
def verify_cmd(ctx, backup_id, dev) -> None:
    """Restore BACKUP_ID (default: the newest) into scratch databases and compare per-table
    row counts and content checksums with those taken at dump time; then drop them."""
    from plano.ops import backup

    if backup_id:
        backup.check_id(backup_id)
    execute(ctx, dev, lambda st: backup.verify_argv(st, backup_id), what="verification")
    click.echo("verified")


@backup_group.command("restore")
@click.argument("backup_id")
@click.argument("app", required=False)
@click.option("--to-scratch", "scratch", metavar="NAME", help="Restore APP's database into a new database NAME instead (nothing else changes).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@DEV
@click.pass_context
def restore_cmd(ctx, backup_id, app, scratch, yes, dev) -> None:
    """Restore BACKUP_ID (every app in it, or APP): its databases and uploads replace the
    current ones. A safety backup of the current state is taken first."""
    from plano.cli.main import infra_root
    from plano.core.errors import UsageError
    from plano.core.manifest import require_app
    from plano.ops import backup, infra

    manifest = infra.load(infra_root(ctx)).manifest
    backup.check_id(backup_id)
    scratch = backup.check_scratch(scratch, manifest)
    if app is not None:
        require_app(manifest, app)
    if scratch and not app:
        raise UsageError("--to-scratch restores one app's database: give the APP")
    what = f"into the new database {scratch}" if scratch else f"over the current {'data of ' + app if app else 'data of every app in it'}"
    if not yes:
        click.confirm(f"restore {backup_id} {what}?", abort=True)
    if not scratch:
        safety = execute(ctx, dev, lambda st: backup.run_argv(st, [app] if app else [], prune=False), what="the safety backup")
        click.echo(f"safety backup of the current state: {safety.split()[-1]}")
    execute(ctx, dev, lambda st: backup.restore_argv(st, backup_id, app, scratch), what="restore")
    click.echo(f"restored {backup_id} {what}")


@backup_group.command("prune")
@DEV
@click.pass_context
def prune_cmd(ctx, dev) -> None:
    """Apply the retention policy of plano.yml (backup: keep_daily, keep_weekly, keep_monthly) now."""
    from plano.ops import backup

    execute(ctx, dev, backup.prune_argv, what="retention")
