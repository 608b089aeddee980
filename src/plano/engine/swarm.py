"""The swarm target's engine: argv builders for `docker swarm|node|stack|service|secret`
(pure, `list[str]`) and the parsing of what they print. The Docker CLI talks to the
engine of DOCKER_HOST (or the local one), which must be a manager of the swarm.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets as secret_values
from plano.core.errors import EnvironmentProblem, PlanoError
from plano.core.manifest import Manifest
from plano.core.session import Session
from plano.engine.stack import require_engine

# `docker ... --format '{{json .}}'`: one JSON object per line.
JSON_LINES = "{{json .}}"


def info_argv() -> list[str]:
    """The engine's swarm state: LocalNodeState, NodeID, ControlAvailable (a manager)."""
    return ["docker", "info", "--format", "{{json .Swarm}}"]


def init_argv(advertise: str | None = None) -> list[str]:
    return ["docker", "swarm", "init", *(["--advertise-addr", advertise] if advertise else [])]


def join_token_argv(role: str) -> list[str]:
    """Prints the `docker swarm join ...` command for a new worker or manager."""
    return ["docker", "swarm", "join-token", role]


def nodes_argv() -> list[str]:
    return ["docker", "node", "ls", "--format", JSON_LINES]


def node_inspect_argv(*nodes: str) -> list[str]:
    return ["docker", "node", "inspect", *nodes]


def label_argv(node: str, role: str, add: bool = True) -> list[str]:
    label = n.swarm_label(role)
    return ["docker", "node", "update", *(["--label-add", f"{label}=true"] if add else ["--label-rm", label]), node]


def deploy_argv(stack: str) -> list[str]:
    """Deploy (or update) the stack from the infra's docker-stack.yml. `--prune` removes
    the services of an app taken out of plano.yml; it removes no volume and no data."""
    return ["docker", "stack", "deploy", "--with-registry-auth", "--prune", "-c", n.STACK_FILE, stack]


def services_argv(stack: str) -> list[str]:
    return ["docker", "service", "ls", "--filter", f"label=com.docker.stack.namespace={stack}", "--format", JSON_LINES]


def service_inspect_argv(*services: str) -> list[str]:
    return ["docker", "service", "inspect", *services]


def tasks_argv(stack: str) -> list[str]:
    return ["docker", "stack", "ps", stack, "--no-trunc", "--format", JSON_LINES]


def tasks_table_argv(stack: str) -> list[str]:
    """The same, as a table for people: errors in full."""
    return ["docker", "stack", "ps", stack, "--no-trunc", "--format", "table {{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Error}}"]


def logs_argv(stack: str, service: str, tail: str, follow: bool) -> list[str]:
    return ["docker", "service", "logs", "--timestamps", "--tail", tail, *(["--follow"] if follow else []),
            f"{stack}_{service}"]


def remove_argv(stack: str) -> list[str]:
    """Removes the stack's services, networks and secrets; never a volume or a bind-mounted folder."""
    return ["docker", "stack", "rm", stack]


def networks_argv(stack: str) -> list[str]:
    return ["docker", "network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}"]


def secrets_argv(prefix: str) -> list[str]:
    return ["docker", "secret", "ls", "--filter", f"name={prefix}", "--format", "{{.Name}}"]


def secret_rm_argv(*names: str) -> list[str]:
    return ["docker", "secret", "rm", *names]


def job_argv(name: str, image: str, script: str, mounts: list[str]) -> list[str]:
    """A one-off task on every node (a global job, Docker >= 20.10): plano's way to
    prepare the nodes it has no shell on (data/ folders before a deploy)."""
    return ["docker", "service", "create", "--name", name, "--mode", "global-job", "--restart-condition", "none",
            "--user", "0", *(f"--mount={m}" for m in mounts), "--detach", "--quiet", image, "sh", "-euc", script]


def job_tasks_argv(name: str) -> list[str]:
    return ["docker", "service", "ps", name, "--no-trunc", "--format", JSON_LINES]


def service_tasks_argv(stack: str, service: str) -> list[str]:
    """The tasks of one service that Swarm wants running, with their nodes."""
    return ["docker", "service", "ps", f"{stack}_{service}", "--filter", "desired-state=running", "--no-trunc",
            "--format", JSON_LINES]


def scale_argv(stack: str, service: str, replicas: int) -> list[str]:
    return ["docker", "service", "scale", "--detach", f"{stack}_{service}={replicas}"]


def service_rm_argv(*names: str) -> list[str]:
    return ["docker", "service", "rm", *names]


