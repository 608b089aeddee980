#!/bin/sh
# Each upstream's servers come from /etc/plano/runtime/upstreams/ (data/nginx/),
# which `plano deploy` changes while it switches containers. At start no deploy
# runs: copy the rendered defaults there, and drop those of removed apps.
set -eu

rendered=/etc/plano/nginx/upstreams
runtime=/etc/plano/runtime/upstreams
mkdir -p "$runtime" /etc/plano/runtime/maintenance
rm -f "$runtime"/*.conf
if [ -d "$rendered" ]; then
    for file in "$rendered"/*.conf; do
        [ -e "$file" ] || continue
        cp "$file" "$runtime/"
    done
fi
