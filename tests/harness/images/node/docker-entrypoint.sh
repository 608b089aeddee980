#!/bin/sh
# Stand-in for the official node image's docker-entrypoint.sh: run the
# command with node when the first argument is an option, is not a command on
# PATH, or is a file that is not executable (`docker run IMAGE app.js`).
set -e

# The last part inside the "{}" works around a bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
    set -- node "$@"
fi

exec "$@"
