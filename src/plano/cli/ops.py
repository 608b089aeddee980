"""`plano clone`, `plano doctor` and `plano status`: day-to-day operations."""

from __future__ import annotations

import sys

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import console, echo_json, finish, table, text_table
from plano.core.mode import Mode


@click.command("clone")
@click.option("--app", type=P.APP, help="Only this app.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def clone_cmd(ctx, app, as_json) -> None:
    """Clone every app repo named in plano.yml (apps.<app>.repo) that is missing next to the
    infra, where the manifest expects it; report the state of those already there."""
    from plano.core.errors import PlanoError
    from plano.ops import clone

    states = clone.clone_apps(session(ctx), app)
    if as_json:
        echo_json(states)
    else:
        table(("app", "path", "state", "branch", "changes", "ahead/behind", "detail"),
              [(s.app, s.path, s.state, s.branch or "-", {True: "dirty", False: "clean"}.get(s.dirty, "-"),
                f"+{s.ahead}/-{s.behind}" if s.ahead is not None else "-", s.detail) for s in states], "no apps yet")
    failed = [s.app for s in states if s.state == "failed"]
    if failed:
        raise PlanoError(f"could not clone {', '.join(failed)} (see above); the others are in place")


@click.command("doctor")
@click.option("--prod", "prod_dns", is_flag=True, help="Also check that every domain resolves to this server.")
@click.option("--public-ip", type=P.IP_ADDRESS, help="This server's public address, for --prod (default: its own addresses).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor_cmd(ctx, prod_dns, public_ip, as_json) -> None:
    """Check what commonly breaks a deployment, each with ok / warn / fail, a reason and a fix.
    Exits 1 when anything fails."""
    from plano.ops import doctor

    with console(stderr=True).status("checking...") as spinner:
        findings = doctor.run(session(ctx), prod_dns, public_ip, lambda name: spinner.update(f"checking {name}..."))
    if as_json:
        echo_json(findings)
    else:
        colours = {doctor.OK: "green", doctor.WARN: "yellow", doctor.FAIL: "red"}
        table(("check", "", "reason", "fix"), [(f.check, f"[{colours[f.status]}]{f.status}[/]", f.reason, f.fix) for f in findings], "")
    finish(doctor.exit_code(findings))


@click.command("status")
@click.option("--dev", is_flag=True, help="The dev stack instead of prod.")
@click.option("--all-environments", is_flag=True,
              help="Every environment of plano.yml, each asked over SSH (one row each; one that cannot be reached says why).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, dev, all_environments, as_json) -> None:
    """Per app and service: image and tag running against the tag recorded, health, uptime,
    restarts, limits (memory, cpus, pids), URL; then certificates, the last backup and
    data/'s disk usage. Exits 1 when a service does not run or was killed for going over
    its memory limit (each is named, with the command to run). On a swarm target, the
    stack's services as its manager knows them, and the data node's backups."""
    from plano.ops import status

    if all_environments:
        every_environment(ctx, dev, as_json)
        return
    report = status.collect(session(ctx, Mode.of(dev)))
    if as_json:
        echo_json(report)
        finish(status.exit_code(report))
        return
    headers = ("service", "state", "health", "image tag", "recorded", "uptime", "restarts", "memory", "cpus", "pids", "url")
    rows = [(r.service, r.state, r.health or "-", r.tag or "-", (r.recorded_tag or "-") + ("" if r.matches else " (differs)"),
             status.uptime(r.uptime_seconds), str(r.restarts if r.restarts is not None else "-"), *r.limits.cells(), r.url)
             for r in report.apps]
    rows += [(r.service, r.state, r.health or "-", "", "", "", str(r.restarts if r.restarts is not None else "-"),
              *r.limits.cells(), "") for r in report.infra]
    title = f"{report.mode} ({report.project})"
    out = console()
    if not sys.stdout.isatty():  # piped: whole values, aligned columns, no colour
        click.echo(title)
        click.echo(text_table(headers, rows))
    else:
        table(headers, [tuple(c.replace("(differs)", "[red](differs)[/]") for c in cells) for cells in rows], "", title)
    for cert in report.certificates:
        days = "placeholder" if cert.placeholder else f"{cert.days_left} days left ({cert.issuer})"
        out.print(f"certificate {cert.app}: {days}", highlight=False)
    b = report.backup
    verified = "" if not b.last else f" (verified {b.last_verified})" if b.last_verified else f" (not verified: plano backup verify {b.last})"
    out.print(f"backups: {b.count}, last {b.last or 'never'}{verified}; last success {b.last_success or 'never'}", highlight=False)
    free = report.data.free_bytes
    out.print(f"{report.data.path}/: {report.data.bytes / 1e6:.1f} MB used" + (f", {free / 1e9:.1f} GB free" if free is not None else ""),
              highlight=False)
    for p in report.problems:
        out.print(f"[red]fail[/]: {p.service} is {p.state}; run: {p.fix}", highlight=False)
    for kill in report.oom_kills:
        out.print(f"[red]fail[/]: {kill.reason()}; {kill.fix()}", highlight=False)
    finish(status.exit_code(report))


def every_environment(ctx: click.Context, dev: bool, as_json: bool) -> None:
    """`plano status --all-environments`: a row per environment; exits 1 unless all are ok."""
    from plano.core.errors import UsageError
    from plano.ops import remote

    if dev:
        raise UsageError("status --all-environments shows the environments' prod stacks; --dev is this machine's")
    made = session(ctx)
    if not any(env.host for env in made.manifest.environments.values()):
        raise UsageError("status --all-environments: plano.yml declares no environments with a host (see README, 'Remote "
                         "servers'; a Kubernetes-only one has plano -e NAME k8s status)")
    rows = remote.statuses(made)
    if as_json:
        echo_json(rows)
    else:
        headers = ("environment", "host", "state", "commit", "services", "detail")
        cells = [(r.environment, r.host, r.state, commit_cell(r), services_cell(r.status), r.detail) for r in rows]
        click.echo(text_table(headers, cells)) if not sys.stdout.isatty() else table(headers, cells, "")
    finish(0 if all(r.state == "ok" for r in rows) else 1)


def commit_cell(row) -> str:
    if not row.commit:
        return "-"
    return row.commit[:12] + {True: " (as here)", False: " (differs)", None: ""}[row.same_commit]


def services_cell(report: dict | None) -> str:
    if not report:
        return "-"
    services = [*report.get("apps", []), *report.get("infra", [])]
    running = sum(1 for s in services if s.get("state") == "running")
    return f"{running}/{len(services)} running"


def commands() -> list[click.Command]:
    return [clone_cmd, doctor_cmd, status_cmd]
