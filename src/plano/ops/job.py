"""One-off jobs on a swarm (`target: swarm`): run a command once in a stack service's
image, with that service's networks, secrets, mounts, environment and placement (or
a given constraint), wait for it, return its output and exit code, and remove it.
plano's users: release commands before a rolling update (ops/deploy.py) and backups
on the data node (ops/backup.py).

How: a stack file of one `replicated-job` service, rendered from the service's own
definition in docker-stack.yml (render/stack.py `job`), is deployed into the same
stack with `docker stack deploy -c -` (no --prune: no other service changes). Docker's
own stack loader then turns it into a service exactly as it does the stack's: the
stack's networks and secrets by their names, relative paths from the infra, the
${VARIABLES} from the environment (secrets never on a command line). plano has no
shell on the other nodes and cannot `docker exec` there; a job's task runs wherever
its placement says, and `docker service logs` brings its output back.
Steps: deploy; poll `docker service ps` until the task is Complete, Failed or Rejected
(or the timeout); read its logs; always `docker service rm` it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from plano.core.errors import PlanoError
from plano.core.secrets import mask
from plano.core.session import Session
from plano.engine import swarm as sw
from plano.render import compose
from plano.render import stack as stack_file

# Poll the job's task often at first (a short job takes about a second), then less.
FAST_POLL_SECONDS = 0.25
SLOW_POLL_SECONDS = 2.0
FAST_FOR_SECONDS = 30.0
# How many of a failed job's last log lines its error shows.
LAST_LINES = 3


class JobFailed(PlanoError):
    """A job exited non-zero, was rejected, or did not finish in time (and was removed)."""


@dataclass(frozen=True)
class Job:
    service: str  # the stack's service whose definition the job takes (backup, app1-backend)
    image: str
    command: list[str]
    what: str  # for messages: "the release command of app1-backend", "backup"
    entrypoint: list[str] | None = None
    constraint: str | None = None  # instead of the service's own placement
    timeout: float = 1800
    every_secret: bool = False  # the service's secrets on one server, not only its own on a swarm


@dataclass(frozen=True)
class JobResult:
    name: str
    node: str
    code: int
    out: str
    err: str
    seconds: float


def job_name(service: str) -> str:
    """The job's service name in the stack (unique: two jobs may run at once)."""
    return f"job-{service}-{secrets.token_hex(3)}"


def last_lines(result_out: str, result_err: str) -> str:
    lines = [line for line in (result_err or result_out).splitlines() if line.strip()]
    return " | ".join(lines[-LAST_LINES:]) or "(no output)"


def run(session: Session, job: Job) -> JobResult:
    """Run `job` once and remove it; a non-zero exit, a rejected task or a timeout is a
    JobFailed (one line: what, the exit code and node, the job's last log lines)."""
    stack = session.manifest.name
    name = job_name(job.service)
    service = f"{stack}_{name}"
    spec = compose.dump(stack_file.job(session.manifest, job.service, name, job.image, job.command,
                                       job.entrypoint, job.constraint, job.every_secret))
    started = time.monotonic()
    deployed = session.act(sw.job_deploy_argv(stack), timeout=300, stdin=spec,
                           env=sw.deploy_env(session.root, session.manifest, {}),
                           shown=f"{' '.join(sw.job_deploy_argv(stack))}  # {name}: {' '.join(job.command)} in {job.image}")
    try:
        if not deployed.ok:
            raise JobFailed(f"{job.what}: starting its job failed: {mask(deployed.last_line, session.secret_values())}")
        if session.dry_run:
            return JobResult(name, "", 0, "", "", 0.0)
        state = wait(session, job, service, started)
        logs = session.query(sw.job_logs_argv(service), timeout=300)
        out, err = (mask(text, session.secret_values()) for text in (logs.out, logs.err))
        if state.code:
            where = f" on {state.node}" if state.node else ""
            why = last_lines(out, err) if state.state == "Failed" else state.error or state.state
            raise JobFailed(f"{job.what} failed (exit {state.code}{where}): {why}")
        return JobResult(name, state.node, 0, out, err, time.monotonic() - started)
    finally:
        session.act(sw.service_rm_argv(service), timeout=120)


def wait(session: Session, job: Job, service: str, started: float) -> sw.JobState:
    """Until the job's task has finished; past the timeout, a JobFailed (the caller removes it)."""
    while True:
        state = sw.job_state(session.query(sw.job_tasks_argv(service), timeout=60).out)
        if state.finished:
            return state
        elapsed = time.monotonic() - started
        if elapsed > job.timeout:
            why = f"{state.state}" + (f": {state.error}" if state.error else "")
            raise JobFailed(f"{job.what} did not finish within {job.timeout:.0f} s (its task: {why}); its job was removed")
        session.pause(FAST_POLL_SECONDS if elapsed < FAST_FOR_SECONDS else SLOW_POLL_SECONDS)
