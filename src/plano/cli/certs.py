"""`plano certs ...`: issue, renew, status, dev-ca."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import echo_json, table
from plano.core.mode import Mode


@click.group("certs")
def certs_group() -> None:
    """HTTPS certificates: Let's Encrypt (or another ACME server) for prod, your own per app, a local CA for dev."""


@certs_group.command("issue")
@click.argument("apps", nargs=-1, type=P.APP)
@click.option("--all", "all_apps", is_flag=True, help="Every app, and the dashboard when dashboard.domain is set.")
@click.option("--dashboard", is_flag=True, help="The dashboard's certificate (dashboard.domain), named plano.")
@click.option("--staging", is_flag=True, help="Let's Encrypt's staging server (untrusted certificates, high limits).")
@click.option("--server", metavar="URL", type=P.ACME_URL, help="Another ACME directory URL, this once (default: acme.server in plano.yml, Let's Encrypt).")
@click.option("--force", is_flag=True, help="A new certificate even if the current one is not due.")
@click.option("--dry-run", is_flag=True, help="Print the certbot commands instead of running them.")
@click.pass_context
def issue_cmd(ctx, apps, all_apps, dashboard, staging, server, force, dry_run) -> None:
    """Get one certificate per app covering all its domains, through the running prod nginx,
    then wait until nginx serves it (no reload: nginx loads new certificates by itself within
    seconds). Apps with `tls:` in plano.yml get their own files installed."""
    from plano.ops import certs

    issued = certs.issue(session(ctx, Mode.PROD, dry_run), apps, all_apps, staging, server, force, dashboard)
    if issued.done and not dry_run:
        if issued.late:
            click.echo(f"warning: nginx does not serve the new certificate of {', '.join(issued.late)} yet", err=True)
        else:
            click.echo("nginx serves the new certificates (no reload)")


@certs_group.command("renew")
@click.option("--force", is_flag=True, help="Renew now even if not due (certbot --force-renewal).")
@click.option("--dry-run", is_flag=True, help="Print the certbot commands instead of running them.")
@click.pass_context
def renew_cmd(ctx, force, dry_run) -> None:
    """Renew due certificates now (the certbot service also does it every 12 h); nginx serves
    them within seconds, with no reload."""
    from plano.ops import certs

    renewed, late = certs.renew(session(ctx, Mode.PROD, dry_run), force)
    if dry_run:
        return
    click.echo("\n".join(renewed) if renewed else "nothing was due for renewal")
    if late:
        click.echo(f"warning: nginx does not serve the renewed certificate of {', '.join(late)} yet", err=True)


@certs_group.command("status")
@click.option("--dev", is_flag=True, help="The dev stack's certificates instead of prod's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def certs_status_cmd(ctx, dev, as_json) -> None:
    """Per domain: issuer, expiry, days left, and whether nginx serves the installed certificate (a real TLS handshake)."""
    from plano.ops import certs

    rows = certs.status(session(ctx, Mode.of(dev)))
    if as_json:
        echo_json(rows)
        return

    def serving(row) -> str:
        return "yes" if row.serving else ("no: " + row.error if row.error else "no")

    table(("domain", "app", "source", "issuer", "expires", "days", "serving"),
          [(r.domain, r.app, r.source, r.issuer or "-", (r.not_after or "-")[:10],
            str(r.days_left) if r.days_left is not None else "-", serving(r)) for r in rows], "no apps yet")


@certs_group.command("dev-ca")
def dev_ca_cmd() -> None:
    """Print where the local dev CA is (made on first use) and how to trust it."""
    from plano.ops import devca

    ca, created = devca.ensure_ca()
    click.echo(f"{'created' if created else 'the'} plano development CA: {ca.path}")
    click.echo(devca.trust_hint(ca.path))


def commands() -> list[click.Command]:
    return [certs_group]
