#!/bin/sh
# Renew due certificates now and then every RENEW_INTERVAL_SECONDS (default 12 h).
# certbot renews only certificates within 30 days of expiry; the deploy hook
# runs only after a real renewal.
set -u

interval=${RENEW_INTERVAL_SECONDS:-43200}
status=/tmp/plano-renew-status
while :; do
    if certbot renew --non-interactive --no-random-sleep-on-renew \
        --webroot -w /var/www/certbot \
        --deploy-hook /plano/scripts/deploy-hook.sh; then
        echo ok > "$status"
    else
        echo failed > "$status"
        echo "plano: certbot renew failed; see data/logs/certbot/letsencrypt.log" >&2
    fi
    sleep "$interval"
done
