"""Render speed: a 100-app manifest against a 1-app one, in the same run, plus the
start-up time of `plano --help`. Goals: 100 apps under 1 s; --help under 0.3 s.

    python bench/render.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plano.core import manifest as mf
from plano.ops import infra


def manifest_text(apps: int) -> str:
    text = mf.new_document("bench", "registry.example.com/acme", "ops@example.com")
    entries = "".join(f"  app{i}:\n    domains: [app{i}.example.com, www.app{i}.example.com]\n" for i in range(1, apps + 1))
    return text.replace("apps: {}\n", "apps:\n" + entries)


def render_seconds(apps: int, repeats: int = 5) -> float:
    """Median wall time of load + validate + render + plan + write into a fresh folder."""
    text = manifest_text(apps)
    timings = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = time.perf_counter()
            infra.sync(root, mf.load_text(text), text)
            timings.append(time.perf_counter() - start)
            assert (root / f"docker/nginx/sites-enabled/app{apps}.conf").exists()
    return statistics.median(timings)


def help_seconds(repeats: int = 5) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "plano.cli", "--help"], check=True, capture_output=True)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    render_seconds(1, 1)  # warm imports and templates
    one = render_seconds(1)
    hundred = render_seconds(100)
    helps = help_seconds()
    print(f"render   1 app : {one:.3f} s")
    print(f"render 100 apps: {hundred:.3f} s  (goal < 1 s)  ratio 100/1 = {hundred / one:.1f}x")
    print(f"plano --help   : {helps:.3f} s  (goal < 0.3 s)")



if __name__ == "__main__":
    main()
