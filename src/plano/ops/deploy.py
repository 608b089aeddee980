"""Zero-downtime deploys of one app service, with automatic rollback.

The steps (`deploy()`), each a pure argv run by the one Runner:
  1. pull the new image (the tag reaches compose through the environment, which
     takes precedence over the env files, so nothing is written yet);
  2. run the service's release command, if any, in a one-off container of it;
  3. start a second container next to the old one (`up --scale 2 --no-recreate`);
  4. wait, within a bound, for its healthcheck;
  5. point nginx's upstream for the service at the new container only and reload
     gracefully: new requests go to it, old workers finish what they hold;
  6. let the old container drain, then stop it (SIGTERM, grace period) and remove it;
  7. once nginx's answer for the service name no longer holds the removed container
     (the resolver's `valid`), put the upstream back to the service name (now only the
     new container) and reload;
  8. record the tag in .env.prod and append a line to data/logs/deploys.jsonl.
A new container that is not healthy in time is removed; nginx and the env file
were not touched, and the old container never stopped serving.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import PlanoError, RefusedError, UsageError
from plano.core.files import write_atomic
from plano.core.manifest import require_app, require_role
from plano.core.runner import Runner
from plano.engine.stack import Stack
from plano.ops.certs import reload_nginx

LOG = "logs/deploys.jsonl"  # under data/
DRAIN_SECONDS = 3.0
STOP_GRACE_SECONDS = 30
# After a container is removed, how long until nginx's kept answer for the service
# name (the `down` server of pin_lines) cannot hold it any more: the resolver's
# `valid`, and a margin for the re-resolution itself.
SETTLE_SECONDS = n.RESOLVER_VALID_SECONDS + 1.5


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


def targets(stack: Stack, app: str, role: str | None, tag: str) -> list[Target]:
    services = require_app(stack.manifest, app).services()
    if role is not None:
        require_role(stack.manifest, app, role)
    if not tag or any(c in tag for c in " /:@") or len(tag) > 128:
        raise UsageError(f"--tag {tag!r}: not an image tag; give e.g. 1.2.3 or a commit SHA")
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


def containers_argv(stack: Stack, target: Target) -> list[str]:
    return ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={stack.ctx.project}",
            "--filter", f"label=com.docker.compose.service={target.service}"]


def inspect_argv(container: str) -> list[str]:
    return ["docker", "inspect", "--format", "{{json .}}", container]


def logs_argv(container: str, lines: int = 30) -> list[str]:
    return ["docker", "logs", "--tail", str(lines), container]


def stop_argv(container: str) -> list[str]:
    return ["docker", "stop", "--time", str(STOP_GRACE_SECONDS), container]


def remove_argv(container: str) -> list[str]:
    return ["docker", "rm", "--force", container]


def pin_lines(addresses: list[str], port: int, service: str) -> str:
    """The upstream's servers while a deploy holds it: the containers by address, so
    that a new nginx worker has them from its first request (a name that the previous
    configuration did not hold leaves the upstream empty, "no live upstreams" and a
    502, until the worker has resolved it); and the service's own name, down, so that
    nginx keeps it resolved and the rendered file, put back, starts with its addresses."""
    servers = "".join(f"server {address}:{port};\n" for address in addresses)
    return (f"# plano deploy: these containers only, until the deploy ends\n{servers}"
            f"server {service}:{port} resolve down;\n")


def network_address(details: dict, network: str) -> str:
    """A container's IPv4 address on one network, from its `docker inspect`."""
    address = (details["NetworkSettings"]["Networks"].get(network) or {}).get("IPAddress")
    if not address:
        raise DeployFailed(f"{details['Name'].lstrip('/')} has no address on the network {network}, which nginx uses")
    return address


# ---------------------------------------------------------------- health (pure reading of docker inspect)


def health_of(state: dict) -> str:
    """starting | healthy | unhealthy | exited | running (no healthcheck)."""
    if not state.get("Running"):
        return "exited"
    health = state.get("Health")
    return health["Status"] if health else "running"


def health_output(state: dict, last: int = 3) -> list[str]:
    entries = (state.get("Health") or {}).get("Log") or []
    return [f"exit {e.get('ExitCode')}: {' '.join(str(e.get('Output', '')).split())[:300]}" for e in entries[-last:]]


# ---------------------------------------------------------------- env file and audit log


