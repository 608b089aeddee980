"""The cost of operating a server from the laptop: `plano -e production deploy` against
the same deploy run on the server itself, one run each.

    python bench/remote.py

Needs what ./scripts/test.sh starts (engine, stand-in images, local registry) and the
test-server image (plano-test/sshd, scripts/harness/images.sh). Makes the laptop's
infra with app1 (1.0.0 and 2.0.0 in the local registry) and one test server
(tests/integration/sshservers.py: sshd and its own Docker engine), trusts it and runs
`plano -e production server setup` (timed too), then:

    (a) on the server   plano deploy app1 --tag 2.0.0   (its SSH user, sudo, in the infra)
    (b) from the laptop plano -e production deploy app1 --tag 1.0.0, with a fresh
                        connection (the shared one closed first: the full cost)
    (c) from the laptop the same back to 2.0.0 while the shared connection is open

Prints each wall time and (b) and (c) minus (a). Removes the server, its images and the
workspace, and the registry tags it pushed, at the end.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import testrun
from tests.integration.test_remote_e2e import (
    close_connection,
    laptop,
    ok,
    on_server,
    remote_site,
    served,
)


def timed(run) -> float:
    started = time.monotonic()
    run()
    return time.monotonic() - started


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="plano-bench-remote-"))
    run = testrun.start()  # its ledger: the run's end removes the registry tags it pushed
    try:
        with remote_site(folder) as site:
            ok(laptop(site, "-e", "production", "server", "trust"))
            setup = timed(lambda: ok(laptop(site, "-e", "production", "server", "setup", timeout=1500)))
            again = timed(lambda: ok(laptop(site, "-e", "production", "server", "setup")))
            on_server_s = timed(lambda: on_server(site, "deploy", "app1", "--tag", "2.0.0"))
            assert served(site) == {"2.0.0"}
            close_connection(site)
            fresh = timed(lambda: ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", "1.0.0")))
            assert served(site) == {"1.0.0"}
            shared = timed(lambda: ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", "2.0.0")))
            assert served(site) == {"2.0.0"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        testrun.finish(run)
    print(f"server setup -e production: {setup:.1f} s on a fresh server, {again:.1f} s again (nothing to change)")
    print(f"(a) deploy on the server:                  {on_server_s:.1f} s")
    print(f"(b) deploy -e, fresh SSH connection:       {fresh:.1f} s  (+{fresh - on_server_s:.1f} s)")
    print(f"(c) deploy -e, shared connection open:     {shared:.1f} s  (+{shared - on_server_s:.1f} s)")


if __name__ == "__main__":
    main()
