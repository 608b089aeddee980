#!/bin/sh
# The backup service: `plano-backup run` every day at BACKUP_TIME (HH:MM, UTC).
# A failed run is printed here (plano prod logs backup) and recorded in
# data/backups/.status, which `plano backup list` and the healthcheck read.
set -u

at=${BACKUP_TIME:-03:30}
while :; do
    now=$(date -u +%s)
    next=$(date -u -d "today $at" +%s)
    if [ "$next" -le "$now" ]; then
        next=$(date -u -d "tomorrow $at" +%s)
    fi
    echo "plano-backup: next run at $(date -u -d "@$next" +%Y-%m-%dT%H:%M:%SZ)"
    sleep $((next - now))
    plano-backup.sh run || echo "plano-backup: the scheduled backup FAILED (see above)" >&2
done
