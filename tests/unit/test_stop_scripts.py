"""The backup and certbot loops stop at once on their stop signal, and a backup stopped
in flight leaves no backup behind (nor its .partial folder), recorded as failed.
The real scripts run under the host's /bin/sh (dash, as in the Debian-based images)
with stand-ins for pg_dumpall, date-driven sleeps and certbot on PATH."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from plano.core import manifest as mf
from plano.render.services import render as render_services


def rendered(tmp_path: Path) -> Path:
    """The infra's docker/ scripts as plano renders them (certbot's loop is a template)."""
    manifest = mf.load_text(mf.new_document("acme", "registry.example.com/acme", "ops@example.com"))
    for rel, file in render_services(manifest, {}).items():
        if rel.endswith(".sh"):
            path = tmp_path / "docker" / Path(rel).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.content)
            path.chmod(0o755)
    return tmp_path / "docker"


def stand_ins(folder: Path, **tools: str) -> Path:
    folder.mkdir()
    for name, body in tools.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def default_signals() -> None:
    """A container's main process starts with every signal at its default; a test run
    started in the background of a shell has SIGINT and SIGQUIT ignored, and a shell
    cannot trap a signal ignored when it started (POSIX), so reset them."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """In a process group of its own, as a service's main process is (docker stop signals it)."""
    return subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True, preexec_fn=default_signals,  # noqa: PLW1509
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until(predicate, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[float, int, str]:
    """The signal to the main process only (docker-init forwards it to its child alone)."""
    started = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=15)
    return time.monotonic() - started, proc.returncode, out


def test_a_backup_stopped_in_flight_leaves_nothing_that_looks_complete(tmp_path):
    scripts = rendered(tmp_path / "r")
    # A `sleep` that returns at once: the scheduled run starts now; pg_dumpall takes long.
    tools = stand_ins(tmp_path / "bin", sleep="exit 0", pg_dumpall=f"touch {tmp_path}/dumping\nexec /bin/sleep 60")
    backups = tmp_path / "backups"
    env = {"PATH": f"{tools}:{scripts}:/usr/bin:/bin", "BACKUPS_DIR": str(backups), "UPLOADS_DIR": str(tmp_path / "up")}
    proc = start(["sh", str(scripts / "backup-loop.sh")], env)
    wait_until(lambda: (tmp_path / "dumping").exists())
    assert [p.name for p in backups.iterdir() if p.name.startswith(".partial-")]
    seconds, code, out = stop(proc, signal.SIGINT)  # the Postgres image's stop signal
    assert seconds < 2, out
    assert code == 0, out
    assert sorted(p.name for p in backups.iterdir()) == [".lock", ".status"], out
    status = (backups / ".status").read_text().splitlines()
    assert len(status) == 1 and status[0].startswith("failed ") and status[0].endswith("did not complete")
    assert "plano-backup: stopped by a signal" in out


def test_the_backup_loop_stops_at_once_while_it_sleeps(tmp_path):
    scripts = rendered(tmp_path / "r")
    env = {"PATH": f"{scripts}:/usr/bin:/bin", "BACKUPS_DIR": str(tmp_path / "b"), "BACKUP_TIME": "03:30"}
    proc = start(["sh", str(scripts / "backup-loop.sh")], env)
    wait_until(lambda: any("sleep" in _cmdline(pid) for pid in _children(proc.pid)))  # asleep (a `date` child comes first)
    seconds, code, out = stop(proc)
    assert (seconds < 2, code) == (True, 0), out
    assert "next run at" in out and not (tmp_path / "b").exists()


def test_the_certbot_loop_stops_at_once_in_a_renewal_and_while_it_sleeps(tmp_path):
    scripts = rendered(tmp_path / "r")
    tools = stand_ins(tmp_path / "bin", certbot=f"touch {tmp_path}/renewing\nexec sleep 60")
    proc = start(["sh", str(scripts / "renew-loop.sh")], {"PATH": f"{tools}:/usr/bin:/bin"})
    wait_until(lambda: (tmp_path / "renewing").exists())
    seconds, code, out = stop(proc)
    assert (seconds < 2, code) == (True, 0), out

    tools = stand_ins(tmp_path / "bin2", certbot="exit 0")
    proc = start(["sh", str(scripts / "renew-loop.sh")], {"PATH": f"{tools}:/usr/bin:/bin"})
    wait_until(lambda: any("sleep" in _cmdline(pid) for pid in _children(proc.pid)))
    seconds, code, out = stop(proc)
    assert (seconds < 2, code) == (True, 0), out


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
