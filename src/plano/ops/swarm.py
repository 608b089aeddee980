"""The swarm target (`target: swarm`): `plano swarm init|join|label|nodes|up|status|ps|
logs|down`. plano runs on a manager of the swarm that is also its edge node (nginx
reads its configuration from this infra, as on one server), or with DOCKER_HOST
pointing at one whose filesystem holds this infra at the same path.

`up`, step by step:
  1. the engine is a swarm manager, and some node holds each role (node labels);
  2. the infra services' images (nginx, certbot, database, redis, backup) are built
     here and pushed to the registry, tagged with their build context's content hash
     (a Swarm builds nothing; an unchanged image keeps its tag, so its service is not
     updated);
  3. every node gets this infra's data/ folders (a global job: a bind mount's source
     must exist on the node that runs the task);
  4. when Postgres and Redis already run: the apps' roles and Redis users get the
     passwords of .env.prod (ops/provision.py; Redis keeps the old ones too);
  5. `docker stack deploy` of docker-stack.yml, its ${VARIABLES} from .env.prod, the
     image tags and the secrets' versions (their content's hash), all through the
     environment, never a command line;
  6. otherwise, once Postgres and Redis run, step 4 (the first `up`);
  7. wait until every service runs its replicas and no update is under way; an
     update Swarm rolled back is an error; then the logins and Redis passwords that no
     task uses any more are retired;
  8. secrets of older versions that no service uses any more are removed.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets as secret_values
from plano.core.errors import PlanoError, UsageError
from plano.core.manifest import Manifest
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine import swarm as sw
from plano.engine.stack import open_stack
from plano.ops import infra, provision
from plano.render import compose
from plano.render.stack import BUILT

UP_TIMEOUT_SECONDS = 600
DATA_SERVICES = ("database", "redis")  # the apps' roles and users are made once they run
POLL_SECONDS = 2.0


def require_target(manifest: Manifest) -> None:
    if manifest.target != "swarm":
        raise UsageError("target: plano.yml runs prod with compose on one server; set `target: swarm` "
                         "and run plano render to run it on a swarm")


# ---------------------------------------------------------------- nodes


def init(session: Session, advertise: str | None, roles: tuple[str, ...]) -> str:
    """Make this engine a swarm's first manager, give it `roles` (default all: one server
    can hold every role), and return the command that joins a worker."""
    if sw.swarm_info(session).get("LocalNodeState") == "active":
        raise PlanoError("this Docker engine is already in a swarm (plano swarm nodes lists it); "
                         "plano swarm join prints how to add a server")
    made = session.act(sw.init_argv(advertise), timeout=120)
    if not made.ok:
        raise PlanoError(f"docker swarm init failed: {made.last_line}"
                         + ("; give the address other servers reach this one at: --advertise-addr IP" if "advertise" in made.err else ""))
    node = sw.swarm_info(session).get("NodeID", "self") if not session.dry_run else "self"
    label(session, node, roles or n.SWARM_ROLES)
    return join_command(session, "worker")


def join_command(session: Session, role: str = "worker") -> str:
    sw.require_manager(session)
    got = session.query(sw.join_token_argv(role), timeout=30)
    if not got.ok:
        raise PlanoError(f"docker swarm join-token failed: {got.last_line}")
    lines = [line.strip() for line in got.out.splitlines() if line.strip().startswith("docker swarm join")]
    return lines[0] if lines else got.out.strip()


def node_list(session: Session) -> list[sw.Node]:
    sw.require_manager(session)
    return sw.read_nodes(session)


def label(session: Session, node: str, roles: tuple[str, ...] | list[str], remove: bool = False) -> None:
    """Give (or take) NODE the roles: where nginx, the data and the apps may run."""
    for role in roles:
        if role not in n.SWARM_ROLES:
            raise UsageError(f"ROLE: {role!r} is not a role; give {', '.join(n.SWARM_ROLES)}")
    for role in roles:
        done = session.act(sw.label_argv(node, role, add=not remove), timeout=60)
        if not done.ok:
            hint = "; plano swarm nodes lists the nodes" if "not found" in done.err.lower() else ""
            raise PlanoError(f"docker node update {node} failed: {done.last_line}{hint}")


def require_edge_here(node_id: str, nodes: list[sw.Node]) -> None:
    """nginx binds its configuration from this infra (docker/nginx/): the edge node is
    the one plano runs on (or DOCKER_HOST names), and no other."""
    here = next((node for node in nodes if node.id == node_id), None)
    others = [node.hostname for node in nodes if "edge" in node.roles and node.id != node_id]
    if here is None or "edge" not in here.roles:
        name = here.hostname if here else "THIS-NODE"
        raise PlanoError(f"this node ({name}) is not the edge node; nginx reads its configuration from this infra: "
                         f"plano swarm label {name} edge, or run plano on the edge node")
    if others:
        raise PlanoError(f"only the node plano runs on can be the edge node (nginx reads this infra's docker/nginx/); "
                         f"plano swarm label {others[0]} edge --remove")


def require_roles(nodes: list[sw.Node]) -> None:
    missing = sw.missing_roles(nodes)
    if not missing:
        return
    role = missing[0]
    labelled = [node.hostname for node in nodes if role in node.roles]
    why = f"{', '.join(labelled)} {'is' if len(labelled) == 1 else 'are'} not ready" if labelled else "no node has it"
    raise PlanoError(f"no ready node for the {role} role ({why}): plano swarm label NODE {role}")


# ---------------------------------------------------------------- images and secrets


def content_tag(folder: Path, args: dict[str, str]) -> str:
    """A build's identity: its context's files (paths and bytes) and build arguments."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for key, value in sorted(args.items()):
        digest.update(f"{key}={value}\0".encode())
    return digest.hexdigest()[:12]


