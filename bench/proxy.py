"""Proxy overhead: plano's nginx against the backend itself and against Caddy, in one run.

    python bench/proxy.py [--duration 10] [--connections 32] [--threads 2] [--rounds 3]

Starts `plano dev up` on a temporary workspace with one app (the stand-in app, the
stand-in images), then measures with wrk, on 127.0.0.1 only, GET /api/ping (a fixed
`{"pong":true}` with no I/O) of that app's backend three ways:

    direct  wrk -> published port -> app1-backend (plain HTTP)
    nginx   wrk -> published port -> nginx (TLS, SNI/Host app1.localhost) -> app1-backend
    caddy   wrk -> published port -> Caddy (tls internal, reverse_proxy) -> app1-backend

All three reach the same backend container: a compose override used only here
publishes app1-backend on 127.0.0.1 and adds a Caddy service on app1-net, so every
path pays the same published-port hop. Paths take turns, round after round; the
table shows each path's median. Goals: nginx/direct >= 0.55, nginx/Caddy >= 2.5.
Everything is torn down at the end, on failure too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the e2e tests' workspace helpers live in tests/

from plano.core.mode import Mode  # noqa: E402
from plano.core.runner import SubprocessRunner  # noqa: E402
from plano.engine import compose  # noqa: E402
from plano.engine.stack import open_stack  # noqa: E402
from tests.integration.net import http_get, https_request  # noqa: E402
from tests.integration.stackfixtures import (  # noqa: E402
    Workspace,
    make_workspace,
    plano,
    remove_project,
)
from tests.scripted import session  # noqa: E402

APP = "app1"
HOST = f"{APP}.localhost"
PATH = "/api/ping"
BODY = {"pong": True}
CADDY_IMAGE = "plano-test/caddy:sid"
CADDY_SERVICE = "bench-caddy"
CADDY_PORT = 8443
GOALS = {"nginx/direct": 0.55, "nginx/caddy": 2.5}


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    port: int
    tls: bool
    route: str


@dataclass(frozen=True)
class Sample:
    rps: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


# ---------------------------------------------------------------- setup


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per path (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per path, taken in turns (default 3)")
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.threads, args.warmup, args.rounds) < 1:
        parser.error("every value must be at least 1")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def run(argv: list[str], timeout: float = 900, cwd: Path | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def quiet(argv: list[str], timeout: float = 300) -> str:
    """For the teardown: run, never raise, so one failure does not skip the next step."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> None:
    """Debian's wrk, installed like the harness installs its tools."""
    if shutil.which("wrk"):
        return
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "wrk"]
    if subprocess.run(install, capture_output=True).returncode:
        run(["apt-get", "update", "-q"])
        run(install)


def build_caddy_image() -> None:
    run([str(ROOT / "scripts/harness/images.sh"), "caddy"])


def override(backend_port: int) -> dict:
    """Compose override for the bench only: the backend published on 127.0.0.1, Caddy on app1-net."""
    return {
        "services": {
            f"{APP}-backend": {"ports": [f"127.0.0.1::{backend_port}"]},
            CADDY_SERVICE: {
                "image": CADDY_IMAGE,
                "environment": {"SITE_HOST": HOST, "UPSTREAM": f"{APP}-backend:{backend_port}"},
                "ports": [f"127.0.0.1::{CADDY_PORT}"],
                "networks": [f"{APP}-net"],
            },
        }
    }


def bench_compose(ws: Workspace) -> tuple[compose.ComposeContext, int]:
    """plano's own compose context for dev, plus the override file; and the backend's port."""
    st = open_stack(session(ws.infra, SubprocessRunner(), Mode.DEV))
    backend_port = st.manifest.apps[APP].backend.port
    path = ws.root / "bench.override.json"  # JSON is YAML: compose reads it as a compose file
    path.write_text(json.dumps(override(backend_port), indent=2))
    return dataclasses.replace(st.ctx, files=(*st.ctx.files, str(path))), backend_port


def compose_run(ctx: compose.ComposeContext, ws: Workspace, *args: str) -> str:
    return run(compose.compose_argv(ctx, *args), cwd=ws.infra)


def published_port(ctx: compose.ComposeContext, ws: Workspace, service: str, port: int) -> int:
    return int(compose_run(ctx, ws, "port", service, str(port)).strip().rsplit(":", 1)[1])


