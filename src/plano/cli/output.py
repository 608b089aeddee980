"""How the command line prints: results on stdout, progress and commands on stderr,
tables with Rich (colour off with NO_COLOR or when piped), JSON from dataclasses."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


class ConsoleOutput:
    """The Session's output for a terminal."""

    def info(self, text: str) -> None:
        click.echo(text)

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def planned(self, text: str) -> None:
        click.echo(text)


def echo_json(value: Any) -> None:
    """A dataclass (or a list of them, or plain data) as JSON on stdout."""
    def plain(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return dataclasses.asdict(item)
        if isinstance(item, list):
            return [plain(i) for i in item]
        return item

    click.echo(json.dumps(plain(value), indent=2))


def summarize(result, verb: str = "wrote") -> None:
    """What a render wrote and removed."""
    out = console()
    for rel in sorted(result.writes):
        out.print(f"  {verb} {rel}")
    for rel in result.removes:
        out.print(f"  removed {rel}")
    if not result.changed:
        out.print("  everything up to date")


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]], empty: str, title: str | None = None) -> None:
    from rich.table import Table

    shown = Table(*headers, title=title, box=None)
    for cells in rows:
        shown.add_row(*cells)
    console().print(shown if rows else empty)


def text_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Aligned plain-text columns (for pipes: nothing cut, no colour)."""
    widths = [max(len(str(cells[i])) for cells in (headers, *rows)) for i in range(len(headers))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in (headers, *rows))


def finish(code: int) -> None:
    """Exit with a tool's own exit code (compose, psql, the tests)."""
    if code:
        raise click.exceptions.Exit(code)