def image_tags(root: Path, manifest: Manifest) -> dict[str, str]:
    services = compose.base(manifest)["services"]
    return {name: content_tag(root / services[name]["build"]["context"], services[name]["build"]["args"]) for name in BUILT}


def push_images(session: Session, tags: dict[str, str]) -> None:
    """Build the infra images here (compose, the prod files) and push each by its tag."""
    st = open_stack(session)
    code = session.act_stream(st.argv("build", *BUILT))
    if code:
        raise PlanoError(f"building the infra images failed (compose exit code {code}); see the output above")
    for name, tag in tags.items():
        ref = f"{n.swarm_infra_image(st.manifest, name)}:{tag}"
        tagged = session.act(["docker", "tag", f"{st.ctx.project}-{name}", ref], timeout=60)
        if not tagged.ok:
            raise PlanoError(f"docker tag of {name} failed: {tagged.last_line}")
        pushed = session.act(["docker", "push", ref], timeout=1800)
        if not pushed.ok:
            raise PlanoError(f"docker push {ref} failed: {pushed.last_line}; check the registry in plano.yml and 'docker login'")


# ---------------------------------------------------------------- data folders on the nodes


def folders_script(root: Path, manifest: Manifest) -> str:
    """mkdir and chown of this infra's prod data/ folders under /host (a node's /)."""
    prod = f"{n.data_root(Mode.PROD)}/"
    wanted = [rel for rel in infra.data_dirs(manifest) if rel.startswith(prod) and not rel.startswith(f"{prod}dev")]
    wanted.append(f"{prod}{n.REDIS_ACL_DIR}")  # Redis's users, a swarm's only (ops/provision.py)
    top = f"/host{root}"
    lines = [f"mkdir -p {' '.join(shlex.quote(f'{top}/{rel}') for rel in wanted)}"]
    for rel, uid in [*((rel, uid) for rel, uid, _ in infra.DATA_OWNERS), (n.REDIS_ACL_DIR, n.REDIS_UID)]:
        lines.append(f"chown {uid}:{uid} {shlex.quote(f'{top}/{prod}{rel}')}")
    lines.append(f"chmod 700 {shlex.quote(f'{top}/{prod}{n.REDIS_ACL_DIR}')}")
    lines += [f"chown {n.APP_UID}:{n.APP_UID} {shlex.quote(f'{top}/{n.uploads_dir(app)}')}" for app in sorted(manifest.apps)]
    return "; ".join(lines)


