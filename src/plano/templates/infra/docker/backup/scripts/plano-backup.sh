#!/bin/sh
# plano's backups, run inside the backup service (the stack's Postgres image, plus
# restic). One implementation for `plano backup ...`, docker/shared-scripts/backup.sh
# (cron without plano) and the daily schedule (backup-loop).
#
#   plano-backup run [--no-prune] [APP...]  back up every app (or these), then retention, then offsite
#   plano-backup verify [ID]         restore into scratch databases and compare (newest if no ID)
#   plano-backup restore ID [APP] [--to-scratch NAME]
#   plano-backup prune               apply the retention policy now
#   plano-backup list                one line per backup: id, size, apps
#
# A backup is data/backups/<ID>/ (ID = UTC time, e.g. 20261129T033000Z) holding
# globals.sql, <app>.dump (pg_dump -Fc), <app>.stats (per-table row counts, taken
# in the dump's own snapshot while pg_dump runs), <app>-uploads.tar (archived while
# the database is dumped), manifest.json and SHA256SUMS. It is built in
# .partial-<ID>/ and renamed when complete: a failed or killed run leaves no
# final-named backup, and nothing older is deleted unless this run succeeded.
#
# What verify proves: the files are the ones written (SHA256SUMS); the restored
# database has, table by table, the row counts of the snapshot that was dumped
# (<app>.stats); and its rows are the dump's rows: for every table, the sha256 of
# its COPY lines from the dump equals that of the restored table, re-dumped (in the
# dump's order, else sorted: order aside, the same rows).
# The content checksums are taken from the dump stream at verify time, not by a
# second scan of the live database during the backup (that scan, hashtext of every
# row as text, cost 1.3-1.4x the dump's time on a 2-core server); the dump they
# are taken from is the one SHA256SUMS pinned when it was written.
#
# Environment (set by the compose service): PGHOST, PGUSER, PGPASSFILE and
# POSTGRES_PASSWORD_FILE (the mounted secret the passfile is written from);
# BACKUP_APPS (apps with uploads), BACKUP_DB_APPS (apps with a database);
# KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY; optional RESTIC_REPOSITORY and
# RESTIC_PASSWORD_FILE.
set -eu

BACKUPS=${BACKUPS_DIR:-/backups}
UPLOADS=${UPLOADS_DIR:-/uploads}
STATUS=$BACKUPS/.status

say() { echo "plano-backup: $*" >&2; }
die() { say "$*"; exit 1; }
# A stop (docker stop, Ctrl-C) ends the run through its EXIT trap: a run in flight
# removes its .partial folder and is recorded as failed.
trap 'say "stopped by a signal"; exit 143' TERM INT HUP

contains() { # word list
    case " $2 " in *" $1 "*) return 0 ;; esac
    return 1
}

TABLES_SQL="FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg_toast%'
           ORDER BY 1"

# Per-table row counts, one line per table: schema.table <TAB> rows. Run inside the
# dump's snapshot, and on the restored copy by verify.
STATS_SQL="SELECT format('SELECT %L, count(*) FROM %s', n.nspname || '.' || c.relname, c.oid::regclass) $TABLES_SQL"

# Backups made before the content checksums moved to verify: their .stats has a third
# column, sum(hashtext(t::text)) per table, recomputed the same way on the restored copy.
LEGACY_STATS_SQL="SELECT format('SELECT %L, count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM %s t',
                n.nspname || '.' || c.relname, c.oid::regclass) $TABLES_SQL"

stats_of() { # database outfile [sql]
    printf '%s \\gexec\n' "${3:-$STATS_SQL}" | psql -X -q -v ON_ERROR_STOP=1 -At -F "$(printf '\t')" -d "$1" -o "$2"
}

# The rows of every table in a plain-format data dump (stdin): one line per table,
# "<its COPY line> <TAB> rows <TAB> sha256 of its rows". The COPY line names the
# table and its columns in order. With a sort folder, the rows are sorted first (the
# sha256 does not depend on their order; sorts spill there); without, they are taken
# in the order given: pg_dump reads with synchronized scans off, so a freshly
# restored table gives its rows back in the dump's order.
contents_of() { # [sort folder]
    hasher="sha256sum | cut -c1-64"
    [ -z "${1:-}" ] || hasher="LC_ALL=C sort -S 32M -T '$1' | $hasher"
    LC_ALL=C awk -v hasher="$hasher" '
        inside && $0 == "\\." {
            printf "%s\t%d\t", table, rows
            if (rows == 0) print "-"
            fflush()
            close(hasher)
            inside = 0
            next
        }
        inside { print | hasher; rows++; next }
        /^COPY .* FROM stdin;$/ { inside = 1; table = $0; rows = 0 }
    ' | LC_ALL=C sort
}

