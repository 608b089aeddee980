"""Moving an infra from one server (compose) to a swarm with its data (issue 16), as the
README tells it: a backup on the old server; on the new one the infra's committed
files, its `.env.prod` and that backup in `data/backups/`; `target: swarm`, `plano swarm
up`, then `plano backup restore ID`. The new server is a one-node swarm here (every
role on one node, the smallest shape), a Docker engine in a container that sees only
the new infra's folder; the old one is the harness engine.
"""

import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.integration.net import https_request
from tests.integration.stackfixtures import (
    Workspace,
    make_workspace,
    plano,
    prod_running,
)
from tests.integration.swarmnodes import swarm
from tests.integration.test_deploy_e2e import publish_app1
from tests.integration.test_swarm_e2e import plano_on, swarm_manifest

pytestmark = pytest.mark.expected_seconds(240)  # on a 2-core machine

ROWS = ("written-on-one-server-1", "written-on-one-server-2")


def post_rows(port: int) -> None:
    for value in ROWS:
        status, _, body = https_request(port, "app1.example.com", "/api/rows", "POST", json.dumps({"value": value}).encode(),
                                        headers={"Content-Type": "application/json"})
        assert status == 201, body


def new_server(old: Workspace, backup_id: str) -> Workspace:
    """What a user brings to the new server: the infra's files (a clone of its repository),
    its .env.prod (kept out of git) and the backup; no other data/."""
    new = Workspace(old.root / "new-server", old.name, old.ports)
    shutil.copytree(old.infra, new.infra, ignore=shutil.ignore_patterns("data"))
    shutil.copytree(old.infra / "data/backups" / backup_id, new.infra / "data/backups" / backup_id)
    return new


@pytest.fixture(scope="module")
def moved(tmp_path_factory, engine):
    old = make_workspace(tmp_path_factory.mktemp("move"), apps=("app1",))
    publish_app1(old, ("1.0.0",))
    with prod_running(old):
        post_rows(old.ports["prod_https"])
        backup_id = plano("backup", "run", cwd=old.infra).stdout.split()[1]
    new = new_server(old, backup_id)
    swarm_manifest(new, apps=("app1",))
    subprocess.run([sys.executable, "-m", "plano.cli", "render"], cwd=new.infra, check=True, capture_output=True, timeout=300)
    with swarm(f"{old.name}-mv", nodes=1, ports=(80, 443), shared=(new.root,), writable_registry=True) as cluster:
        plano_on(cluster, "swarm", "label", cluster.nodes[0], "edge", "data", "apps", cwd=new.infra)
        started = time.monotonic()
        plano_on(cluster, "swarm", "up", "--timeout", "300", cwd=new.infra)
        print(f"plano swarm up on a one-node swarm: {time.monotonic() - started:.1f} s")
        yield new, cluster, backup_id


def app1_sql(ws, cluster, query: str) -> list[str]:
    database = cluster.exec(0, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={ws.name}_database").stdout.split()[0]
    return cluster.exec(0, "docker", "exec", database, "psql", "-U", "postgres", "-d", "app1", "-At", "-c", query).stdout.split()


def app1_rows(ws, cluster) -> list[str]:
    return app1_sql(ws, cluster, "SELECT value FROM items ORDER BY value")


def test_the_backup_from_one_server_restores_on_the_swarm_and_the_app_serves_its_rows(moved):
    ws, cluster, backup_id = moved
    assert app1_sql(ws, cluster, "SELECT to_regclass('items') IS NULL") == ["t"]  # a new database: the rows are in the backup only
    listed = json.loads(plano_on(cluster, "backup", "list", "--json", cwd=ws.infra).stdout)
    assert [b["id"] for b in listed["backups"]] == [backup_id]
    plano_on(cluster, "backup", "verify", backup_id, cwd=ws.infra)
    started = time.monotonic()
    out = plano_on(cluster, "backup", "restore", backup_id, "--yes", cwd=ws.infra)
    print(f"plano backup restore on the swarm: {time.monotonic() - started:.1f} s")
    assert "app1: database restored" in out.stdout + out.stderr, out
    assert app1_rows(ws, cluster) == sorted(ROWS)
    port = cluster.published(0, 443)
    status, _, body = https_request(port, "app1.example.com", "/api/health")
    assert status == 200 and json.loads(body)["database"] == "up", body
    status, _, body = https_request(port, "app1.example.com", "/api/rows", "POST", json.dumps({"value": "after-the-move"}).encode(),
                                    headers={"Content-Type": "application/json"})
    assert status == 201, body  # the app's own role owns the restored database
    assert "after-the-move" in app1_rows(ws, cluster)
