"""Small HTTP(S) clients for the integration tests: loopback only, bounded waits."""

from __future__ import annotations

import functools
import http.client
import json
import socket
import ssl
import time

import pytest


def wait_for(predicate, message: str, seconds: float = 20, interval: float = 0.25) -> float:
    """Poll until predicate() is true; returns the seconds it took, or fails the test."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(interval)
    pytest.fail(message)


def _response(conn: http.client.HTTPConnection, method: str, path: str, headers: dict, body: bytes | None):
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def http_get(port: int, host: str, path: str, method: str = "GET", body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    return _response(conn, method, path, {"Host": host}, body)


@functools.cache
def unverified_tls() -> ssl.SSLContext:
    """One client context for every request (making one loads the system's CA store:
    about 130 ms here). Certificates are not verified: before ACME, nginx serves its
    self-signed placeholder."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def https_request(port: int, host: str, path: str, method: str = "GET", body: bytes | None = None,
                  sni: str | None = None, headers: dict | None = None):
    """TLS to 127.0.0.1 with the given SNI and Host, certificates not verified (unverified_tls)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.sock = unverified_tls().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                             server_hostname=sni or host)
    return _response(conn, method, path, {"Host": host, **(headers or {})}, body)


def https_json(port: int, host: str, path: str, method: str = "GET", payload: object | None = None):
    body = json.dumps(payload).encode() if payload is not None else None
    headers = {"Content-Type": "application/json"} if body else {}
    status, _, raw = https_request(port, host, path, method, body, headers=headers)
    try:
        return status, json.loads(raw)
    except ValueError:  # nginx's own error pages (502 while an app restarts) are HTML
        return status, None


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open while choosing, so the
    kernel cannot hand out the same one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
