"""`plano traffic`: requests/s, 4xx, 5xx and p50/p95 latency per app, from nginx's
JSON access log (data/logs/nginx/access.log and its rotated files, newest first).

Only the tail a window needs is read: a file is read backwards in blocks until a line
older than the window (less a margin: nginx's workers flush their buffers each second,
so lines are a little out of order) is met; the rotated files are opened only when
the window reaches past the start of a newer one. The figures are core.traffic's.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core import traffic as t
from plano.core.errors import UsageError
from plano.core.mode import Mode
from plano.core.session import Session

BLOCK = 256 * 1024
MARGIN_SECONDS = 120  # out-of-order lines (buffered workers) never lag more than this


@dataclass(frozen=True)
class Report:
    window: str
    now: float
    log: str  # the access log, relative to the infra
    lines: int  # lines read that fall in the window (every app)
    oldest: float | None  # the oldest line read: figures before it are not in the logs any more
    apps: dict[str, t.AppTraffic]


def window_of(name: str) -> t.Window:
    if name not in t.WINDOWS:
        raise UsageError(f"--since: {name!r} is not a window; use one of {', '.join(t.WINDOWS)}")
    return t.WINDOWS[name]


def log_files(folder: Path) -> list[Path]:
    """access.log, then access.log.1, .2 ... (newer first), those that exist."""
    names = [n.ACCESS_LOG, *(f"{n.ACCESS_LOG}.{i}" for i in range(1, n.ACCESS_LOG_KEEP + 1))]
    return [folder / name for name in names if (folder / name).is_file()]


def tail(path: Path, since: float) -> tuple[list[bytes], bool]:
    """The file's whole lines from about `since` on; True when the window may reach into
    the older files (this one was read from its start, which is not older than it)."""
    with path.open("rb") as f:
        pos = f.seek(0, 2)
        chunks: list[bytes] = []
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunks.append(f.read(step))
            if pos > 0 and older(chunks[-1], since - MARGIN_SECONDS):
                break
    data = b"".join(reversed(chunks))
    if pos > 0:  # the first line may be cut: it starts before the block
        data = data[data.find(b"\n") + 1:]
    lines = data.splitlines()
    return lines, pos == 0 and not older(b"\n" + (lines[0] if lines else b"") + b"\n", since - MARGIN_SECONDS)


def older(chunk: bytes, limit: float) -> bool:
    """Whether the first whole line of the block is older than `limit`."""
    lines = chunk.split(b"\n", 2)
    hit = t.parse(lines[1]) if len(lines) > 2 else None
    return hit is not None and hit.time < limit


def read_hits(folder: Path, since: float) -> tuple[list[t.Hit], float | None]:
    hits: list[t.Hit] = []
    for path in log_files(folder):
        lines, reaches_back = tail(path, since)
        hits.extend(hit for hit in map(t.parse, lines) if hit is not None)
        if not reaches_back:
            break
    oldest = min((hit.time for hit in hits), default=None)
    return hits, oldest


def collect(session: Session, window: str = "1h", app: str | None = None, now: float | None = None) -> Report:
    """The window's figures per app of plano.yml (and any other the log names), or of one app."""
    chosen = window_of(window)
    manifest = session.manifest
    if app is not None and app not in manifest.apps:
        raise UsageError(f"APP: no app {app!r} in plano.yml (its apps: {', '.join(sorted(manifest.apps)) or 'none'})")
    now = time.time() if now is None else now
    start, _ = chosen.bounds(now)
    folder = n.access_logs_dir(session.mode or Mode.PROD)
    hits, oldest = read_hits(session.root / folder, start)
    in_window = [hit for hit in hits if start <= hit.time <= now]
    apps = t.summarize(in_window, chosen, now, manifest.apps)
    if app is not None:
        apps = {app: apps[app]}
        in_window = [hit for hit in in_window if hit.app == app]
    return Report(window, now, f"{folder}/{n.ACCESS_LOG}", len(in_window), oldest, apps)


def figures_json(f: t.Figures) -> dict:
    return {**dataclasses.asdict(f), "share_4xx": round(f.share_4xx, 4), "share_5xx": round(f.share_5xx, 4)}


def public(report: Report) -> dict:
    """The report as plain data (plano traffic --json, the dashboard's /api/traffic): same figures."""
    return {"window": report.window, "now": report.now, "log": report.log, "lines": report.lines, "oldest": report.oldest,
            "apps": {name: {"total": figures_json(a.total), "buckets": [figures_json(b) for b in a.buckets]}
                     for name, a in report.apps.items()}}


@dataclass(frozen=True)
class ServiceUsage:
    service: str
    container: str
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int
    memory_percent: float


def usage(session: Session) -> list[ServiceUsage]:
    """CPU and memory of each running service of the stack (compose): one `docker stats`
    sample. Services that do not run are left out (plano status names them)."""
    from plano.engine import inspect, stats

    project = session.stack_mode.project(session.manifest)  # no compose binary needed for its name
    running = {inspect.name(info): service for service, info in inspect.by_service(inspect.project_containers(project, session.runner)).items()
               if info["State"].get("Running")}
    if not running:
        return []
    sampled = stats.parse(session.runner.run(stats.stats_argv(*sorted(running)), timeout=60).out)
    return sorted((ServiceUsage(running[u.container], u.container, u.cpu_percent, u.memory_bytes, u.memory_limit_bytes, u.memory_percent)
                   for u in sampled if u.container in running), key=lambda row: row.service)