def local_task_argv(stack: str, service: str) -> list[str]:
    """The container of `service`'s task running on this node (its engine), if any."""
    return ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={stack}_{service}", "--filter", "status=running"]


def task_exec_argv(container: str, command: list[str], env: tuple[str, ...] = ()) -> list[str]:
    """A command in a running task's container (stdin open, no TTY)."""
    return ["docker", "exec", "-i", *[item for pair in (("-e", e) for e in env) for item in pair], container, *command]


def job_deploy_argv(stack: str) -> list[str]:
    """A one-off job's stack file (on stdin) into the stack: it adds that one service
    and changes no other (no --prune); relative paths are the infra's (plano's cwd)."""
    return ["docker", "stack", "deploy", "--with-registry-auth", "-c", "-", stack]


def job_logs_argv(service: str) -> list[str]:
    """A finished job's output: its stdout on stdout, its stderr on stderr, unprefixed."""
    return ["docker", "service", "logs", "--raw", "--no-trunc", service]


def service_image_argv(service: str) -> list[str]:
    return ["docker", "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", service]


# ---------------------------------------------------------------- what they print


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    status: str  # Ready, Down, Unknown
    availability: str  # Active, Pause, Drain
    manager: str  # Leader, Reachable, Unreachable, "" for a worker
    roles: tuple[str, ...] = ()
    address: str = ""

    @property
    def usable(self) -> bool:
        return self.status == "Ready" and self.availability == "Active"


def nodes(listed: str, inspected: str) -> list[Node]:
    """`docker node ls` lines and `docker node inspect` of the same nodes: their plano roles."""
    details = {d["ID"]: d for d in json.loads(inspected or "[]")}
    found = []
    for row in json_lines(listed):
        spec = details.get(row["ID"], {})
        labels = (spec.get("Spec") or {}).get("Labels") or {}
        roles = tuple(role for role in n.SWARM_ROLES if labels.get(n.swarm_label(role)) == "true")
        found.append(Node(row["ID"], row["Hostname"], row["Status"], row["Availability"], row.get("ManagerStatus", ""),
                          roles, (spec.get("Status") or {}).get("Addr", "")))
    return found


@dataclass(frozen=True)
class Service:
    name: str  # without the stack's prefix: nginx, app1-backend
    image: str
    running: int
    desired: int
    update: str = ""  # "", updating, completed, paused, rollback_started, rollback_completed, rollback_paused
    message: str = ""
    ports: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.running == self.desired and self.update not in ("updating", "rollback_started", "paused", "rollback_paused")


def replicas(text: str) -> tuple[int, int]:
    """`docker service ls`'s REPLICAS ("2/2", "0/1 (max 1 per node)", "1/1 (1/1 completed)")."""
    running, _, desired = text.split()[0].partition("/")
    return int(running), int(desired)


def services(stack: str, listed: str, inspected: str) -> list[Service]:
    """`docker service ls` lines and `docker service inspect` of them: each service's
    replicas and the state of its last update (a rollback shows here)."""
    status = {d["Spec"]["Name"]: d.get("UpdateStatus") or {} for d in json.loads(inspected or "[]")}
    found = []
    for row in json_lines(listed):
        running, desired = replicas(row["Replicas"])
        update = status.get(row["Name"], {})
        found.append(Service(row["Name"].removeprefix(f"{stack}_"), row["Image"].split("@", 1)[0], running, desired,
                             update.get("State", ""), update.get("Message", ""),
                             [p for p in row.get("Ports", "").split(", ") if p]))
    return sorted(found, key=lambda s: s.name)


@dataclass(frozen=True)
class JobState:
    """A job's task, from `docker service ps`: New, Pending, Assigned, Preparing,
    Starting, Running, then Complete, Failed or Rejected."""

    state: str
    node: str = ""
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("Complete", "Failed", "Rejected", "Shutdown", "Orphaned", "Remove")

    @property
    def code(self) -> int:
        """Its exit code: 0 when Complete, else the task's `non-zero exit (N)`, else 1."""
        if self.state == "Complete":
            return 0
        found = re.search(r"non-zero exit \((\d+)\)", self.error)
        return int(found.group(1)) if found else 1


def job_state(listed: str) -> JobState:
    """The newest task of a job (`docker service ps` lists it first); none yet: New."""
    rows = json_lines(listed)
    if not rows:
        return JobState("New")
    row = rows[0]
    return JobState((row.get("CurrentState") or "Pending").split()[0], row.get("Node", ""), row.get("Error", "").strip('"'))


