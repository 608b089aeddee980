"""`plano traffic`: the figures of the dashboard's charts, from the access log."""

from __future__ import annotations

import time

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import console, echo_json, text_table
from plano.core.mode import Mode


@click.command("traffic")
@click.argument("app", required=False, type=P.APP)
@click.option("--since", "window", type=click.Choice(["1h", "1d"]), default="1h", show_default=True,
              help="The last hour (a bucket a minute) or the last day (a bucket per 15 minutes).")
@click.option("--dev", is_flag=True, help="The dev stack's log (data/dev/logs/nginx/) instead of prod's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every bucket, empty ones too).")
@click.pass_context
def traffic_cmd(ctx, app, window, dev, as_json) -> None:
    """Per app: requests, requests/s, 4xx and 5xx, p50/p95 latency (nginx's request_time),
    over the window and per bucket, counted from nginx's JSON access log
    (data/logs/nginx/access.log and its rotated files): the numbers under the
    dashboard's charts. Buckets are aligned to the clock (UTC); the last one is running."""
    from plano.ops import traffic

    report = traffic.collect(session(ctx, Mode.of(dev)), window, app)
    if as_json:
        echo_json(traffic.public(report))
        return
    out = console()
    oldest = stamp(report.oldest, "%Y-%m-%d %H:%M:%S") if report.oldest is not None else "no line"
    out.print(f"{report.log}: {report.lines} requests in the last {window} (oldest line read: {oldest})", highlight=False)
    headers = ("bucket (UTC)", "requests", "req/s", "4xx", "5xx", "p50 ms", "p95 ms")
    for name, figures in report.apps.items():
        click.echo("")
        click.echo(f"{name or '(no app)'}: {line(figures.total)}")
        rows = [(stamp(b.start, "%H:%M" if window == "1h" else "%m-%d %H:%M"), *cells(b)) for b in figures.buckets if b.requests]
        if rows:
            click.echo(text_table(headers, rows))


def stamp(epoch: float, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(epoch))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def cells(f) -> tuple[str, ...]:
    return (str(f.requests), f"{f.per_second:g}", str(f.status_4xx), str(f.status_5xx), ms(f.p50_ms), ms(f.p95_ms))


def line(f) -> str:
    return (f"{f.requests} requests, {f.per_second:g}/s, 4xx {f.status_4xx} ({f.share_4xx:.1%}), "
            f"5xx {f.status_5xx} ({f.share_5xx:.1%}), p50 {ms(f.p50_ms)} ms, p95 {ms(f.p95_ms)} ms")


def commands() -> list[click.Command]:
    return [traffic_cmd]
