"""Sessions, CSRF tokens, the sign-in throttle and the headers of every answer (see the
package's doc for the rules). Each piece takes its clock, so tests drive time."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

SESSION_COOKIE = "plano_session"
LOGIN_COOKIE = "plano_login"  # binds the sign-in form's CSRF token to the browser that got the form
IDLE_SECONDS = 3600
LIFETIME_SECONDS = 12 * 3600
LOGIN_FORM_SECONDS = 3600
COOKIE_FLAGS = {"httponly": True, "secure": True, "samesite": "strict", "path": "/"}

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


@dataclass
class SignedIn:
    id: str
    user: str
    csrf: str
    created: float
    seen: float


@dataclass
class Sessions:
    """The signed-in sessions of this process; the cookie holds a signed random id."""

    key: bytes
    clock: Callable[[], float] = time.time
    idle: float = IDLE_SECONDS
    lifetime: float = LIFETIME_SECONDS
    known: dict[str, SignedIn] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def signer(self) -> Signer:
        return Signer(self.key, salt="plano-dashboard-session")

    def start(self, user: str) -> tuple[str, SignedIn]:
        """A new session (a new id at each sign-in); the cookie's value and the session."""
        now = self.clock()
        made = SignedIn(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now, now)
        with self.lock:
            for sid in [sid for sid, s in self.known.items() if self.expired(s, now)]:
                del self.known[sid]  # sessions left without signing out
            self.known[made.id] = made
        return self.signer.sign(made.id).decode(), made

    def find(self, cookie: str | None) -> SignedIn | None:
        if not cookie:
            return None
        try:
            sid = self.signer.unsign(cookie.encode()).decode()
        except BadSignature:
            return None
        now = self.clock()
        with self.lock:
            found = self.known.get(sid)
            if found is None:
                return None
            if self.expired(found, now):
                del self.known[sid]
                return None
            found.seen = now
            return found

    def expired(self, session: SignedIn, now: float) -> bool:
        return now - session.seen > self.idle or now - session.created > self.lifetime

    def end(self, cookie: str | None) -> None:
        found = self.find(cookie)
        if found is not None:
            with self.lock:
                self.known.pop(found.id, None)

    def end_user(self, user: str) -> None:
        """Every session of a user (removed, or no longer allowed)."""
        with self.lock:
            for sid in [sid for sid, s in self.known.items() if s.user == user]:
                del self.known[sid]


@dataclass
class LoginForms:
    """The sign-in form's CSRF token: a random value in the form and, signed with a
    timestamp, in a cookie; a sign-in must bring both, equal, and not older than an hour."""

    key: bytes
    max_age: float = LOGIN_FORM_SECONDS

    @property
    def signer(self) -> TimestampSigner:
        return TimestampSigner(self.key, salt="plano-dashboard-login")

    def issue(self) -> tuple[str, str]:
        """(the form's token, the cookie's value)."""
        token = secrets.token_urlsafe(32)
        return token, self.signer.sign(token).decode()

    def check(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        try:
            signed = self.signer.unsign(cookie.encode(), max_age=self.max_age).decode()
        except (BadSignature, SignatureExpired):
            return False
        return same(signed, token)


@dataclass
class Throttle:
    """Failed sign-ins per key (user and address, or address alone): after `limit` of them
    within `window` seconds, refuse for `lockout` seconds, doubling with each further
    failure (at most `window`). A success clears the key."""

    limit: int
    window: float = 900
    lockout: float = 60
    clock: Callable[[], float] = time.monotonic
    failures: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self.failures.get(key, []) if now - t < self.window]
        if kept:
            self.failures[key] = kept
        else:
            self.failures.pop(key, None)
        return kept

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        now = self.clock()
        with self.lock:
            kept = self.recent(key, now)
            if len(kept) < self.limit:
                return 0.0
            pause = min(self.window, self.lockout * 2 ** (len(kept) - self.limit))
            return max(0.0, kept[-1] + pause - now)

    def failed(self, key: str) -> None:
        now = self.clock()
        with self.lock:
            self.failures[key] = [*self.recent(key, now), now]

    def succeeded(self, key: str) -> None:
        with self.lock:
            self.failures.pop(key, None)


class FromNginx:
    """A request that came through the unix socket nginx proxies dashboard.domain to
    (server.py; uvicorn gives it no client address, a TCP connection always has one):
    its client is nginx's X-Real-IP (the sign-in throttle counts per address), its
    scheme X-Forwarded-Proto. nginx sets both, replacing what the client sent; on
    127.0.0.1 they are never read."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client") is None:
            headers = dict(scope["headers"])
            address = headers.get(b"x-real-ip", b"").decode("latin-1").strip()
            if address:
                scope["client"] = (address, 0)
            if headers.get(b"x-forwarded-proto") == b"https":
                scope["scheme"] = "https"
        await self.app(scope, receive, send)
