"""plano.yml: the typed model, loading with path-prefixed errors, round-trip edits.

Loading is `text -> raw data -> Manifest`; every mistake becomes one ManifestError
whose path points into the file (``apps/app1/domains/0``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from plano.core import fields, yamldoc
from plano.core.errors import ManifestError, UsageError

MANIFEST_FILE = "plano.yml"

# What an app's own env names can point at (apps.X.backend.env: {DB_HOST: database.host}).
ENV_REFS = {
    "database": ("host", "port", "user", "password", "name", "url"),
    "redis": ("host", "port", "user", "password", "url", "prefix"),
}
# Set by plano for every app service; an env mapping cannot take them over.
PLANO_ENV = frozenset({"NODE_ENV", "NODE_OPTIONS", "PORT", "HOSTNAME", "TRUST_PROXY", "UPLOADS_DIR", "DATABASE_URL", "REDIS_URL",
                       "REDIS_KEY_PREFIX", "BACKEND_URL", "PUBLIC_URL"})

DEFAULT_IMAGES = {
    "nginx": "nginx:1.28.0",
    "postgres": "postgres:17.6",
    "redis": "redis:7.4.5",
    "certbot": "certbot/certbot:v4.0.0",
    "node": "node:22.20.0-bookworm-slim",
}


def workspace_path(workspace: str, source: str) -> str | None:
    """Where `source` lies inside `workspace` ("apps/api", "." for the root), both
    relative to the infra or absolute; None when it is outside."""
    root, inner = posixpath.normpath(workspace), posixpath.normpath(source)
    if inner == root:
        return "."
    relative = posixpath.relpath(inner, root) if inner.startswith("/") == root.startswith("/") else ".."
    return None if relative == ".." or relative.startswith("../") else relative


# Each field's grammar is in core/fields.py, shared with the flags.
Domain = Annotated[str, BeforeValidator(fields.domain)]
Port = Annotated[int, AfterValidator(fields.port)]
ImageRef = Annotated[str, AfterValidator(fields.image_ref)]
ImageName = Annotated[str, AfterValidator(fields.image_name)]
UrlPath = Annotated[str, AfterValidator(fields.url_path)]
LocalPath = Annotated[str, AfterValidator(fields.local_path)]
Command = Annotated[list[str], AfterValidator(fields.command)]
Address = Annotated[str, AfterValidator(fields.ip_address)]
Memory = Annotated[str, BeforeValidator(fields.memory)]
Cpus = Annotated[float, BeforeValidator(fields.cpus)]
Pids = Annotated[int, BeforeValidator(fields.pids)]
Replicas = Annotated[int, BeforeValidator(fields.replicas)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Images(Model):
    """Infra images; pin them, or point them at your mirror."""

    nginx: ImageRef = DEFAULT_IMAGES["nginx"]
    postgres: ImageRef = DEFAULT_IMAGES["postgres"]
    redis: ImageRef = DEFAULT_IMAGES["redis"]
    certbot: ImageRef = DEFAULT_IMAGES["certbot"]
    node: ImageRef = DEFAULT_IMAGES["node"]  # NODE_IMAGE build argument of the apps' Dockerfiles


class ProdSettings(Model):
    bind: Address = "0.0.0.0"
    http_port: Port = 80
    https_port: Port = 443


class DevSettings(Model):
    bind: Address = "127.0.0.1"
    http_port: Port = 80
    https_port: Port = 443
    database_port: Port = 5432
    redis_port: Port = 6379
    domain_suffix: Annotated[str, AfterValidator(partial(fields.domain, single_label=True))] = "localhost"


# ---------------------------------------------------------------- limits (prod)
# Caps, not reservations. Sized for a 2 GB server with two apps: the defaults of two
# apps and the infra add up to 1728m (4 x 256m + 320m + 128m + 64m + 64m + 128m),
# which leaves 320m of 2 GiB to the kernel, dockerd, containerd and the page cache.
# CPU caps are for the apps (one app must not starve the others); the shared services
# have none by default: a cap on nginx, Postgres or Redis throttles every app at once,
# and one on backup lengthens the dump.


class Limits(Model):
    """What one service may use in prod: memory (a hard cap, no swap), CPUs (null: no
    cap), and processes plus threads. The defaults are an app service's."""

    memory: Memory = "256m"
    cpus: Cpus | None = 1.0
    pids: Pids = 256