# zstd when this pg_dump has it (PostgreSQL 16+): faster and smaller than the
# default gzip, still the custom format every pg_restore >= 16 reads. Asked without
# a dump: pg_dump checks its options, -Z included, before it connects, so it only
# tries the (missing) probe socket when it takes -Z zstd.
compression() {
    if [ -z "${PLANO_COMPRESS:-}" ]; then
        if pg_dump -Fc -Z zstd -s -d "host=/plano-probe-no-server" -f /dev/null 2>&1 | grep -q plano-probe-no-server; then
            PLANO_COMPRESS=zstd
        else
            PLANO_COMPRESS=gzip
        fi
    fi
    echo "$PLANO_COMPRESS"
}

# pg_dump and the row counts in one REPEATABLE READ snapshot, at the same time: the
# counts describe exactly what the dump holds, even while the app writes. The first
# session exports the snapshot and holds it until both are done; pg_dump and a second
# session (the counts) take it, and one shell waits for them both (no polling). The
# dump's time zone is fixed (UTC) so that verify re-dumps timestamps the same way.
dump_app() { # app workdir
    app=$1 work=$2
    PLANO_COMPRESS=$(compression)
    PLANO_APP=$app PLANO_DUMP=$work/$app.dump.partial PLANO_STATS=$work/$app.stats.partial
    export PLANO_COMPRESS PLANO_APP PLANO_DUMP PLANO_STATS
    printf 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET TRANSACTION SNAPSHOT :%s;\n%s \\gexec\nCOMMIT;\n' \
        "'snapshot'" "$STATS_SQL" > /tmp/plano-counts.sql
    rm -f "$PLANO_DUMP.rc" "$PLANO_STATS.rc"
    psql -X -q -v ON_ERROR_STOP=1 -d "$app" <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_export_snapshot() AS snapshot \gset
\setenv PLANO_SNAPSHOT :snapshot
\! (psql -X -q -v ON_ERROR_STOP=1 -At -F "$(printf '\t')" -v snapshot="$PLANO_SNAPSHOT" -d "$PLANO_APP" -f /tmp/plano-counts.sql -o "$PLANO_STATS"; echo $? > "$PLANO_STATS.rc") & PGTZ=UTC pg_dump -Fc -Z "$PLANO_COMPRESS" --snapshot="$PLANO_SNAPSHOT" -d "$PLANO_APP" -f "$PLANO_DUMP"; echo $? > "$PLANO_DUMP.rc"; wait
COMMIT;
SQL
    [ "$(cat "$PLANO_DUMP.rc" 2>/dev/null)" = 0 ] || die "$app: pg_dump failed"
    [ "$(cat "$PLANO_STATS.rc" 2>/dev/null)" = 0 ] || die "$app: counting the rows of the dump's snapshot failed"
    rm -f "$PLANO_DUMP.rc" "$PLANO_STATS.rc"
    pg_restore -l "$PLANO_DUMP" > /dev/null || die "$app: the dump does not read back (pg_restore -l)"
    mv "$PLANO_DUMP" "$work/$app.dump"
    mv "$PLANO_STATS" "$work/$app.stats"
}

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# The server's version (SHOW server_version), as pg_dumpall wrote it in the globals.
server_version() { # globals.sql
    version=$(sed -n 's/^-- Dumped from database version //p' "$1" | head -n 1)
    [ -n "$version" ] || version=$(psql -X -At -d postgres -c 'SHOW server_version')
    echo "$version"
}

