"""The dashboard's overview page against `plano status --json`, for the same infra, in the
same run.

    python bench/dashboard.py --infra PATH [--rounds 10]

PATH is an infra (its prod stack running or not: the status of a stack that is not running
is all "absent", which the page shows as fast as docker answers). The page is served
in-process (the app `plano dashboard` serves, through Starlette's TestClient: no network
and no uvicorn in the figure) and signed in as a user this script adds to the infra's
.dashboard/ (bench-user, removed at the end); each round times one GET / and one
`plano status --json` subprocess (Python's start included: that is what a user or a
script waits for), alternating which goes first. Prints the medians and their ratio. The
issue's goal: the overview of 20 apps in under 300 ms.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--infra", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from plano.dashboard.app import create_app
    from plano.ops import access

    infra = args.infra.resolve()
    password = secrets.token_urlsafe(16)
    access.set_password(infra, "bench-user", "viewer", password)
    try:
        client = TestClient(create_app(infra), base_url="https://localhost", follow_redirects=False)
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        assert client.post("/login", data={"user": "bench-user", "password": password, "csrf": csrf}).status_code == 303
        apps = client.get("/").text.count('class="card app"')
        page, status = [], []
        for i in range(args.rounds):
            for which in (("page", "status") if i % 2 == 0 else ("status", "page")):
                started = time.perf_counter()
                if which == "page":
                    got = client.get("/")
                    assert got.status_code == 200, got.text[:500]
                    page.append(time.perf_counter() - started)
                else:
                    subprocess.run([sys.executable, "-m", "plano.cli", "status", "--json"], cwd=infra, capture_output=True,
                                   check=False, timeout=120)
                    status.append(time.perf_counter() - started)
    finally:
        access.remove_user(infra, "bench-user")
    p, s = statistics.median(page), statistics.median(status)
    print(f"{apps} apps, {args.rounds} rounds: overview page median {p * 1000:.0f} ms (max {max(page) * 1000:.0f}), "
          f"plano status --json median {s * 1000:.0f} ms; page/status = {p / s:.2f}; goal: page < 300 ms: "
          f"{'met' if p < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
