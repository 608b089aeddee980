"""A test run's own Docker objects, and their removal when the run ends.

Every compose project a test makes is written to the run's ledger
(`$PLANO_TEST_RUNS_DIR/<run>/projects`), so is every pebble it starts (`pebbles`),
and every image or container a test makes outside compose carries the label
`plano.test.run=<run>`. When the run ends, and at the start of a later run for a run
that ended without cleaning up (killed), these are removed: the ledger's projects
(their containers, networks and volumes, the images compose built for them, their
images and tags in the local registry), the labelled objects, and the pebbles still
running. Nothing is pruned: only what the ledger or the label names goes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

RUNS_DIR = Path(os.environ.get("PLANO_TEST_RUNS_DIR", "/var/tmp/plano-test-runs"))
LABEL = "plano.test.run"
ENV = "PLANO_TEST_RUN"
REGISTRY = "127.0.0.1:5000"
PEBBLE_SCRIPT = Path(__file__).resolve().parents[1] / "scripts/harness/pebble.sh"
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))


@dataclass
class Run:
    id: str
    folder: Path
    lock: IO[str]


def start() -> Run:
    """A new run, its ledger folder held (flock) for as long as the run lives."""
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    folder = RUNS_DIR / run_id
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / "lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    (folder / "projects").touch()
    os.environ[ENV] = run_id
    return Run(run_id, folder, lock)


def current() -> str:
    """This run's id (set by the controlling pytest process; xdist workers inherit it)."""
    return os.environ.get(ENV, "no-run")


def record_project(name: str) -> None:
    """Put a compose project (and its `-dev` twin) in this run's ledger."""
    _record("projects", f"{name}\n{name}-dev\n")


def record_pebble(folder: Path) -> None:
    """Put a pebble's folder (scripts/harness/pebble.sh's PLANO_PEBBLE_DIR) in the ledger."""
    _record("pebbles", f"{folder}\n")


def _record(kind: str, lines: str) -> None:
    ledger = RUNS_DIR / current() / kind
    if ledger.parent.is_dir():
        with ledger.open("a") as out:  # one short write: appends from several workers stay whole
            out.write(lines)


def finish(run: Run) -> list[str]:
    """Remove what this run made; returns a summary line per kind removed."""
    removed = sweep(run.id, run.folder)
    if removed is not None or _nothing_recorded(run.folder):
        shutil.rmtree(run.folder, ignore_errors=True)
    fcntl.flock(run.lock, fcntl.LOCK_UN)
    run.lock.close()
    return removed or []