write_manifest() { # workdir id
    work=$1 id=$2
    {
        printf '{\n  "id": %s,\n' "$(json_string "$id")"
        printf '  "created": %s,\n' "$(json_string "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
        printf '  "postgres": %s,\n' "$(json_string "$(server_version "$work/globals.sql")")"
        printf '  "pg_dump": %s,\n' "$(json_string "$(pg_dump --version)")"
        printf '  "compression": %s,\n' "$(json_string "${PLANO_COMPRESS:-gzip}")"
        printf '  "files": ['
        sep=""
        for file in "$work"/*; do
            name=${file##*/}
            case $name in SHA256SUMS | *.partial) continue ;; esac  # not itself, nor the checksum list
            # The checksum SHA256SUMS already holds: each file is read once.
            printf '%s\n    {"name": %s, "bytes": %s, "sha256": %s}' "$sep" "$(json_string "$name")" \
                "$(wc -c < "$file" | tr -d ' ')" "$(json_string "$(awk -v f="$name" '$2 == f {print $1}' "$work/SHA256SUMS")")"
            sep=","
        done
        printf '\n  ]\n}\n'
    } > "$work/manifest.json.partial"
    mv "$work/manifest.json.partial" "$work/manifest.json"
}

record() { # ok|failed message
    printf '%s %s %s\n' "$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" >> "$STATUS"
}

