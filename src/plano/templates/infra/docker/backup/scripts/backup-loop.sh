#!/bin/sh
# The backup service: `plano-backup run` every day at BACKUP_TIME (HH:MM, UTC).
# A failed run is printed here (plano prod logs backup) and recorded in
# data/backups/.status, which `plano backup list` and the healthcheck read.
#
# It stops on SIGTERM or SIGINT (docker stop; the Postgres image this is built on
# stops with SIGINT): the signal goes to its whole process group, so a backup in
# flight stops too, and plano-backup removes its .partial folder and records the run
# as failed (a backup is renamed to its final name only once complete). Sleeps and
# runs go to the background and `wait`, which a trapped signal interrupts at once.
set -u

stop() {
    trap '' TERM INT
    kill -TERM 0 2>/dev/null
    wait
    exit 0
}
trap stop TERM INT

at=${BACKUP_TIME:-03:30}
while :; do
    now=$(date -u +%s)
    next=$(date -u -d "today $at" +%s)
    if [ "$next" -le "$now" ]; then
        next=$(date -u -d "tomorrow $at" +%s)
    fi
    echo "plano-backup: next run at $(date -u -d "@$next" +%Y-%m-%dT%H:%M:%SZ)"
    sleep $((next - now)) &
    wait $!
    plano-backup.sh run &
    wait $! || echo "plano-backup: the scheduled backup FAILED (see above)" >&2
done