class DatabaseLimits(Limits):
    memory: Memory = "320m"  # shared_buffers (128 MB) + a few MB per connection
    cpus: Cpus | None = None


class NginxLimits(Limits):
    memory: Memory = "128m"  # request bodies over 16k wait in its tmpfs /tmp, which counts here
    cpus: Cpus | None = None
    pids: Pids = 128  # a worker per CPU


class RedisLimits(Limits):
    memory: Memory = "64m"  # Redis's maxmemory is 32 MiB under it: writes fail before a kill empties it
    cpus: Cpus | None = None
    pids: Pids = 64


class CertbotLimits(Limits):
    memory: Memory = "64m"
    cpus: Cpus | None = 0.5
    pids: Pids = 64


class BackupLimits(Limits):
    memory: Memory = "128m"
    cpus: Cpus | None = None
    pids: Pids = 128


class InfraLimits(Model):
    """Limits of the infra services (an app's services take theirs under apps.X.backend.limits)."""

    nginx: NginxLimits = Field(default_factory=NginxLimits)
    database: DatabaseLimits = Field(default_factory=DatabaseLimits)
    redis: RedisLimits = Field(default_factory=RedisLimits)
    certbot: CertbotLimits = Field(default_factory=CertbotLimits)
    backup: BackupLimits = Field(default_factory=BackupLimits)


class Service(Model):
    enabled: bool = True
    port: Port = 3000
    path: UrlPath
    health: UrlPath
    source: LocalPath | None = None  # default: ../<app>/<role>
    # The root of the workspace (npm/pnpm/yarn workspaces, Nx) the service belongs to:
    # the build context of its images and the folder mounted in dev; source is inside it.
    workspace: LocalPath | None = None
    dev_target: Annotated[str, AfterValidator(fields.stage_name)] = "dev"
    dev_command: Command
    image: ImageName | None = None  # default: <registry>/<app>-<role>
    release: Command | None = None  # run once per deploy in the new image, before traffic switches (migrations)
    test: Command = Field(default_factory=lambda: ["npm", "test"])  # `plano dev test`, in the dev container
    # The env names the app reads, each pointing at a value plano provides: DB_HOST: database.host
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)  # prod only: dev servers compile and watch, and need more
    replicas: Replicas | None = None  # swarm and kubernetes only; default swarm.replicas or kubernetes.replicas

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        refs = [f"{kind}.{key}" for kind, keys in ENV_REFS.items() for key in keys]
        for name, ref in value.items():
            fields.env_name(name)
            if name in PLANO_ENV:
                raise ValueError(f"{name} is set by plano for every app; remove it from env")
            if ref not in refs:
                raise ValueError(f"{name}: {fields.shown(ref)} is not something plano provides; give one of {', '.join(refs)}")
        return value

    @model_validator(mode="after")
    def _inside_workspace(self) -> "Service":
        if self.workspace is not None and self.source is not None and workspace_path(self.workspace, self.source) is None:
            raise ValueError(f"source {self.source!r} is not inside workspace {self.workspace!r}; give the service's folder "
                             "inside the workspace root")
        return self


class Backend(Service):
    path: UrlPath = "/api"
    health: UrlPath = "/api/health"
    dev_command: Command = Field(default_factory=lambda: ["npm", "run", "start:dev"])


class Frontend(Service):
    path: UrlPath = "/"
    health: UrlPath = "/"
    dev_command: Command = Field(default_factory=lambda: ["npm", "run", "dev"])


class Tls(Model):
    """Your own certificate for an app, used instead of Let's Encrypt: PEM files,
    relative to the infra folder or absolute. `plano certs issue` installs them."""

    certificate: LocalPath  # the certificate, then its intermediates (fullchain)
    key: LocalPath  # its private key


