"""Traffic figures from nginx's JSON access log (pure: lines in, figures out).

One line a request, as nginx.conf's `plano_json` format writes it:
`{"time":1733400000.123,"app":"app1","status":200,"request_time":0.004,
"upstream_response_time":"0.004","bytes":512,"method":"GET"}`. A window ("1h": 60
buckets of a minute, "1d": 96 of 15 minutes) ends with the bucket that holds `now`,
its buckets aligned to the clock; per app and bucket: requests, requests/s, 4xx, 5xx
and the p50/p95 of request_time (nearest rank: the smallest time that at least 50% /
95% of the requests took no more than). `ops.traffic` reads the files;
`plano traffic` and the dashboard show these figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Window:
    name: str
    span: int  # seconds
    step: int  # seconds a bucket

    def bounds(self, now: float) -> tuple[int, int]:
        """[start, end): the buckets' edges, the last bucket holding `now`."""
        end = (int(now) // self.step + 1) * self.step
        return end - self.span, end

    @property
    def buckets(self) -> int:
        return self.span // self.step


WINDOWS = {"1h": Window("1h", 3600, 60), "1d": Window("1d", 86400, 900)}


@dataclass(frozen=True)
class Hit:
    time: float
    app: str
    status: int
    seconds: float  # request_time: from the first byte read to the last byte sent


def parse(line: str | bytes) -> Hit | None:
    """One log line; None for what is not one (a line cut short, another format)."""
    try:
        data = json.loads(line)
        return Hit(float(data["time"]), str(data["app"]), int(data["status"]), float(data["request_time"]))
    except (ValueError, KeyError, TypeError):
        return None


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest rank: the value at rank ceil(share x n), 1-based; None without values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Figures:
    """Requests in a span of time (a bucket, or a whole window)."""

    start: int  # epoch seconds
    seconds: int  # its length
    requests: int
    per_second: float
    status_4xx: int
    status_5xx: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def share_4xx(self) -> float:
        return self.status_4xx / self.requests if self.requests else 0.0

    @property
    def share_5xx(self) -> float:
        return self.status_5xx / self.requests if self.requests else 0.0


def figures(hits: list[Hit], start: int, seconds: int, elapsed: float) -> Figures:
    """`elapsed`: the seconds of the span already past (requests/s of the bucket now running)."""
    times = sorted(hit.seconds for hit in hits)
    ms = [round(t * 1000, 3) for t in times]
    return Figures(
        start=start, seconds=seconds, requests=len(hits),
        per_second=round(len(hits) / max(1.0, min(float(seconds), elapsed)), 3),
        status_4xx=sum(1 for h in hits if 400 <= h.status < 500),
        status_5xx=sum(1 for h in hits if h.status >= 500),
        p50_ms=percentile(ms, 0.50), p95_ms=percentile(ms, 0.95),
    )


@dataclass(frozen=True)
class AppTraffic:
    app: str
    window: str
    total: Figures
    buckets: list[Figures] = field(default_factory=list)


def summarize(hits: Iterable[Hit], window: Window, now: float, apps: Iterable[str] = ()) -> dict[str, AppTraffic]:
    """Per app (those of `apps`, with no request or some, then any other the log names):
    the window's buckets and its total. Requests after `now` are left out."""
    start, end = window.bounds(now)
    by_app: dict[str, list[list[Hit]]] = {app: [[] for _ in range(window.buckets)] for app in apps}
    for hit in hits:
        if start <= hit.time < end and hit.time <= now:
            rows = by_app.setdefault(hit.app, [[] for _ in range(window.buckets)])
            rows[int(hit.time - start) // window.step].append(hit)
    return {app: traffic(app, rows, window, start, now) for app, rows in sorted(by_app.items())}


def traffic(app: str, rows: list[list[Hit]], window: Window, start: int, now: float) -> AppTraffic:
    buckets = [figures(row, start + i * window.step, window.step, now - (start + i * window.step))
               for i, row in enumerate(rows)]
    everything = [hit for row in rows for hit in row]
    return AppTraffic(app, window.name, figures(everything, start, window.span, now - start), buckets)
