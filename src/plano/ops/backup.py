"""Backups: plano runs the backup service's own script (docker/backup/scripts/
plano-backup.sh) in a one-off container, so `plano backup ...`, cron's
docker/shared-scripts/backup.sh and the daily schedule share one implementation.
Here: the argv, and reading data/backups/ (manifests and the status log) for `list`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import UsageError
from plano.core.manifest import Manifest, require_app
from plano.engine.stack import Stack

ID_RE = re.compile(r"^\d{8}T\d{6}Z$")


def script_argv(stack: Stack, *args: str) -> list[str]:
    return stack.argv("run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", "backup", *args)


def run_argv(stack: Stack, apps: list[str], prune: bool = True) -> list[str]:
    return script_argv(stack, "run", *([] if prune else ["--no-prune"]), *apps)


def verify_argv(stack: Stack, backup_id: str | None) -> list[str]:
    return script_argv(stack, "verify", *([backup_id] if backup_id else []))


def restore_argv(stack: Stack, backup_id: str, app: str | None, scratch: str | None) -> list[str]:
    return script_argv(stack, "restore", backup_id, *([app] if app else []), *(["--to-scratch", scratch] if scratch else []))


def prune_argv(stack: Stack) -> list[str]:
    return script_argv(stack, "prune")


def chosen(manifest: Manifest, apps: tuple[str, ...], all_apps: bool) -> list[str]:
    """[] means every app (the script's default)."""
    if apps and all_apps:
        raise UsageError("give app names or --all, not both")
    for app in apps:
        require_app(manifest, app)
    return list(apps)


def check_id(backup_id: str) -> str:
    if not ID_RE.match(backup_id):
        raise UsageError(f"{backup_id!r} is not a backup ID; they look like 20261129T033000Z (see plano backup list)")
    return backup_id


def check_scratch(name: str | None, manifest: Manifest) -> str | None:
    if name is None:
        return None
    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", name) or name in manifest.apps or name in ("postgres", "template0", "template1"):
        raise UsageError(f"--to-scratch {name}: give a new database name (lower-case letters, digits, _), not an app's")
    return name


# ---------------------------------------------------------------- reading data/backups/


@dataclass(frozen=True)
class Entry:
    id: str
    bytes: int
    files: list[dict]
    postgres: str

    @property
    def apps(self) -> list[str]:
        names = [f["name"] for f in self.files]
        return sorted({name.removesuffix(".dump") for name in names if name.endswith(".dump")}
                      | {name.removesuffix("-uploads.tar") for name in names if name.endswith("-uploads.tar")})


def backups_dir(root: Path, mode: str) -> Path:
    return root / n.data_root(mode) / "backups"


def entries(folder: Path) -> list[Entry]:
    found = []
    for path in sorted(p for p in folder.glob("*") if p.is_dir() and ID_RE.match(p.name)):
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {"files": [], "postgres": "?"}
        files = manifest.get("files", [])
        found.append(Entry(path.name, sum(int(f.get("bytes", 0)) for f in files), files, manifest.get("postgres", "?")))
    return found


def parse_status(text: str) -> dict[str, str | None]:
    """The last success and the last failure from data/backups/.status lines:
    `ok <time> <id>` or `failed <time> <what>`."""
    last_ok = last_failed = failure = None
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        if parts[0] == "ok" and len(parts) == 3 and ID_RE.match(parts[2]):
            last_ok = parts[1]
        elif parts[0] == "failed":
            last_failed, failure = parts[1], parts[2] if len(parts) == 3 else ""
    return {"last_success": last_ok, "last_failure": last_failed, "failure": failure}


def status(folder: Path) -> dict[str, object]:
    """The status log, plus runs that were killed (their .partial-<ID> folders)."""
    try:
        state: dict[str, object] = dict(parse_status((folder / ".status").read_text()))
    except FileNotFoundError:
        state = dict(parse_status(""))
    state["interrupted"] = sorted(p.name.removeprefix(".partial-") for p in folder.glob(".partial-*"))
    return state
