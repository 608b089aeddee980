#!/bin/sh
# Before any real certificate exists, give every site a self-signed placeholder
# so nginx starts and serves HTTP (ACME challenges, redirects) and HTTPS.
# `plano certs` and certbot's deploy hook replace it with the real one.
set -eu

conf_dir=/etc/plano/nginx
grep -ho 'ssl_certificate [^;]*/fullchain.pem' "$conf_dir"/sites-enabled/*.conf 2>/dev/null \
    | sed 's/^ssl_certificate //; s#/fullchain.pem$##' | sort -u \
    | while read -r dir; do
        if [ -s "$dir/fullchain.pem" ] && [ -s "$dir/privkey.pem" ]; then
            continue
        fi
        mkdir -p "$dir"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -days 30 -subj "/CN=plano placeholder $(basename "$dir")" \
            -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
        chmod 600 "$dir/privkey.pem"
        echo "plano: placeholder certificate for $(basename "$dir") (waiting for a real one)"
    done
