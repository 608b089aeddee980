"""The access log's rotation loop (docker/nginx/entrypoint.d/50-plano-access-log.sh), run
for real with sh: rendered with a folder, a size and an interval for a test, and a
process standing in for nginx's master that counts its USR1 signals (the reopen)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from plano.render.nginx import ROTATION, T
from plano.render.templating import render_template

# nginx's master for the test: on USR1 it reopens (here: appends a line to reopened.txt).
MASTER = """
import pathlib, signal, sys, time
mark = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGUSR1, lambda *_: mark.open("a").write("reopen\\n"))
pathlib.Path(sys.argv[2]).write_text("ready")
while True:
    time.sleep(0.05)
"""


def wait(check, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_the_loop_rotates_past_the_size_keeps_the_newest_and_signals_nginx(tmp_path):
    logs, pid_file = tmp_path / "logs", tmp_path / "nginx.pid"
    logs.mkdir()
    script = tmp_path / "rotate.sh"
    script.write_text(render_template(f"{T}/{ROTATION}.j2", logs=str(logs), access_log="access.log", keep=2,
                                      rotate_bytes=100, check_seconds=1, pid_file=str(pid_file)))
    master = subprocess.Popen([sys.executable, "-c", MASTER, str(tmp_path / "reopened.txt"), str(tmp_path / "ready")])
    loop = None
    try:
        assert wait(lambda: (tmp_path / "ready").exists())
        pid_file.write_text(f"{master.pid}\n")
        log = logs / "access.log"
        log.write_text("x" * 50)  # under the size: stays
        loop = subprocess.Popen(["sh", str(script)], start_new_session=True)
        assert loop.wait(timeout=10) == 0  # the entrypoint goes on; the loop runs in the background
        time.sleep(1.5)
        assert sorted(p.name for p in logs.iterdir()) == ["access.log"]
        for generation in ("first", "second", "third"):
            log.write_text(generation * 40)  # over 100 bytes
            assert wait(lambda g=generation: (logs / "access.log.1").is_file()
                        and (logs / "access.log.1").read_text().startswith(g)), generation
            assert not log.exists()  # nginx (here, nobody) makes the new one at the reopen
        assert sorted(p.name for p in logs.iterdir()) == ["access.log.1", "access.log.2"]  # keep=2: "first" went
        assert (logs / "access.log.2").read_text().startswith("second")
        assert (tmp_path / "reopened.txt").read_text() == "reopen\n" * 3
    finally:
        master.kill()
        master.wait()
        if loop is not None:
            os.killpg(loop.pid, signal.SIGTERM)  # the loop's own session: only what this test started