def start(ws: Workspace) -> list[Target]:
    note(f"plano dev up in {ws.infra}, compose project {ws.name}-dev (builds the app from source)")
    plano("dev", "up", cwd=ws.infra, timeout=1200)
    note("publishing the backend and starting Caddy (compose override)")
    ctx, backend_port = bench_compose(ws)
    compose_run(ctx, ws, "up", "-d", "--no-deps", "--wait", "--wait-timeout", "300", f"{APP}-backend", CADDY_SERVICE)
    direct = published_port(ctx, ws, f"{APP}-backend", backend_port)
    caddy = published_port(ctx, ws, CADDY_SERVICE, CADDY_PORT)
    nginx = ws.ports["dev_https"]
    backend = f"{APP}-backend:{backend_port} (HTTP/1.1 keep-alive on {APP}-net)"
    return [
        Target("direct", f"http://{HOST}:{direct}{PATH}", direct, False, f"{APP}-backend itself, plain HTTP/1.1"),
        Target("nginx", f"https://{HOST}:{nginx}{PATH}", nginx, True,
               f"plano's nginx, server {HOST}, location /api/, upstream {APP}_backend -> {backend}"),
        Target("caddy", f"https://{HOST}:{caddy}{PATH}", caddy, True,
               f"Caddy, site {HOST} with tls internal, reverse_proxy -> {backend}"),
    ]


def ping(target: Target) -> tuple[int, dict, bytes]:
    if target.tls:
        return https_request(target.port, HOST, PATH)
    return http_get(target.port, HOST, PATH)


