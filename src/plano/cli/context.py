"""The Session of the command being run: made once in `main`, carried by click's context."""

from __future__ import annotations

import click

from plano.core.mode import Mode
from plano.core.session import Session


def session(ctx: click.Context, mode: Mode | None = None, dry_run: bool = False) -> Session:
    """The command's Session, for `mode` when the command has one."""
    made: Session = ctx.find_root().obj
    return made.with_mode(mode, dry_run) if mode is not None else made
