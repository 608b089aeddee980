"""docker-stack.yml: the same platform on a Docker Swarm (`target: swarm` in plano.yml),
for `docker stack deploy`. Pure: Manifest -> Tree.

Each service starts from the compose target's own definition (render/compose.py: the
same images, commands, healthchecks, networks, mounts, hardening and limits), then
changes what Swarm does otherwise:
- where it runs: nodes labelled by `plano swarm label` (naming.SWARM_ROLES): nginx
  and certbot on the edge node, Postgres, Redis and backups on the data node (their
  data stays in that node's data/), app services on apps nodes, Swarm spreading the
  replicas across them;
- how it updates: app services start the new task first and roll back by themselves
  when it fails its healthcheck (`update_config`, `rollback_config`); a stateful or
  port-holding service stops the old task first, as two cannot share its data or port;
- names instead of a VIP (`endpoint_mode: dnsrr`): nginx resolves every task of a
  service through its own DNS (`resolve`), as on one server;
- images: the infra services' images are built and pushed by `plano swarm up`
  (a Swarm does not build), tagged by content through the environment;
- secrets: Swarm secrets created from plano's secret files, their names versioned
  through the environment (`${PLANO_SECRET_...}`), so a rotation is a rolling update;
  Postgres and Redis mount only their admin password: each app's role and Redis user
  are made by plano's provisioning jobs (ops/provision.py), so a new app password
  never updates them (Redis keeps its users in data/redis/ on the data node);
- networks: overlay, encrypted; the same one per app as on one server;
- what Swarm has no key for goes: `restart` (a restart policy instead), `depends_on`
  (healthchecks gate traffic instead), `security_opt` (Swarm services have no such
  setting), `shm_size` (a tmpfs at /dev/shm instead).
"""

from __future__ import annotations

from typing import Any

from plano.core import naming as n
from plano.core.files import File, Tree, with_header
from plano.core.manifest import Limits, Manifest
from plano.render import compose

# The stack file format: the newest that Debian bookworm's docker 20.10 CLI reads (it
# refuses a file without `version:`); newer CLIs read it too.
STACK_VERSION = "3.9"
# How long Swarm watches the updated tasks before it counts an update a success: a
# task failing its healthcheck within it has the update rolled back.
MONITOR = "20s"
# On a swarm the healthcheck gates traffic (a task is "running", and in the service's
# DNS name, once healthy), so it runs often: a new task takes over about INTERVAL after
# it answers, and a broken one is found within start_period + RETRIES x INTERVAL.
APP_HEALTH = {"interval": "5s", "retries": 3}
# Infra services and where they run; each is one task.
INFRA_ROLES = {"nginx": "edge", "certbot": "edge", "database": "data", "redis": "data", "backup": "data"}
# Built locally on one server; on a swarm, built and pushed by `plano swarm up`.
BUILT = ("nginx", "certbot", "database", "redis", "backup")


def placed(role: str) -> dict[str, Any]:
    return {"constraints": [n.swarm_constraint(role)]}


def restart_policy() -> dict[str, Any]:
    """`restart: always` as Swarm says it: a task that exits, however, is replaced."""
    return {"condition": "any", "delay": "5s", "window": "60s"}


def resources(limits: Limits) -> dict[str, Any]:
    cpus = {"cpus": f"{limits.cpus:g}"} if limits.cpus is not None else {}
    return {"limits": {"memory": limits.memory, **cpus, "pids": limits.pids}}


def rolling(order: str) -> dict[str, Any]:
    """One task at a time; a new task that is not healthy within MONITOR rolls back."""
    return {"parallelism": 1, "delay": "0s", "order": order, "failure_action": "rollback", "monitor": MONITOR}


def rollback(order: str) -> dict[str, Any]:
    return {"parallelism": 1, "delay": "0s", "order": order, "failure_action": "pause", "monitor": MONITOR}


def tmpfs_mounts(paths: list[str]) -> list[dict[str, Any]]:
    """compose's `tmpfs` entries as mounts: `docker stack deploy` ignores the `tmpfs` key
    (measured: a read-only service then has no writable /tmp), and passes neither uid=
    nor mode= (measured: TmpfsOptions {}). Such a tmpfs starts as root's, with the mode
    of the image's folder there (measured): the images plano builds give theirs the
    mode their user needs (certbot's /var/lib/letsencrypt: 1777, as /tmp)."""
    return [{"type": "tmpfs", "target": p.split(":", 1)[0]} for p in paths]


def swarmed(spec: dict[str, Any], image: str, deploy: dict[str, Any]) -> dict[str, Any]:
    """A compose service as a swarm service (see the module's docstring)."""
    out = {"image": image}
    for key, value in spec.items():
        if key in ("build", "restart", "depends_on", "security_opt", "shm_size"):
            continue
        if key == "env_file":
            out[key] = [entry["path"] for entry in value]
        elif key == "tmpfs":
            out["volumes"] = [*out.get("volumes", []), *tmpfs_mounts(value)]
        else:
            out[key] = value
    if "shm_size" in spec:  # Postgres's shared memory: a tmpfs of that size
        out["volumes"] = [*out.get("volumes", []), {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 128 * 1024 * 1024}}]
    out["deploy"] = deploy
    return out


def infra_image(manifest: Manifest, service: str) -> str:
    var = n.swarm_image_var(service)
    return f"{n.swarm_infra_image(manifest, service)}:${{{var}:?{var} is missing: run plano swarm up, which builds and pushes it}}"


