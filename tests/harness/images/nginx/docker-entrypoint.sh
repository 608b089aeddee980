#!/bin/sh
# Stand-in for the official nginx image's /docker-entrypoint.sh.
#
# When the command is `nginx` or `nginx-debug`, every file in
# /docker-entrypoint.d/ is handled in `sort -V` order: executable *.envsh files
# are sourced, executable *.sh files are run (a failing one stops the start),
# anything else is ignored. Then, whatever the command, `exec "$@"`.
# NGINX_ENTRYPOINT_QUIET_LOGS=1 silences the messages, as upstream.
set -e

entrypoint_log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$@"
    fi
}

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    files=$(find "/docker-entrypoint.d/" -follow -type f -print 2>/dev/null | sort -V)
    if [ -n "$files" ]; then
        entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
        entrypoint_log "$0: Looking for shell scripts in /docker-entrypoint.d/"
        # A here-document, not a pipe: *.envsh settings reach later scripts and the command.
        while IFS= read -r f; do
            case "$f" in
                *.envsh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Sourcing $f"
                        # shellcheck disable=SC1090
                        . "$f"
                    else
                        entrypoint_log "$0: Ignoring $f, not executable"
                    fi
                    ;;
                *.sh)
                    if [ -x "$f" ]; then
                        entrypoint_log "$0: Launching $f"
                        "$f"
                    else
                        entrypoint_log "$0: Ignoring $f, not executable"
                    fi
                    ;;
                *) entrypoint_log "$0: Ignoring $f" ;;
            esac
        done <<EOF_FILES
$files
EOF_FILES
        entrypoint_log "$0: Configuration complete; ready for start up"
    else
        entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
    fi
fi

exec "$@"
