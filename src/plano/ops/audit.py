"""The audit log: data/logs/audit.jsonl on the machine the stack runs on, one JSON line
per command that changed something (core/commands.CHANGING), written by the plano that
did the work, so that a deploy from a laptop (-e), from CI and from a shell on the
server are all there. Append-only: each line is one write(2) to a file opened with
O_APPEND, so lines of concurrent commands never interleave, and plano never rewrites it.

A line: when the command started and ended (UTC), who ran it and from which machine
(core/actor: the laptop's user and host sent along with -e; `login` the account on the
server), the infra's commit, the command line (any secret value of the env files
masked), the result and the exit code.

Both interfaces write it through `audited`: the command line around each changing
command, the dashboard around each action it runs (its user is the actor: core/actor).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from plano.core import actor
from plano.core import naming as n
from plano.core.actor import Actor
from plano.core.errors import BAD_INPUT, BUG, PlanoError
from plano.core.secrets import mask
from plano.core.session import Session

T = TypeVar("T")
INTERRUPTED = 130

LINE_LIMIT = 3500  # bytes: a line stays one atomic append (PIPE_BUF is 4096); a longer command is cut
MODE = 0o640


@dataclass(frozen=True)
class Entry:
    started: str  # ISO 8601, UTC
    ended: str
    user: str
    host: str
    login: str
    commit: str  # the infra's HEAD ("" when it is no git checkout)
    command: list[str]  # as typed, "plano" first, the root's options left out
    result: str  # ok | failed: <the error's first line> | interrupted
    exit: int


def entry(started: str, ended: str, who: Actor, commit: str, command: Iterable[str], code: int, why: str,
          secrets: set[str]) -> Entry:
    result = "ok" if code == 0 else why or f"failed: exit {code}"
    return Entry(started, ended, who.user, who.host, who.login, commit, ["plano", *(mask(a, secrets) for a in command)],
                 mask(result.splitlines()[0] if result else result, secrets), code)


def line(item: Entry) -> bytes:
    """The entry's JSON line; a very long command loses its last words (then "...")."""
    data = asdict(item)
    text = json.dumps(data, ensure_ascii=False)
    while len(text.encode()) > LINE_LIMIT and len(data["command"]) > 2:
        data["command"] = [*data["command"][:-2], "..."]
        text = json.dumps(data, ensure_ascii=False)
    if len(text.encode()) > LINE_LIMIT:
        data["command"] = [word[:200] for word in data["command"]]
        text = json.dumps(data, ensure_ascii=False)
    return (text + "\n").encode()


def append(root: Path, item: Entry) -> None:
    """One line, one write, at the end of the log (O_APPEND: even with other writers)."""
    path = root / n.AUDIT_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)
    try:
        os.write(fd, line(item))
    finally:
        os.close(fd)


def read(root: Path, last: int | None = None) -> list[Entry]:
    """The log's entries, oldest first (the `last` ones); a torn or foreign line is skipped."""
    try:
        lines = (root / n.AUDIT_LOG).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for text in lines:
        try:
            entries.append(Entry(**json.loads(text)))
        except (ValueError, TypeError):
            continue
    return entries[-last:] if last else entries


def commit(root: Path) -> str:
    """The infra's checked-out commit, read from .git (no git process: it is read after
    every audited command, and the server's infra is a plain checkout)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head.removeprefix("ref: ")
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for packed in (git / "packed-refs").read_text().splitlines():
            sha, _, name = packed.partition(" ")
            if name == ref:
                return sha
    except OSError:
        pass
    return ""


# ---------------------------------------------------------------- writing a command's line


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def outcome(exc: BaseException) -> tuple[int, str]:
    """The exit code an interface gives for `exc`, and the result the audit line says."""
    if isinstance(exc, PlanoError):
        return exc.exit_code, f"failed: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    return BUG, f"failed: a bug in plano ({type(exc).__name__})"


def audited(session: Session, run: Callable[[], T], judged: Callable[[BaseException], tuple[int, str]] = outcome,
            options: tuple[str, ...] = ()) -> T:
    """Run the command (or the dashboard's action), then append its line to the audit log
    of its infra. `judged` maps what it raised to an exit code and a result (the command
    line knows click's exceptions too); `options` come before the command in the line
    (-e NAME for a command run here for an environment). No line for a command refused
    for its input (exit 2: nothing ran) or that found no plano.yml."""
    started, code, why = now(), 0, ""
    try:
        value = run()
        code = value if isinstance(value, int) else 0
        return value
    except BaseException as exc:
        code, why = judged(exc)
        raise
    finally:
        if code != BAD_INPUT:
            write(session, started, code, why, actor.current(), options)


def write(session: Session, started: str, code: int, why: str, who: Actor, options: tuple[str, ...] = ()) -> None:
    from plano.core.manifest import MANIFEST_FILE

    try:
        root = session.root
        secrets = session.secret_values()
    except (PlanoError, OSError):
        return  # no infra (or none readable): the command changed nothing
    if not (root / MANIFEST_FILE).is_file():
        return
    item = entry(started, now(), who, commit(root), (*options, *session.command), code, why, secrets)
    try:
        append(root, item)
    except OSError as exc:  # the command is done: say so, without turning its result into a failure
        session.out.note(f"warning: could not append to {root / n.AUDIT_LOG}: {exc.strerror}")
