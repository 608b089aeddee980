"""`plano secrets ...`: init, encrypt, decrypt, edit, status (SOPS + age)."""

from __future__ import annotations

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import echo_json, table

DEV = click.option("--dev", is_flag=True, help="The dev secrets (.env.dev) instead of prod's (.env.prod).")


def env_file(dev: bool) -> str:
    from plano.core import naming as n

    return n.ENV_DEV if dev else n.ENV_PROD


@click.group("secrets")
def secrets_group() -> None:
    """Keep .env.prod and .env.dev in git, encrypted with SOPS and age (.env.prod.enc)."""


@secrets_group.command("init")
@click.option("--recipient", "recipients", multiple=True, metavar="AGE1...", help="A teammate's age public key; repeat for more.")
@click.pass_context
def init_cmd(ctx, recipients) -> None:
    """Create this machine's age key ($SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt; an
    existing one is reused) and write .sops.yaml, which encrypts for it and each --recipient."""
    from plano.ops import secrets

    made = secrets.init(session(ctx), list(recipients))
    click.echo(f"{'created' if made.key_created else 'using'} the age key {made.key_file} (public key {made.public_key})")
    if made.key_created:
        click.echo("  back it up outside this server (a password manager): without it the .enc files cannot be decrypted")
    click.echo(f"{'wrote' if made.config_written else 'unchanged:'} {made.config}: {len(made.recipients)} recipient(s)")
    if made.config_written:
        click.echo("Next: plano secrets encrypt, then commit .sops.yaml and .env.prod.enc")


@secrets_group.command("encrypt")
@DEV
@click.pass_context
def encrypt_cmd(ctx, dev) -> None:
    """Encrypt .env.prod to .env.prod.enc (commit that one)."""
    from plano.ops import secrets

    done = secrets.encrypt(session(ctx), env_file(dev))
    click.echo(f"wrote {done.path}" if done.changed else f"unchanged: {done.path} already holds these values")


@secrets_group.command("decrypt")
@DEV
@click.option("--force", is_flag=True, help="Overwrite a plain file that has values the encrypted one lacks.")
@click.pass_context
def decrypt_cmd(ctx, dev, force) -> None:
    """Decrypt .env.prod.enc to .env.prod (mode 0600)."""
    from plano.ops import secrets

    done = secrets.decrypt(session(ctx), env_file(dev), force)
    click.echo(f"wrote {done.path} (mode 0600)" if done.changed else f"unchanged: {done.path}")


@secrets_group.command("edit")
@DEV
@click.option("--force", is_flag=True, help="Edit even if the plain file has values the encrypted one lacks (they are dropped).")
@click.pass_context
def edit_cmd(ctx, dev, force) -> None:
    """Edit .env.prod.enc in $EDITOR through sops, then decrypt it to .env.prod."""
    from plano.ops import secrets

    done = secrets.edit(session(ctx), env_file(dev), force)
    click.echo(f"wrote {done.path} and {env_file(dev)}" if done.changed else f"unchanged: {done.path}")


@secrets_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_cmd(ctx, as_json) -> None:
    """Per env file: plain copy here?, encrypted copy here?, same values?, recipients."""
    from plano.core import naming as n
    from plano.ops import secrets

    states = secrets.status(session(ctx))
    if as_json:
        echo_json(states)
        return

    def sync(st) -> str:
        if st.in_sync is None:
            return st.detail or "-"
        return "yes" if st.in_sync else f"no: {', '.join(st.differing_keys[:4])}"

    table(("file", "plain", "encrypted", "in sync", "recipients"),
          [(st.file, "yes" if st.plain else "no", "yes" if st.encrypted else "no", sync(st),
            f"{len(st.recipients)}" + (f" (+{len(st.missing_recipients)} in {n.SOPS_CONFIG}: re-encrypt)" if st.missing_recipients else ""))
           for st in states], "")


@secrets_group.command("rotate")
@click.argument("app", type=P.APP)
@click.option("--dry-run", is_flag=True, help="Print every command and file change instead of making them (passwords masked).")
@click.pass_context
def rotate_cmd(ctx, app, dry_run) -> None:
    """New database and Redis passwords for APP in the running prod stack, with no failed
    request: Redis takes both passwords, Postgres the new one, .env.prod is updated, APP's
    services restart one by one through the deploy's switch, then Redis drops the old one."""
    from plano.core.mode import Mode
    from plano.ops import rotate

    done = rotate.rotate(session(ctx, Mode.PROD, dry_run), app)
    if dry_run:
        return
    parts = [name for name, wanted in (("database", done.database), ("Redis", done.redis)) if wanted]
    click.echo(f"{app}: new {' and '.join(parts)} password(s) in use; restarted {', '.join(r.service for r in done.restarted)} "
               "(recorded in the deploy log)")
    if done.reencrypt:
        click.echo(f"  {done.reencrypt}")


def commands() -> list[click.Command]:
    return [secrets_group]
