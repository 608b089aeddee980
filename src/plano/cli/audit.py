"""`plano audit` and the audit line of each command that changes something (ops/audit.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from plano.cli.context import session
from plano.cli.output import echo_json, table
from plano.core.session import Session

if TYPE_CHECKING:
    from plano.ops.audit import Entry

T = TypeVar("T")


def outcome(exc: BaseException) -> tuple[int, str]:
    """The exit code `main` gives for `exc`, and the result the audit line says."""
    from plano.ops import audit

    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code, "" if exc.exit_code == 0 else f"failed: exit {exc.exit_code}"
    if isinstance(exc, click.ClickException):
        return exc.exit_code, f"failed: {exc.format_message()}"
    if isinstance(exc, click.exceptions.Abort):
        return 1, "interrupted"  # as main reports it
    return audit.outcome(exc)


def audited(made: Session, run: Callable[[], T], environment: str | None = None) -> T:
    """Run the command, then append its line to the audit log of its infra (ops/audit.py).
    A command run here for an environment (plano -e NAME k8s ...) says -e NAME in its line."""
    from plano.ops import audit

    return audit.audited(made, run, outcome, ("-e", environment) if environment else ())


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
