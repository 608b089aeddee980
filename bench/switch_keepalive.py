"""What a switch costs clients that keep their connections: nginx reloads against the
DNS switch `plano deploy` uses and a certificate install, under the same loads, in one run.

    python bench/switch_keepalive.py [--switches 20] [--every 0.5] [--workers 3]

Needs what ./scripts/test.sh starts (engine, stand-in images, local registry).
Creates a temporary workspace with app1 (the stand-in backend and frontend), runs
`plano prod up` on loopback ports, then twice, each time under fresh loads of GETs
and POSTs through nginx (`--workers` clients opening a connection per request and
`--workers` HTTP/1.1 keep-alive clients and `--workers` HTTP/2 clients,
tests/integration/loadgen.py):

    (a) reload   `--switches` graceful reloads of nginx (docker/nginx/bin/plano-reload.sh,
                 as `plano render` does), `--every` s apart
    (b) switch   `--switches` switches of app1-backend's DNS answer between its container
                 and Docker's answer (what `plano deploy` does), `--every` s apart
    (c) certs    `--switches` installs of app1's certificate and key, two self-signed pairs
                 in turn, written as certbot's deploy hook and `plano certs` write them
                 (renamed into place, key 0640 certbot's); nginx loads them by itself

Prints each load's requests and failed requests per method, why they failed, whether
an unanswered POST was written anyway (a request the server processed: a client
cannot retry it safely) and the failures per reload against those per switch. Removes its containers and workspace at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# bench/, this script's folder, is on sys.path.
from deploy_downtime import measured  # noqa: E402

from plano.core import naming as n  # noqa: E402
from plano.core.files import write_atomic  # noqa: E402
from tests.integration.loadgen import Load  # noqa: E402
from tests.integration.stackfixtures import docker, make_workspace, prod_running, sql  # noqa: E402
from tests.integration.test_deploy_e2e import publish_app1  # noqa: E402
from tests.unit.test_certs import self_signed  # noqa: E402


def under_load(ws, workers: int, action, count: int, every: float) -> dict[str, Load]:
    """`count` actions, `every` s apart, under deploy_downtime's two loads (2 s before and after)."""
    def repeated() -> None:
        for _ in range(count):
            action()
            time.sleep(every)

    return measured(ws, workers, 2.0, repeated, ("new connection", "keep-alive", "HTTP/2"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-switch-"))
    try:
        ws = make_workspace(folder, apps=("app1",))
        publish_app1(ws)
        with prod_running(ws):
            compare(ws, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(ws, args) -> None:
    nginx = f"{ws.name}-nginx-1"
    backend = f"{ws.name}-app1-backend-1"
    address = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{ws.name}_app1-net").IPAddress}}}}', backend).stdout.strip()
    override = ws.infra / "data/nginx/dns/app1-backend"
    flips = iter(range(10**6))

    def reload() -> None:
        docker("exec", nginx, "/etc/plano/nginx/bin/plano-reload.sh")

    def switch() -> None:  # the same container either way: only the mechanism is measured
        if next(flips) % 2 == 0:
            write_atomic(override, f"{address} app1-backend\n", 0o644)  # as plano deploy writes it
        else:
            override.unlink(missing_ok=True)

    folder = ws.infra / "data/certs/plano/app1"
    pairs = [self_signed(["app1.example.com"], now=dt.datetime.now(dt.UTC))
             for _ in range(2)]
    installs = iter(range(10**6))

    def certs() -> None:
        chain, key = pairs[next(installs) % 2]
        write_atomic(folder / "privkey.pem", key, 0o640, n.CERTBOT_UID)
        write_atomic(folder / "fullchain.pem", chain, 0o644, n.CERTBOT_UID)

    results = {"(a) reload": under_load(ws, args.workers, reload, args.switches, args.every),
               "(b) DNS switch": under_load(ws, args.workers, switch, args.switches, args.every),
               "(c) certs": under_load(ws, args.workers, certs, args.switches, args.every)}
    override.unlink(missing_ok=True)
    print(f"{args.switches} of each, {args.every} s apart")
    print(f"{'method':16} {'load':15} {'requests':>9} {'failed':>7}")
    for method, loads in results.items():
        for kind, load in loads.items():
            print(f"{method:16} {kind:15} {len(load.results):9d} {len(load.failures):7d}")
    rows = set(sql(ws, "app1", "SELECT value FROM items WHERE value LIKE 'load-%'").split())
    for method, loads in results.items():
        for kind, load in loads.items():
            acked, unanswered = load.writes()
            if unanswered or acked - rows:
                print(f"  {method} {kind}: {len(acked - rows)} acknowledged POSTs missing from the database; "
                      f"{len(unanswered)} POSTs unanswered, {len(unanswered & rows)} of them written")
            why = Counter(re.sub(r"\d+", "N", f.detail)[:120] for f in load.failures)
            for detail, count in why.most_common(3):
                print(f"  {method} {kind}: {count} x {detail}")
    for kind in results["(a) reload"]:
        per = {method: len(loads[kind].failures) / args.switches for method, loads in results.items()}
        print(f"{kind}: failed requests per reload: {per['(a) reload']:.2f}; per DNS switch: {per['(b) DNS switch']:.2f}; "
              f"per certificate install: {per['(c) certs']:.2f}")


if __name__ == "__main__":
    main()
