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

    python bench/dashboard.py --stack 20 [--rounds 10]

makes that stack first, and takes it down at the end: a throwaway infra (the e2e tests'
workspace, stand-in images, the harness's registry: scripts/harness/setup.sh) with app1
(its backend, frontend, database and Redis user) and apps app2..appN each running app1's
frontend image, started with `plano prod up`.
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--infra", type=Path)
    where.add_argument("--stack", type=int, metavar="APPS", help="make a running stack of this many apps first")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if args.infra:
        measure(args.infra.resolve(), args.rounds)
        return
    with running_stack(args.stack) as infra:
        measure(infra, args.rounds)


@contextmanager
def running_stack(apps: int) -> Iterator[Path]:
    sys.path.insert(0, str(ROOT))  # the e2e tests' workspace helpers live in tests/
    from tests.integration.stackfixtures import (
        REGISTRY,
        make_workspace,
        plano,
        prod_running,
    )
    from tests.integration.test_deploy_e2e import publish_app1
    from tests.integration.test_prod_e2e import set_env

    with tempfile.TemporaryDirectory(prefix="plano-bench-dashboard-") as tmp:
        started = time.perf_counter()
        ws = make_workspace(Path(tmp), apps=("app1",))
        publish_app1(ws)
        tags = {"APP1_BACKEND_TAG": "1.0.0", "APP1_FRONTEND_TAG": "1.0.0"}
        for k in range(2, apps + 1):
            plano("app", "add", f"app{k}", "--domain", f"app{k}.example.com", "--no-backend", "--no-database", "--no-redis",
                  "--frontend-image", f"{REGISTRY}/{ws.name}/app1-frontend", cwd=ws.infra)
            tags[f"APP{k}_FRONTEND_TAG"] = "1.0.0"
        set_env(ws.infra / ".env.prod", **tags)
        with prod_running(ws):
            print(f"a stack of {apps} apps runs ({time.perf_counter() - started:.0f} s to make it)", flush=True)
            yield ws.infra


def measure(infra: Path, rounds: int) -> None:
    from fastapi.testclient import TestClient

    from plano.dashboard.app import create_app
    from plano.ops import access

    password = secrets.token_urlsafe(16)
    access.set_password(infra, "bench-user", "viewer", password)
    try:
        client = TestClient(create_app(infra), base_url="https://localhost", follow_redirects=False)
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        assert client.post("/login", data={"user": "bench-user", "password": password, "csrf": csrf}).status_code == 303
        apps = client.get("/").text.count('class="card app"')
        page, status = [], []
        for i in range(rounds):
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
        running = client.get("/").text.count(">healthy<")
    finally:
        access.remove_user(infra, "bench-user")
    p, s = statistics.median(page), statistics.median(status)
    print(f"{apps} apps ({running} healthy services shown), {rounds} rounds: overview page median {p * 1000:.0f} ms "
          f"(max {max(page) * 1000:.0f}), plano status --json median {s * 1000:.0f} ms; page/status = {p / s:.2f}; "
          f"goal: page < 300 ms: {'met' if p < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
