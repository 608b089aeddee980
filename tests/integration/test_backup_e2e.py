"""Backups for real, with the stack's Postgres: back up two apps, wipe them, restore,
and get identical contents; verify catches tampering; a killed run leaves only the
older good backups; retention over a simulated sequence of dates; a restic round
trip to a local repository; the daily schedule of the backup service."""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.integration.net import https_json, https_request, wait_for
from tests.integration.stackfixtures import docker, make_workspace, plano, prod_running
from tests.integration.test_prod_e2e import build_and_push, set_env

pytestmark = pytest.mark.expected_seconds(170)  # on a 2-core machine

APPS = ("app1", "app2")


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("backup"))
    build_and_push(ws, "1.0.0")
    set_env(ws.infra / ".env.prod", **{f"{a.upper()}_{r.upper()}_TAG": "1.0.0" for a in APPS for r in ("BACKEND", "FRONTEND")})
    with prod_running(ws):
        yield ws


def compose(ws, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml", *args]
    proc = subprocess.run(argv, cwd=ws.infra, capture_output=True, text=True, timeout=900)
    assert not check or proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def sql(ws, database: str, query: str) -> str:
    return compose(ws, "exec", "-T", "database", "psql", "-U", "postgres", "-d", database, "-At", "-c", query).stdout.strip()


def fingerprint(ws) -> dict[str, object]:
    """Every app's rows (count and an order-independent checksum) and uploads, byte for byte."""
    out = {}
    for app in APPS:
        out[f"{app} rows"] = sql(ws, app, "SELECT count(*), sum(hashtext(t::text)::bigint) FROM items t")
        folder = ws.infra / "data/uploads" / app
        out[f"{app} uploads"] = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    return out


def backup_ids(ws) -> list[str]:
    return [b["id"] for b in json.loads(plano("backup", "list", "--json", cwd=ws.infra).stdout)["backups"]]


def test_1_retention_over_a_sequence_of_dates(site):
    ws = site
    manifest = ws.infra / "plano.yml"
    original = manifest.read_text()
    manifest.write_text(original.replace("keep_daily: 7\n  keep_weekly: 4\n  keep_monthly: 6",
                                         "keep_daily: 2\n  keep_weekly: 2\n  keep_monthly: 2"))
    plano("render", cwd=ws.infra)
    made = ["20260105T030000Z", "20260130T030000Z", "20260201T030000Z", "20260210T030000Z", "20260215T030000Z",
            "20260216T030000Z", "20260216T150000Z", "20260217T030000Z"]
    for backup_id in made:
        (ws.infra / "data/backups" / backup_id).mkdir(parents=True)
    try:
        plano("backup", "prune", cwd=ws.infra)
        # 2 days: 17th, 16th (its newest); 2 ISO weeks: W08 (17th), W07 (15th); 2 months: Feb (17th), Jan (30th).
        assert backup_ids(ws) == ["20260130T030000Z", "20260215T030000Z", "20260216T150000Z", "20260217T030000Z"]
    finally:
        for backup_id in made:
            shutil.rmtree(ws.infra / "data/backups" / backup_id, ignore_errors=True)
        manifest.write_text(original)
        plano("render", cwd=ws.infra)


def test_2_backup_wipe_restore_gives_identical_contents(site):
    ws = site
    port = ws.ports["prod_https"]
    for app in APPS:
        for i in range(50):
            assert https_json(port, f"{app}.example.com", "/api/rows", "POST", {"value": f"{app}-{i}-é"})[0] == 201
        for name, data in (("photo.bin", os.urandom(4096)), ("note.txt", f"{app} note".encode())):
            assert https_request(port, f"{app}.example.com", f"/api/uploads/{name}", "PUT", data)[0] == 201
    before = fingerprint(ws)
    out = plano("backup", "run", cwd=ws.infra, timeout=900)
    backup_id = out.stdout.split()[-2]
    folder = ws.infra / "data/backups" / backup_id
    assert (folder.stat().st_uid, (folder / "app1.dump").stat().st_uid) == (1000, 1000), "written as the apps' user, not root"
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "SHA256SUMS", "manifest.json", "globals.sql", "app1.dump", "app1.stats", "app1-uploads.tar",
        "app2.dump", "app2.stats", "app2-uploads.tar"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["id"] == backup_id and manifest["postgres"] and "pg_dump" in manifest["pg_dump"]
    assert manifest["compression"] == "zstd"  # this pg_dump has it (PostgreSQL >= 16)
    sums = dict(reversed(line.split()) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == sums
    sizes = {f["name"]: f["bytes"] for f in manifest["files"]}
    assert sizes["app1.dump"] == (folder / "app1.dump").stat().st_size
    assert (folder / "app1.stats").read_text() == "public.items\t50\n"  # the snapshot's row counts
    listed = json.loads(plano("backup", "list", "--json", cwd=ws.infra).stdout)
    assert listed["backups"][-1]["apps"] == ["app1", "app2"] and listed["last_success"]

    # Wipe: drop the tables, delete the uploads.
    for app in APPS:
        sql(ws, app, "DROP TABLE items")
        for p in (ws.infra / "data/uploads" / app).iterdir():
            p.unlink()
    for app in APPS:
        assert sql(ws, app, "SELECT to_regclass('public.items') IS NULL") == "t"
        assert not list((ws.infra / "data/uploads" / app).iterdir())
    plano("backup", "restore", backup_id, "--yes", cwd=ws.infra, timeout=900)
    assert fingerprint(ws) == before
    status, rows = https_json(port, "app1.example.com", "/api/rows")
    assert status == 200 and len(rows["rows"]) == 50
    # The restore kept a safety backup of the wiped state first.
    assert len(backup_ids(ws)) == 2


def test_3_verify_passes_on_a_good_backup_and_fails_on_tampered_ones(site):
    ws = site
    good = backup_ids(ws)[0]
    out = plano("backup", "verify", good, cwd=ws.infra, timeout=900)
    assert "app1: 1 tables restored, rows and checksums match" in out.stderr and "verified" in out.stdout
    source = ws.infra / "data/backups" / good
    # A changed byte: the checksums say so.
    flipped = ws.infra / "data/backups/20200101T000000Z"
    shutil.copytree(source, flipped)
    dump = bytearray((flipped / "app1.dump").read_bytes())
    dump[len(dump) // 2] ^= 0xFF
    (flipped / "app1.dump").write_bytes(bytes(dump))
    bad = plano("backup", "verify", "20200101T000000Z", cwd=ws.infra, check=False, timeout=900)
    assert bad.returncode == 1 and "checksums do not match SHA256SUMS" in bad.stderr
    # Contents that differ from what was dumped, with checksums made to match.
    lied = ws.infra / "data/backups/20200102T000000Z"
    shutil.copytree(source, lied)
    (lied / "app1.stats").write_text("public.items\t51\n")
    resum(lied)
    bad = plano("backup", "verify", "20200102T000000Z", cwd=ws.infra, check=False, timeout=900)
    assert bad.returncode == 1 and "restored rows differ from the dump's (table, rows)" in bad.stderr
    # A backup from before the content checksums moved to verify: its .stats has a third
    # column, sum(hashtext(t::text)) per table in the snapshot, checked the old way.
    older = ws.infra / "data/backups/20200103T000000Z"
    shutil.copytree(source, older)
    legacy = "SELECT 'public.items', count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM items t"
    restored = sql(ws, "app1", legacy).replace("|", "\t")  # app1 holds what the good backup holds
    (older / "app1.stats").write_text(restored + "\n")
    resum(older)
    out = plano("backup", "verify", "20200103T000000Z", cwd=ws.infra, timeout=900)
    assert "app1: 1 tables restored, rows and checksums match" in out.stderr
    (older / "app1.stats").write_text(restored[:-1] + ("1" if restored[-1] != "1" else "2") + "\n")
    resum(older)
    bad = plano("backup", "verify", "20200103T000000Z", cwd=ws.infra, check=False, timeout=900)
    assert bad.returncode == 1 and "restored rows differ from the dump's (table, rows)" in bad.stderr
    for folder in (flipped, lied, older):
        shutil.rmtree(folder)
    assert sql(ws, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'plano_verify_%'") == "0"


def resum(folder) -> None:
    """SHA256SUMS made to match whatever the folder holds now."""
    subprocess.run("sha256sum -- $(ls | grep -v SHA256SUMS) > SHA256SUMS", shell=True, cwd=folder, check=True)


# In template1, so in every database created after it, verify's scratch copy included:
# each table named items gets a trigger that changes every row it is given.
ALTERING_RESTORE = """
CREATE FUNCTION public.plano_test_alter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.value := NEW.value || '!'; RETURN NEW; END $$;
CREATE FUNCTION public.plano_test_hook() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
               WHERE command_tag = 'CREATE TABLE' AND object_identity = 'public.items') THEN
        CREATE TRIGGER plano_test BEFORE INSERT ON public.items FOR EACH ROW EXECUTE FUNCTION public.plano_test_alter();
    END IF;
END $$;
CREATE EVENT TRIGGER plano_test ON ddl_command_end EXECUTE FUNCTION public.plano_test_hook();
"""


def test_3b_verify_fails_when_the_restored_rows_differ_from_the_dumps(site):
    """Same tables, same row counts, other contents: the content checksums, taken from
    the dump stream and from the restored copy, catch it."""
    ws = site
    good = backup_ids(ws)[0]
    sql(ws, "template1", ALTERING_RESTORE)
    try:
        bad = plano("backup", "verify", good, cwd=ws.infra, check=False, timeout=900)
    finally:
        sql(ws, "template1", "DROP EVENT TRIGGER plano_test; DROP FUNCTION public.plano_test_hook(), public.plano_test_alter()")
    assert bad.returncode == 1, bad.stderr
    assert "app1: restored rows differ from the dump's (table, rows, sha256 of its sorted rows)" in bad.stderr
    assert "COPY public.items (id, value, created_at) FROM stdin;\t50\t" in bad.stderr  # the diff names the table
    plano("backup", "verify", good, cwd=ws.infra, timeout=900)  # the same backup, restored faithfully
    assert sql(ws, "postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'plano_verify_%'") == "0"


def oneoff_backup_containers(ws) -> list[str]:
    return docker("ps", "-q", "--filter", f"label=com.docker.compose.project={ws.name}",
                  "--filter", "label=com.docker.compose.service=backup", "--filter", "label=com.docker.compose.oneoff=True").stdout.split()


def test_4_a_run_killed_mid_dump_leaves_only_the_older_good_backups(site):
    ws = site
    sql(ws, "app1", "CREATE TABLE big AS SELECT g, md5(g::text) AS h FROM generate_series(1, 3000000) g")
    before = backup_ids(ws)
    try:
        run = subprocess.Popen([sys.executable, "-m", "plano.cli", "backup", "run", "app1"], cwd=ws.infra,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        backups = ws.infra / "data/backups"
        wait_for(lambda: any(p.stat().st_size > 1_000_000 for p in backups.glob(".partial-*/app1.dump.partial")),
                 "the dump never started", 120, 0.1)
        for container in oneoff_backup_containers(ws):
            docker("kill", container)
        run.communicate(timeout=120)
        assert run.returncode != 0
        assert backup_ids(ws) == before  # nothing final-named, nothing older deleted
        listed = json.loads(plano("backup", "list", "--json", cwd=ws.infra).stdout)
        assert listed["interrupted"], listed
        plano("backup", "verify", before[-1], cwd=ws.infra, timeout=900)
    finally:
        sql(ws, "app1", "DROP TABLE IF EXISTS big")
    # The next run cleans the leftovers of the killed one.
    plano("backup", "run", "app2", cwd=ws.infra, timeout=900)
    assert not list((ws.infra / "data/backups").glob(".partial-*"))


def test_5_restic_round_trip_to_a_local_repository(site):
    ws = site
    repository = ws.root / "restic-repo"
    (ws.infra / "restic-password").write_text("correct horse battery staple\n")
    manifest = ws.infra / "plano.yml"
    manifest.write_text(manifest.read_text().replace(
        "  keep_monthly: 6\n", f"  keep_monthly: 6\n  restic:\n    repository: {repository}\n    password_file: restic-password\n", 1))
    plano("render", cwd=ws.infra)
    out = plano("backup", "run", "app2", cwd=ws.infra, timeout=900)
    backup_id = out.stdout.split()[-2]
    assert f"offsite copy of {backup_id} in {repository} checked" in out.stderr
    assert (repository / "config").is_file()
    check = compose(ws, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "backup", "-c",
                    f"restic snapshots --json && restic restore latest --target /tmp/r && {{ cd /tmp/r/backups/{backup_id} 2>/dev/null || cd /tmp/r/{backup_id}; }} && sha256sum -c SHA256SUMS")
    snapshots = json.loads(check.stdout.splitlines()[0])
    assert snapshots[-1]["paths"] == [f"/backups/{backup_id}"] and "plano" in snapshots[-1]["tags"]
    assert "app2.dump: OK" in check.stdout


def test_6_the_backup_service_runs_on_schedule(site):
    ws = site
    before = set(backup_ids(ws))
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).strftime("%H:%M")
    loop = subprocess.Popen(
        ["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml",
         "run", "--rm", "--no-deps", "-T", "-e", f"BACKUP_TIME={at}", "backup"],
        cwd=ws.infra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: set(backup_ids(ws)) - before, f"no backup ran at {at}", 150, 1)
    finally:
        for container in oneoff_backup_containers(ws):
            docker("rm", "-f", container, check=False)
        loop.kill()
        output = loop.communicate(timeout=60)[0]
    assert f"T{at}:00Z" in output, output  # "plano-backup: next run at <date>T<at>:00Z"
    health = docker("inspect", "--format", "{{.State.Health.Status}}", f"{ws.name}-backup-1").stdout.strip()
    assert health == "healthy"


def test_7_the_postgres_password_reaches_the_backup_only_as_a_0600_passfile(site):
    """Written from the mounted secret file, on tmpfs, by the backup's own user."""
    ws = site
    out = compose(ws, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "backup", "-c",
                  "plano-backup.sh list > /dev/null && stat -c '%a %u' /tmp/plano-pgpass /run/secrets/POSTGRES_PASSWORD"
                  " && env && id -u").stdout.split("\n")
    assert out[:2] == ["600 1000", "400 1000"], out
    assert ws.env("prod")["POSTGRES_PASSWORD"] not in "\n".join(out)
    assert "PGPASSFILE=/tmp/plano-pgpass" in out and out[-2:] == ["1000", ""]
