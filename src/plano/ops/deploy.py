"""Zero-downtime deploys of one app service, with automatic rollback.

The steps (`Deployer.deploy_one`), each an argv run through the Session:
  1. pull the new image (the tag reaches compose through the environment, which
     takes precedence over the env files, so nothing is written yet);
  2. run the service's release command, if any, in a one-off container of it;
  3. pin nginx's upstream for the service to the old containers, by address;
  4. start a second container next to the old one (`up --scale 2 --no-recreate`);
  5. wait, within a bound, for its healthcheck;
  6. pin the upstream to the new container only and reload gracefully: new requests
     go to it, old workers finish what they hold;
  7. let the old container drain, then stop it (SIGTERM, grace period) and remove it;
  8. once nginx's answer for the service name no longer holds the removed container
     (the resolver's `valid`), put the upstream back to the service name (now only the
     new container) and reload;
  9. record the tag in .env.prod and append a line to data/logs/deploys.jsonl.
A new container that is not healthy in time is removed; the env file was not
touched, the upstream is put back, and the old container never stopped serving.
Every deploy, failed or not, leaves a line in the deploy log.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from plano.core import fields
from plano.core import naming as n
from plano.core import secrets
from plano.core.errors import PlanoError, RefusedError
from plano.core.manifest import require_app, require_role
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine import inspect, nginx
from plano.engine.stack import Stack, open_stack, require_engine

DRAIN_SECONDS = 3.0
STOP_GRACE_SECONDS = 30
# After a container is removed, how long until nginx's kept answer for the service
# name (the `down` server of pin_lines) cannot hold it any more: the resolver's
# `valid`, and a margin for the re-resolution itself.
SETTLE_SECONDS = n.RESOLVER_VALID_SECONDS + 1.5
# What a dry run calls the container that step 4 would start.
NEW_CONTAINER = "<new container>"


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


def with_tag(stack: Stack, target: Target, *args: str) -> list[str]:
    """compose with the new tag in its environment (it wins over the env files)."""
    return ["env", f"{target.variable}={target.tag}", *stack.argv(*args)]


def pull_argv(stack: Stack, target: Target) -> list[str]:
    return with_tag(stack, target, "pull", "--quiet", target.service)


def release_argv(stack: Stack, target: Target, command: list[str]) -> list[str]:
    return with_tag(stack, target, "run", "--rm", "--no-deps", "-T", target.service, *command)


def scale_up_argv(stack: Stack, target: Target) -> list[str]:
    return with_tag(stack, target, "up", "-d", "--no-deps", "--no-recreate", "--scale", f"{target.service}=2", target.service)


def logs_argv(container: str, lines: int = 30) -> list[str]:
    return ["docker", "logs", "--tail", str(lines), container]


def stop_argv(container: str) -> list[str]:
    return ["docker", "stop", "--time", str(STOP_GRACE_SECONDS), container]


def remove_argv(container: str) -> list[str]:
    return ["docker", "rm", "--force", container]


# ---------------------------------------------------------------- the deploy log and the lock


def read_log(root: Path) -> list[Record]:
    try:
        lines = (root / n.DEPLOY_LOG).read_text().splitlines()
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


def append_log(root: Path, record: Record) -> None:
    path = root / n.DEPLOY_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:  # one short line per write: appends do not interleave
        handle.write(json.dumps(asdict(record)) + "\n")


def who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@contextmanager
def deploy_lock(root: Path, app: str) -> Iterator[None]:
    path = root / n.deploy_lock(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RefusedError(f"a deploy of {app} is already running ({holder}); wait for it to end, then run again") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} by {who()} since {dt.datetime.now(dt.UTC):%H:%M:%S} UTC")
        handle.flush()
        yield
    finally:
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def current_tag(root: Path, target: Target) -> str:
    return secrets.read_env(root / n.ENV_PROD).get(target.variable) or "latest"


# ---------------------------------------------------------------- running it


@dataclass
class Deployer:
    session: Session
    stack: Stack
    timeout: float = 180
    drain: float = DRAIN_SECONDS
    settle: float = SETTLE_SECONDS
    removed_at: float | None = None
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

    def addresses(self, target: Target, containers: list[str]) -> list[str]:
        """The containers' addresses on the app's network, the one nginx shares with them."""
        network = n.engine_network(self.stack.ctx.project, target.app)
        found = []
        for container in containers:
            if container == NEW_CONTAINER:
                found.append("<its address>")
                continue
            try:
                found.append(inspect.network_address(self.inspect(container), network))
            except PlanoError as exc:
                raise DeployFailed(str(exc)) from None
        return found

    def new_container(self, target: Target, old: list[str]) -> str:
        new = [c for c in self.containers(target) if c not in old]
        if not new and self.session.dry_run:
            return NEW_CONTAINER
        if len(new) != 1:
            raise DeployFailed(f"expected one new {target.service} container, found {len(new)}")
        return new[0]

    def wait_healthy(self, container: str) -> None:
        if container == NEW_CONTAINER:
            return
        deadline = time.monotonic() + self.timeout
        while True:
            details = self.inspect(container)
            status = inspect.health_of(details["State"])
            if status in ("healthy", "running"):
                return
            if status in ("unhealthy", "exited") or time.monotonic() > deadline:
                logs = self.session.query(logs_argv(container)).output
                raise DeployFailed("\n".join([
                    f"the new container {inspect.name(details)} is {status}"
                    + (f" after {self.timeout:.0f} s" if status == "starting" else ""),
                    "its last healthchecks:", *("  " + line for line in inspect.health_output(details["State"]) or ["  none ran"]),
                    "its last log lines:", *("  " + line for line in logs.splitlines()[-30:] or ["(none)"]),
                ]))
            self.session.sleep(1)

    def remove(self, container: str) -> None:
        self.session.act(remove_argv(container), timeout=120)
        self.removed_at = time.monotonic()

    def pin(self, target: Target, content: str | None) -> None:
        """Point the service's upstream at some containers (content), or back to the rendered default (None)."""
        nginx.write_upstream(self.session, self.stack, n.upstream(target.app, target.role), content)
        nginx.reload(self.session, self.stack)

    def unpin(self, target: Target) -> None:
        """Back to the rendered file, the service's name. nginx's new workers start with
        the addresses it kept for that name while pinned: first let that answer lose the
        containers just removed, or requests would go to an address nobody holds.
        When nginx refuses the configuration, the rendered file is put back all the same."""
        if self.removed_at is not None:
            self.session.pause(max(0.0, self.removed_at + self.settle - time.monotonic()))
        try:
            self.pin(target, None)
        except nginx.NginxError:
            nginx.write_upstream(self.session, self.stack, n.upstream(target.app, target.role), None)
            raise

    def switch(self, target: Target, port: int, old: list[str]) -> None:
        """Steps 3 to 7: the old containers keep serving until the new one is healthy."""
        self.pin(target, nginx.pin_lines(self.addresses(target, old), port, target.service))
        self.act(scale_up_argv(self.stack, target), 600, f"starting a new {target.service}")
        new = self.new_container(target, old)
        try:
            self.say(f"{target.service}: waiting for the new container's healthcheck (up to {self.timeout:.0f} s)")
            self.wait_healthy(new)
            self.pin(target, nginx.pin_lines(self.addresses(target, [new]), port, target.service))
        except BaseException:
            self.remove(new)
            raise
        self.say(f"{target.service}: nginx sends new requests to the new container; draining the old one")
        self.session.pause(self.drain)
        for container in old:
            self.session.act(stop_argv(container), timeout=STOP_GRACE_SECONDS + 60)
            self.remove(container)

    def deploy_one(self, target: Target, action: str = "deploy") -> Record:
        service = self.stack.manifest.apps[target.app].services()[target.role]
        from_tag = current_tag(self.root, target)
        self.say(f"{target.service}: {from_tag} -> {target.tag}")
        self.act(pull_argv(self.stack, target), 1800, f"pulling {target.service}:{target.tag}")
        if service.release and self.releases:
            self.say(f"{target.service}: release command {' '.join(service.release)}")
            result = self.session.act(release_argv(self.stack, target, service.release), timeout=1800)
            if not result.ok:
                raise DeployFailed(f"the release command failed (exit {result.code}); nothing was switched:\n{result.output[-3000:]}")
        old = self.containers(target)
        if not old:
            raise DeployFailed(f"{target.service} is not running; start the stack with plano prod up first")
        try:
            self.switch(target, service.port, old)
        finally:
            self.unpin(target)  # the service name: the containers that are left
        env_path = self.root / n.ENV_PROD
        self.session.write(env_path, secrets.set_env_value(env_path.read_text(), target.variable, target.tag), 0o600)
        return Record(now(), who(), target.app, target.service, from_tag, target.tag, action, "ok")

    def record(self, record: Record) -> None:
        if self.session.dry_run:
            self.session.out.planned(f"# append to {n.DEPLOY_LOG}: {record.service} {record.from_tag} -> {record.to_tag}")
            return
        append_log(self.root, record)

    def deploy(self, targets: list[Target], action: str = "deploy") -> list[Record]:
        records = []
        lock = nullcontext() if self.session.dry_run else deploy_lock(self.root, targets[0].app)
        with lock:
            for target in targets:
                try:
                    record = self.deploy_one(target, action)
                except PlanoError as exc:
                    self.record(Record(now(), who(), target.app, target.service, current_tag(self.root, target),
                                       target.tag, action, f"failed: {str(exc).splitlines()[0]}"))
                    if isinstance(exc, nginx.NginxError):
                        raise DeployFailed(f"{target.service}: {exc}; the old version keeps serving") from None
                    raise
                self.record(record)
                records.append(record)
        return records


# ---------------------------------------------------------------- the operations


def deployer(session: Session, timeout: float) -> Deployer:
    session = session.with_mode(Mode.PROD)
    st = open_stack(session)
    require_engine(session.runner)
    return Deployer(session, st, timeout=timeout)


def deploy(session: Session, app: str, role: str | None, tag: str, timeout: float = 180) -> list[Record]:
    """`plano deploy`: APP's services (or one) to TAG, with no failed request."""
    d = deployer(session, timeout)
    return d.deploy(targets(d.stack, app, role, tag))


def rollback(session: Session, app: str, role: str | None, timeout: float = 180) -> list[Record]:
    """The tag that ran before the current one (from the deploy log), the same way."""
    d = deployer(session, timeout)
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