class App(Model):
    domains: list[Domain] = Field(min_length=1)
    backend: Backend = Field(default_factory=Backend)
    frontend: Frontend = Field(default_factory=Frontend)
    database: bool = True
    redis: bool = True
    repo: Annotated[str, AfterValidator(fields.repo_url)] | None = None
    tls: Tls | None = None  # your own certificate instead of ACME
    # The environment the app repo's CI deploys each build of the default branch to
    # (plano app new|adopt --ci-deploy: a job of its pipeline runs plano -e ENV deploy).
    ci_deploy: Annotated[str, AfterValidator(fields.environment_name)] | None = None

    @model_validator(mode="after")
    def _routes(self) -> "App":
        if not (self.backend.enabled or self.frontend.enabled):
            raise ValueError("an app needs its backend or its frontend enabled")
        for role, svc in (("backend", self.backend), ("frontend", self.frontend)):
            for name, ref in svc.env.items():
                kind = ref.split(".", 1)[0]
                if not getattr(self, kind):
                    raise ValueError(f"{role}/env/{name}: {ref} points at the app's {kind}, which is off ({kind}: false)")
        if self.backend.enabled and self.frontend.enabled and self.backend.path == self.frontend.path:
            raise ValueError(f"backend and frontend are both served at {self.backend.path!r}; give the backend its own path, e.g. /api")
        return self

    def services(self) -> dict[str, Service]:
        roles = {"backend": self.backend, "frontend": self.frontend}
        return {role: svc for role, svc in roles.items() if svc.enabled}


LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class Acme(Model):
    """Where certificates come from: Let's Encrypt unless you run your own ACME CA."""

    server: Annotated[str, AfterValidator(fields.acme_url)] = LETSENCRYPT  # the ACME directory URL (`plano certs issue --server` overrides it once)
    ca_bundle: LocalPath | None = None  # a CA file certbot trusts for the server's HTTPS (a private ACME CA)


class Restic(Model):
    """An encrypted offsite copy of every backup (restic; s3:, sftp:, rest: or a path)."""

    repository: str  # e.g. s3:s3.example.com/acme-backups, or /mnt/offsite/restic
    password_file: LocalPath  # a file holding the repository password, relative to the infra or absolute

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        example = "s3:s3.example.com/acme-backups"
        # A local repository is bind-mounted at the same path: a path's grammar then.
        return fields.local_path(value, "/mnt/offsite/restic") if value.startswith("/") else fields.free_text(value, "a restic repository", example)


class Backup(Model):
    """The backup service: a daily run at `time` (UTC), then retention, then offsite."""

    time: Annotated[str, AfterValidator(fields.time_of_day)] = "03:30"
    keep_daily: int = Field(default=7, ge=1)
    keep_weekly: int = Field(default=4, ge=0)
    keep_monthly: int = Field(default=6, ge=0)
    restic: Restic | None = None


class SwarmSettings(Model):
    """The swarm target (`target: swarm`): docker-stack.yml, run by `docker stack deploy`."""

    replicas: Replicas = 2  # each app service's tasks, unless the service sets its own
    # Overlay traffic between nodes in IPsec. Off only where the kernel has no ESP/GCM
    # (Docker then drops the traffic): it crosses your network in clear text.
    encrypted: bool = True


# ---------------------------------------------------------------- kubernetes (export)

# A Kubernetes object's name (RFC 1123 label) and a storage quantity in binary units.
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
K8S_SIZE = re.compile(r"^[1-9][0-9]{0,5}(Mi|Gi|Ti)$")


def k8s_name(value: str) -> str:
    if not K8S_NAME.match(value):
        raise ValueError(f"{fields.shown(value)} is not a Kubernetes name: lower-case letters, digits and '-', "
                         "at most 63, starting and ending with a letter or digit (e.g. ingress-nginx)")
    return value


def k8s_size(value: str) -> str:
    if not K8S_SIZE.match(value):
        raise ValueError(f"{fields.shown(value)} is not a storage size; give a whole number of Mi, Gi or Ti (e.g. 10Gi)")
    return value


# A kubeconfig context's name: cloud tools make them long and varied
# (arn:aws:eks:eu-west-1:123456789012:cluster/acme, gke_acme_europe-west1_acme, kind-acme).
K8S_CONTEXT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@/+=-]{0,252}$")