cmd_run() {
    prune=yes
    if [ "${1:-}" = --no-prune ]; then  # a safety backup before a restore keeps everything
        prune=no
        shift
    fi
    apps=${*:-${BACKUP_APPS:-}}
    id=$(date -u +%Y%m%dT%H%M%SZ)
    work=$BACKUPS/.partial-$id
    [ ! -e "$BACKUPS/$id" ] || die "$id exists already; run again in a second"
    mkdir -p "$work"
    trap 'rm -rf "$work"; record failed "run $id did not complete"' EXIT
    # Older runs that were killed leave .partial-* folders: never a backup, remove them.
    find "$BACKUPS" -maxdepth 1 -name '.partial-*' ! -name ".partial-$id" -exec rm -rf {} +
    pg_dumpall --globals-only > "$work/globals.sql.partial" &  # while the databases are dumped
    globals=$!
    for app in $apps; do
        tarred=""
        if [ -d "$UPLOADS/$app" ]; then  # archived while the database is dumped
            tar -C "$UPLOADS" -cf "$work/$app-uploads.tar.partial" "$app" &
            tarred=$!
        fi
        if contains "$app" "${BACKUP_DB_APPS:-}"; then
            say "$app: pg_dump"
            dump_app "$app" "$work"
        fi
        if [ -n "$tarred" ]; then
            wait "$tarred" || die "$app: archiving its uploads failed (tar)"
            mv "$work/$app-uploads.tar.partial" "$work/$app-uploads.tar"
        fi
    done
    wait "$globals" || die "pg_dumpall --globals-only failed"
    mv "$work/globals.sql.partial" "$work/globals.sql"
    (cd "$work" && sha256sum -- * > SHA256SUMS.partial && mv SHA256SUMS.partial SHA256SUMS)
    write_manifest "$work" "$id"
    # On disk before the rename makes it a backup: these files and the folder (pg_dump
    # synced its own), not every file system of the host as a bare sync would.
    sync -- "$work"/* "$work"
    mv "$work" "$BACKUPS/$id"
    sync -- "$BACKUPS"
    trap - EXIT
    record ok "$id"
    say "backup $id complete ($(du -sh "$BACKUPS/$id" | cut -f1))"
    if [ "$prune" = yes ]; then
        cmd_prune
    fi
    if [ -n "${RESTIC_REPOSITORY:-}" ] && ! offsite "$id"; then
        record failed "offsite copy of $id"
        die "$id is complete here, but its offsite copy to $RESTIC_REPOSITORY failed"
    fi
    echo "$id"
}

offsite() { # id
    restic cat config > /dev/null 2>&1 || restic init
    (cd "$BACKUPS" && restic backup --quiet --tag plano --host plano "$1")
    restic forget --quiet --tag plano --host plano --prune \
        --keep-daily "${KEEP_DAILY:-7}" --keep-weekly "${KEEP_WEEKLY:-4}" --keep-monthly "${KEEP_MONTHLY:-6}"
    restic check --quiet
    record ok "offsite $1"
    say "offsite copy of $1 in $RESTIC_REPOSITORY checked"
}

# The IDs to keep: the newest backup of each of the last KEEP_DAILY days, of the
# last KEEP_WEEKLY ISO weeks and of the last KEEP_MONTHLY months that have one.
keep_list() {
    ids=$(find "$BACKUPS" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort -r)
    for rule in "day:${KEEP_DAILY:-7}" "week:${KEEP_WEEKLY:-4}" "month:${KEEP_MONTHLY:-6}"; do
        kind=${rule%%:*} count=${rule#*:} seen=""
        for id in $ids; do
            case $kind in
                day) key=$(echo "$id" | cut -c1-8) ;;
                month) key=$(echo "$id" | cut -c1-6) ;;
                week) key=$(date -u -d "$(echo "$id" | cut -c1-8)" +%G%V) ;;
            esac
            contains "$key" "$seen" && continue
            [ "$(echo "$seen" | wc -w)" -lt "$count" ] || break
            seen="$seen $key"
            echo "$id"
        done
    done | sort -u
}

cmd_prune() {
    keep=$(keep_list | tr '\n' ' ')
    [ -n "$keep" ] || return 0  # never prune everything
    find "$BACKUPS" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort | while read -r id; do
        if ! contains "$id" "$keep"; then
            rm -rf "${BACKUPS:?}/$id"
            say "retention: removed $id"
        fi
    done
}

resolve_id() { # [id] -> the backup folder
    if [ -n "${1:-}" ]; then
        [ -d "$BACKUPS/$1" ] || die "$1: no such backup in data/backups/ (see plano backup list)"
        echo "$BACKUPS/$1"
    else
        last=$(find "$BACKUPS" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort | tail -n1)
        [ -n "$last" ] || die "no backups yet: plano backup run"
        echo "$BACKUPS/$last"
    fi
}

# The restored copy (database SCRATCH) against the backup: row counts against the
# snapshot's (.stats), then every table's rows against the dump's.
same_rows() { # dir app scratch
    dir=$1 app=$2 scratch=$3
    if [ "$(head -n 1 "$dir/$app.stats" | awk -F '\t' '{print NF}')" = 3 ]; then  # an older backup
        stats_of "$scratch" "/tmp/$app.stats" "$LEGACY_STATS_SQL"
    else
        stats_of "$scratch" "/tmp/$app.stats"
    fi
    if ! cmp -s "/tmp/$app.stats" "$dir/$app.stats"; then
        say "${dir##*/}/$app: restored rows differ from the dump's (table, rows):"
        diff "$dir/$app.stats" "/tmp/$app.stats" >&2 || true
        return 1
    fi
    [ "$(head -n 1 "$dir/$app.stats" | awk -F '\t' '{print NF}')" != 3 ] || return 0  # checksums compared above
    # The rows in the dump's order first (no sort); if they differ, sorted (the same
    # rows in another order are the same contents).
    for sorted in "" "$BACKUPS/.verify-sort"; do
        rm -rf "/tmp/$app.unread" "$BACKUPS/.verify-sort" && mkdir -p "$BACKUPS/.verify-sort"
        { pg_restore --data-only -f - "$dir/$app.dump" || echo "pg_restore" >> "/tmp/$app.unread"; } \
            | contents_of "$sorted" > "/tmp/$app.dumped"
        { PGTZ=UTC pg_dump --data-only -d "$scratch" || echo "pg_dump" >> "/tmp/$app.unread"; } \
            | contents_of "$sorted" > "/tmp/$app.restored"
        rm -rf "$BACKUPS/.verify-sort"
        if [ -e "/tmp/$app.unread" ]; then
            say "${dir##*/}/$app: could not read the rows back ($(tr '\n' ' ' < "/tmp/$app.unread")failed)"
            return 1
        fi
        cmp -s "/tmp/$app.dumped" "/tmp/$app.restored" && return 0
    done
    say "${dir##*/}/$app: restored rows differ from the dump's (table, rows, sha256 of its sorted rows):"
    diff "/tmp/$app.dumped" "/tmp/$app.restored" >&2 || true
    return 1
}

