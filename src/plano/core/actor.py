"""Who runs a plano command, and from which machine: what the deploy lock and the audit
log record.

On a server reached with -e, plano runs as root through the shared SSH login, so
neither the login nor root says who it is: the laptop's plano sends its user's name and
its host name along (engine.server passes them as PLANO_USER and PLANO_HOST), and the
server's plano reads them here. Run directly, plano names its own user (the one behind
sudo, if any) and this machine. CI sets PLANO_USER to its own actor (the generated
deploy jobs do). `login` is always the account that really runs plano here.

The dashboard serves many users from one process: it runs each action `acting_as` the
signed-in user (a context variable: each request's thread has its own), so the lock and
the log name them, not the account that started `plano dashboard`.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

USER_VAR = "PLANO_USER"
HOST_VAR = "PLANO_HOST"
MAX_LENGTH = 64


@dataclass(frozen=True)
class Actor:
    user: str  # who (as the laptop or CI names them)
    host: str  # from which machine
    login: str  # the account plano runs as, here (behind sudo: the one that called it)


def cleaned(value: str) -> str:
    """A name as the lock and the log show it: printable, one line, at most MAX_LENGTH."""
    return "".join(c if c.isprintable() else "?" for c in value.strip())[:MAX_LENGTH]


def login() -> str:
    return cleaned(os.environ.get("SUDO_USER") or getpass.getuser())


GIVEN: ContextVar[Actor | None] = ContextVar("plano_actor", default=None)


@contextmanager
def acting_as(user: str, host: str) -> Iterator[Actor]:
    """Within it, `current()` is `user` from `host` (the dashboard's signed-in user)."""
    token = GIVEN.set(Actor(cleaned(user), cleaned(host), login()))
    try:
        yield GIVEN.get()
    finally:
        GIVEN.reset(token)


def current() -> Actor:
    """This command's actor: the one the dashboard acts as, the one sent along by a laptop
    (or set by CI), else this machine's."""
    given = GIVEN.get()
    if given is not None:
        return given
    here = login()
    return Actor(cleaned(os.environ.get(USER_VAR, "")) or here, cleaned(os.environ.get(HOST_VAR, "")) or cleaned(socket.gethostname()),
                 here)
