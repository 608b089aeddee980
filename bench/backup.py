"""plano's backup of a database of a few hundred MB against a raw `pg_dump -Fc` of the
same database, in the same run, and the restore time.

    python bench/backup.py [--rows 2500000] [--rounds 5]

Needs what ./scripts/test.sh starts (engine, stand-in images, local registry).
Creates a temporary workspace with app1, `plano prod up`, fills app1's database with
a generated table (--rows rows of ~110 bytes), then alternates, --rounds times (each
round in another order, so that none always runs first):

    raw gzip  pg_dump -Fc -d app1 -f /backups/raw.dump, in a one-off container of the
              backup service (same image, same network: only the work differs)
    raw zstd  the same with -Z zstd, the compression plano uses when pg_dump has it
    plano     plano backup run app1: pg_dump -Fc -Z zstd and per-table row counts in one
              snapshot, pg_restore -l, sha256, manifest, fsync, rename, retention
    script    the same backup without the CLI: plano-backup.sh run app1 in the same kind
              of one-off container (what the daily schedule runs), to tell the CLI's
              own cost (finding compose, is the database running?) from the script's

and times `plano backup restore <id> app1 --to-scratch bench_restore`. Prints each
time, the ratio plano/raw of the medians against raw with the same compression (goal:
<= 1.10) and the same ratio round by round (on a shared machine, a round's two runs
see about the same load), the ratio against the seed's plain `pg_dump -Fc` (gzip), and the restore time.
Removes its containers and workspace at the end.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.stackfixtures import make_workspace, prod_running  # noqa: E402
from tests.integration.test_deploy_e2e import publish_app1  # noqa: E402

COMPOSE = ["docker", "compose", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]


def timed(argv: list[str], cwd: Path) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, check=False, cwd=cwd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return time.monotonic() - started


def psql(ws, query: str) -> str:
    return subprocess.run([*COMPOSE, "exec", "-T", "database", "psql", "-U", "postgres", "-d", "app1", "-At", "-c", query],
                          cwd=ws.infra, check=True, capture_output=True, text=True, timeout=3600).stdout.strip()


def measure(ws, args) -> None:
    psql(ws, f"CREATE TABLE bench AS SELECT g, md5(g::text) AS a, md5((g * 2)::text) AS b, now() AS t "
             f"FROM generate_series(1, {args.rows}) g")
    size = psql(ws, "SELECT pg_size_pretty(pg_database_size('app1'))")
    # `plano-backup.sh list` first: it writes the passfile from the mounted secret (and lists nothing).
    raw_argv = [*COMPOSE, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "backup", "-c",
                "plano-backup.sh list > /dev/null && exec pg_dump -Fc -d app1 -f /backups/raw.dump"]
    zstd_argv = [*raw_argv[:-1], raw_argv[-1].replace("-Fc", "-Fc -Z zstd")]
    ours_argv = [sys.executable, "-m", "plano.cli", "backup", "run", "app1"]
    script_argv = [*COMPOSE, "run", "--rm", "--no-deps", "-T", "--entrypoint", "plano-backup.sh", "backup", "run", "app1"]
    runs = [(raw_argv, []), (zstd_argv, []), (ours_argv, []), (script_argv, [])]
    for i in range(args.rounds):
        for argv, times in runs[i % 4:] + runs[:i % 4]:
            times.append(timed(argv, ws.infra))
    raw, raw_zstd, ours, script = (times for _, times in runs)
    ids = sorted(p.name for p in (ws.infra / "data/backups").iterdir() if p.name[:1].isdigit())
    restore = timed([sys.executable, "-m", "plano.cli", "backup", "restore", ids[-1], "app1", "--to-scratch",
                     "bench_restore", "--yes"], ws.infra)
    dump_mb = (ws.infra / "data/backups" / ids[-1] / "app1.dump").stat().st_size / 1e6
    print(f"database app1: {size} ({args.rows} rows); dump {dump_mb:.0f} MB")
    print(f"{'':8} " + " ".join(f"round {i + 1:>2}" for i in range(args.rounds)) + "   median")
    for name, times in (("raw gzip", raw), ("raw zstd", raw_zstd), ("plano", ours), ("script", script)):
        print(f"{name:8} " + " ".join(f"{t:7.1f} s" for t in times) + f" {statistics.median(times):7.1f} s")
    print(f"ratio plano/raw pg_dump -Fc -Z zstd, the same compression (medians): "
          f"{statistics.median(ours) / statistics.median(raw_zstd):.2f} (goal <= 1.10)")
    paired = [o / z for o, z in zip(ours, raw_zstd, strict=True)]  # the same round: the same load, mostly
    print("ratio plano/raw zstd round by round: " + " ".join(f"{r:.2f}" for r in paired)
          + f"; median {statistics.median(paired):.2f}")
    print(f"of which the CLI (plano's own checks before the same compose run as 'script'): "
          f"{statistics.median(ours) - statistics.median(script):+.1f} s; the script against raw zstd: "
          f"{statistics.median(script) / statistics.median(raw_zstd):.2f}")
    print(f"ratio plano/raw pg_dump -Fc, gzip (medians): {statistics.median(ours) / statistics.median(raw):.2f}")
    print(f"restore into a scratch database: {restore:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_500_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        ws = make_workspace(folder, apps=("app1",))
        publish_app1(ws)
        with prod_running(ws):
            measure(ws, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