def prepare_nodes(session: Session, image: str) -> None:
    """A global job (plano has no shell on the other nodes) makes data/'s folders on
    every node: the data node's hold Postgres, Redis and the backups; an apps node's
    hold the uploads of the backends it runs (each node its own: see the README)."""
    name = f"{session.manifest.name}-plano-folders"
    session.act(sw.service_rm_argv(name), timeout=60)  # a job left by an interrupted run
    made = session.act(sw.job_argv(name, image, folders_script(session.root, session.manifest),
                                   ["type=bind,source=/,target=/host"]), timeout=120)
    if not made.ok:
        raise PlanoError(f"preparing data/ on the nodes failed: {made.last_line}")
    try:
        deadline = time.monotonic() + 180
        while not session.dry_run:
            tasks = sw.json_lines(session.query(sw.job_tasks_argv(name), timeout=30).out)
            states = [(t.get("CurrentState") or "Pending").split()[0] for t in tasks]
            if tasks and all(s == "Complete" for s in states):
                return
            failed = [t for t in tasks if t.get("CurrentState", "").startswith(("Failed", "Rejected"))]
            if failed:
                raise PlanoError(f"preparing data/ on {failed[0].get('Node', 'a node')} failed: {failed[0].get('Error', '')}")
            if time.monotonic() > deadline:
                raise PlanoError(f"preparing data/ on the nodes took over 180 s; docker service ps {name} shows why")
            session.pause(1.0)
    finally:
        session.act(sw.service_rm_argv(name), timeout=60)


# ---------------------------------------------------------------- up, status, down


@dataclass
class SwarmStatus:
    stack: str
    nodes: list[sw.Node] = field(default_factory=list)
    services: list[sw.Service] = field(default_factory=list)


def wait_converged(session: Session, timeout: float, only: tuple[str, ...] = ()) -> list[sw.Service]:
    """Until every service (or those in `only`) runs its replicas, with no update under way."""
    deadline = time.monotonic() + timeout
    while True:
        found = [s for s in sw.stack_services(session) if not only or s.name in only]
        rolled = [s for s in found if s.update.startswith("rollback")]
        if rolled:
            raise PlanoError(f"{rolled[0].name}: Swarm rolled the update back ({rolled[0].message}); "
                             f"plano swarm ps shows the failed tasks")
        if found and all(s.converged for s in found):
            return found
        if time.monotonic() > deadline:
            late = [s for s in found if not s.converged]
            why = sw.task_errors(session, [s.name for s in late])
            for s in late:
                lines = session.query(sw.logs_argv(session.manifest.name, s.name, "5", False), timeout=60).output.strip()
                if lines:
                    session.out.note(f"{s.name}'s last log lines:\n" + secret_values.mask(lines, session.secret_values()))
            shown = "; ".join(f"{s.name} {s.running}/{s.desired}" + (f": {why[s.name]}" if s.name in why else "") for s in late)
            raise PlanoError(f"the stack did not converge within {timeout:.0f} s ({shown}); plano swarm ps shows the tasks")
        session.pause(POLL_SECONDS)


def up(session: Session, timeout: float = UP_TIMEOUT_SECONDS) -> list[sw.Service]:
    manifest, root = session.manifest, session.root
    require_target(manifest)
    info = sw.require_manager(session)
    nodes = sw.read_nodes(session)
    require_roles(nodes)
    require_edge_here(info.get("NodeID", ""), nodes)
    if infra.plan(root, manifest).changed:
        raise PlanoError("rendered files are out of date with plano.yml: run plano render first (docker-stack.yml comes from it)")
    infra.ensure_data_dirs(session, manifest)  # the secret files the Swarm secrets are made from, here
    tags = image_tags(root, manifest)
    session.out.note("building and pushing the infra images")
    push_images(session, tags)
    prepare_nodes(session, f"{n.swarm_infra_image(manifest, 'database')}:{tags['database']}")
    early = data_running(session)
    if early:  # the passwords of .env.prod work before any new task uses them; the old ones too
        session.out.note("making the apps' database roles and Redis users")
        provision.provision(session, tags, keep_old=True)
    session.out.note(f"deploying stack {manifest.name}")
    deployed = session.act(sw.deploy_argv(manifest.name), timeout=900, env=sw.deploy_env(root, manifest, tags))
    if not deployed.ok:
        raise PlanoError(f"docker stack deploy failed: {secret_values.mask(deployed.last_line, session.secret_values())}")
    if session.dry_run:
        return []
    if not early:
        wait_converged(session, timeout, only=DATA_SERVICES)
        session.out.note("making the apps' database roles and Redis users")
        provision.provision(session, tags)
    found = wait_converged(session, timeout)
    apps = apps_nodes(session)
    for name, app in manifest.apps.items():  # a start-first update of a changed service may crowd one node
        for role in app.services():
            spread(session, n.service(name, role), timeout, apps)
    session.out.note("retiring the passwords no task uses")
    provision.finish(session, tags)
    prune_secrets(session)
    return found


