"""`plano audit` and the audit line of each command that changes something (ops/audit.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from plano.cli.context import session
from plano.cli.output import echo_json, table
from plano.core.errors import BAD_INPUT, BUG, PlanoError
from plano.core.session import Session

if TYPE_CHECKING:
    from plano.core.actor import Actor
    from plano.ops.audit import Entry

T = TypeVar("T")
INTERRUPTED = 130


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def outcome(exc: BaseException) -> tuple[int, str]:
    """The exit code `main` gives for `exc`, and the result the audit line says."""
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code, "" if exc.exit_code == 0 else f"failed: exit {exc.exit_code}"
    if isinstance(exc, PlanoError):
        return exc.exit_code, f"failed: {exc}"
    if isinstance(exc, click.ClickException):
        return exc.exit_code, f"failed: {exc.format_message()}"
    if isinstance(exc, click.exceptions.Abort):
        return 1, "interrupted"  # as main reports it
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    return BUG, f"failed: a bug in plano ({type(exc).__name__})"


def audited(made: Session, run: Callable[[], T], environment: str | None = None) -> T:
    """Run the command, then append its line to the audit log of its infra. No line for a
    command refused for its input (exit 2: nothing ran) or that found no plano.yml. A
    command run here for an environment (plano -e NAME k8s ...) says -e NAME in its line."""
    from plano.core import actor

    started, code, why = now(), 0, ""
    try:
        value = run()
        code = value if isinstance(value, int) else 0
        return value
    except BaseException as exc:
        code, why = outcome(exc)
        raise
    finally:
        if code != BAD_INPUT:
            write(made, started, code, why, actor.current(), ("-e", environment) if environment else ())


def write(made: Session, started: str, code: int, why: str, who: Actor, options: tuple[str, ...] = ()) -> None:
    from plano.core.manifest import MANIFEST_FILE
    from plano.core.naming import AUDIT_LOG
    from plano.ops import audit

    try:
        root = made.root
        secrets = made.secret_values()
    except (PlanoError, OSError):
        return  # no infra (or none readable): the command changed nothing
    if not (root / MANIFEST_FILE).is_file():
        return
    line = audit.entry(started, now(), who, audit.commit(root), (*options, *made.command), code, why, secrets)
    try:
        audit.append(root, line)
    except OSError as exc:  # the command is done: say so, without turning its result into a failure
        click.echo(f"warning: could not append to {root / AUDIT_LOG}: {exc.strerror}", err=True)


@click.command("audit")
@click.option("-n", "--lines", "last", type=click.IntRange(1, 1_000_000), default=20, show_default=True, help="How many of the last entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per entry, oldest first).")
@click.pass_context
def audit_cmd(ctx, last, as_json) -> None:
    """The audit log (data/logs/audit.jsonl): every command that changed something here, who
    ran it and from where, at which commit of the infra, and its result. With -e: the server's."""
    from plano.ops import audit

    entries = audit.read(session(ctx).root, last)
    if as_json:
        echo_json(entries)
        return
    table(("started", "seconds", "user", "from", "commit", "command", "exit", "result"),
          [(e.started, seconds(e), e.user, e.host, e.commit[:12] or "-", " ".join(e.command), str(e.exit), e.result)
           for e in entries], "no command changed anything here yet", None)


def seconds(item: Entry) -> str:
    try:
        return f"{(dt.datetime.fromisoformat(item.ended) - dt.datetime.fromisoformat(item.started)).total_seconds():.0f}"
    except ValueError:
        return "-"


def commands() -> list[click.Command]:
    return [audit_cmd]
