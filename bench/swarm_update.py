"""A rolling update on a three-node swarm against `plano deploy` on one server: the
same app, the same loads, the same update (1.0.0 -> 2.0.0 of both services), one run.

    python bench/swarm_update.py [--workers 3] [--settle 3]

Needs what ./scripts/test.sh starts (engine, stand-in images, local registry).
Creates a temporary workspace with app1 (the stand-in backend and frontend, 1.0.0 and
2.0.0 in the local registry), then:

    (a) one server  `plano prod up` on loopback ports, then `plano deploy app1 --tag 2.0.0`
                    (plano's DNS switch, one container per service)
    (b) swarm       the same infra with `target: swarm` on three Docker engines in
                    containers (tests/integration/swarmnodes.py: node 1 manager, edge
                    and apps, node 2 data, node 3 apps), `plano swarm up`, then
                    `plano deploy app1 --tag 2.0.0` (Swarm's start-first rolling update,
                    two tasks per service)

Each update runs under fresh loads of GETs and POSTs through nginx (`--workers`
clients opening a TLS connection per request and `--workers` keep-alive clients,
tests/integration/loadgen.py), `--settle` seconds before and after. Prints, per
target and load: requests, failed requests, acknowledged POSTs missing from the
database, unanswered POSTs, the maximum latency; and each update's wall time, with
the swarm's over one server's. Removes its nodes, containers and workspace at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# bench/, this script's folder, is on sys.path.
from deploy_downtime import measured

from tests.integration.loadgen import Load
from tests.integration.stackfixtures import make_workspace, plano, prod_running, sql
from tests.integration.swarmnodes import swarm
from tests.integration.test_deploy_e2e import publish_app1
from tests.integration.test_swarm_e2e import database_rows, plano_on, swarm_manifest


def one_server(ws, args) -> tuple[dict[str, Load], float, set[str]]:
    with prod_running(ws):
        loads, seconds = measured(ws, args.workers, args.settle,
                                  lambda: plano("deploy", "app1", "--tag", "2.0.0", cwd=ws.infra, timeout=900))
        rows = set(sql(ws, "app1", "SELECT value FROM items WHERE value LIKE 'load-%'").split())
    return loads, seconds, rows


def on_swarm(ws, args) -> tuple[dict[str, Load], float, set[str]]:
    swarm_manifest(ws, apps=("app1",))
    subprocess.run([sys.executable, "-m", "plano.cli", "render"], cwd=ws.infra, check=True, capture_output=True, timeout=300)
    with swarm(f"{ws.name}-sw", ports=(80, 443), shared=(ws.root,), writable_registry=True) as cluster:
        edge, data, apps = cluster.nodes
        plano_on(cluster, "swarm", "label", edge, "edge", "apps", cwd=ws.infra)
        plano_on(cluster, "swarm", "label", data, "data", cwd=ws.infra)
        plano_on(cluster, "swarm", "label", apps, "apps", cwd=ws.infra)
        plano_on(cluster, "swarm", "up", "--timeout", "300", cwd=ws.infra)
        loads, seconds = measured(ws, args.workers, args.settle,
                                  lambda: plano_on(cluster, "deploy", "app1", "--tag", "2.0.0", cwd=ws.infra),
                                  port=cluster.published(0, 443))
        rows = database_rows(ws, cluster)
    return loads, seconds, rows


def report(results: dict[str, tuple[dict[str, Load], float, set[str]]]) -> None:
    print(f"{'target':12} {'load':15} {'requests':>9} {'failed':>7} {'POSTs lost':>10} {'unanswered POSTs':>16} {'max latency':>12}")
    for target, (loads, _, rows) in results.items():
        for kind, load in loads.items():
            acked, unanswered = load.writes()
            worst = max((r.seconds for r in load.results), default=0)
            print(f"{target:12} {kind:15} {len(load.results):9d} {len(load.failures):7d} {len(acked - rows):10d} "
                  f"{len(unanswered):16d} {worst * 1000:9.0f} ms")
            for failure in load.failures[:3]:
                print(f"{'':28} failed: {failure}")
    (_, single, _), (_, multi, _) = results["one server"], results["swarm"]
    print(f"update wall time: one server {single:.1f} s, swarm {multi:.1f} s (swarm/one server: {multi / single:.2f}x)")
    failed = [sum(len(lo.failures) for lo in loads.values()) for loads, _, _ in results.values()]
    print(f"failed requests, swarm/one server: {failed[1]}/{failed[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    try:
        ws = make_workspace(folder, apps=("app1",))
        publish_app1(ws, ("1.0.0", "2.0.0"))
        results = {"one server": one_server(ws, args), "swarm": on_swarm(ws, args)}
        report(results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