def spread(session: Session, service: str, timeout: float, apps: list[str] | None = None) -> None:
    """A start-first update can leave a service's tasks on one apps node: Swarm places
    each new task while the old one still runs, and a tie goes to the node with fewer
    tasks overall (measured: after test_swarm_e2e's updates, in three runs of three).
    One more task then goes to the node with the fewest, and scaling back removes one
    where there are the most (Swarm's scale-down), each waited for. The update itself is
    done by then: a failure here is said, not raised. `apps`: the usable apps nodes, when
    the caller spreads several services (read once)."""
    stack = session.manifest.name
    apps = apps_nodes(session) if apps is None else apps
    placed = sw.running_on(session.query(sw.service_tasks_argv(stack, service), timeout=30).out)
    if not sw.crowded(placed, apps):
        return
    session.out.note(f"{service}: its {len(placed)} tasks are not spread over the apps nodes; one more task, then back to {len(placed)}")
    for replicas in (len(placed) + 1, len(placed)):
        scaled = session.act(sw.scale_argv(stack, service, replicas), timeout=120)
        why = scaled.last_line if not scaled.ok else "" if running_all(session, service, timeout) else "its tasks did not all run in time"
        if why:
            session.out.note(f"warning: {service} was not spread again ({why}); plano swarm ps shows its tasks, and "
                             f"docker service scale {stack}_{service}={len(placed)} sets its count back")
            return


def apps_nodes(session: Session) -> list[str]:
    """The host names of the nodes app tasks may run on now."""
    return [node.hostname for node in sw.read_nodes(session) if node.usable and "apps" in node.roles]


def running_all(session: Session, service: str, timeout: float) -> bool:
    """Wait until the service runs as many tasks as it wants; False after the timeout."""
    deadline = time.monotonic() + timeout
    while not {s.name: s for s in sw.stack_services(session)}[service].converged:
        if time.monotonic() > deadline:
            return False
        session.pause(POLL_SECONDS)
    return True


def data_running(session: Session) -> bool:
    """Postgres and Redis run a task each (the stack was up before)."""
    running = {s.name: s.running for s in sw.stack_services(session)}
    return all(running.get(name, 0) >= 1 for name in DATA_SERVICES)


def prune_secrets(session: Session) -> None:
    """Secrets of this stack's earlier versions that no service uses any more."""
    manifest = session.manifest
    listed = session.query(sw.secrets_argv(f"{manifest.name}-"), timeout=30).out.split()
    current = set(sw.secret_versions(session.root, manifest).values())
    stale = [name for name in listed if name.rsplit("-", 1)[-1] not in current]
    if stale:
        session.act(sw.secret_rm_argv(*stale), timeout=60)  # one still in use is kept by Docker


def tasks(session: Session) -> int:
    """`docker stack ps`, as it prints it; its exit code."""
    require_target(session.manifest)
    return session.act_stream(sw.tasks_table_argv(session.manifest.name))


def logs(session: Session, service: str, lines: str, follow: bool) -> int:
    require_target(session.manifest)
    return session.act_stream(sw.logs_argv(session.manifest.name, service, lines, follow))


def status(session: Session) -> SwarmStatus:
    require_target(session.manifest)
    return SwarmStatus(session.manifest.name, node_list(session), sw.stack_services(session))


def down(session: Session) -> None:
    """Remove the stack's services and networks; volumes and data/ stay on the nodes."""
    require_target(session.manifest)
    sw.require_manager(session)
    stack = session.manifest.name
    done = session.act(sw.remove_argv(stack), timeout=300)
    if not done.ok:
        raise PlanoError(f"docker stack rm failed: {done.last_line}")
    deadline = time.monotonic() + 120
    while not session.dry_run and session.query(sw.networks_argv(stack), timeout=30).out.split():
        if time.monotonic() > deadline:
            raise PlanoError(f"stack {stack}'s networks were still there 120 s after docker stack rm")
        session.pause(1.0)
