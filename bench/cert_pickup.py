"""How soon nginx's workers serve a certificate installed under them, with no reload
(variable certificate paths + `ssl_certificate_cache ... valid=`, as in the rendered
nginx.conf and sites), and whether a handshake fails meanwhile.

    python bench/cert_pickup.py [--image plano-test/nginx:sid] [--valid 5] [--swaps 4]

Runs the nginx image in a container of its own (2 workers, one TLS server whose
certificate folder comes from a map, as plano renders it) on a loopback port, then
`--swaps` times: handshakes from a client until every worker has cached the current
pair, a new self-signed pair installed (renamed into place, as certbot's deploy hook
and `plano certs` do, or rewritten in place every other time), and handshakes without
a pause until 20 in a row return the new certificate. Prints the seconds each install
took to be served by all and the failed handshakes. Removes its container at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.test_certs import self_signed

CONF = """user nginx;
worker_processes 2;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;
events {{ worker_connections 256; }}
http {{
    ssl_certificate_cache max=1000 inactive=60s valid={valid}s;
    map $ssl_server_name $plano_cert_dir_bench {{ default /certs; }}
    server {{
        listen 443 ssl;
        server_name _;
        ssl_certificate $plano_cert_dir_bench/fullchain.pem;
        ssl_certificate_key $plano_cert_dir_bench/privkey.pem;
        return 200 "ok\\n";
    }}
}}
"""


def served(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname="bench.example.com") as tls:
        return hashlib.sha256(tls.getpeercert(True)).hexdigest()


def fingerprint(chain: bytes) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(chain.decode())).hexdigest()


def install(folder: Path, chain: bytes, key: bytes, in_place: bool) -> None:
    if in_place:  # the same inodes: only the modification time tells
        (folder / "fullchain.pem").write_bytes(chain)
        (folder / "privkey.pem").write_bytes(key)
        return
    for name, content in (("fullchain.pem", chain), ("privkey.pem", key)):
        tmp = folder / f".{name}.new"
        tmp.write_bytes(content)
        tmp.chmod(0o644)
        os.replace(tmp, folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="plano-test/nginx:sid")
    parser.add_argument("--valid", type=int, default=5)
    parser.add_argument("--swaps", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-certs-") as scratch:
        folder = Path(scratch) / "certs"
        folder.mkdir()
        folder.chmod(0o755)
        (Path(scratch) / "nginx.conf").write_text(CONF.format(valid=args.valid))
        install(folder, *self_signed(["bench.example.com"], now=dt.datetime.now(dt.UTC)), in_place=False)
        name = f"bench-cert-pickup-{os.getpid()}"
        subprocess.run(["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::443",
                        "-v", f"{scratch}/nginx.conf:/etc/nginx/nginx.conf:ro", "-v", f"{folder}:/certs:ro",
                        args.image, "nginx", "-g", "daemon off;"], check=True, capture_output=True)
        try:
            port = int(subprocess.run(["docker", "port", name, "443"], check=True, capture_output=True, text=True)
                       .stdout.split(":")[-1])
            deadline = time.monotonic() + 20
            while True:
                try:
                    served(port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            print(f"nginx image {args.image}, ssl_certificate_cache valid={args.valid}s, 2 workers")
            for swap in range(args.swaps):
                for _ in range(50):  # every worker caches the current pair
                    served(port)
                time.sleep(1)
                chain, key = self_signed(["bench.example.com"], now=dt.datetime.now(dt.UTC))
                expected, in_place = fingerprint(chain), swap % 2 == 1
                start = time.monotonic()
                install(folder, chain, key, in_place)
                streak = handshakes = failed = 0
                first = None
                while streak < 20 and time.monotonic() - start < 60:
                    handshakes += 1
                    try:
                        got = served(port)
                    except (OSError, ssl.SSLError):
                        failed, streak = failed + 1, 0
                        continue
                    if got == expected:
                        first = first if first is not None else time.monotonic() - start
                        streak += 1
                    else:
                        streak = 0
                all_served = time.monotonic() - start
                how = "rewritten in place" if in_place else "renamed into place"
                print(f"install {swap + 1} ({how}): first served after {first or float('nan'):.1f} s, by every worker "
                      f"(20 in a row) after {all_served:.1f} s; {handshakes} handshakes, {failed} failed")
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


if __name__ == "__main__":
    main()