def wait_answers(target: Target, seconds: float = 60) -> dict:
    """Poll until the path answers 200 {"pong":true}; returns the response headers."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, headers, body = ping(target)
            if status == 200 and json.loads(body) == BODY:
                return headers
            last = f"{status} {body[:200]!r}"
        except (OSError, ValueError) as err:
            last = repr(err)
        time.sleep(0.5)
    raise RuntimeError(f"{target.name}: {target.url} never answered 200 {json.dumps(BODY)}: {last}")


def tls_version(port: int) -> str:
    """The protocol and cipher a default OpenSSL client (like wrk's) gets, SNI HOST."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=HOST) as tls:
            return f"{tls.version()} {tls.cipher()[0]}"


def answered_by(headers: dict) -> str:
    """The header that shows who answered: nginx's Server, Caddy's Via, else the backend's own."""
    for name in ("server", "via", "x-powered-by"):
        if name in headers:
            return f"{name}: {headers[name]}"
    return "no identifying header"


def port_hop(port: int) -> str:
    """How a published 127.0.0.1 port reaches its container: docker-proxy or a NAT rule."""
    procs = subprocess.run(["pgrep", "-a", "docker-proxy"], capture_output=True, text=True).stdout
    return "docker-proxy" if re.search(rf"-host-port {port}\b", procs) else "NAT (no docker-proxy)"


# ---------------------------------------------------------------- wrk


def resolving(argv: list[str], tmp: Path) -> list[str]:
    """wrk takes SNI (and its address) from the URL's host: make HOST resolve to
    127.0.0.1 for wrk alone, in a private mount namespace, when it does not already."""
    try:
        if socket.gethostbyname(HOST) == "127.0.0.1":
            return argv
    except OSError:
        pass
    hosts = tmp / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1 {HOST}\n")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *argv]


def wrk(target: Target, args: argparse.Namespace, seconds: int, tmp: Path) -> Sample:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency", "-H", f"Host: {HOST}", target.url]
    return parse_wrk(run(resolving(argv, tmp), timeout=seconds + 60))


def parse_wrk(text: str) -> Sample:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if not rps or not p99:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[p99.group(2)]
    return Sample(
        rps=float(rps.group(1)),
        p99_ms=float(p99.group(1)) * scale,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


def measure(targets: list[Target], args: argparse.Namespace, tmp: Path) -> dict[str, list[Sample]]:
    """A warm-up per path, then `rounds` runs per path in turns, rotating who goes first."""
    for target in targets:
        wrk(target, args, args.warmup, tmp)
    samples: dict[str, list[Sample]] = {t.name: [] for t in targets}
    for i in range(args.rounds):
        for target in targets[i % len(targets):] + targets[: i % len(targets)]:
            samples[target.name].append(wrk(target, args, args.duration, tmp))
    return samples


# ---------------------------------------------------------------- report


def median_rps(samples: list[Sample]) -> float:
    return statistics.median(s.rps for s in samples)


def median_p99(samples: list[Sample]) -> float:
    return statistics.median(s.p99_ms for s in samples)


def report(targets: list[Target], samples: dict[str, list[Sample]], args: argparse.Namespace) -> None:
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, GET {PATH} -> {json.dumps(BODY)}, "
          f"{args.rounds} rounds in turns after a {args.warmup} s warm-up each; median per path")
    print(f"{'path':<7} {'req/s':>9} {'p99 ms':>8} {'errors':>7}   req/s per round")
    for t in targets:
        runs = samples[t.name]
        errors = sum(s.non_2xx + s.socket_errors for s in runs)
        per_round = " ".join(f"{s.rps:.0f}" for s in runs)
        print(f"{t.name:<7} {median_rps(runs):>9.0f} {median_p99(runs):>8.2f} {errors:>7}   {per_round}")
    rps = {name: median_rps(runs) for name, runs in samples.items()}
    for key, goal in GOALS.items():
        top, bottom = key.split("/")
        ratio = rps[top] / rps[bottom]
        print(f"{key:<13} = {ratio:5.2f}   goal >= {goal:<4}  {'met' if ratio >= goal else 'NOT met'}")


def nginx_access_log(ws: Workspace) -> str:
    """The http-level access_log of the rendered nginx.conf (the first one in the file)."""
    found = re.search(r"^\s*access_log\s+([^;]+);", (ws.infra / "docker/nginx/nginx.conf").read_text(), re.M)
    return found.group(1) if found else "none"


def describe(targets: list[Target], headers: dict[str, dict], access_log: str) -> None:
    print(f"paths: wrk on the host -> 127.0.0.1:PORT, Host and SNI {HOST}, HTTP/1.1 keep-alive:")
    for t in targets:
        tls = tls_version(t.port) if t.tls else "no TLS"
        print(f"  {t.name:<7} :{t.port} -> {port_hop(t.port)} -> {t.route}; {tls}; answered with {answered_by(headers[t.name])}")
    print("  every path pays the same published-port hop into Docker; nginx and Caddy pay TLS, direct does not.")
    print(f"  all three reach the same backend container. nginx: access_log {access_log}; "
          "Caddy: no access log (its default).")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average before measuring: {load} ({os.cpu_count()} CPUs; wrk, the proxies and the backend share them)")


# ---------------------------------------------------------------- teardown


def mounted_volumes(container_ids: list[str]) -> list[str]:
    if not container_ids:
        return []
    names = '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}'
    return sorted(set(quiet(["docker", "inspect", "-f", names, *container_ids]).split()))


def teardown(ws: Workspace) -> None:
    """The bench's Caddy (plano does not know it), then the stack with its volumes, then
    whatever is left of the project: containers, networks, volumes, the images its dev build made.

    Recreating app1-backend (to publish its port) hands its anonymous node_modules
    volume to the new container by name, and `down --volumes` then keeps it: the
    volumes the project's containers mount are removed explicitly at the end."""
    note("tearing down")
    project = f"{ws.name}-dev"
    labels = ["--filter", f"label=com.docker.compose.project={project}"]
    volumes = mounted_volumes(quiet(["docker", "ps", "-aq", *labels]).split())
    caddy = quiet(["docker", "ps", "-aq", *labels, "--filter", f"label=com.docker.compose.service={CADDY_SERVICE}"]).split()
    if caddy:
        quiet(["docker", "rm", "-f", "-v", *caddy])
    down = plano("dev", "down", "--volumes", "--yes", cwd=ws.infra, check=False, timeout=600)
    if down.returncode:
        note(f"plano dev down exited {down.returncode}; removing the project's leftovers by label")
    remove_project(project)
    for volume in volumes:
        quiet(["docker", "volume", "rm", volume])
    images = sorted(set(quiet(["docker", "image", "ls", "-q", *labels]).split()))
    if images:
        quiet(["docker", "image", "rm", *images])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensure_wrk()
    note(f"building {CADDY_IMAGE} when needed")
    build_caddy_image()
    with tempfile.TemporaryDirectory(prefix="plano-bench-proxy-") as tmp:
        root = Path(tmp)
        ws = make_workspace(root, apps=(APP,))
        try:
            targets = start(ws)
            headers = {t.name: wait_answers(t) for t in targets}
            describe(targets, headers, nginx_access_log(ws))
            note(f"measuring: {len(targets)} paths x ({args.warmup} s warm-up + {args.rounds} x {args.duration} s)")
            report(targets, measure(targets, args, root), args)
        finally:
            teardown(ws)


if __name__ == "__main__":
    main()
