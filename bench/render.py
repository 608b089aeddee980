"""Render speed: a 100-app manifest against a 1-app one, in the same run, plus the
start-up time of `plano --help`, and the Kubernetes export of the 100-app manifest
(alone, and as part of `plano render` once k8s/ exists). Goals: 100 apps under 1 s;
--help under 0.3 s.

    python bench/render.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plano.core import files
from plano.core import manifest as mf
from plano.ops import infra
from plano.render import kubernetes


def manifest_text(apps: int) -> str:
    text = mf.new_document("bench", "registry.example.com/acme", "ops@example.com")
    entries = "".join(f"  app{i}:\n    domains: [app{i}.example.com, www.app{i}.example.com]\n" for i in range(1, apps + 1))
    return text.replace("apps: {}\n", "apps:\n" + entries)


def render_seconds(apps: int, repeats: int = 5, with_k8s: bool = False) -> float:
    """Median wall time of load + validate + render + plan + write into a fresh folder;
    `with_k8s`: once k8s/ exists, when `plano render` keeps the export up to date too."""
    text = manifest_text(apps)
    timings = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            if with_k8s:
                (root / "k8s").mkdir()
            start = time.perf_counter()
            infra.sync(root, mf.load_text(text), text)
            timings.append(time.perf_counter() - start)
            assert (root / f"docker/nginx/sites-enabled/app{apps}.conf").exists()
            assert (root / f"k8s/base/apps/app{apps}.yaml").exists() == with_k8s
    return statistics.median(timings)


def export_seconds(apps: int, repeats: int = 5) -> float:
    """Median wall time of load + validate + the Kubernetes tree + plan + write into a fresh
    folder (what `plano export kubernetes` does)."""
    text = manifest_text(apps)
    timings = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = time.perf_counter()
            tree = kubernetes.render(mf.load_text(text))
            files.apply(root, files.plan(root, tree))
            timings.append(time.perf_counter() - start)
            assert (root / f"k8s/base/apps/app{apps}.yaml").exists()
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
    export = export_seconds(100)
    both = render_seconds(100, with_k8s=True)
    print(f"render   1 app : {one:.3f} s")
    print(f"render 100 apps: {hundred:.3f} s  (goal < 1 s)  ratio 100/1 = {hundred / one:.1f}x")
    print(f"plano --help   : {helps:.3f} s  (goal < 0.3 s)")
    print(f"export kubernetes, 100 apps: {export:.3f} s  ({export / hundred:.2f}x the 100-app render)")
    print(f"render 100 apps with k8s/  : {both:.3f} s  ({both / hundred:.2f}x the render without it)")



if __name__ == "__main__":
    main()
