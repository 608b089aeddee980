"""A bounded load of GETs and POSTs through nginx, for the deploy tests and bench.

Three kinds of client: by default each request opens its own TLS connection (with
the app's SNI); with `keepalive`, each worker keeps one HTTP/1.1 connection for as
long as it lasts, as API clients do (a connection closed under a request is a
failure, and the worker opens a new one); with `http2`, each worker keeps one HTTP/2
connection (httpx), as browsers do. Every request is recorded: ok or why not,
which version answered, its latency, and for a POST the value it wrote, so a test
can check the database for every acknowledged write. Only 127.0.0.1, a bounded count
and time, and it stops by itself.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.integration.net import unverified_tls

VERSION_RE = re.compile(rb'<h1 id="version">frontend ([^<]+)</h1>')


@dataclass
class Outcome:
    ok: bool
    what: str  # GET /api/version, POST /api/rows, GET /
    version: str | None
    seconds: float
    detail: str = ""
    wrote: str | None = None  # a POST's value
    at: str = field(default_factory=lambda: time.strftime("%H:%M:%S"))  # to read beside nginx's log
    ended: float = field(default_factory=time.monotonic)  # to place it beside a test's own events


@dataclass(frozen=True)
class Probe:
    """One kind of request the load sends: what, what answer counts as served, and how
    to read the version that answered from the body (None: not read)."""

    method: str
    path: str
    expect: int = 200
    body: Callable[[str], bytes] | None = None  # the JSON body of the request with this unique key
    version: Callable[[bytes], str | None] | None = None
    contains: bytes = b""  # the body must hold this


def stand_in_version(payload: bytes) -> str | None:
    match = VERSION_RE.search(payload)
    return "frontend " + match.group(1).decode() if match else None


# The stand-in app1 of the deploy tests: its version route, a write, its page.
STAND_IN_PROBES = (
    Probe("GET", "/api/version", version=lambda payload: "backend " + json.loads(payload)["version"]),
    Probe("POST", "/api/rows", 201, body=lambda key: json.dumps({"value": f"load-{key}"}).encode()),
    Probe("GET", "/", version=stand_in_version),
)


@dataclass
class Load:
    port: int
    host: str
    workers: int = 4
    max_seconds: float = 300
    max_requests: int = 200_000
    probes: tuple[Probe, ...] = STAND_IN_PROBES
    keepalive: bool = False
    http2: bool = False
    results: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # In every POST's value: two loads (or runs) never write the same value, so a
        # row found in the database is this load's request.
        self.run_id = secrets.token_hex(4)

    def connect(self) -> http.client.HTTPConnection:
        """A fresh TLS connection with the app's SNI, for one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.sock = unverified_tls().wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10), server_hostname=self.host)
        return conn

    def prepared(self, n: int, key: str) -> tuple[Probe, bytes | None, str | None, dict[str, str]]:
        """The n-th request: its probe, body, the value it writes (a POST) and headers."""
        probe = self.probes[n % len(self.probes)]
        body = probe.body(key) if probe.body else None
        headers = {"Host": self.host} | ({"Content-Type": "application/json"} if body is not None else {})
        return probe, body, json.loads(body)["value"] if body is not None else None, headers

    @staticmethod
    def judged(probe: Probe, what: str, status: int, payload: bytes, seconds: float, wrote: str | None) -> Outcome:
        """An answer: served when its status and body are what the probe expects."""
        if status != probe.expect or probe.contains not in payload:
            return Outcome(False, what, None, seconds, f"{status} {payload[:200]!r}", wrote)
        return Outcome(True, what, probe.version(payload) if probe.version else None, seconds, wrote=wrote)

    def one(self, conn: http.client.HTTPConnection, n: int, key: str) -> Outcome:
        probe, body, wrote, headers = self.prepared(n, key)
        if not self.keepalive:
            headers["Connection"] = "close"
        what = f"{probe.method} {probe.path}"
        started = time.monotonic()
        try:
            conn.request(probe.method, probe.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return Outcome(False, what, None, time.monotonic() - started, repr(exc), wrote)
        if response.will_close:
            conn.close()  # the server said so: the next request opens a new connection
        return self.judged(probe, what, response.status, payload, time.monotonic() - started, wrote)

    def one_h2(self, client, n: int, key: str) -> Outcome:
        import httpx

        probe, body, wrote, headers = self.prepared(n, key)
        what = f"{probe.method} {probe.path} (h2)"
        started = time.monotonic()
        try:
            response = client.request(probe.method, f"https://127.0.0.1:{self.port}{probe.path}", content=body, headers=headers,
                                      extensions={"sni_hostname": self.host})
        except httpx.HTTPError as exc:
            return Outcome(False, what, None, time.monotonic() - started, repr(exc), wrote)
        seconds = time.monotonic() - started
        if response.http_version != "HTTP/2":
            return Outcome(False, what, None, seconds, f"answered over {response.http_version}", wrote)
        return self.judged(probe, what, response.status_code, response.content, seconds, wrote)

    def worker_h2(self, index: int) -> None:
        """One HTTP/2 connection per worker (httpx opens a new one when nginx ends it with GOAWAY)."""
        import httpx

        deadline = time.monotonic() + self.max_seconds
        n = 0
        # A context of its own: httpx sets ALPN (h2) on the context it is given, and
        # unverified_tls() is shared with the HTTP/1.1 clients.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with httpx.Client(http2=True, verify=context, timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
                n += 1
                outcome = self.one_h2(client, n, f"{self.run_id}-h2-{index}-{n}")
                with self._lock:
                    self.results.append(outcome)

    def worker(self, index: int) -> None:
        if self.http2:
            return self.worker_h2(index)
        deadline = time.monotonic() + self.max_seconds
        n = 0
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
            n += 1
            started = time.monotonic()
            try:
                if conn is None or conn.sock is None:
                    conn = self.connect()
                outcome = self.one(conn, n, f"{self.run_id}-{index}-{n}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                outcome = Outcome(False, "connection", None, time.monotonic() - started, repr(exc))
            if (not outcome.ok or not self.keepalive) and conn is not None:
                conn.close()
                conn = None
            with self._lock:
                self.results.append(outcome)
        if conn is not None:
            conn.close()

    def writes(self) -> tuple[set[str], set[str]]:
        """The values of the POSTs that were acknowledged, and of those that got no answer."""
        acked = {r.wrote for r in self.results if r.ok and r.wrote}
        unanswered = {r.wrote for r in self.results if not r.ok and r.wrote}
        return acked, unanswered

    def start(self) -> "Load":
        for index in range(self.workers):
            thread = threading.Thread(target=self.worker, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> "Load":
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self

    @property
    def failures(self) -> list[Outcome]:
        return [r for r in self.results if not r.ok]

    def explain(self, nginx_container: str) -> str:
        """The first failed requests, and what nginx logged as errors or warnings meanwhile."""
        logs = subprocess.run(["docker", "logs", "--since", "15m", nginx_container], capture_output=True, text=True, timeout=60)
        said = [line for line in (logs.stdout + logs.stderr).splitlines() if "[error]" in line or "[warn]" in line]
        return "\n".join([*map(repr, self.failures[:5]), f"nginx's errors and warnings ({len(said)}):", *said[-20:]])

    def summary(self) -> str:
        worst = max((r.seconds for r in self.results), default=0)
        return f"{len(self.results)} requests, {len(self.failures)} failed, max latency {worst * 1000:.0f} ms"
