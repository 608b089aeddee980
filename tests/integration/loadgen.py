"""A bounded load of GETs and POSTs through nginx, for the deploy tests and bench.

Each request opens its own TLS connection (with the app's SNI), so a reload's
closing of idle keep-alive connections cannot be mistaken for a failure; every request is recorded: ok or why not, which version answered,
and its latency. Only 127.0.0.1, a bounded count and time, and it stops by itself.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess
import threading
import time
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
    at: str = field(default_factory=lambda: time.strftime("%H:%M:%S"))  # to read beside nginx's log


@dataclass
class Load:
    port: int
    host: str
    workers: int = 4
    max_seconds: float = 300
    max_requests: int = 200_000
    results: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def connect(self) -> http.client.HTTPConnection:
        """A fresh TLS connection with the app's SNI, for one request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.sock = unverified_tls().wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10), server_hostname=self.host)
        return conn

    def one(self, conn: http.client.HTTPConnection, n: int) -> Outcome:
        kind = n % 3
        started = time.monotonic()
        if kind == 0:
            conn.request("GET", "/api/version", headers={"Host": self.host, "Connection": "close"})
        elif kind == 1:
            body = json.dumps({"value": f"load-{n}"}).encode()
            conn.request("POST", "/api/rows", body=body, headers={"Host": self.host, "Content-Type": "application/json", "Connection": "close"})
        else:
            conn.request("GET", "/", headers={"Host": self.host, "Connection": "close"})
        response = conn.getresponse()
        payload = response.read()
        seconds = time.monotonic() - started
        what = ("GET /api/version", "POST /api/rows", "GET /")[kind]
        expected = 201 if kind == 1 else 200
        if response.status != expected:
            return Outcome(False, what, None, seconds, f"{response.status} {payload[:200]!r}")
        version = None
        if kind == 0:
            version = "backend " + json.loads(payload)["version"]
        elif kind == 2:
            match = VERSION_RE.search(payload)
            version = "frontend " + match.group(1).decode() if match else None
        return Outcome(True, what, version, seconds)

    def worker(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
            n += 1
            started = time.monotonic()
            conn = None
            try:
                conn = self.connect()
                outcome = self.one(conn, n)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                outcome = Outcome(False, "connection", None, time.monotonic() - started, repr(exc))
            finally:
                if conn is not None:
                    conn.close()
            with self._lock:
                self.results.append(outcome)

    def start(self) -> "Load":
        for _ in range(self.workers):
            thread = threading.Thread(target=self.worker, daemon=True)
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
