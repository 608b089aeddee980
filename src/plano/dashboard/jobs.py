"""The dashboard's actions: each runs an operation in a thread of its own, as the signed-in
user (core.actor), with its audit line when the same command line has one (ops.audit,
core.commands: a backup verification has none); its output and state are kept here for
the job's page and the API to poll. The last JOBS_KEPT jobs are kept, in this process only
(the deploy log and the audit log are the record that lasts)."""

from __future__ import annotations

import secrets
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import actor, commands
from plano.core.errors import PlanoError
from plano.core.mode import Mode
from plano.core.runner import Runner, SubprocessRunner
from plano.core.secrets import mask
from plano.core.session import Session
from plano.ops import audit

JOBS_KEPT = 50
LINES_KEPT = 2000
RUNNING, OK, FAILED = "running", "ok", "failed"


@dataclass
class Job:
    id: str
    action: str  # deploy | rollback | maintenance
    app: str
    user: str
    command: str  # the command line that does the same: plano deploy app1 --tag 2.0.0
    started: str
    state: str = RUNNING
    result: str = ""
    ended: str | None = None
    lines: list[str] = field(default_factory=list)

    def public(self) -> dict:
        return {"id": self.id, "action": self.action, "app": self.app, "user": self.user, "command": self.command,
                "started": self.started, "ended": self.ended, "state": self.state, "result": self.result,
                "lines": list(self.lines)}


class JobOutput:
    """A Session's output that goes to the job's lines (secrets of the env files masked)."""

    def __init__(self, job: Job, secret_values: set[str], lock: threading.Lock) -> None:
        self.job, self.secrets, self.lock = job, secret_values, lock

    def add(self, text: str) -> None:
        with self.lock:
            self.job.lines.extend(mask(text, self.secrets).splitlines() or [""])
            del self.job.lines[:-LINES_KEPT]

    info = note = planned = add


class QuietOutput:
    """The output of what pages read (status): notes are dropped, nothing is printed."""

    def info(self, text: str) -> None:
        pass

    note = planned = info


def reading_session(root: Path, runner: Callable[[], Runner] = SubprocessRunner) -> Session:
    return Session(runner(), QuietOutput(), directory=root, mode=Mode.PROD)


def host() -> str:
    return f"dashboard@{socket.gethostname()}"


@dataclass
class Jobs:
    root: Path
    runner: Callable[[], Runner] = SubprocessRunner
    kept: dict[str, Job] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, action: str, app: str, user: str, command: list[str], work: Callable[[Session], object]) -> Job:
        """Run `work` with a Session of its own, in a thread, as `user`; the job at once."""
        job = Job(secrets.token_urlsafe(9), action, app, user, " ".join(["plano", *command]), audit.now())
        session = Session(self.runner(), QuietOutput(), directory=self.root, mode=Mode.PROD, command=tuple(command))
        session.out = JobOutput(job, session.secret_values() if self.loaded(session) else set(), self.lock)
        with self.lock:
            self.kept[job.id] = job
            for old in list(self.kept)[:-JOBS_KEPT]:
                if self.kept[old].state != RUNNING:
                    del self.kept[old]
        thread = threading.Thread(target=self.run, args=(job, session, work), name=f"plano-job-{job.id}", daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return job

    @staticmethod
    def loaded(session: Session) -> bool:
        try:
            session.infra  # noqa: B018 - loads plano.yml, so that the env files' secrets are known
        except PlanoError:
            return False
        return True

    def run(self, job: Job, session: Session, work: Callable[[Session], object]) -> None:
        state, result = FAILED, ""
        try:
            with actor.acting_as(job.user, host()):
                if commands.changes(list(session.command)):  # the commands the CLI records, no others
                    value = audit.audited(session, lambda: work(session))
                else:
                    value = work(session)
            state, result = OK, value if isinstance(value, str) else "done"
        except PlanoError as exc:
            result = mask(str(exc), session.secret_values())
        except Exception:  # noqa: BLE001 - a bug: its traceback for the operator's terminal, one line for the page
            traceback.print_exc(file=sys.stderr)
            result = "a bug in plano: its traceback is in the terminal that runs plano dashboard"
        with self.lock:
            job.state, job.result, job.ended = state, result, audit.now()

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.kept.get(job_id)

    def snapshot(self, job_id: str) -> dict | None:
        with self.lock:
            found = self.kept.get(job_id)
            return found.public() if found else None

    def recent(self, app: str | None = None) -> list[dict]:
        with self.lock:
            return [j.public() for j in reversed(self.kept.values()) if app is None or j.app == app]

    def wait(self, timeout: float | None = None) -> None:
        """Until every job started so far has ended (tests; the server's shutdown)."""
        for thread in list(self.threads):
            thread.join(timeout)