def k8s_context(value: str) -> str:
    if not K8S_CONTEXT.match(value):
        raise ValueError(f"{fields.shown(value)} is not a kubectl context name: letters, digits and _.:@/+=-, not starting "
                         "with '-' (see kubectl config get-contexts)")
    return value


K8sName = Annotated[str, AfterValidator(k8s_name)]
K8sSize = Annotated[str, AfterValidator(k8s_size)]
K8sContext = Annotated[str, AfterValidator(k8s_context)]


class KubernetesSettings(Model):
    """The Kubernetes export (`plano export kubernetes`): a kustomize tree under k8s/."""

    namespace: K8sName | None = None  # where everything runs; default: the manifest's name
    context: K8sContext | None = None  # kubectl's context for prod (plano k8s); default: kubectl's current one
    replicas: Replicas = 2  # each app service's pods, unless the service sets its own (apps.X.backend.replicas)
    ingress_class: K8sName = "nginx"  # the IngressClass of the apps' Ingresses (ingress-nginx's by default)
    ingress_namespace: K8sName = "ingress-nginx"  # where the ingress controller runs: its pods may reach the apps
    issuer: Literal["http01", "dns01"] = "http01"  # the ACME challenge; dns01 uses Cloudflare (an API token Secret)
    storage_class: K8sName | None = None  # of every PersistentVolumeClaim; null: the cluster's default
    database: Literal["statefulset", "external"] = "statefulset"  # Postgres in the cluster, or a managed one
    database_host: Domain | None = None  # the managed database's host name (database: external)
    database_size: K8sSize = "10Gi"
    uploads_size: K8sSize = "5Gi"  # per app
    # An app's uploads are written by each of its pods and read by the backup: pods on
    # several nodes need a volume they can all mount (NFS, CephFS, EFS...).
    uploads_access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    backups_size: K8sSize = "20Gi"
    # Apps may open connections outside the cluster (APIs, mail), as from a compose network.
    app_egress: Literal["internet", "none"] = "internet"

    @model_validator(mode="after")
    def _external(self) -> KubernetesSettings:
        if self.database == "external" and self.database_host is None:
            raise ValueError("database: external needs database_host (the managed database's host name)")
        if self.database == "statefulset" and self.database_host is not None:
            raise ValueError("database_host is for database: external; remove it or set database: external")
        return self


class EnvironmentKubernetes(Model):
    """An environment's own Kubernetes overlay (k8s/overlays/NAME), run by `plano -e NAME k8s ...`."""

    namespace: K8sName | None = None  # default: <kubernetes.namespace>-NAME
    context: K8sContext | None = None  # default: kubernetes.context, else kubectl's current one


class Environment(Model):
    """A server plano operates over SSH (`-e NAME`): the system ssh reaches `host`
    (user@host or an alias of ~/.ssh/config, whose settings apply), and the infra is
    checked out in `path` there, relative to the SSH user's home or absolute. With
    `deploy_user`, `host`'s login is the admin (a sudo user) that `server setup` uses to
    make that account, and every other command connects as it (same host and port).
    And/or a Kubernetes namespace (`kubernetes`) that `plano -e NAME k8s ...` runs from here."""

    host: Annotated[str, AfterValidator(fields.ssh_host)] | None = None  # none: a Kubernetes-only environment
    port: Port | None = None  # default: ~/.ssh/config's, else 22
    path: Annotated[str, AfterValidator(fields.server_path)] = "infra"
    deploy_user: Annotated[str, AfterValidator(fields.deploy_user)] | None = None  # none: host's login does everything
    kubernetes: EnvironmentKubernetes | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> Environment:
        if self.host is None and self.kubernetes is None:
            raise ValueError("give host (a server plano reaches over SSH) or kubernetes (a namespace plano k8s reaches, "
                             "kubernetes: {} for the defaults), or both")
        if self.host is None and self.deploy_user is not None:
            raise ValueError("deploy_user is an account on the server host names; give host too, or remove deploy_user")
        return self

    @property
    def login_host(self) -> str:
        """Who every command but `server setup`'s admin steps connects as."""
        host = self.host or ""
        return f"{self.deploy_user}@{host.rpartition('@')[2]}" if self.deploy_user else host


