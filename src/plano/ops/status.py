"""`plano status`: one screen per environment. Per app service: the image and tag
running against the tag recorded in the env file, health, uptime, restarts, URL;
then certificates, the last backup and the disk usage of data/."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets
from plano.core.manifest import Manifest
from plano.core.runner import Runner
from plano.engine import stack
from plano.ops import backup, certs


def parse_started(value: str) -> dt.datetime | None:
    """Docker's StartedAt (RFC 3339 with nanoseconds) as a datetime."""
    if not value or value.startswith("0001-"):
        return None
    trimmed = value.rstrip("Z").split(".")[0]
    return dt.datetime.fromisoformat(trimmed).replace(tzinfo=dt.UTC)


def service_row(app: str, role: str, info: dict | None, recorded: str | None, url: str, now: dt.datetime) -> dict:
    """One service from `docker inspect` (None: no container)."""
    if info is None:
        return {"app": app, "service": n.service(app, role), "state": "absent", "image": None, "tag": None,
                "recorded_tag": recorded, "matches": False, "health": None, "uptime_seconds": None, "restarts": None, "url": url}
    image = info["Config"]["Image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
    state = info["State"]
    started = parse_started(state.get("StartedAt", ""))
    running = bool(state.get("Running"))
    return {
        "app": app,
        "service": n.service(app, role),
        "state": state.get("Status", "unknown"),
        "image": image,
        "tag": tag,
        "recorded_tag": recorded,
        "matches": recorded is None or recorded == tag,
        "health": (state.get("Health") or {}).get("Status", "none"),
        "uptime_seconds": int((now - started).total_seconds()) if running and started else None,
        "restarts": int(info.get("RestartCount", 0)),
        "url": url,
    }


def containers(st: stack.Stack, runner: Runner) -> dict[str, dict]:
    """service name -> docker inspect of its (newest) container."""
    found: dict[str, dict] = {}
    for info in stack.inspect_project(st.ctx.project, runner):
        labels = info["Config"].get("Labels") or {}
        if labels.get("com.docker.compose.oneoff") == "True":
            continue
        service = labels.get("com.docker.compose.service", "")
        if service not in found or info["State"].get("Running"):
            found[service] = info
    return found


def collect(root: Path, manifest: Manifest, mode: str, runner: Runner, now: dt.datetime | None = None) -> dict:
    now = now or dt.datetime.now(dt.UTC)
    st = stack.open_stack(root, manifest, mode, runner)
    found = containers(st, runner)
    recorded = secrets.read_env(root / n.ENV_PROD) if mode == "prod" else {}
    urls = stack.urls(manifest, mode)
    rows = []
    for app_name, app in sorted(manifest.apps.items()):
        for role in app.services():
            tag = recorded.get(n.tag_var(app_name, role)) if mode == "prod" else None
            rows.append(service_row(app_name, role, found.get(n.service(app_name, role)), tag, urls[app_name], now))
    infra_rows = [{"service": name, "state": info["State"].get("Status"), "health": (info["State"].get("Health") or {}).get("Status", "none"),
                   "restarts": int(info.get("RestartCount", 0))}
                  for name, info in sorted(found.items()) if name in ("nginx", "certbot", "database", "redis", "backup")]
    cert_rows = []
    for app_name in sorted(manifest.apps):
        facts = certs.installed_facts(root, mode, app_name)
        cert_rows.append({"app": app_name, "issuer": facts.issuer if facts else None,
                          "days_left": facts.days_left(now) if facts else None,
                          "placeholder": bool(facts is None or facts.placeholder)})
    folder = backup.backups_dir(root, mode)
    entries = backup.entries(folder) if folder.is_dir() else []
    state = backup.status(folder) if folder.is_dir() else {"last_success": None, "last_failure": None}
    data = root / n.data_root(mode)
    return {
        "mode": mode,
        "project": st.ctx.project,
        "apps": rows,
        "infra": infra_rows,
        "certificates": cert_rows,
        "backup": {"last": entries[-1].id if entries else None, "count": len(entries),
                   "last_success": state["last_success"], "last_failure": state["last_failure"]},
        "data": {"path": n.data_root(mode), "bytes": folder_bytes(data),
                 "free_bytes": shutil.disk_usage(data).free if data.is_dir() else None},
    }


def folder_bytes(path: Path) -> int:
    total = 0
    for item in path.rglob("*") if path.is_dir() else []:
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            continue  # files of the database's own user, or gone meanwhile
    return total


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d{hours}h" if days else (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds % 60:02d}s")


def text_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Aligned plain-text columns (for pipes: nothing cut, no colour)."""
    widths = [max(len(str(cells[i])) for cells in (headers, *rows)) for i in range(len(headers))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in (headers, *rows))