def infra_service(manifest: Manifest, service: str, spec: dict[str, Any]) -> dict[str, Any]:
    limits: Limits = getattr(manifest.limits, service)
    deploy = {"mode": "replicated", "replicas": 1, "endpoint_mode": "dnsrr", "placement": placed(INFRA_ROLES[service]),
              "restart_policy": restart_policy(), "resources": resources(limits),
              # One task: its data folder or its host ports cannot be held by two.
              "update_config": rolling("stop-first"), "rollback_config": rollback("stop-first")}
    out = swarmed(spec, infra_image(manifest, service), deploy)
    if service in n.SWARM_OWN_SECRETS:
        out["secrets"] = [s for s in out["secrets"] if s["target"] in n.SWARM_OWN_SECRETS[service]]
    if service == "database":
        out["environment"] = {**out["environment"], n.SWARM_APPS_BY_JOB: "1"}
    if service == "redis":
        out["environment"] = {n.SWARM_ACL_FILE_VAR: n.REDIS_ACL_IN_CONTAINER}
        out["command"] = ["redis-server", "/usr/local/etc/redis/redis.conf", "--aclfile", n.REDIS_ACL_IN_CONTAINER]
        acl_dir = n.REDIS_ACL_IN_CONTAINER.rsplit("/", 1)[0]
        out["volumes"] = [*out.get("volumes", []), f"./{n.data_root('prod')}/{n.REDIS_ACL_DIR}:{acl_dir}"]
    if service == "nginx":
        out["ports"] = [{"target": inner, "published": outer, "protocol": "tcp", "mode": "host"}
                        for inner, outer in ((80, manifest.prod.http_port), (443, manifest.prod.https_port))]
    return out


def app_service(manifest: Manifest, name: str, role: str, spec: dict[str, Any], prod: dict[str, Any]) -> dict[str, Any]:
    svc = manifest.apps[name].services()[role]
    deploy = {"mode": "replicated", "replicas": svc.replicas or manifest.swarm.replicas, "endpoint_mode": "dnsrr",
              "placement": placed("apps"), "restart_policy": restart_policy(), "resources": resources(svc.limits),
              "update_config": rolling("start-first"), "rollback_config": rollback("start-first")}
    out = swarmed(spec, prod["image"], deploy)
    out["environment"] = {**spec["environment"], **prod["environment"]}
    out["healthcheck"] = {**spec["healthcheck"], **APP_HEALTH}
    return out


def secrets(manifest: Manifest) -> dict[str, Any]:
    """Each secret file plano writes (data/secrets/), as a Swarm secret whose name
    carries a version from the environment: new content, new name, a rolling update."""
    out = {}
    for service, wanted in n.infra_secrets(manifest).items():
        for var in wanted:
            key = n.secret_name(service, var)
            version = n.swarm_secret_var(service, var)
            out[key] = {"name": f"{manifest.name}-{key}-${{{version}:?{version} is missing: run plano swarm up}}",
                        "file": f"./{n.secret_file('prod', service, var)}"}
    return out


def networks(manifest: Manifest) -> dict[str, Any]:
    """Overlay networks, encrypted between nodes (IPsec) unless swarm.encrypted is off:
    one per app, as on one server."""
    names = ["edge", "backup", *(n.network(name) for name in manifest.apps)]
    encrypted = {"driver_opts": {"encrypted": ""}} if manifest.swarm.encrypted else {}
    return {name: {"driver": "overlay", **encrypted} for name in names}


def stack(manifest: Manifest) -> dict[str, Any]:
    base, prod = compose.base(manifest), compose.prod(manifest)
    services = {name: infra_service(manifest, name, base["services"][name]) for name in BUILT}
    for app_name, role in n.app_services(manifest).values():
        service = n.service(app_name, role)
        services[service] = app_service(manifest, app_name, role, base["services"][service], prod["services"][service])
    return {"version": STACK_VERSION, "services": services, "networks": networks(manifest), "secrets": secrets(manifest)}


def literal(words: list[str]) -> list[str]:
    """Words as they are: the stack loader would read `$X` and `${X}` as variables."""
    return [word.replace("$", "$$") for word in words]


def job(manifest: Manifest, service: str, name: str, image: str, command: list[str],
        entrypoint: list[str] | None = None, constraint: str | None = None, every_secret: bool = False) -> dict[str, Any]:
    """A stack file of one job service `name`: `service`'s own definition (networks,
    secrets, mounts, environment, user, limits and placement, or `constraint`) running
    `command` once in `image`, for `docker stack deploy` into the same stack (so its
    networks and secrets are the stack's own). Swarm never restarts it; no healthcheck,
    no published port. With `every_secret`, it has every secret the service has on one
    server (the database's or Redis's: also each app's password, see SWARM_OWN_SECRETS)."""
    whole = stack(manifest)
    spec = {key: value for key, value in whole["services"][service].items() if key not in ("ports", "healthcheck", "deploy")}
    if every_secret:
        spec["secrets"] = compose.secrets_of(manifest, service)["secrets"]
    spec["image"] = image
    if entrypoint is not None:
        spec["entrypoint"] = literal(entrypoint)
    spec["command"] = literal(command)
    spec["healthcheck"] = {"disable": True}
    own = whole["services"][service]["deploy"]
    spec["deploy"] = {"mode": "replicated-job", "replicas": 1, "endpoint_mode": "dnsrr",
                      "placement": {"constraints": [constraint]} if constraint else own["placement"],
                      "restart_policy": {"condition": "none"}, "resources": own["resources"]}
    used = [s["source"] for s in spec.get("secrets", [])]
    return {"version": STACK_VERSION, "services": {name: spec},
            "networks": {key: whole["networks"][key] for key in spec.get("networks", [])},
            **({"secrets": {key: whole["secrets"][key] for key in used}} if used else {})}


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    del env_values  # the stack file holds no secret value, only ${VARIABLES}
    if manifest.target != "swarm":
        return {}
    return {n.STACK_FILE: File(with_header(n.STACK_FILE, compose.dump(stack(manifest))))}
