"""`plano deploy` for real: new tags of app1's backend and frontend replace the
running containers under constant load through nginx with 0 failed requests; an
image that never gets healthy is rolled back by itself; `plano rollback`; one
deploy of an app at a time; maintenance mode."""

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.integration.browser import (
    LAPTOP,
    PHONE,
    add_user,
    chromium,
    dashboard,
    sign_in,
)
from tests.integration.loadgen import Load
from tests.integration.net import https_request, unverified_tls, wait_for
from tests.integration.stackfixtures import (
    REGISTRY,
    build_image,
    docker,
    make_workspace,
    plano,
    prod_running,
    sql,
)
from tests.integration.test_prod_e2e import set_env

pytestmark = pytest.mark.expected_seconds(240)  # on a 2-core machine

ROLES = ("backend", "frontend")


def build(ws, role: str, version: str) -> None:
    """app1's stand-in image whose answers carry `version`, pushed to the local registry."""
    source = ws.root / "app1" / role
    (source / "VERSION").write_text(f"{version}\n")
    image = f"{REGISTRY}/{ws.name}/app1-{role}:{version}"
    build_image(image, source)
    docker("push", image)


def publish_app1(ws, versions: tuple[str, ...] = ("1.0.0",)) -> None:
    """app1's images of each version in the local registry; .env.prod runs the first."""
    for version in versions:
        for role in ROLES:
            build(ws, role, version)
    set_env(ws.infra / ".env.prod", APP1_BACKEND_TAG=versions[0], APP1_FRONTEND_TAG=versions[0])


def build_broken(ws) -> None:
    """Starts and listens, but its health endpoint answers 500: it never gets healthy."""
    image = f"{REGISTRY}/{ws.name}/app1-backend"
    context = ws.root / "broken"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {image}:1.0.0\n"
        "CMD [\"node\", \"-e\", \"require('http').createServer((q, s) => { console.log('broken: ' + q.url); "
        "s.statusCode = 500; s.end('broken'); }).listen(3000, () => console.log('broken build listening'))\"]\n")
    build_image(f"{image}:broken", context, timeout=300)
    docker("push", f"{image}:broken")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, engine):
    ws = make_workspace(tmp_path_factory.mktemp("deploy"), apps=("app1",))
    publish_app1(ws, ("1.0.0", "2.0.0"))
    build_broken(ws)
    with prod_running(ws):
        yield ws


def load(ws, keepalive: bool = False, workers: int = 6, http2: bool = False) -> Load:
    return Load(ws.ports["prod_https"], "app1.example.com", workers=workers, keepalive=keepalive, http2=http2).start()


def check_writes(ws, *loads: Load) -> str:
    """Every acknowledged POST is a row; a POST that got no answer is reported (there are none when nothing failed)."""
    acked = set().union(*(lo.writes()[0] for lo in loads))
    unanswered = set().union(*(lo.writes()[1] for lo in loads))
    rows = set(sql(ws, "app1", "SELECT value FROM items WHERE value LIKE 'load-%'").split())
    assert acked <= rows, f"{len(acked - rows)} acknowledged writes are missing"
    return f"{len(acked)} acknowledged writes all in the database, {len(unanswered)} unanswered ({len(unanswered & rows)} of them written)"


def versions_now(ws, count: int = 30) -> set[str]:
    seen = set()
    for _ in range(count):
        _, _, body = https_request(ws.ports["prod_https"], "app1.example.com", "/api/version")
        seen.add("backend " + json.loads(body)["version"])
        _, _, body = https_request(ws.ports["prod_https"], "app1.example.com", "/")
        seen.add("frontend " + body.split(b'id="version">frontend ')[1].split(b"<")[0].decode())
    return seen


def running(ws) -> list[str]:
    out = docker("ps", "--filter", f"label=com.docker.compose.project={ws.name}", "--format", "{{.Names}}").stdout
    return sorted(name for name in out.split() if "app1-" in name)


