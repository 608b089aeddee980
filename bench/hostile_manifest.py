"""Hostile plano.yml files (tests/hostile.py: alias bomb, 3,000 levels, a 5,000-digit
number, not UTF-8...) against a good one, in the same run: each is refused in one
line; the goal is under 2 s and 200 MB each, whatever the file.

    python bench/hostile_manifest.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.hostile import CASES, measure  # noqa: E402

PLANO = str(Path(sys.executable).parent / "plano")


def render_check(infra: Path) -> tuple[int, float, float]:
    """Exit code, wall seconds and peak resident MB of one `plano render --check`."""
    got = measure(["-C", str(infra), "render", "--check"])
    return got.returncode, got.seconds, got.peak_mb


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([PLANO, "init", f"{tmp}/infra", "--registry", "registry.example.com/acme", "--email", "ops@example.com"],
                       check=True, capture_output=True)
        infra = Path(tmp) / "infra"
        subprocess.run([PLANO, "-C", str(infra), "app", "add", "app1", "--domain", "app1.example.com"], check=True, capture_output=True)
        good = (infra / "plano.yml").read_text()
        code, base_s, base_mb = render_check(infra)
        print(f"{'good plano.yml':16} exit {code}  {base_s:5.2f} s  {base_mb:6.1f} MB  (baseline)")
        worst_s = worst_mb = 0.0
        for name, (make, _) in CASES.items():
            (infra / "plano.yml").write_bytes(make(good))
            code, seconds, mb = render_check(infra)
            worst_s, worst_mb = max(worst_s, seconds), max(worst_mb, mb)
            print(f"{name:16} exit {code}  {seconds:5.2f} s  {mb:6.1f} MB  time x{seconds / base_s:4.2f}  memory x{mb / base_mb:4.2f}")
        print(f"worst: {worst_s:.2f} s (goal < 2 s), {worst_mb:.1f} MB (goal < 200 MB); ratio to the good file: "
              f"time x{worst_s / base_s:.2f}, memory x{worst_mb / base_mb:.2f}")


if __name__ == "__main__":
    main()
