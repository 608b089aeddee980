"""Failed requests during an update: the seed's `docker compose ... up -d` against
`plano deploy`, under the same two loads at once, in one run.

    python bench/deploy_downtime.py [--workers 3] [--settle 3]

Needs what ./scripts/test.sh starts: the Docker engine, the stand-in images and the
local registry on 127.0.0.1:5000. Creates a temporary workspace with app1 (the
stand-in backend and frontend, tags 1.0.0 and 2.0.0 pushed to the local registry),
runs `plano prod up` on loopback ports, then, each time under two fresh loads of GETs
and POSTs through nginx (tests/integration/loadgen.py): `--workers` clients opening
one TLS connection per request, and `--workers` keep-alive clients, each keeping one
connection for the whole run:

    (a) seed   APP1_BACKEND_TAG=<new> docker compose -f docker-compose.yml
               -f docker-compose.prod.yml up -d app1-backend   (then the frontend)
    (b) plano  plano deploy app1 --tag <new>

(a) goes 1.0.0 -> 2.0.0 and (b) 2.0.0 -> 1.0.0, so both replace both containers.
The loads run `--settle` seconds before and after each update. Prints, per method and
load: requests, failed requests, POSTs acknowledged but missing from the database
(lost), POSTs that failed (an error answer or none: how many of those were
written all the same, which their client cannot know), the maximum
latency; and the update's wall time, with plano's minus the seed's. Removes its
containers and workspace at the end.
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
from tests.integration.stackfixtures import make_workspace, plano, prod_running, sql  # noqa: E402
from tests.integration.test_deploy_e2e import ROLES, publish_app1  # noqa: E402
from tests.integration.test_prod_e2e import set_env  # noqa: E402


def measured(ws, workers: int, settle: float, update,
             kinds: tuple[str, ...] = ("new connection", "keep-alive"), port: int | None = None) -> tuple[dict[str, Load], float]:
    """`update()` under `workers` clients of each kind ("new connection", "keep-alive" for
    HTTP/1.1, "HTTP/2"), `settle` s before and after, on 127.0.0.1:`port` (default: the
    workspace's prod HTTPS port); the loads and update's seconds."""
    loads = {kind: Load(port or ws.ports["prod_https"], "app1.example.com", workers=workers, max_seconds=900,
                        keepalive=kind == "keep-alive", http2=kind == "HTTP/2")
             for kind in kinds}
    for load in loads.values():
        load.start()
    try:
        time.sleep(settle)
        started = time.monotonic()
        update()
        seconds = time.monotonic() - started
        time.sleep(settle)
    finally:
        for load in loads.values():
            load.stop()
    return loads, seconds


def seed_update(ws, tag: str) -> None:
    for role in ROLES:
        env = {**os.environ, f"APP1_{role.upper()}_TAG": tag}
        subprocess.run(["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml",
                        "up", "-d", f"app1-{role}"], cwd=ws.infra, env=env, check=True, capture_output=True, timeout=600)
    # compose returns once the containers run; record the tags as plano would.
    set_env(ws.infra / ".env.prod", APP1_BACKEND_TAG=tag, APP1_FRONTEND_TAG=tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
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
    rows = set(sql(ws, "app1", "SELECT value FROM items WHERE value LIKE 'load-%'").split())
    print(f"{'update':26} {'load':15} {'requests':>9} {'failed':>7} {'POSTs lost':>10} {'POSTs failed':>12} "
          f"{'(written)':>9} {'max latency':>12}")
    for name, loads in (("(a) seed: compose up -d", seed), ("(b) plano deploy", ours)):
        for kind, load in loads.items():
            acked, unanswered = load.writes()
            worst = max((r.seconds for r in load.results), default=0)
            print(f"{name:26} {kind:15} {len(load.results):9d} {len(load.failures):7d} {len(acked - rows):10d} "
                  f"{len(unanswered):12d} {len(unanswered & rows):9d} {worst * 1000:9.0f} ms")
    print(f"update wall time: seed {seed_seconds:.1f} s, plano {our_seconds:.1f} s "
          f"(plano - seed: {our_seconds - seed_seconds:+.1f} s; goal: at most +5 s)")
    failed = sum(len(lo.failures) for lo in ours.values()), sum(len(lo.failures) for lo in seed.values())
    print(f"failed requests, plano/seed: {failed[0]}/{failed[1]}")


if __name__ == "__main__":
    main()
