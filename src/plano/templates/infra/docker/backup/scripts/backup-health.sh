#!/bin/sh
# Healthy until a backup fails or none succeeded for two days (a schedule that
# silently stopped). Before the first run there is nothing to judge.
set -eu

status=${BACKUPS_DIR:-/backups}/.status
[ -s "$status" ] || exit 0
last=$(tail -n 1 "$status")
case $last in
    failed*) echo "last backup failed: $last"; exit 1 ;;
esac
newest=$(grep '^ok ' "$status" | tail -n 1 | cut -d' ' -f2)
[ -n "$newest" ] || exit 0
age=$(( $(date -u +%s) - $(date -u -d "$newest" +%s) ))
if [ "$age" -gt $((49 * 3600)) ]; then
    echo "no successful backup since $newest"
    exit 1
fi
