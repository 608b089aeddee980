#!/bin/sh
# certbot runs this after a real renewal, with RENEWED_LINEAGE set to
# /etc/letsencrypt/live/<app>. Copy the files where nginx reads them: nginx's
# workers load certificates at the TLS handshake and notice the new files within
# seconds (ssl_certificate_cache valid=, nginx.conf), with no reload.
set -eu

lineage=${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE}
app=$(basename "$lineage")
target=/etc/letsencrypt/plano/$app
mkdir -p "$target"
# 0640: nginx's workers read the key through certbot's group.
umask 027
cp -L "$lineage/fullchain.pem" "$target/fullchain.pem.new"
cp -L "$lineage/privkey.pem" "$target/privkey.pem.new"
chmod 640 "$target/privkey.pem.new"  # cp keeps certbot's 0600
mv "$target/fullchain.pem.new" "$target/fullchain.pem"
mv "$target/privkey.pem.new" "$target/privkey.pem"
echo "plano: installed the renewed certificate for $app"
