"""`plano certs ...`: issue, renew, status, dev-ca."""

from __future__ import annotations

import json
import shlex

import click

from plano.cli.stack import load


@click.group("certs")
def certs_group() -> None:
    """HTTPS certificates: Let's Encrypt (or another ACME server) for prod, your own per app, a local CA for dev."""


@certs_group.command("issue")
@click.argument("apps", nargs=-1)
@click.option("--all", "all_apps", is_flag=True, help="Every app.")
@click.option("--staging", is_flag=True, help="Let's Encrypt's staging server (untrusted certificates, high limits).")
@click.option("--server", metavar="URL", help="Another ACME directory URL, this once (default: acme.server in plano.yml, Let's Encrypt).")
@click.option("--force", is_flag=True, help="A new certificate even if the current one is not due.")
@click.option("--dry-run", is_flag=True, help="Print the certbot commands instead of running them.")
@click.pass_context
def issue_cmd(ctx, apps, all_apps, staging, server, force, dry_run) -> None:
    """Get one certificate per app covering all its domains, through the running prod nginx,
    then test and gracefully reload nginx. Apps with `tls:` in plano.yml get their own files installed."""
    from plano.cli.main import console
    from plano.engine import stack
    from plano.ops import certs

    st, runner = load(ctx, "prod")
    chosen = certs.chosen_apps(st.manifest, apps, all_apps)
    url = certs.acme_server(st.manifest, server, staging)
    if dry_run:
        for app in chosen:
            if not st.manifest.apps[app].tls:
                click.echo(shlex.join(certs.certonly_argv(st, app, st.manifest.apps[app].domains, st.manifest.email, url, force)))
                click.echo(shlex.join(certs.install_argv(st, app)))
        click.echo(shlex.join(certs.nginx_test_argv(st)))
        click.echo(shlex.join(certs.nginx_reload_argv(st)))
        return
    stack.require_engine(runner)
    certs.require_nginx(st, runner)
    out = console()
    done, failed = [], []
    for app in chosen:
        try:
            if st.manifest.apps[app].tls:
                own = certs.install_own(st.root, "prod", app, st.manifest.apps[app])
                out.print(f"{app}: installed your certificate (issuer {own.issuer}, until {own.not_after.date()})", highlight=False)
            else:
                certs.issue_acme(st, runner, app, url, force, lambda line: out.print(line, highlight=False))
                out.print(f"{app}: certificate installed", highlight=False)
            done.append(app)
        except certs.CertError as exc:
            failed.append(app)
            click.echo(f"error: {exc}", err=True)
    if done:
        certs.reload_nginx(st, runner)
        late = certs.wait_until_served(st.root, st.manifest, done)
        out.print("nginx tested and reloaded gracefully" + (f"; not yet served for {', '.join(late)}" if late else ""))
    if failed:
        raise certs.CertError(
            f"no new certificate for {', '.join(failed)} (see above); nginx keeps serving what it served, "
            "fix the cause and run the same command again"
        )


@certs_group.command("renew")
@click.option("--force", is_flag=True, help="Renew now even if not due (certbot --force-renewal).")
@click.option("--dry-run", is_flag=True, help="Print the certbot command instead of running it.")
@click.pass_context
def renew_cmd(ctx, force, dry_run) -> None:
    """Renew due certificates now (the certbot service also does it every 12 h), then reload nginx."""
    from plano.engine import stack
    from plano.ops import certs

    st, runner = load(ctx, "prod")
    if dry_run:
        click.echo(shlex.join(certs.renew_argv(st, force)))
        return
    stack.require_engine(runner)
    certs.require_nginx(st, runner)
    result = runner.run(certs.renew_argv(st, force), cwd=st.root, timeout=1800)
    if not result.ok:
        raise certs.CertError(f"renewal failed: {certs.explain_failure(result.output, ['some domains'], 'in data/certs/renewal/')}")
    renewed = [line.strip() for line in result.output.splitlines() if line.strip().endswith("(success)")]
    certs.reload_nginx(st, runner)
    apps = [app for app in certs.renewed_apps(result.output) if app in st.manifest.apps]
    late = certs.wait_until_served(st.root, st.manifest, apps)
    click.echo("\n".join(renewed) if renewed else "nothing was due for renewal")
    if late:
        click.echo(f"warning: nginx does not serve the renewed certificate of {', '.join(late)} yet", err=True)


@certs_group.command("status")
@click.option("--dev", is_flag=True, help="The dev stack's certificates instead of prod's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, dev, as_json) -> None:
    """Per domain: issuer, expiry, days left, and whether nginx serves the installed certificate (a real TLS handshake)."""
    from plano.cli.main import console, infra_root
    from plano.ops import certs, infra

    loaded = infra.load(infra_root(ctx))
    rows = certs.status(loaded.root, loaded.manifest, "dev" if dev else "prod")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table("domain", "app", "source", "issuer", "expires", "days", "serving", box=None)
    for row in rows:
        serving = "yes" if row["serving"] else ("no: " + row["error"] if row["error"] else "no")
        table.add_row(row["domain"], row["app"], row["source"], row["issuer"] or "-", (row["not_after"] or "-")[:10],
                      str(row["days_left"]) if row["days_left"] is not None else "-", serving)
    console().print(table if rows else "no apps yet")


@certs_group.command("dev-ca")
def dev_ca_cmd() -> None:
    """Print where the local dev CA is (made on first use) and how to trust it."""
    from plano.ops import devca

    ca, created = devca.ensure_ca()
    click.echo(f"{'created' if created else 'the'} plano development CA: {ca.path}")
    click.echo(devca.trust_hint(ca.path))
