"""Zero-downtime deploys of an app's services, with automatic rollback.

nginx reaches each service through its own DNS (dnsmasq in nginx's container, which
reads one file per service in data/nginx/dns/), so a switch changes an answer, never
nginx's configuration: no reload, no client connection closed. The steps, each an
argv run through the Session (`Deployer.prepare`, `switch`, `retire`):
  1. pull the new images (the tags reach compose through the environment, which
     takes precedence over the env files, so nothing is written yet);
  2. run each service's release command, if any, in a one-off container of it;
  3. answer each service's name with its old containers only (`point(..., "old")`);
  4. start a second container of each next to the old one (`up --scale N+1 --no-recreate`);
  5. poll each new container's health route from nginx's container every 0.5 s
     (bin/plano-probe.sh ready); one that exits or turns unhealthy fails at once;
  6. answer with the new containers only: every service switches together or none;
  7. wait FOLLOW_SECONDS for nginx to ask again, then until nginx holds no connection
     to the old containers (bin/plano-probe.sh drained, at most --drain-timeout),
     stop them (SIGTERM, grace period) and remove them; drop the answers (Docker's
     own DNS now names only the new containers);
  8. record the tags in .env.prod and append a line per service to data/logs/deploys.jsonl.
A new container that does not answer in time is removed and the answers go back to
Docker's: the env file was not touched and the old containers never stopped serving.
Every deploy, failed or not, leaves a line in the deploy log.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plano.core import actor, fields, secrets
from plano.core import naming as n
from plano.core.errors import PlanoError, RefusedError
from plano.core.manifest import require_app, require_role
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine import inspect, nginx, swarm
from plano.engine.stack import Stack, open_stack, require_engine
from plano.ops import job
from plano.ops import swarm as swarm_ops
from plano.render.stack import MONITOR

STOP_GRACE_SECONDS = 30
# How long the old containers may keep connections (a WebSocket, a long download)
# once nginx sends them nothing new; then they are stopped all the same.
DRAIN_TIMEOUT_SECONDS = 30
# After a switch, how long until every nginx worker has asked its DNS again (an old
# container with no connection then still gets none).
FOLLOW_SECONDS = n.RESOLVER_VALID_SECONDS + 0.3
# How long one probe `exec` polls before plano looks at the containers' state.
PROBE_ROUND_SECONDS = 5
# What a dry run calls the container that step 4 would start.
NEW_CONTAINER = "<new container>"
# On a swarm: how often plano reads a service's update state, and the stack's monitor window.
SWARM_POLL_SECONDS = 2.0
# How long a release command may run (one server: the same).
RELEASE_TIMEOUT_SECONDS = 1800
SWARM_MONITOR_SECONDS = int(MONITOR.removesuffix("s"))
# A lock taken a moment ago: how often, and how long apart, its holder line is read.
LOCK_READ_TRIES = 20
LOCK_READ_PAUSE = 0.05


class DeployFailed(PlanoError):
    """The new version did not take over; the old one still serves."""


@dataclass(frozen=True)
class Target:
    app: str
    role: str
    tag: str

    @property
    def service(self) -> str:
        return n.service(self.app, self.role)

    @property
    def variable(self) -> str:
        return n.tag_var(self.app, self.role)


@dataclass(frozen=True)
class Record:
    time: str
    user: str
    app: str
    service: str
    from_tag: str
    to_tag: str
    action: str  # deploy | rollback
    result: str  # ok | failed: <why>


# ---------------------------------------------------------------- choosing what to deploy


def check_tag(tag: str) -> str:
    return fields.given("--tag", fields.image_tag, tag)


def targets(stack: Stack, app: str, role: str | None, tag: str) -> list[Target]:
    services = require_app(stack.manifest, app).services()
    if role is not None:
        require_role(stack.manifest, app, role)
    check_tag(tag)
    return [Target(app, r, tag) for r in ([role] if role else list(services))]


# ---------------------------------------------------------------- argv builders


def with_tags(stack: Stack, targets: list[Target], *args: str) -> list[str]:
    """compose with the new tags in its environment (they win over the env files)."""
    return ["env", *(f"{t.variable}={t.tag}" for t in targets), *stack.argv(*args)]


def pull_argv(stack: Stack, targets: list[Target]) -> list[str]:
    return with_tags(stack, targets, "pull", "--quiet", *(t.service for t in targets))


def release_argv(stack: Stack, target: Target, command: list[str]) -> list[str]:
    return with_tags(stack, [target], "run", "--rm", "--no-deps", "-T", target.service, *command)


def scale_up_argv(stack: Stack, targets: list[Target], running: list[int] | None = None) -> list[str]:
    """One more container of each target (next to its `running` ones: 1 unless a deploy
    was cut short), the old ones left as they are."""
    counts = running or [1] * len(targets)
    scales = [word for t, count in zip(targets, counts, strict=True) for word in ("--scale", f"{t.service}={count + 1}")]
    return with_tags(stack, targets, "up", "-d", "--no-deps", "--no-recreate", *scales, *(t.service for t in targets))


def logs_argv(container: str, lines: int = 1000) -> list[str]:
    return ["docker", "logs", "--tail", str(lines), container]


def log_excerpt(text: str, head: int = 10, tail: int = 20) -> list[str]:
    """A failed container's first lines (how it started) and its last ones (our health
    probes show up there, every half second)."""
    lines = text.splitlines()
    if len(lines) <= head + tail:
        return lines or ["(none)"]
    return [*lines[:head], f"... ({len(lines) - head - tail} lines)", *lines[-tail:]]


def stop_argv(container: str) -> list[str]:
    return ["docker", "stop", "--time", str(STOP_GRACE_SECONDS), container]


def remove_argv(container: str) -> list[str]:
    return ["docker", "rm", "--force", container]


# ---------------------------------------------------------------- the deploy log and the lock


def read_log(root: Path, log: str = n.DEPLOY_LOG) -> list[Record]:
    try:
        lines = (root / log).read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(Record(**json.loads(line)))
        except (ValueError, TypeError):
            continue  # a torn or foreign line never blocks a deploy
    return records


def previous_tag(records: list[Record], service: str, current: str) -> str | None:
    """The tag before `current`: the from-tag of the last successful change to it."""
    for record in reversed(records):
        if record.service == service and record.result == "ok" and record.to_tag == current:
            return record.from_tag
    return None


def append_log(root: Path, record: Record, log: str = n.DEPLOY_LOG) -> None:
    path = root / log
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:  # one short line per write: appends do not interleave
        handle.write(json.dumps(asdict(record)) + "\n")


def log_record(session: Session, record: Record, log: str = n.DEPLOY_LOG) -> None:
    """One line of the deploy log (`log`: a Kubernetes environment's own; under --dry-run:
    shown, not written)."""
    if session.dry_run:
        session.out.planned(f"# append to {log}: {record.service} {record.from_tag} -> {record.to_tag}")
        return
    append_log(session.root, record, log)


def write_tags(session: Session, targets: list[Target], env_file: str = n.ENV_PROD) -> None:
    """.env.prod (or a Kubernetes environment's .env.NAME) records the tags the services now run."""
    path = session.root / env_file
    text = path.read_text() if path.is_file() else ""
    for target in targets:
        text = secrets.set_env_value(text, target.variable, target.tag)
    session.write(path, text, 0o600)


def who() -> str:
    return actor.current().user


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Holder:
    """Who holds an app's deploy lock: the lock file's one JSON line."""

    user: str
    host: str
    since: str  # ISO 8601, UTC
    command: str  # as typed, e.g. plano deploy app1 --tag 1.4.2
    pid: int

    def shown(self) -> str:
        since = self.since.replace("T", " ").removesuffix("+00:00")
        return f"{self.user} on {self.host} since {since} UTC ({self.command}, pid {self.pid})"


def holder_now(command: tuple[str, ...]) -> Holder:
    who_ = actor.current()
    return Holder(who_.user, who_.host, now(), shlex.join(["plano", *command]) if command else "plano", os.getpid())


def read_holder(handle) -> str:
    """The holder's line, shown; the lock may have been taken a moment ago by a plano that
    has not written it yet (it writes right after taking it): read again, briefly."""
    for _ in range(LOCK_READ_TRIES):
        handle.seek(0)
        try:
            return Holder(**json.loads(handle.read())).shown()
        except (ValueError, TypeError):
            time.sleep(LOCK_READ_PAUSE)
    handle.seek(0)
    return handle.read().strip()[:200] or "another plano, which did not say who"


@contextmanager
def deploy_lock(root: Path, app: str, command: tuple[str, ...] = (), environment: str | None = None) -> Iterator[Holder]:
    """One deploy (or rollback) of `app` at a time on this server, whoever runs it and
    from wherever (a laptop's -e, CI, a shell on the server: all run plano here). The
    lock is the kernel's (flock on data/logs/.deploy-APP.lock): taken atomically, and
    released when its process ends, however it ends. Its holder writes who it is in it
    with one write; a second deploy is refused naming them (exit 3). `environment`: a
    Kubernetes environment's deploys, run here (naming.deploy_lock)."""
    path = root / n.deploy_lock(app, environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(handle)
        handle.close()
        raise RefusedError(f"a deploy of {app} is already running: {holder}; wait for it to end, then run again") from None
    try:
        held = holder_now(command)
        handle.truncate(0)
        handle.write(json.dumps(asdict(held)) + "\n")  # "a+": at offset 0 of the emptied file, one write
        handle.flush()
        yield held
    finally:
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def deploy_running(root: Path, app: str) -> bool:
    """Whether a deploy of `app` holds its lock now (on this machine)."""
    path = root / n.deploy_lock(app)
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def current_tag(root: Path, target: Target, env_file: str = n.ENV_PROD) -> str:
    return secrets.read_env(root / env_file).get(target.variable) or "latest"


def recorded_tag(root: Path, app: str, role: str, env_file: str = n.ENV_PROD) -> str:
    """The tag .env.prod (or `env_file`) records for the app's service (latest when none)."""
    return current_tag(root, Target(app, role, "latest"), env_file)


# ---------------------------------------------------------------- running it


@dataclass
class Switch:
    """One service of a deploy: its target and, as the deploy goes, its containers."""

    target: Target
    port: int
    health: str
    from_tag: str
    old: list[str] = field(default_factory=list)
    old_addresses: list[str] = field(default_factory=list)
    new: str | None = None
    new_address: str = ""


@dataclass
class Deployer:
    session: Session
    stack: Stack
    timeout: float = 180
    drain: float = DRAIN_TIMEOUT_SECONDS
    releases: bool = True  # run the service's release command (a rotation restarts without it)

    @property
    def root(self) -> Path:
        return self.stack.root

    def say(self, text: str) -> None:
        self.session.out.note(text)

    def act(self, argv: list[str], timeout: float, what: str) -> str:
        result = self.session.act(argv, timeout=timeout)
        if not result.ok:
            raise DeployFailed(f"{what} failed: {result.last_line}")
        return result.out

    def containers(self, target: Target) -> list[str]:
        got = self.session.query(inspect.service_argv(self.stack.ctx.project, target.service))
        if not got.ok:
            raise DeployFailed(f"docker ps failed: {got.last_line}")
        return got.out.split()

    def inspect(self, container: str) -> dict:
        got = self.session.query(inspect.inspect_argv(container))
        if not got.ok:
            raise DeployFailed(f"docker inspect {container[:12]} failed: {got.last_line}")
        return inspect.parse(got.out)[0]

    def address(self, target: Target, container: str) -> str:
        """The container's address on the app's network, the one nginx shares with it."""
        if container == NEW_CONTAINER:
            return "<its address>"
        try:
            return inspect.network_address(self.inspect(container), n.engine_network(self.stack.ctx.project, target.app))
        except PlanoError as exc:
            raise DeployFailed(str(exc)) from None

    def new_container(self, target: Target, old: list[str]) -> str:
        new = [c for c in self.containers(target) if c not in old]
        if not new and self.session.dry_run:
            return NEW_CONTAINER
        if len(new) != 1:
            raise DeployFailed(f"expected one new {target.service} container, found {len(new)}")
        return new[0]

    def point(self, switches: list[Switch], at: str) -> None:
        """nginx's answer for each service: its old containers, its new one, or Docker's (at="docker")."""
        for sw in switches:
            addresses = {"old": sw.old_addresses, "new": [sw.new_address], "docker": None}[at]
            nginx.override_dns(self.session, self.stack, sw.target.service, addresses)

    def failure(self, sw: Switch, why: str) -> DeployFailed:
        details = self.inspect(sw.new) if sw.new else {}
        logs = self.session.query(logs_argv(sw.new)).output if sw.new else ""
        return DeployFailed("\n".join([
            f"the new container {inspect.name(details)} {why}",
            "its last healthchecks:", *("  " + line for line in inspect.health_output(details.get("State", {})) or ["  none ran"]),
            "its log:", *("  " + line for line in log_excerpt(logs)),
        ]))

    def wait_ready(self, switches: list[Switch]) -> None:
        """Until every new container answers its health route (2xx/3xx) from nginx's
        side; a container that exits or that Docker finds unhealthy fails at once."""
        urls = [f"http://{sw.new_address}:{sw.port}{sw.health}" for sw in switches]
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            probe = self.session.act(nginx.ready_argv(self.stack, max(1, min(PROBE_ROUND_SECONDS, round(left))), urls),
                                     timeout=PROBE_ROUND_SECONDS + 30)
            if probe.ok:  # (a dry run prints the probe)
                return
            for sw in switches:
                status = inspect.health_of(self.inspect(sw.new)["State"])
                if status in ("unhealthy", "exited"):
                    raise self.failure(sw, f"is {status}")
            if time.monotonic() >= deadline:
                pending = {line.split()[0]: line.split()[-1] for line in probe.out.splitlines() if line.strip()}
                late, url = next(((sw, url) for sw, url in zip(switches, urls, strict=True) if url in pending),
                                 (switches[0], urls[0]))
                answer = pending.get(url, "none")
                raise self.failure(late, f"did not answer {late.health} with 2xx or 3xx within {self.timeout:.0f} s "
                                         f"(its last answer: {'no connection' if answer == '000' else answer})")

    def retire(self, switches: list[Switch]) -> None:
        """Once nginx has followed the switch: drain the old containers, stop and remove them."""
        targets = [(address, sw.port) for sw in switches for address in sw.old_addresses]
        drained = self.session.act(nginx.drained_argv(self.stack, round(self.drain), targets, after=FOLLOW_SECONDS),
                                   timeout=self.drain + 60)
        if not drained.ok:
            self.say(f"connections still open to the old containers after {self.drain:.0f} s; stopping them all the same")
        for sw in switches:
            for container in sw.old:
                self.session.act(stop_argv(container), timeout=STOP_GRACE_SECONDS + 60)
                self.session.act(remove_argv(container), timeout=120)

    def prepare(self, targets: list[Target]) -> list[Switch]:
        """Steps 1 and 2: nothing serves differently yet."""
        services = self.stack.manifest.apps[targets[0].app].services()
        switches = [Switch(t, services[t.role].port, services[t.role].health, current_tag(self.root, t)) for t in targets]
        for sw in switches:
            self.say(f"{sw.target.service}: {sw.from_tag} -> {sw.target.tag}")
        shown = ", ".join(f"{t.service}:{t.tag}" for t in targets)
        self.act(pull_argv(self.stack, targets), 1800, f"pulling {shown}")
        for t in targets:
            release = services[t.role].release
            if release and self.releases:
                self.say(f"{t.service}: release command {' '.join(release)}")
                result = self.session.act(release_argv(self.stack, t, release), timeout=RELEASE_TIMEOUT_SECONDS)
                if not result.ok:
                    raise DeployFailed(f"the release command failed (exit {result.code}); nothing was switched:\n{result.output[-3000:]}")
        for sw in switches:
            sw.old = self.containers(sw.target)
            if not sw.old:
                raise DeployFailed(f"{sw.target.service} is not running; start the stack with plano prod up first")
            sw.old_addresses = [self.address(sw.target, c) for c in sw.old]
        return switches

    def switch(self, switches: list[Switch]) -> None:
        """Steps 3 to 7: the old containers serve until every new one answers."""
        self.point(switches, "old")
        try:
            self.act(scale_up_argv(self.stack, [sw.target for sw in switches], [len(sw.old) for sw in switches]), 600,
                     f"starting new {', '.join(sw.target.service for sw in switches)}")
            for sw in switches:
                sw.new = self.new_container(sw.target, sw.old)
                sw.new_address = self.address(sw.target, sw.new)
            self.say(f"waiting for {', '.join(f'{sw.target.service} {sw.health}' for sw in switches)} to answer (up to {self.timeout:.0f} s)")
            self.wait_ready(switches)
            self.point(switches, "new")
        except BaseException:
            for sw in switches:
                if sw.new:
                    self.session.act(remove_argv(sw.new), timeout=120)
            self.point(switches, "docker")
            raise
        self.say("nginx sends new requests to the new containers; draining the old ones")
        try:
            self.retire(switches)
        finally:
            self.point(switches, "docker")  # only the new containers are left

    def deploy(self, targets: list[Target], action: str = "deploy") -> list[Record]:
        lock = nullcontext() if self.session.dry_run else deploy_lock(self.root, targets[0].app, self.session.command)
        with lock:
            switches: list[Switch] = []
            try:
                switches = self.prepare(targets)
                self.switch(switches)
            except PlanoError as exc:
                why = f"failed: {str(exc).splitlines()[0]}"
                for t in targets:
                    self.record(Record(now(), who(), t.app, t.service, current_tag(self.root, t), t.tag, action, why))
                raise
            write_tags(self.session, [sw.target for sw in switches])
            records = [Record(now(), who(), sw.target.app, sw.target.service, sw.from_tag, sw.target.tag, action, "ok")
                       for sw in switches]
            for record in records:
                self.record(record)
        return records

    def record(self, record: Record) -> None:
        log_record(self.session, record)


# ---------------------------------------------------------------- on a swarm (target: swarm)


def swarm_image_argv(stack: str, service: str, image: str) -> list[str]:
    """Swarm's own rolling update of one service to `image` (the stack's update_config:
    start-first, one task at a time, rolled back when a new task is not healthy)."""
    return ["docker", "service", "update", "--detach", "--with-registry-auth", "--image", image, f"{stack}_{service}"]


class SwarmDeployer(Deployer):
    """`plano deploy|rollback` on a swarm: the deploy log, the lock and .env.prod as on
    one server (Deployer.deploy); a release command runs first, as a one-off job in the
    new image (ops/job.py); the switch is Swarm's rolling update of each service, one
    after the other, waited for until it completed or Swarm rolled it back."""

    def prepare(self, targets: list[Target]) -> list[Switch]:
        swarm.require_manager(self.session)
        services = self.stack.manifest.apps[targets[0].app].services()
        switches = []
        for t in targets:
            svc = services[t.role]
            switches.append(Switch(t, svc.port, svc.health, current_tag(self.root, t)))
            self.say(f"{t.service}: {switches[-1].from_tag} -> {t.tag}")
        for t in targets:
            release = services[t.role].release
            if release and self.releases:
                self.release(t, list(release))
        return switches

    def image(self, target: Target) -> str:
        """The registry image a target deploys: the release job runs it, then the update."""
        return f"{n.prod_image(self.stack.manifest, target.app, target.role)}:{target.tag}"

    def release(self, target: Target, command: list[str]) -> None:
        """The release command as a one-off job in the new image, on an apps node, with
        the service's networks, mounts and environment; no task has changed yet."""
        image = self.image(target)
        self.say(f"{target.service}: release command {' '.join(command)} (a job in {target.tag})")
        try:
            done = job.run(self.session, job.Job(target.service, image, command, f"the release command of {target.service}",
                                                 timeout=RELEASE_TIMEOUT_SECONDS))
        except job.JobFailed as exc:
            raise DeployFailed(f"{exc}; no task was updated") from None
        if self.session.dry_run:
            return
        self.say(f"{target.service}: release command done in {done.seconds:.1f} s on {done.node}"
                 + (f":\n{(done.out + done.err).rstrip()}" if (done.out + done.err).strip() else ""))

    def switch(self, switches: list[Switch]) -> None:
        stack = self.stack.manifest.name
        for s in switches:
            image = self.image(s.target)
            started = self.session.act(swarm_image_argv(stack, s.target.service, image), timeout=120)
            if not started.ok:
                raise DeployFailed(f"docker service update of {s.target.service} failed: {started.last_line}")
            self.say(f"{s.target.service}: Swarm rolls its tasks over to {s.target.tag}, one at a time")
            if not self.session.dry_run:
                self.wait_updated(s.target.service)
                self.spread(s.target.service)

    def spread(self, service: str) -> None:
        swarm_ops.spread(self.session, service, self.timeout)

    def wait_updated(self, service: str) -> None:
        deadline = time.monotonic() + self.timeout + SWARM_MONITOR_SECONDS * 2
        while True:
            found = {s.name: s for s in swarm.stack_services(self.session)}.get(service)
            if found is None:
                raise DeployFailed(f"{service} is not in the stack; run plano swarm up first")
            if found.update == "completed" or (found.update == "" and found.converged):
                return
            if found.update.startswith("rollback") or found.update == "paused":
                why = swarm.task_errors(self.session, [service]).get(service, "")
                raise DeployFailed(f"Swarm rolled {service} back: {found.message}" + (f" (its task: {why})" if why else ""))
            if time.monotonic() > deadline:
                raise DeployFailed(f"the update of {service} did not complete within {self.timeout:.0f} s (its state: "
                                   f"{found.update or 'none'}); plano swarm ps shows the tasks")
            self.session.pause(SWARM_POLL_SECONDS)


# ---------------------------------------------------------------- the operations


def deployer(session: Session, timeout: float, drain: float = DRAIN_TIMEOUT_SECONDS) -> Deployer:
    """The deploy of the manifest's target: compose's DNS switch, or Swarm's rolling update."""
    session = session.with_mode(Mode.PROD)
    st = open_stack(session)
    require_engine(session.runner)
    if st.manifest.target == "swarm":
        return SwarmDeployer(session, st, timeout=timeout, drain=drain)
    return Deployer(session, st, timeout=timeout, drain=drain)


def deploy(session: Session, app: str, role: str | None, tag: str, timeout: float = 180,
           drain: float = DRAIN_TIMEOUT_SECONDS) -> list[Record]:
    """`plano deploy`: APP's services (or one) to TAG, with no failed request."""
    d = deployer(session, timeout, drain)
    return d.deploy(targets(d.stack, app, role, tag))


def rollback(session: Session, app: str, role: str | None, timeout: float = 180,
             drain: float = DRAIN_TIMEOUT_SECONDS) -> list[Record]:
    """The tag that ran before the current one (from the deploy log), the same way."""
    d = deployer(session, timeout, drain)
    records = read_log(d.root)
    chosen = []
    for target in targets(d.stack, app, role, "latest"):
        current = current_tag(d.root, target)
        previous = previous_tag(records, target.service, current)
        if previous is None:
            if role:
                raise RefusedError(f"{target.service}: no deploy to {current} in {n.DEPLOY_LOG}; nothing to roll back to")
            continue
        chosen.append(Target(target.app, target.role, previous))
    if not chosen:
        raise RefusedError(f"{app}: no deploy in {n.DEPLOY_LOG} led to the tags running now; nothing to roll back to")
    return d.deploy(chosen, action="rollback")


def releases(session: Session, app: str | None) -> list[Record]:
    return [r for r in read_log(session.root) if app is None or r.app == app]
