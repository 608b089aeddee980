#!/bin/sh
# certbot runs this after a real renewal, with RENEWED_LINEAGE set to
# /etc/letsencrypt/live/<app>. Copy the files where nginx reads them, then
# touch the trigger that nginx's watcher turns into a graceful reload.
set -eu

lineage=${RENEWED_LINEAGE:?certbot sets RENEWED_LINEAGE}
app=$(basename "$lineage")
target=/etc/letsencrypt/plano/$app
mkdir -p "$target"
# 0640: nginx's master process reads the key through certbot's group.
umask 027
cp -L "$lineage/fullchain.pem" "$target/fullchain.pem.new"
cp -L "$lineage/privkey.pem" "$target/privkey.pem.new"
chmod 640 "$target/privkey.pem.new"  # cp keeps certbot's 0600
mv "$target/fullchain.pem.new" "$target/fullchain.pem"
mv "$target/privkey.pem.new" "$target/privkey.pem"
touch /etc/letsencrypt/plano/.reload
echo "plano: installed the renewed certificate for $app"