cmd_verify() {
    dir=$(resolve_id "${1:-}")
    id=${dir##*/}
    (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "$id: checksums do not match SHA256SUMS: the backup was changed or damaged"
    failed=0
    for dump in "$dir"/*.dump; do
        [ -e "$dump" ] || continue
        app=$(basename "$dump" .dump)
        scratch="plano_verify_$app"
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$scratch\"" -c "CREATE DATABASE \"$scratch\""
        if ! pg_restore --no-owner --no-acl -d "$scratch" "$dump"; then
            say "$id/$app: pg_restore failed"
            failed=1
        elif ! same_rows "$dir" "$app" "$scratch"; then
            failed=1
        else
            say "$id/$app: $(wc -l < "$dir/$app.stats" | tr -d ' ') tables restored, rows and checksums match"
        fi
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$scratch\""
    done
    for tarball in "$dir"/*-uploads.tar; do
        [ -e "$tarball" ] || continue
        tar -tf "$tarball" > /dev/null || { say "$id: ${tarball##*/} does not read back"; failed=1; }
    done
    [ "$failed" = 0 ] || die "$id: verification FAILED"
    record ok "verify $id"
    say "$id: verified"
}

cmd_restore() { # id [app] [--to-scratch name]
    dir=$(resolve_id "$1")
    shift
    app="" scratch=""
    while [ $# -gt 0 ]; do
        case $1 in
            --to-scratch) scratch=$2; shift 2 ;;
            *) app=$1; shift ;;
        esac
    done
    apps=$app
    [ -n "$apps" ] || apps=$(find "$dir" -maxdepth 1 \( -name '*.dump' -o -name '*-uploads.tar' \) -printf '%f\n' \
        | sed 's/\.dump$//; s/-uploads\.tar$//' | sort -u)
    (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || die "${dir##*/}: checksums do not match; not restoring a damaged backup"
    for one in $apps; do
        if [ -e "$dir/$one.dump" ]; then
            if [ -n "$scratch" ]; then
                psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$scratch\""
                pg_restore --exit-on-error -d "$scratch" "$dir/$one.dump"
                say "$one: restored into scratch database $scratch"
                continue
            fi
            psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$one\" WITH (FORCE)"
            pg_restore --exit-on-error --create -d postgres "$dir/$one.dump"
            say "$one: database restored"
        fi
        if [ -z "$scratch" ] && [ -e "$dir/$one-uploads.tar" ]; then
            tmp=$UPLOADS/.restore-$one
            rm -rf "$tmp" && mkdir -p "$tmp"
            tar -C "$tmp" -xpf "$dir/$one-uploads.tar"
            if [ -d "$UPLOADS/$one" ]; then
                mv "$UPLOADS/$one" "$UPLOADS/.replaced-$one"
            fi
            mv "$tmp/$one" "$UPLOADS/$one"
            rm -rf "$tmp" "$UPLOADS/.replaced-$one"
            say "$one: uploads restored"
        fi
    done
}

cmd_list() {
    find "$BACKUPS" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*T[0-9]*Z' -printf '%f\n' | sort | while read -r id; do
        printf '%s\t%s\n' "$id" "$(du -sb "$BACKUPS/$id" | cut -f1)"
    done
}

# The postgres password goes from its secret file into a passfile on tmpfs (0600):
# it is in no environment and on no command line.
write_passfile() {
    [ -n "${POSTGRES_PASSWORD_FILE:-}" ] && [ -n "${PGPASSFILE:-}" ] || return 0
    [ -s "$POSTGRES_PASSWORD_FILE" ] || die "$POSTGRES_PASSWORD_FILE is missing or empty (plano render writes it)"
    (
        umask 077
        printf '*:*:*:%s:%s\n' "${PGUSER:-postgres}" "$(sed 's/[\\:]/\\&/g' "$POSTGRES_PASSWORD_FILE")" > "$PGPASSFILE.partial"
    )
    mv "$PGPASSFILE.partial" "$PGPASSFILE"
}

[ $# -ge 1 ] || die "usage: plano-backup run [APP...] | verify [ID] | restore ID [APP] [--to-scratch NAME] | prune | list"
command=$1
shift
write_passfile
mkdir -p "$BACKUPS"
case $command in
    run) exec 9> "$BACKUPS/.lock"; flock -n 9 || die "another backup runs; wait for it"; cmd_run "$@" ;;
    verify) cmd_verify "$@" ;;
    restore) [ $# -ge 1 ] || die "restore: which backup? give its ID (plano backup list)"; cmd_restore "$@" ;;
    prune) cmd_prune ;;
    list) cmd_list ;;
    *) die "unknown command $command" ;;
esac
