"""Failed requests during an update: the seed's `docker compose ... up -d` against
`plano deploy`, under the same load, in one run.

    python bench/deploy_downtime.py [--workers 6] [--settle 3]

Needs what ./scripts/test.sh starts: the Docker engine, the stand-in images and the
local registry on 127.0.0.1:5000. Creates a temporary workspace with app1 (the
stand-in backend and frontend, tags 1.0.0 and 2.0.0 pushed to the local registry),
runs `plano prod up` on loopback ports, then, each time under a fresh load of GETs
and POSTs through nginx (one TLS connection per request, tests/integration/loadgen.py):

    (a) seed   APP1_BACKEND_TAG=<new> docker compose -f docker-compose.yml
               -f docker-compose.prod.yml up -d app1-backend   (then the frontend)
    (b) plano  plano deploy app1 --tag <new>

(a) goes 1.0.0 -> 2.0.0 and (b) 2.0.0 -> 1.0.0, so both replace both containers.
The load runs `--settle` seconds before and after each update. Prints failed
requests, the maximum latency and the update's seconds side by side, and the ratio
of failures. Removes its containers and workspace at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.loadgen import Load  # noqa: E402
from tests.integration.stackfixtures import make_workspace, plano, prod_running  # noqa: E402
from tests.integration.test_deploy_e2e import ROLES, publish_app1  # noqa: E402
from tests.integration.test_prod_e2e import set_env  # noqa: E402


def measured(ws, workers: int, settle: float, update) -> tuple[Load, float]:
    load = Load(ws.ports["prod_https"], "app1.example.com", workers=workers, max_seconds=600).start()
    try:
        time.sleep(settle)
        started = time.monotonic()
        update()
        seconds = time.monotonic() - started
        time.sleep(settle)
    finally:
        load.stop()
    return load, seconds


def seed_update(ws, tag: str) -> None:
    for role in ROLES:
        env = {**os.environ, f"APP1_{role.upper()}_TAG": tag}
        subprocess.run(["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml",
                        "up", "-d", f"app1-{role}"], cwd=ws.infra, env=env, check=True, capture_output=True, timeout=600)
    # compose returns once the containers run; record the tags as plano would.
    set_env(ws.infra / ".env.prod", APP1_BACKEND_TAG=tag, APP1_FRONTEND_TAG=tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        ws = make_workspace(folder, apps=("app1",))
        publish_app1(ws, ("1.0.0", "2.0.0"))
        with prod_running(ws):
            compare(ws, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(ws, args) -> None:
    seed, seed_seconds = measured(ws, args.workers, args.settle, lambda: seed_update(ws, "2.0.0"))
    ours, our_seconds = measured(ws, args.workers, args.settle,
                                 lambda: plano("deploy", "app1", "--tag", "1.0.0", cwd=ws.infra, timeout=900))
    rows = [("(a) seed: compose up -d", seed, seed_seconds), ("(b) plano deploy", ours, our_seconds)]
    print(f"{'update':26} {'requests':>9} {'failed':>7} {'max latency':>12} {'update s':>9}")
    for name, load, seconds in rows:
        worst = max((r.seconds for r in load.results), default=0)
        print(f"{name:26} {len(load.results):9d} {len(load.failures):7d} {worst * 1000:9.0f} ms {seconds:9.1f}")
    kinds = sorted({f.detail.split(" ")[0] if f.what != "connection" else "connection" for f in seed.failures})
    print(f"failed requests, plano/seed: {len(ours.failures)}/{len(seed.failures)}"
          + (f" (seed failures: {', '.join(kinds)})" if kinds else ""))


if __name__ == "__main__":
    main()