class DashboardSettings(Model):
    """`plano dashboard` behind the infra's nginx, with HTTPS (certificate `plano`), on
    this domain as well as on 127.0.0.1 (the one-server target only)."""

    domain: Domain | None = None


class Manifest(Model):
    version: Literal[1] = 1
    name: Annotated[str, AfterValidator(fields.project_name)]
    registry: Annotated[str, AfterValidator(fields.registry)]
    email: Annotated[str, AfterValidator(fields.email)]
    images: Images = Field(default_factory=Images)
    acme: Acme = Field(default_factory=Acme)
    backup: Backup = Field(default_factory=Backup)
    limits: InfraLimits = Field(default_factory=InfraLimits)
    prod: ProdSettings = Field(default_factory=ProdSettings)
    dev: DevSettings = Field(default_factory=DevSettings)
    # Where prod runs: one server with docker compose, or a Docker Swarm of several.
    target: Literal["compose", "swarm"] = "compose"
    swarm: SwarmSettings = Field(default_factory=SwarmSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    apps: dict[str, App] = Field(default_factory=dict)
    # Servers operated from here over SSH (`plano -e NAME ...`), each with its .env.NAME.
    environments: dict[str, Environment] = Field(default_factory=dict)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)


def require_app(manifest: Manifest, name: str, field: str | None = None) -> App:
    """The app named on the command line; `field` names the flag in the error (default apps/NAME)."""
    if name not in manifest.apps:
        known = ", ".join(sorted(manifest.apps)) or "none"
        raise UsageError(f"{field or 'apps/' + fields.key(name)}: no such app in plano.yml (registered: {known}); see plano app list")
    return manifest.apps[name]


def select_apps(manifest: Manifest, names: tuple[str, ...] | list[str], all_apps: bool, *,
                required: bool = False, flag: str | None = None) -> list[str]:
    """The one rule for "which apps": the names given (each must exist), or every app
    with --all. Without either, every app, unless the command needs a choice (`required`)."""
    if all_apps and names:
        raise UsageError("give app names or --all, not both")
    if required and not names and not all_apps:
        raise UsageError("which app? give its name (e.g. app1) or --all")
    for name in names:
        require_app(manifest, name, flag and f"{flag} {name}")
    chosen = list(names) if names else sorted(manifest.apps)
    if required and not chosen:
        raise UsageError("no apps yet: plano app add app1 --domain app1.example.com")
    return chosen


def require_environment(manifest: Manifest, name: str) -> Environment:
    """The environment named by -e: one plano.yml declares."""
    if name not in manifest.environments:
        known = ", ".join(sorted(manifest.environments)) or "none"
        raise UsageError(f"-e {fields.key(name)}: no such environment in plano.yml (declared: {known}); "
                         "add it under environments: (see README, 'Remote servers')")
    return manifest.environments[name]


def require_role(manifest: Manifest, app: str, role: str) -> str:
    """A --service given on the command line: one the app has."""
    services = require_app(manifest, app).services()
    if role not in services:
        raise UsageError(f"--service {role}: app {app} has no {role}; it has {', '.join(services)}")
    return role


# ---------------------------------------------------------------- validation


def key_path(loc: tuple) -> str:
    """A validation error's location as a plano.yml path; keys that are not plain words are quoted."""
    return "/".join(fields.key(part) for part in loc if part not in ("function-after", "function-before"))