def missing_roles(nodes: list[Node]) -> list[str]:
    """The roles (edge, data, apps) that no ready node holds: their services cannot run."""
    return [role for role in n.SWARM_ROLES if not any(role in node.roles and node.usable for node in nodes)]


def running_on(listed: str) -> list[str]:
    """`docker service ps` lines: the node of each task that runs (healthy) now."""
    return [row["Node"] for row in json_lines(listed) if row.get("CurrentState", "").startswith("Running")]


def crowded(task_nodes: list[str], apps_nodes: list[str]) -> bool:
    """A service's tasks not spread over the usable apps nodes: one of them holds two
    more than another (both replicas on one node of two: that node's failure stops the
    service until Swarm starts its tasks elsewhere)."""
    counts = [task_nodes.count(node) for node in apps_nodes]
    return bool(counts) and max(counts) - min(counts) > 1


# ---------------------------------------------------------------- queries (a session's engine)


def read_nodes(session: Session) -> list[Node]:
    """The nodes and their roles (the engine is known to be a manager)."""
    listed = session.query(nodes_argv(), timeout=30)
    ids = [row["ID"] for row in json_lines(listed.out)]
    inspected = session.query(node_inspect_argv(*ids), timeout=30).out if ids else "[]"
    return nodes(listed.out, inspected)


def swarm_info(session: Session) -> dict:
    got = session.query(info_argv(), timeout=30)
    if not got.ok:
        require_engine(session.runner)
        raise EnvironmentProblem(f"docker info failed: {got.last_line}")
    return json.loads(got.out or "{}")


def require_manager(session: Session) -> dict:
    info = swarm_info(session)
    if info.get("LocalNodeState") != "active":
        raise PlanoError("this Docker engine is in no swarm: run plano swarm init on the first server "
                         "(or set DOCKER_HOST to a manager of the swarm)")
    if not info.get("ControlAvailable"):
        raise PlanoError("this Docker engine is a swarm worker: run plano on a manager (docker node ls shows them)")
    return info


def local_task(session: Session, service: str, why: str) -> str:
    """The container of `service`'s running task on this node: the edge node's nginx and
    certbot are where plano runs (plano swarm up checks it)."""
    found = session.query(local_task_argv(session.manifest.name, service), timeout=30).out.split()
    if not found:
        raise PlanoError(f"no {service} task runs on this node ({why}): run plano on the edge node, "
                         "where plano swarm up placed it (plano swarm ps shows where it runs)")
    return found[0]


def stack_services(session: Session) -> list[Service]:
    stack = session.manifest.name
    listed = session.query(services_argv(stack), timeout=30)
    names = [row["Name"] for row in json_lines(listed.out)]
    inspected = session.query(service_inspect_argv(*names), timeout=30).out if names else "[]"
    return services(stack, listed.out, inspected)


def task_errors(session: Session, services: list[str]) -> dict[str, str]:
    """The newest task error (or state) of each of `services`, from `docker stack ps`."""
    stack = session.manifest.name
    found: dict[str, str] = {}
    for row in json_lines(session.query(tasks_argv(stack), timeout=60).out):
        name = row.get("Name", "").split(".")[0].removeprefix(f"{stack}_")
        if name in services and name not in found and (row.get("Error") or row.get("CurrentState")):
            found[name] = row.get("Error") or row.get("CurrentState", "")
    return found


# ---------------------------------------------------------------- what docker-stack.yml reads


def secret_versions(root: Path, manifest: Manifest) -> dict[str, str]:
    """PLANO_SECRET_<SERVICE>_<KEY> -> the hash of that secret file's content."""
    versions = {}
    for service, wanted in n.infra_secrets(manifest).items():
        for var in wanted:
            path = root / n.secret_file("prod", service, var)
            if not path.is_file():
                raise PlanoError(f"{n.secret_file('prod', service, var)}: missing; run plano render (it writes the secret files)")
            versions[n.swarm_secret_var(service, var)] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return versions


def deploy_env(root: Path, manifest: Manifest, tags: dict[str, str]) -> dict[str, str]:
    """What docker-stack.yml's ${VARIABLES} read: .env.prod, the image tags, the secret versions."""
    values = {**secret_values.read_env(root / n.ENV_BASE), **secret_values.read_env(root / n.ENV_PROD)}
    return {**values, **{n.swarm_image_var(name): tag for name, tag in tags.items()}, **secret_versions(root, manifest)}