def test_1_deploy_backend_then_frontend_under_load(stack):
    """Three kinds of client at once: a new TLS connection per request, and HTTP/1.1 and
    HTTP/2 connections that live through the whole deploy (no switch may close them)."""
    ws = stack
    assert versions_now(ws, 3) == {"backend 1.0.0", "frontend 1.0.0"}
    fresh, kept, h2 = load(ws, workers=2), load(ws, keepalive=True, workers=2), load(ws, workers=2, http2=True)
    try:
        time.sleep(2)
        started = time.monotonic()
        out = plano("deploy", "app1", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra)
        plano("deploy", "app1", "--service", "frontend", "--tag", "2.0.0", cwd=ws.infra)
        seconds = time.monotonic() - started
        after = len(kept.results)  # nginx sent nothing to the old containers for 1.3 s before they stopped
        wait_for(lambda: len(fresh.results) + len(kept.results) + len(h2.results) >= 5000 and len(kept.results) >= after + 100,
                 "the load made fewer than 5,000 requests", 240, 0.5)
    finally:
        for each in (fresh, kept, h2):
            each.stop()
    print(f"deploy of backend + frontend under load, {seconds:.1f} s: new connection per request: {fresh.summary()}; "
          f"HTTP/1.1 keep-alive: {kept.summary()}; HTTP/2: {h2.summary()}; {check_writes(ws, fresh, kept, h2)}")
    assert "app1-backend: 1.0.0 -> 2.0.0, done" in out.stdout
    for each in (fresh, kept, h2):
        assert each.failures == [], each.explain(f"{ws.name}-nginx-1")
        assert len(each.results) >= 500
    assert {r.version for r in kept.results[after:] if r.version} == {"backend 2.0.0", "frontend 2.0.0"}
    assert versions_now(ws) == {"backend 2.0.0", "frontend 2.0.0"}
    env = (ws.infra / ".env.prod").read_text()
    assert "APP1_BACKEND_TAG=2.0.0" in env and "APP1_FRONTEND_TAG=2.0.0" in env
    assert len(running(ws)) == 2  # one container per service again
    log = [json.loads(line) for line in (ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()]
    assert [(r["service"], r["from_tag"], r["to_tag"], r["result"]) for r in log] == [
        ("app1-backend", "1.0.0", "2.0.0", "ok"), ("app1-frontend", "1.0.0", "2.0.0", "ok")]
    assert log[0]["user"] and log[0]["time"].endswith("+00:00")
    # nginx asks Docker's DNS again: no override is left behind.
    assert list((ws.infra / "data/nginx/dns").iterdir()) == []


def tree(path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_2_an_image_that_never_gets_healthy_is_rolled_back(stack):
    ws = stack
    env_before = (ws.infra / ".env.prod").read_bytes()
    nginx_before = tree(ws.infra / "docker/nginx") | tree(ws.infra / "data/nginx")
    traffic = load(ws)
    try:
        proc = plano("deploy", "app1", "--service", "backend", "--tag", "broken", "--timeout", "25",
                     cwd=ws.infra, check=False, timeout=300)
    finally:
        traffic.stop()
    print(f"failed deploy under load: {traffic.summary()}")
    assert proc.returncode == 1
    assert "error: the new container" in proc.stderr and "with 2xx or 3xx within 25 s (its last answer: 500)" in proc.stderr
    assert "its last healthchecks:" in proc.stderr and "exit 1" in proc.stderr
    assert "its log:" in proc.stderr and "broken build listening" in proc.stderr
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert versions_now(ws, 5) == {"backend 2.0.0", "frontend 2.0.0"}
    assert (ws.infra / ".env.prod").read_bytes() == env_before
    assert tree(ws.infra / "docker/nginx") | tree(ws.infra / "data/nginx") == nginx_before
    assert len(running(ws)) == 2
    last = json.loads((ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()[-1])
    assert last["to_tag"] == "broken" and last["result"].startswith("failed: the new container")


def test_3_rollback_restores_the_previous_version(stack):
    ws = stack
    traffic = load(ws)
    try:
        time.sleep(1)
        out = plano("rollback", "app1", "--service", "backend", cwd=ws.infra)
    finally:
        traffic.stop()
    print(f"rollback under load: {traffic.summary()}")
    assert "app1-backend: 2.0.0 -> 1.0.0, done" in out.stdout
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert versions_now(ws, 5) == {"backend 1.0.0", "frontend 2.0.0"}
    releases = json.loads(plano("releases", "app1", "--json", cwd=ws.infra).stdout)
    assert releases[-1]["action"] == "rollback" and releases[-1]["to_tag"] == "1.0.0"


def test_4_one_deploy_of_an_app_at_a_time(stack):
    ws = stack
    import sys

    first = subprocess.Popen([sys.executable, "-m", "plano.cli", "deploy", "app1", "--service", "frontend", "--tag", "1.0.0"],
                             cwd=ws.infra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = ws.infra / "data/logs/.deploy-app1.lock"
    wait_for(lambda: lock.is_file() and "pid" in lock.read_text(), "the first deploy never took the lock", 60, 0.1)
    second = plano("deploy", "app1", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra, check=False)
    out, err = first.communicate(timeout=600)
    assert second.returncode == 3, second.stderr
    assert "error: a deploy of app1 is already running: " in second.stderr  # who, from where, since when:
    assert f" UTC (plano deploy app1 --service frontend --tag 1.0.0, pid {first.pid}); wait" in second.stderr
    assert first.returncode == 0, err
    assert versions_now(ws, 5) == {"backend 1.0.0", "frontend 1.0.0"}


def test_5_maintenance_mode_for_one_app(stack):
    ws = stack
    port = ws.ports["prod_https"]
    plano("maintenance", "on", "app1", cwd=ws.infra)
    try:
        for path in ("/", "/api/version"):
            status, headers, body = https_request(port, "app1.example.com", path)
            assert status == 503 and b"Down for maintenance" in body and headers["retry-after"] == "120"
            assert "strict-transport-security" in headers
        # ACME challenges still work and the containers stay healthy.
        assert https_request(port, "app1.example.com", "/")[0] == 503
        health = docker("inspect", "--format", "{{.State.Health.Status}}", f"{ws.name}-nginx-1").stdout.strip()
        assert health == "healthy"
    finally:
        plano("maintenance", "off", "app1", cwd=ws.infra)
    assert https_request(port, "app1.example.com", "/")[0] == 200


def test_6_release_commands_run_before_the_switch_and_abort_it_on_failure(stack):
    ws = stack
    manifest = ws.infra / "plano.yml"
    original = manifest.read_text()
    env_before = (ws.infra / ".env.prod").read_bytes()
    failing = "[sh, -c, 'echo migrating to $APP_VERSION; echo migration failed >&2; exit 4']"
    manifest.write_text(original.replace("  app1:\n", f"  app1:\n    backend:\n      release: {failing}\n", 1))
    try:
        proc = plano("deploy", "app1", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra, check=False, timeout=600)
        assert proc.returncode == 1
        assert "error: the release command failed (exit 4); nothing was switched" in proc.stderr
        assert "migration failed" in proc.stderr
        assert versions_now(ws, 3) == {"backend 1.0.0", "frontend 1.0.0"}
        assert (ws.infra / ".env.prod").read_bytes() == env_before
        marker = "/data/uploads/released-2.0.0"
        manifest.write_text(original.replace("  app1:\n", f"  app1:\n    backend:\n      release: [sh, -c, 'touch {marker}']\n", 1))
        plano("deploy", "app1", "--service", "backend", "--tag", "2.0.0", cwd=ws.infra, timeout=600)
        assert (ws.infra / "data/uploads/app1/released-2.0.0").is_file()  # ran once, in the new image, with the app's mounts
        assert versions_now(ws, 3) == {"backend 2.0.0", "frontend 1.0.0"}
    finally:
        manifest.write_text(original)


def logs_in(ws, user: str, password: str, database: str = "app1") -> str:
    """The role a session of this login runs as, when Postgres takes its password over TCP
    (scram), as the app does; "" when it does not."""
    got = docker("exec", "-e", f"PGPASSWORD={password}", f"{ws.name}-database-1", "psql", "-h", "127.0.0.1", "-U", user,
                 "-d", database, "-At", "-c", "SELECT current_user", check=False)
    return got.stdout.strip() if got.returncode == 0 else ""


def redis_takes(ws, user: str, password: str) -> bool:
    got = docker("exec", "-e", f"REDISCLI_AUTH={password}", f"{ws.name}-redis-1", "redis-cli", "--no-auth-warning", "--user", user,
                 "SET", f"{user}:rotation-probe", "1", check=False)
    return got.stdout.strip() == "OK"


def test_7_secrets_rotate_changes_the_passwords_under_load(stack):
    ws = stack
    before = ws.env("prod")
    old_db, old_redis = before["APP1_DB_PASSWORD"], before["APP1_REDIS_PASSWORD"]
    assert logs_in(ws, "app1", old_db) and redis_takes(ws, "app1", old_redis)
    traffic = load(ws)
    try:
        time.sleep(2)
        out = plano("secrets", "rotate", "app1", cwd=ws.infra, timeout=600)
        wait_for(lambda: len(traffic.results) >= 2000, "the load made fewer than 2,000 requests", 240, 0.5)
    finally:
        traffic.stop()
    print(f"secrets rotate under load: {traffic.summary()}")
    assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
    assert sum(1 for r in traffic.results if r.what == "POST /api/rows") > 100  # writes through the switch
    after = ws.env("prod")
    new_db, new_redis = after["APP1_DB_PASSWORD"], after["APP1_REDIS_PASSWORD"]
    assert len({old_db, new_db}) == 2 and len({old_redis, new_redis}) == 2
    # The URL names the app's other login now, which runs as app1 (what it makes is app1's);
    # the login in use before logs in no more.
    assert after["APP1_DB_USER"] == "app1_alt" and "APP1_DB_USER" not in before
    assert logs_in(ws, "app1_alt", new_db) == "app1" and not logs_in(ws, "app1", old_db) and not logs_in(ws, "app1_alt", old_db)
    assert redis_takes(ws, "app1", new_redis) and not redis_takes(ws, "app1", old_redis)
    assert "app1: new database and Redis password(s) in use; restarted app1-backend" in out.stdout
    assert old_db not in out.stdout + out.stderr and new_db not in out.stdout + out.stderr
    # The backend runs with the new URL; the infra's copies and the other app are untouched.
    env = docker("inspect", "--format", "{{json .Config.Env}}", *running(ws)).stdout
    assert new_db in env and old_db not in env
    assert (ws.infra / "data/secrets/database/APP1_DB_PASSWORD").read_text() == new_db
    assert (ws.infra / "data/secrets/redis/APP1_REDIS_PASSWORD").read_text() == new_redis
    last = json.loads((ws.infra / "data/logs/deploys.jsonl").read_text().splitlines()[-1])
    assert last["action"] == "rotate" and last["service"] == "app1-backend" and last["result"] == "ok"
    # After a restart of Redis and of the backend, the new passwords are the only ones.
    plano("prod", "restart", "redis", "app1-backend", cwd=ws.infra, timeout=300)
    wait_for(lambda: https_request(ws.ports["prod_https"], "app1.example.com", "/api/health")[0] == 200,
             "app1's health after restarting redis and the backend", 120, 1)
    assert redis_takes(ws, "app1", new_redis) and not redis_takes(ws, "app1", old_redis)


def slow_upload(ws, name: str, size: int, rate: int, answers: list) -> None:
    """PUT `size` bytes at about `rate` bytes/s on one TLS connection; appends (status, body)."""
    try:
        raw = socket.create_connection(("127.0.0.1", ws.ports["prod_https"]), timeout=120)
        with unverified_tls().wrap_socket(raw, server_hostname="app1.example.com") as tls:
            tls.sendall((f"PUT /api/uploads/{name} HTTP/1.1\r\nHost: app1.example.com\r\nContent-Length: {size}\r\n"
                         "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n").encode())
            chunk = 4096
            for sent in range(0, size, chunk):
                tls.sendall(b"x" * min(chunk, size - sent))
                time.sleep(chunk / rate)
            reply = b""
            while data := tls.recv(65536):
                reply += data
        head, _, body = reply.partition(b"\r\n\r\n")
        answers.append((int(head.split()[1]), body[-200:], time.monotonic()))
    except OSError as exc:
        answers.append((0, repr(exc).encode(), time.monotonic()))


def test_8_requests_held_through_a_deploy_reach_the_service_they_were_sent_to(stack):
    """Ten slow uploads (1 MiB at 24 KiB/s, as in the issue: each outlasts the whole
    deploy, its body buffered by nginx) and keep-alive clients, while both services of
    app1 switch at once: every upload is answered by a backend (201), none by the
    frontend that may have taken an old backend's address."""
    ws = stack
    current = "2.0.0" if "APP1_BACKEND_TAG=2.0.0" in (ws.infra / ".env.prod").read_text() else "1.0.0"
    other = "1.0.0" if current == "2.0.0" else "2.0.0"
    answers: list = []
    uploads = [threading.Thread(target=slow_upload, args=(ws, f"slow-{i}", 1024 * 1024, 24 * 1024, answers)) for i in range(10)]
    kept = load(ws, keepalive=True, workers=3)
    try:
        for thread in uploads:
            thread.start()
        time.sleep(2)
        started = time.monotonic()
        plano("deploy", "app1", "--tag", other, cwd=ws.infra)
        ended = time.monotonic()
        seconds = ended - started
        for thread in uploads:
            thread.join(timeout=180)
    finally:
        kept.stop()
    print(f"deploy of app1 ({current} -> {other}), {seconds:.1f} s, with 10 slow uploads in flight: "
          f"{[status for status, _, _ in answers]}; keep-alive: {kept.summary()}; {check_writes(ws, kept)}")
    assert len(answers) == 10
    assert all(done > ended for _, _, done in answers), "an upload ended before the deploy did: it proves nothing"
    assert [status for status, _, _ in answers] == [201] * 10, answers
    assert all(b'"size":1048576' in body for _, body, _ in answers), answers
    assert kept.failures == [], kept.explain(f"{ws.name}-nginx-1")
    assert versions_now(ws, 3) == {f"backend {other}", f"frontend {other}"}


def events(ws, query: str, got: list) -> None:
    """Read a server-sent event stream from app1's backend to its end; appends (complete events, how it ended)."""
    raw = socket.create_connection(("127.0.0.1", ws.ports["prod_https"]), timeout=60)
    text, ended = b"", "closed"
    try:
        with unverified_tls().wrap_socket(raw, server_hostname="app1.example.com") as tls:
            tls.sendall(f"GET /api/events?{query} HTTP/1.1\r\nHost: app1.example.com\r\nConnection: close\r\n\r\n".encode())
            while data := tls.recv(65536):
                text += data
    except OSError as exc:
        ended = repr(exc)
    head, _, body = text.partition(b"\r\n\r\n")
    blocks = body.decode(errors="replace").split("\n\n")
    # Ticks (chunked encoding's size lines sit between them); what follows the last blank line is unfinished.
    complete = [b for b in blocks[:-1] if "\nid: " in "\n" + b and "event: end" not in b]
    if b"event: end" in body and body.rstrip().endswith(b"0"):  # the end event, then chunked encoding's last chunk
        ended = "end"
    got.append((head.split(b"\r\n")[0].decode(), [json.loads(b.split("data: ", 1)[1].splitlines()[0]) for b in complete], ended))


def websocket(ws, query: str, got: list) -> None:
    """Read app1's WebSocket ticks (RFC 6455, the `websockets` client) to the end; appends
    (the messages, the close frame received as (code, reason), or how it broke)."""
    raw = socket.create_connection(("127.0.0.1", ws.ports["prod_https"]), timeout=60)
    messages: list = []
    try:
        with connect(f"wss://app1.example.com/api/ws?{query}", sock=raw, ssl=unverified_tls(),
                     server_hostname="app1.example.com", open_timeout=30, close_timeout=10) as conn:
            try:
                for message in conn:  # ends at a close frame 1000 or 1001, raises at any other end
                    messages.append(json.loads(message))
            except ConnectionClosed:
                pass
            received = conn.protocol.close_rcvd
            got.append((messages, (received.code, received.reason) if received else "no close frame"))
    except (OSError, ValueError) as exc:
        got.append((messages, repr(exc)))


def test_9_open_event_streams_and_websockets_are_drained_to_their_end_or_to_the_deadline(stack):
    """A server-sent event stream and a WebSocket that end within --drain-timeout get
    every message from the old backend and their proper end; those that would outlast
    it are stopped at the deadline (the demo backend ends them cleanly when asked to
    stop: an `end` event, a close frame 1001): whole messages only, never a cut. A new
    WebSocket then reaches the new backend."""
    ws = stack
    current = "2.0.0" if "APP1_BACKEND_TAG=2.0.0" in (ws.infra / ".env.prod").read_text() else "1.0.0"
    other = "1.0.0" if current == "2.0.0" else "2.0.0"
    short, long_, short_ws, long_ws = [], [], [], []
    readers = [threading.Thread(target=events, args=(ws, "count=24&every=250", short)),  # 6 s
               threading.Thread(target=events, args=(ws, "count=240&every=250", long_)),  # 60 s
               threading.Thread(target=websocket, args=(ws, "count=24&every=250", short_ws)),
               threading.Thread(target=websocket, args=(ws, "count=240&every=250", long_ws))]
    for reader in readers:
        reader.start()
    time.sleep(1)
    started = time.monotonic()
    plano("deploy", "app1", "--service", "backend", "--tag", other, "--drain-timeout", "8", cwd=ws.infra)
    seconds = time.monotonic() - started
    for reader in readers:
        reader.join(timeout=120)
    (status, ticks, ended), (long_status, long_ticks, long_ended) = short[0], long_[0]
    print(f"deploy with open event streams, {seconds:.1f} s: the 6 s stream got {len(ticks)} events and {ended}; "
          f"the 60 s one got {len(long_ticks)} whole events, then {long_ended}")
    assert status == "HTTP/1.1 200 OK" and long_status == "HTTP/1.1 200 OK"
    assert [t["tick"] for t in ticks] == list(range(1, 25)) and ended == "end"
    assert {t["version"] for t in ticks} == {current}  # the old backend served it to its end
    assert 0 < len(long_ticks) < 240 and [t["tick"] for t in long_ticks] == list(range(1, len(long_ticks) + 1))
    assert long_ended == "end"
    (ws_ticks, ws_closed), (long_ws_ticks, long_ws_closed) = short_ws[0], long_ws[0]
    print(f"the 6 s WebSocket got {len(ws_ticks)} messages and {ws_closed}; "
          f"the 60 s one {len(long_ws_ticks)}, then {long_ws_closed}")
    assert [t["tick"] for t in ws_ticks] == list(range(1, 25)) and ws_closed == (1000, "done")
    assert {t["version"] for t in ws_ticks} == {current}
    assert 0 < len(long_ws_ticks) < 240 and [t["tick"] for t in long_ws_ticks] == list(range(1, len(long_ws_ticks) + 1))
    assert {t["version"] for t in long_ws_ticks} == {current} and long_ws_closed == (1001, "server stopping")
    assert seconds < 60  # the deadline, not the streams, ended the drain
    assert versions_now(ws, 2) == {f"backend {other}", f"frontend {current}"}
    again: list = []
    websocket(ws, "count=2&every=50", again)
    assert again == [([{"tick": 1, "of": 2, "version": other, "pid": again[0][0][0]["pid"]},
                       {"tick": 2, "of": 2, "version": other, "pid": again[0][0][0]["pid"]}], (1000, "done"))], again


def running_tag(ws, service: str) -> tuple[str, str]:
    """The tag and health of the service's container, as `docker inspect` reports them."""
    [container] = docker("ps", "-q", "--filter", f"label=com.docker.compose.project={ws.name}",
                         "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    image, health = docker("inspect", "--format", "{{.Config.Image}} {{.State.Health.Status}}", container).stdout.split()
    return image.rsplit(":", 1)[1], health


def followers(container: str) -> list[int]:
    """The `docker logs --follow` processes of this machine that follow `container`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:2] == [b"docker", b"logs"] and b"--follow" in argv and container.encode() in argv:
            found.append(int(proc.name))
    return found


def finished(page, timeout: float = 300) -> str:
    """The job page (it reloads itself each second) once its action ended: its state."""
    page.wait_for_selector("#job-state:not(:text('running'))", timeout=timeout * 1000)
    return page.inner_text("#job-state")


def test_10_the_dashboard_in_a_real_browser(stack, tmp_path):
    """Sign in with chromium; the overview shows app1's tags and health as docker inspect
    reports them; maintenance on from the page (nginx answers 503), then off (200); a deploy
    of the backend from the page under load with no failed request, then a rollback; a
    backup of app1, then its verification; each action in the audit log as the dashboard's
    user (a verification has no line, as on the command line). Screenshots in the test's
    tmp dir."""
    from plano.ops import audit

    ws = stack
    port = ws.ports["prod_https"]
    add_user(ws.infra, "tester", "a long enough passphrase", "operator")
    current = ws.env("prod")["APP1_BACKEND_TAG"]
    other = "1.0.0" if current == "2.0.0" else "2.0.0"
    shots = tmp_path / "screenshots"
    with dashboard(ws.infra, tmp_path / "dashboard.log") as base, chromium() as browser:
        page = browser.new_page(viewport=LAPTOP)
        sign_in(page, base, "tester", "a long enough passphrase")
        [cookie] = [c for c in page.context.cookies() if c["name"] == "plano_session"]
        assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Strict")
        for role in ("backend", "frontend"):
            tag, health = running_tag(ws, f"app1-{role}")
            row = page.locator(f"#service-app1-{role}")
            assert row.locator(".tag").inner_text() == tag
            assert health == "healthy" and row.locator("td[data-label=health]").inner_text() == "healthy"
        page.screenshot(path=shots / "overview-laptop.png", full_page=True)
        page.set_viewport_size(PHONE)
        page.screenshot(path=shots / "overview-phone.png", full_page=True)
        page.set_viewport_size(LAPTOP)

        page.goto(f"{base}/apps/app1")
        page.click("text=Turn maintenance on")
        assert finished(page, 60) == "ok"
        page.screenshot(path=shots / "job-maintenance-on.png", full_page=True)
        status, _, body = https_request(port, "app1.example.com", "/")
        assert status == 503 and b"Down for maintenance" in body
        page.goto(f"{base}/")
        assert "maintenance on" in page.locator("#app-app1").inner_text()
        page.goto(f"{base}/apps/app1")
        page.click("text=Turn maintenance off")
        assert finished(page, 60) == "ok"
        assert https_request(port, "app1.example.com", "/")[0] == 200

        page.goto(f"{base}/apps/app1")
        page.screenshot(path=shots / "app.png", full_page=True)
        traffic = load(ws)
        try:
            time.sleep(1)
            page.fill("input[name=tag]", other)
            page.select_option("select[name=service]", "backend")
            page.click("button:text-is('Deploy')")
            # the page's deploy holds app1's lock: one from the command line meanwhile is refused, naming it
            wait_for(lambda: lock_held(ws.infra / "data/logs/.deploy-app1.lock"), "the page's deploy never took the lock", 60, 0.05)
            cli = plano("deploy", "app1", "--service", "frontend", "--tag", other, cwd=ws.infra, check=False)
            state = finished(page)
            page.screenshot(path=shots / "job-deploy.png", full_page=True)
        finally:
            traffic.stop()
        print(f"deploy from the dashboard under load: {traffic.summary()}")
        assert state == "ok", page.inner_text("main")
        assert cli.returncode == 3, cli.stderr
        assert "error: a deploy of app1 is already running: tester on dashboard@" in cli.stderr
        assert f"(plano deploy app1 --tag {other} --service backend, pid " in cli.stderr
        assert traffic.failures == [], traffic.explain(f"{ws.name}-nginx-1")
        assert f"app1-backend: {current} -> {other}" in page.inner_text("#job-result")
        assert running_tag(ws, "app1-backend")[0] == other  # (Docker's own healthcheck may not have run yet)
        assert {v for v in versions_now(ws, 3) if v.startswith("backend")} == {f"backend {other}"}

        page.goto(f"{base}/apps/app1")
        page.click("text=Roll back to the previous tags")
        assert finished(page) == "ok", page.inner_text("main")
        assert running_tag(ws, "app1-backend")[0] == current
        page.goto(f"{base}/apps/app1")
        releases = page.locator("section:has(h2:text-is('Releases')) tbody tr").first.inner_text()
        assert "tester" in releases and "rollback" in releases

        page.click("text=Back up app1 now")
        assert finished(page, 300) == "ok", page.inner_text("main")
        backup_id = page.inner_text("#job-result").split()[1]
        page.goto(f"{base}/apps/app1")
        page.click(f"#backup-{backup_id} button:text-is('Verify')")
        assert finished(page, 300) == "ok", page.inner_text("main")
        assert f"backup {backup_id} verified" in page.inner_text("#job-result")
        page.screenshot(path=shots / "job-verify.png", full_page=True)
        page.goto(f"{base}/")
        assert page.inner_text("#backup-verified").startswith("verified at ")

        # the app's page follows each service's log (logs.js, Server-Sent Events) until it is left
        [container] = docker("ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={ws.name}",
                             "--filter", "label=com.docker.compose.service=app1-backend").stdout.split()
        page.goto(f"{base}/apps/app1")
        assert page.inner_text(f"#backup-{backup_id} td[data-label=verified]").startswith("verified")
        page.wait_for_selector("#logs .logbox:has(#log-backend) .follow-state:text-is('following live')", timeout=20_000)
        assert followers(container), "no docker logs --follow while the page is open"
        assert https_request(port, "app1.example.com", "/api/health")[0] == 200
        page.wait_for_function("document.querySelector('#log-backend').textContent.trim().length > 0", timeout=20_000)
        page.screenshot(path=shots / "app-logs.png", full_page=True)
        page.goto(f"{base}/audit")
        wait_until = time.monotonic() + 10
        while followers(container) and time.monotonic() < wait_until:
            time.sleep(0.2)
        assert followers(container) == [], "docker logs --follow outlived the page"
        page.screenshot(path=shots / "audit.png", full_page=True)
    mine = [e for e in audit.read(ws.infra) if e.user == "tester"]
    assert [(e.command[1:3], e.result, e.host.startswith("dashboard@")) for e in mine] == [
        (["maintenance", "on"], "ok", True), (["maintenance", "off"], "ok", True),
        (["deploy", "app1"], "ok", True), (["rollback", "app1"], "ok", True), (["backup", "run"], "ok", True)]
    assert sorted(p.name for p in shots.iterdir()) == ["app-logs.png", "app.png", "audit.png", "job-deploy.png", "job-maintenance-on.png",
                                                       "job-verify.png", "overview-laptop.png", "overview-phone.png"]


def lock_held(path) -> bool:
    """Whether a plano holds this deploy lock now: the kernel's flock on its inode, read
    from /proc/locks (taking it to try would race the deploy that is about to)."""
    if not path.is_file():
        return False
    inode = path.stat().st_ino
    locks = Path("/proc/locks").read_text().splitlines()
    return any(line.split()[1] == "FLOCK" and line.split()[5].endswith(f":{inode}") for line in locks if len(line.split()) > 5)


def app_lines(ws, app: str, since: float) -> int:
    """Lines of the access log (and its rotated files) for `app` from `since` on."""
    from plano.core import traffic

    folder = ws.infra / "data/logs/nginx"
    hits = (traffic.parse(raw) for path in sorted(folder.glob("access.log*")) for raw in path.read_bytes().splitlines())
    return sum(1 for hit in hits if hit is not None and hit.app == app and hit.time >= since)


def test_11_the_traffic_page_counts_what_the_access_log_holds(stack, tmp_path):
    """A bounded load (to 127.0.0.1 only: 150 requests, 30 of them 404s) through nginx;
    then the dashboard's traffic page shows as many requests for app1 as the access log
    holds lines for it in the hour, and so does `plano traffic app1 --json`; the charts
    load as images; app1's services' CPU and memory are listed. Screenshots in the
    test's tmp dir."""
    from plano.core import traffic

    ws = stack
    port = ws.ports["prod_https"]
    add_user(ws.infra, "watcher", "another long passphrase", "viewer")
    before = app_lines(ws, "app1", 0)
    statuses = [https_request(port, "app1.example.com", "/api/version" if i % 5 else "/no/such/page")[0] for i in range(150)]
    assert len(statuses) == 150 and statuses.count(200) >= 120, statuses
    time.sleep(2.5)  # nginx flushes its log buffer each second
    assert app_lines(ws, "app1", 0) - before >= 150
    shots = tmp_path / "screenshots"
    with dashboard(ws.infra, tmp_path / "dashboard.log") as base, chromium() as browser:
        page = browser.new_page(viewport=LAPTOP)
        sign_in(page, base, "watcher", "another long passphrase")
        page.goto(f"{base}/apps/app1/traffic")
        start, _ = traffic.WINDOWS["1h"].bounds(time.time())
        in_log = app_lines(ws, "app1", start)
        shown = int(page.inner_text("#requests-total"))
        counted = json.loads(plano("traffic", "app1", "--json", cwd=ws.infra).stdout)["apps"]["app1"]["total"]["requests"]
        print(f"traffic page: {shown} requests for app1; access log: {in_log} lines; plano traffic --json: {counted}")
        assert shown == in_log == counted
        widths = page.locator(".chart img").evaluate_all("images => images.map(i => i.naturalWidth)")
        assert len(widths) == 3 and all(w > 0 for w in widths), widths
        usage = page.locator("section:has(h2:text-is('CPU and memory'))").inner_text()
        assert "app1-backend" in usage and "app1-frontend" in usage
        page.screenshot(path=shots / "traffic-hour.png", full_page=True)
        page.goto(f"{base}/apps/app1/traffic?since=1d")
        assert int(page.inner_text("#requests-total")) >= in_log
        page.set_viewport_size(PHONE)
        page.screenshot(path=shots / "traffic-day-phone.png", full_page=True)
    assert sorted(p.name for p in shots.iterdir()) == ["traffic-day-phone.png", "traffic-hour.png"]