def set_env_value(text: str, key: str, value: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split("=", 1)[0].strip() == key:
            lines[i] = f"{key}={value}"
            break
    else:
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def read_log(root: Path) -> list[Record]:
    path = root / n.data_root("prod") / LOG
    try:
        lines = path.read_text().splitlines()
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
    path = root / n.data_root("prod") / LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:  # one short line per write: appends do not interleave
        handle.write(json.dumps(asdict(record)) + "\n")


def who() -> str:
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    return user


# ---------------------------------------------------------------- the lock


@contextmanager
def deploy_lock(root: Path, app: str) -> Iterator[None]:
    path = root / n.data_root("prod") / "logs" / f".deploy-{app}.lock"
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


# ---------------------------------------------------------------- running it


@dataclass
class Deployer:
    stack: Stack
    runner: Runner
    say: Callable[[str], None]
    timeout: float = 180
    drain: float = DRAIN_SECONDS
    settle: float = SETTLE_SECONDS
    removed_at: float | None = None

    @property
    def root(self) -> Path:
        return self.stack.root

    def run(self, argv: list[str], timeout: float = 600, what: str = "") -> str:
        result = self.runner.run(argv, cwd=self.root, timeout=timeout)
        if not result.ok:
            raise DeployFailed(f"{what or argv[0]} failed: {result.output.splitlines()[-1] if result.output else result.code}")
        return result.out

    def containers(self, target: Target) -> list[str]:
        return self.run(containers_argv(self.stack, target), 60, "docker ps").split()

    def inspect(self, container: str) -> dict:
        return json.loads(self.run(inspect_argv(container), 60, "docker inspect"))

    def addresses(self, target: Target, containers: list[str]) -> list[str]:
        """The containers' addresses on the app's network, the one nginx shares with them."""
        network = n.engine_network(self.stack.ctx.project, target.app)
        return [network_address(self.inspect(c), network) for c in containers]

    def current_tag(self, target: Target) -> str:
        env = (self.root / n.ENV_PROD).read_text()
        for line in env.splitlines():
            if line.startswith(f"{target.variable}="):
                return line.split("=", 1)[1].strip()
        return "latest"

    def wait_healthy(self, container: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            details = self.inspect(container)
            status = health_of(details["State"])
            if status in ("healthy", "running"):
                return
            if status in ("unhealthy", "exited") or time.monotonic() > deadline:
                logs = self.runner.run(logs_argv(container), cwd=self.root, timeout=60).output
                report = "\n".join([
                    f"the new container {details['Name'].lstrip('/')} is {status}"
                    + (f" after {self.timeout:.0f} s" if status == "starting" else ""),
                    "its last healthchecks:", *("  " + line for line in health_output(details["State"]) or ["  none ran"]),
                    "its last log lines:", *("  " + line for line in logs.splitlines()[-30:] or ["(none)"]),
                ])
                raise DeployFailed(report)
            time.sleep(1)

    def remove(self, container: str) -> None:
        self.runner.run(remove_argv(container), cwd=self.root, timeout=120)
        self.removed_at = time.monotonic()

    def unpin(self, target: Target) -> None:
        """Back to the rendered file, the service's name. nginx's new workers start with
        the addresses it kept for that name while pinned: first let that answer lose the
        containers just removed, or requests would go to an address nobody holds."""
        if self.removed_at is not None:
            time.sleep(max(0.0, self.removed_at + self.settle - time.monotonic()))
        self.pin(target, None)

    def pin(self, target: Target, content: str | None) -> None:
        """Point the service's upstream at one container (content), or back to the rendered default (None)."""
        upstream = n.upstream(target.app, target.role)
        runtime = self.root / n.data_root("prod") / "nginx" / "upstreams" / f"{upstream}.conf"
        default = (self.root / n.upstream_file(upstream)).read_text()
        write_atomic(runtime, content if content is not None else default, 0o644)
        reload_nginx(self.stack, self.runner)

    def deploy_one(self, target: Target, action: str = "deploy") -> Record:
        app = self.stack.manifest.apps[target.app]
        service = app.services()[target.role]
        from_tag = self.current_tag(target)
        self.say(f"{target.service}: {from_tag} -> {target.tag}")
        self.run(pull_argv(self.stack, target), 1800, f"pulling {target.service}:{target.tag}")
        if service.release:
            self.say(f"{target.service}: release command {' '.join(service.release)}")
            result = self.runner.run(release_argv(self.stack, target, service.release), cwd=self.root, timeout=1800)
            if not result.ok:
                raise DeployFailed(f"the release command failed (exit {result.code}); nothing was switched:\n{result.output[-3000:]}")
        old = self.containers(target)
        if not old:
            raise DeployFailed(f"{target.service} is not running; start the stack with plano prod up first")
        # The new container joins the service's DNS name at once, healthy or not:
        # nginx is first pinned to the old containers (pin_lines).
        self.pin(target, pin_lines(self.addresses(target, old), service.port, target.service))
        try:
            self.run(scale_up_argv(self.stack, target), 600, f"starting a new {target.service}")
            new = [c for c in self.containers(target) if c not in old]
            if len(new) != 1:
                raise DeployFailed(f"expected one new {target.service} container, found {len(new)}")
            try:
                self.say(f"{target.service}: waiting for the new container's healthcheck (up to {self.timeout:.0f} s)")
                self.wait_healthy(new[0])
            except BaseException:
                self.remove(new[0])
                raise
            self.pin(target, pin_lines(self.addresses(target, new), service.port, target.service))
            self.say(f"{target.service}: nginx sends new requests to the new container; draining the old one")
            time.sleep(self.drain)
            for container in old:
                self.runner.run(stop_argv(container), cwd=self.root, timeout=STOP_GRACE_SECONDS + 60)
                self.remove(container)
        finally:
            self.unpin(target)  # the service name: the containers that are left
        env_path = self.root / n.ENV_PROD
        write_atomic(env_path, set_env_value(env_path.read_text(), target.variable, target.tag), 0o600)
        return Record(now(), who(), target.app, target.service, from_tag, target.tag, action, "ok")

    def deploy(self, targets: list[Target], action: str = "deploy") -> list[Record]:
        records = []
        with deploy_lock(self.root, targets[0].app):
            for target in targets:
                try:
                    record = self.deploy_one(target, action)
                except DeployFailed as exc:
                    append_log(self.root, Record(now(), who(), target.app, target.service, self.current_tag(target),
                                                 target.tag, action, f"failed: {str(exc).splitlines()[0]}"))
                    raise
                append_log(self.root, record)
                records.append(record)
        return records


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
