#!/bin/sh
# Stand-in for the official redis image's docker-entrypoint.sh.
#
# A first argument that is an option (`-f`, `--some-option`) or a `*.conf`
# file gets `redis-server` prepended. Started as root with `redis-server`, it
# hands /data (the working directory) to the redis user and re-execs itself as
# redis with gosu. Sets umask 0077 when the umask is the default 0022. Then,
# whatever the command, `exec "$@"`.
set -e

# first arg is `-f` or `--some-option`
# or first arg is `something.conf`
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- redis-server "$@"
fi

# allow the container to be started with `--user`
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec gosu redis "$0" "$@"
fi

# set an appropriate umask (if one isn't set already)
um="$(umask)"
if [ "$um" = '0022' ]; then
    umask 0077
fi

exec "$@"
