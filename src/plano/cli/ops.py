"""`plano clone`, `plano doctor` and `plano status`: day-to-day operations."""

from __future__ import annotations

import json
import sys

import click


@click.command("clone")
@click.option("--app", help="Only this app.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def clone_cmd(ctx, app, as_json) -> None:
    """Clone every app repo named in plano.yml (apps.<app>.repo) that is missing next to the
    infra, where the manifest expects it; report the state of those already there."""
    from plano.cli.main import console, infra_root
    from plano.core.errors import PlanoError
    from plano.core.runner import SubprocessRunner
    from plano.ops import clone, infra

    loaded = infra.load(infra_root(ctx))
    states = clone.clone(loaded.root, loaded.manifest, clone.chosen(loaded.manifest, app), SubprocessRunner())
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in states], indent=2))
    else:
        from rich.table import Table

        table = Table("app", "path", "state", "branch", "changes", "ahead/behind", "detail", box=None)
        for s in states:
            ab = f"+{s.ahead}/-{s.behind}" if s.ahead is not None else "-"
            table.add_row(s.app, s.path, s.state, s.branch or "-", {True: "dirty", False: "clean"}.get(s.dirty, "-"), ab, s.detail)
        console().print(table)
    failed = [s.app for s in states if s.state == "failed"]
    if failed:
        raise PlanoError(f"could not clone {', '.join(failed)} (see above); the others are in place")


@click.command("doctor")
@click.option("--prod", "prod_dns", is_flag=True, help="Also check that every domain resolves to this server.")
@click.option("--public-ip", help="This server's public address, for --prod (default: its own addresses).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor_cmd(ctx, prod_dns, public_ip, as_json) -> None:
    """Check what commonly breaks a deployment, each with ok / warn / fail, a reason and a fix.
    Exits 1 when anything fails."""
    from plano.cli.main import console, infra_root
    from plano.core.runner import SubprocessRunner
    from plano.ops import doctor, infra

    loaded = infra.load(infra_root(ctx))
    out = console(stderr=True)
    with out.status("checking...") as spinner:
        findings = doctor.run(loaded.root, loaded.manifest, SubprocessRunner(), prod_dns, public_ip,
                              lambda name: spinner.update(f"checking {name}..."))
    if as_json:
        click.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        from rich.table import Table

        colours = {doctor.OK: "green", doctor.WARN: "yellow", doctor.FAIL: "red"}
        table = Table("check", "", "reason", "fix", box=None)
        for f in findings:
            table.add_row(f.check, f"[{colours[f.status]}]{f.status}[/]", f.reason, f.fix)
        console().print(table)
    code = doctor.exit_code(findings)
    if code:
        raise click.exceptions.Exit(code)


@click.command("status")
@click.option("--dev", is_flag=True, help="The dev stack instead of prod.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, dev, as_json) -> None:
    """Per app and service: image and tag running against the tag recorded, health, uptime,
    restarts, URL; then certificates, the last backup and data/'s disk usage."""
    from plano.cli.main import console, infra_root
    from plano.core.runner import SubprocessRunner
    from plano.engine import stack
    from plano.ops import infra, status

    loaded = infra.load(infra_root(ctx))
    runner = SubprocessRunner()
    stack.require_engine(runner)
    report = status.collect(loaded.root, loaded.manifest, "dev" if dev else "prod", runner)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    plain = not sys.stdout.isatty()
    out = console()
    headers = ("service", "state", "health", "image tag", "recorded", "uptime", "restarts", "url")
    rows = []
    for row in report["apps"]:
        recorded = (row["recorded_tag"] or "-") + ("" if row["matches"] else " (differs)")
        rows.append((row["service"], row["state"], row["health"] or "-", row["tag"] or "-", recorded,
                     status.uptime(row["uptime_seconds"]), str(row["restarts"] if row["restarts"] is not None else "-"), row["url"]))
    rows += [(row["service"], row["state"], row["health"], "", "", "", str(row["restarts"]), "") for row in report["infra"]]
    title = f"{report['mode']} ({report['project']})"
    if plain:  # piped: whole values, aligned columns, no colour
        click.echo(title)
        click.echo(status.text_table(headers, rows))
    else:
        apps = Table(*headers, title=title, box=None)
        for cells in rows:
            apps.add_row(*(c.replace("(differs)", "[red](differs)[/]") for c in cells))
        out.print(apps)
    for cert in report["certificates"]:
        days = "placeholder" if cert["placeholder"] else f"{cert['days_left']} days left ({cert['issuer']})"
        out.print(f"certificate {cert['app']}: {days}", highlight=False)
    b = report["backup"]
    out.print(f"backups: {b['count']}, last {b['last'] or 'never'}; last success {b['last_success'] or 'never'}", highlight=False)
    free = report["data"]["free_bytes"]
    out.print(f"{report['data']['path']}/: {report['data']['bytes'] / 1e6:.1f} MB used"
              + (f", {free / 1e9:.1f} GB free" if free is not None else ""), highlight=False)