def _first_error(exc: ValidationError) -> ManifestError:
    err = exc.errors(include_url=False)[0]
    path = key_path(err["loc"])
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        return ManifestError(path, "unknown key; remove it or check its spelling (see README, 'plano.yml')")
    if kind == "missing":
        return ManifestError(path, "required; add it")
    if kind == "value_error":
        return ManifestError(path, str(err["ctx"]["error"]))
    if kind == "too_short":
        return ManifestError(path, "needs at least one entry")
    if kind == "literal_error":
        return ManifestError(path, f"must be {err['ctx']['expected']}, got {fields.shown(given)}")
    expected = {
        "int_type": "an integer", "string_type": "a string", "bool_type": "true or false",
        "list_type": "a list", "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    }.get(kind)
    if expected:
        return ManifestError(path, f"expected {expected}, got {fields.shown(given)}")
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return ManifestError(path, f"{err['msg'].lower()}, got {fields.shown(given)}")
    return ManifestError(path, f"{err['msg']}, got {fields.shown(given)}")


def _check_unique_domains(manifest: Manifest) -> None:
    seen: dict[str, str] = {}
    for app_name, app in manifest.apps.items():
        for index, domain in enumerate(app.domains):
            here = f"apps/{app_name}/domains/{index}"
            if domain in seen:
                raise ManifestError(here, f"{domain} is already used by {seen[domain]}; each domain belongs to one app")
            seen[domain] = here
    domain = manifest.dashboard.domain
    if domain is not None and domain in seen:
        raise ManifestError("dashboard/domain", f"{domain} is already used by {seen[domain]}; give the dashboard a domain of its own")


def _check_dashboard(manifest: Manifest) -> None:
    if manifest.dashboard.domain is not None and manifest.target == "swarm":
        raise ManifestError("dashboard/domain", "on a swarm the dashboard is not served behind nginx (its nginx may run on "
                            "another node); remove it and reach the dashboard with plano -e ENV dashboard (through ssh -L)")


def _check_host_ports(manifest: Manifest) -> None:
    for section, settings in (("dev", manifest.dev), ("prod", manifest.prod)):
        taken: dict[int, str] = {}
        for field in ("http_port", "https_port", "database_port", "redis_port"):
            port = getattr(settings, field, None)
            if port is None:
                continue
            if port in taken:
                raise ManifestError(f"{section}/{field}", f"port {port} is already used by {section}/{taken[port]}; pick another port")
            taken[port] = field


def _check_ci_deploy(manifest: Manifest) -> None:
    for name, app in manifest.apps.items():
        if app.ci_deploy is not None and app.ci_deploy not in manifest.environments:
            known = ", ".join(sorted(manifest.environments)) or "none"
            raise ManifestError(f"apps/{name}/ci_deploy", f"{fields.shown(app.ci_deploy)} is not an environment of plano.yml "
                                f"(declared: {known}); add it under environments:")
        if app.ci_deploy is not None and manifest.environments[app.ci_deploy].host is None:
            raise ManifestError(f"apps/{name}/ci_deploy", f"environments/{app.ci_deploy} has no host (it is Kubernetes-only) and "
                                f"the CI job runs plano -e {app.ci_deploy} deploy over SSH; give it a host or deploy another way")


def k8s_namespaces(manifest: Manifest) -> dict[str, str]:
    """The namespace of each overlay of the Kubernetes export (naming.k8s_namespace): prod's
    kubernetes.namespace (default: the name), then each environment's own (default <prod's>-NAME)."""
    prod = manifest.kubernetes.namespace or manifest.name
    out = {"prod": prod}
    for env, settings in sorted(manifest.environments.items()):
        out[env] = (settings.kubernetes.namespace if settings.kubernetes else None) or f"{prod}-{env}"
    return out


def _check_k8s_namespaces(manifest: Manifest) -> None:
    """Each overlay in its own namespace: a shared one would mix two environments' objects."""
    found = k8s_namespaces(manifest)
    seen = {found.pop("prod"): "prod (kubernetes/namespace)"}
    for env, namespace in found.items():
        here = f"environments/{env}/kubernetes/namespace"
        if not K8S_NAME.match(namespace):
            raise ManifestError(f"environments/{env}", f"its default Kubernetes namespace {namespace!r} is longer than 63 characters; "
                                f"set {here}")
        if namespace in seen:
            raise ManifestError(here, f"{namespace} is already the namespace of {seen[namespace]}; each environment needs its own")
        seen[namespace] = f"environments/{env}"


def validate(data: Any) -> Manifest:
    """Raw data (from YAML) to a Manifest, or one ManifestError."""
    if not isinstance(data, dict):
        raise ManifestError("", f"{MANIFEST_FILE} must be a mapping of keys (name, registry, email, apps...)")
    for section, check in (("apps", fields.app_name), ("environments", fields.environment_name)):
        names = data.get(section)
        for name in names if isinstance(names, dict) else ():
            try:
                check(name)
            except ValueError as exc:
                raise ManifestError(f"{section}/{fields.key(name)}", str(exc)) from None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    _check_unique_domains(manifest)
    _check_dashboard(manifest)
    _check_host_ports(manifest)
    _check_ci_deploy(manifest)
    _check_k8s_namespaces(manifest)
    return manifest


# ---------------------------------------------------------------- YAML I/O


def parse(text: str, source: str = MANIFEST_FILE) -> Any:
    """YAML text to round-trip data (comments kept); every error names the line."""
    return yamldoc.parse(text, source)


def dump(data: Any) -> str:
    return yamldoc.dump(data)


def to_plain(data: Any) -> Any:
    """Round-trip containers to plain dicts and lists, so strict validation sees builtins."""
    if isinstance(data, dict):
        return {to_plain(key): to_plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [to_plain(value) for value in data]
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    if isinstance(data, str):
        return str(data)
    return data


def load_text(text: str, source: str = MANIFEST_FILE) -> Manifest:
    return validate(to_plain(parse(text, source)))


@dataclass(frozen=True)
class Infra:
    """An infra folder and its plano.yml, as text (for round-trip edits) and as a model."""

    root: Path
    text: str
    manifest: Manifest


def load_infra(root: Path) -> Infra:
    path = root / MANIFEST_FILE
    if not path.exists() and not path.is_symlink():
        raise ManifestError("", f"no {MANIFEST_FILE} in {fields.shown(str(root))}; run 'plano init' first or pass --dir")
    text = yamldoc.read(path, MANIFEST_FILE)
    return Infra(root, text, load_text(text))


def find_root(start: Path) -> Path:
    """The infra folder: the nearest folder upwards holding plano.yml."""
    for folder in (start, *start.parents):
        if (folder / MANIFEST_FILE).exists() or (folder / MANIFEST_FILE).is_symlink():
            return folder
    raise ManifestError("", f"no {MANIFEST_FILE} in {start} or above; run 'plano init infra' or pass --dir")


def new_document(name: str, registry: str, email: str, images: dict[str, str] | None = None) -> str:
    """The commented plano.yml that `plano init` writes."""
    image = {**DEFAULT_IMAGES, **(images or {})}
    return f"""\
# plano.yml: the single source of truth for this infra.
# Edit it, then run `plano render`. Reference: README.md, section "plano.yml".
version: 1
name: {name}                 # names the compose projects ({name}, {name}-dev)
registry: {registry}   # where CI pushes <app>-backend and <app>-frontend
email: {email}               # Let's Encrypt account and expiry notices

# Infra images, pinned. Point them at your mirror if you have one.
images:
  nginx: {image['nginx']}
  postgres: {image['postgres']}
  redis: {image['redis']}
  certbot: {image['certbot']}
  node: {image['node']}   # base of the app images (build argument NODE_IMAGE)

# Certificates for prod: `plano certs issue --all` once `plano prod up` runs.
acme:
  server: {LETSENCRYPT}
  # ca_bundle: acme-ca.pem   # only for a private ACME CA: the CA of its HTTPS

# Backups: daily at `time` (UTC) into data/backups/, then retention. Optional offsite
# copy: restic: {{repository: s3:s3.example.com/acme-backups, password_file: restic-password}}
backup:
  time: "03:30"
  keep_daily: 7
  keep_weekly: 4
  keep_monthly: 6

prod:
  bind: 0.0.0.0
  http_port: 80
  https_port: 443

dev:
  bind: 127.0.0.1
  http_port: 80
  https_port: 443
  database_port: 5432        # Postgres for local tools, on 127.0.0.1 only
  redis_port: 6379
  domain_suffix: localhost   # app1 is served at https://app1.localhost

# The web dashboard (plano dashboard) also on a domain of its own, with HTTPS, behind nginx:
# dashboard:
#   domain: ops.example.com

# Add apps with `plano app add NAME --domain DOMAIN`.
apps: {{}}
"""