def sweep_abandoned(run: Run) -> list[str]:
    """Remove what earlier runs (next to this one) left when they ended without `finish`:
    those whose lock is free."""
    summary: list[str] = []
    for folder in sorted(run.folder.parent.iterdir()):
        if folder == run.folder or not (folder / "lock").is_file():
            continue
        with (folder / "lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # that run still runs
            removed = sweep(folder.name, folder)
        if removed is not None or _nothing_recorded(folder):
            summary += [f"{folder.name}: {line}" for line in removed or []]
            shutil.rmtree(folder, ignore_errors=True)
    return summary


def sweep(run_id: str, folder: Path) -> list[str] | None:
    """Remove the run's objects; None when no engine answers (the ledger is then kept for a
    later run, unless it is empty)."""
    stopped = sum(_stop_pebble(Path(path)) for path in _ledger(folder, "pebbles"))
    if _docker("info", "--format", "{{.ServerVersion}}").returncode != 0:
        return None
    projects = _ledger(folder, "projects")
    selectors = [f"label={LABEL}={run_id}", *(f"label=com.docker.compose.project={p}" for p in projects)]
    counts = {
        "containers": _remove(["rm", "-f", "-v"], _listed(["ps", "-aq"], selectors)),
        "networks": _remove(["network", "rm"], _listed(["network", "ls", "-q"], selectors)),
        "volumes": _remove(["volume", "rm", "-f"], _listed(["volume", "ls", "-q"], selectors)),
        "images": _remove(["image", "rm", "-f"], _listed(["image", "ls", "-q"], selectors) | images_under(projects)),
        "registry manifests": _untag_registry(projects),
        "pebbles": stopped,
    }
    return [f"{count} {kind}" for kind, count in counts.items() if count]


def _ledger(folder: Path, kind: str) -> list[str]:
    path = folder / kind
    return sorted(set(path.read_text().split())) if path.is_file() else []


def _nothing_recorded(folder: Path) -> bool:
    """True for a run that made no project and no pebble (a run without an engine)."""
    return not _ledger(folder, "projects") and not _ledger(folder, "pebbles")


def _stop_pebble(folder: Path) -> bool:
    """Stop the pebble of that folder if it still runs (pebble.sh checks the PIDs it recorded)."""
    if not (folder / "pebble.pid").is_file() and not (folder / "challtestsrv.pid").is_file():
        return False
    proc = subprocess.run(["bash", str(PEBBLE_SCRIPT), "stop"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PLANO_PEBBLE_DIR": str(folder)})
    return "pebble: stopped (" in proc.stderr


def _docker(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(["docker", *args], 1, "", str(exc))


def _listed(command: list[str], selectors: list[str]) -> set[str]:
    found: set[str] = set()
    for selector in selectors:  # docker ANDs several filters of one key: ask once per selector
        found |= set(_docker(*command, "--filter", selector).stdout.split())
    return found


def _remove(command: list[str], ids: set[str]) -> int:
    return sum(_docker(*command, ident).returncode == 0 for ident in sorted(ids))


def images_under(projects: list[str]) -> set[str]:
    """IDs of the images named <registry>/<project>/...: those the tests built or pulled for a project."""
    prefixes = tuple(f"{REGISTRY}/{p}/" for p in projects)
    listing = _docker("image", "ls", "--format", "{{.ID}} {{.Repository}}").stdout.splitlines()
    return {ident for ident, _, repo in (line.partition(" ") for line in listing) if prefixes and repo.startswith(prefixes)}


def _registry(path: str, method: str = "GET") -> urllib.request.Request:
    return urllib.request.Request(f"http://{REGISTRY}{path}", method=method, headers={"Accept": MANIFEST_TYPES})


def _catalog() -> list[str]:
    """Every repository in the local registry (its catalog comes in pages of at most 1,000)."""
    repos: list[str] = []
    while True:
        last = f"&last={repos[-1]}" if repos else ""
        with urllib.request.urlopen(_registry(f"/v2/_catalog?n=1000{last}"), timeout=10) as resp:
            page = json.load(resp).get("repositories") or []
        repos += page
        if len(page) < 1000:
            return repos


def _untag_registry(projects: list[str]) -> int:
    """Delete the manifests of the projects' repositories in the local registry (its
    garbage collection, when scripts/harness/teardown.sh stops it, frees the blobs)."""
    if not projects:
        return 0
    try:
        repos = _catalog()
    except (OSError, ValueError):
        return 0
    deleted = 0
    for repo in (r for r in repos if r.split("/", 1)[0] in projects):
        try:
            with urllib.request.urlopen(_registry(f"/v2/{repo}/tags/list"), timeout=10) as resp:
                tags = json.load(resp).get("tags") or []
            digests = set()
            for tag in tags:
                with urllib.request.urlopen(_registry(f"/v2/{repo}/manifests/{tag}", "HEAD"), timeout=10) as resp:
                    digests.add(resp.headers["Docker-Content-Digest"])
            for digest in digests:
                urllib.request.urlopen(_registry(f"/v2/{repo}/manifests/{digest}", "DELETE"), timeout=10).close()
                deleted += 1
        except (OSError, ValueError):  # HTTPError is an OSError: a repository without tags
            continue
    return deleted
