#!/bin/sh
# certbot's deploy hook touches certs/plano/.reload after a real renewal; this
# watcher sees it and reloads nginx gracefully (no request is dropped). certbot
# never needs the Docker socket.
set -eu

trigger=/etc/nginx/certs/plano/.reload
conf=/etc/plano/nginx/nginx.conf
(
    last=$(stat -c %Y "$trigger" 2>/dev/null || echo 0)
    while sleep "${PLANO_RELOAD_POLL_SECONDS:-30}"; do
        now=$(stat -c %Y "$trigger" 2>/dev/null || echo 0)
        if [ "$now" != "$last" ]; then
            last=$now
            if nginx -c "$conf" -t -q; then
                nginx -c "$conf" -s reload && echo "plano: certificates renewed, nginx reloaded"
            else
                echo "plano: certificates renewed but nginx -t failed; still serving the old ones" >&2
            fi
        fi
    done
) &
