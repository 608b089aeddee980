"""Every derived name in one place: services, networks, variables, images, paths.

If you wonder "where is the prod image name decided?", it is here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: plano --help does not load pydantic
    from plano.core.manifest import App, Manifest

ROLES = ("backend", "frontend")

# Container paths shared by the rendered files.
APP_WORKDIR = "/usr/src/app"
CERTS_IN_NGINX = "/etc/nginx/certs"
WEBROOT = "/var/www/certbot"  # the ACME HTTP-01 webroot, in the certbot and nginx containers
NGINX_CONF_DIR = "/etc/plano/nginx"  # docker/nginx/, mounted read-only
NGINX_CONF = f"{NGINX_CONF_DIR}/nginx.conf"
NGINX_RELOAD = f"{NGINX_CONF_DIR}/bin/plano-reload.sh"
NGINX_PROBE = f"{NGINX_CONF_DIR}/bin/plano-probe.sh"
CERTBOT_DEPLOY_HOOK = "/plano/scripts/deploy-hook.sh"
# nginx state that plano changes at run time (deploys, maintenance): data/nginx/.
RUNTIME_IN_NGINX = "/etc/plano/runtime"
# nginx's JSON access log (plano traffic, the dashboard's charts): data/logs/nginx/.
LOGS_IN_NGINX = "/var/log/plano"
ACCESS_LOG = "access.log"  # rotated to access.log.1 .. access.log.<ACCESS_LOG_KEEP>
ACCESS_LOG_ROTATE_BYTES = 32 * 1024 * 1024  # rotated once over this, checked every ACCESS_LOG_CHECK_SECONDS
ACCESS_LOG_KEEP = 7  # so at most (1 + 7) x 32 MiB, plus what one check interval adds
ACCESS_LOG_CHECK_SECONDS = 60
UPLOADS_IN_APP = "/data/uploads"
SECRETS_IN_CONTAINER = "/run/secrets"  # where compose mounts a service's secret files

# Who runs the infra services that do not start as root (numeric: plano chowns data/ to them).
APP_UID = 1000  # the `node` user of the official Node images, which app images run as
POSTGRES_UID = 999  # the postgres user of the official (Debian) Postgres image
REDIS_UID = 999  # the redis user of the official Redis image
BACKUP_USER = f"{APP_UID}:{APP_UID}"  # the apps' user: it reads and restores their uploads
CERTBOT_UID = 1001  # a user of its own; nginx reads the certificates through its group
CERTBOT_USER = f"{CERTBOT_UID}:{CERTBOT_UID}"
# The group (gid CERTBOT_UID) nginx's workers run with: they load the private keys,
# 0640 and owned by certbot's user and group, at the TLS handshake.
CERTS_GROUP = "plano-certs"
# How long an nginx worker serves a loaded certificate before it checks the files again
# (`ssl_certificate_cache valid=`): an installed or renewed certificate is served
# within this, with no reload.
CERT_CACHE_VALID_SECONDS = 5

# Files in the infra repo.
BASE_COMPOSE = "docker-compose.yml"
DEV_COMPOSE = "docker-compose.dev.yml"
PROD_COMPOSE = "docker-compose.prod.yml"
CUSTOM_COMPOSE = "docker-compose.custom.yml"
STACK_FILE = "docker-stack.yml"  # the swarm target's (target: swarm)
ENV_BASE = ".env"
ENV_DEV = ".env.dev"
ENV_PROD = ".env.prod"
ENV_PROD_EXAMPLE = ".env.prod.example"
SECRET_ENVS = (ENV_DEV, ENV_PROD)  # the env files that hold secrets (and may be kept encrypted)
SSH_KNOWN_HOSTS = "ssh_known_hosts"  # committed: the host keys of the environments' servers (plano server trust)
SOPS_CONFIG = ".sops.yaml"  # committed: which age recipients `plano secrets encrypt` encrypts for
# The dashboard's users and API tokens (hashed) and its session key: kept out of git as the
# env files are (.gitignore, and a .gitignore of its own), mode 0600 in a 0700 folder.
DASHBOARD_DIR = ".dashboard"
DASHBOARD_USERS = f"{DASHBOARD_DIR}/users.json"
DASHBOARD_KEY = f"{DASHBOARD_DIR}/secret.key"


def environment_env(environment: str) -> str:
    """The secrets of an environment plano operates over SSH: .env.production here is
    the server's .env.prod there."""
    return f"{ENV_BASE}.{environment}"


def encrypted(env_file: str) -> str:
    """The committed, SOPS-encrypted copy of a secret env file: `.env.prod` -> `.env.prod.enc`."""
    return f"{env_file}.enc"

DATA_DIRS = ("database", "certs", "certs/webroot", "certs/plano", "logs", "logs/certbot", "logs/nginx", "uploads",
             "backups", "nginx", "nginx/dns", "nginx/maintenance")


def access_logs_dir(mode: str) -> str:
    """nginx's access logs on the host (LOGS_IN_NGINX inside the container)."""
    return f"{data_root(mode)}/logs/nginx"


def infra_secrets(manifest: Manifest) -> dict[str, list[str]]:
    """The secrets (env file keys) each infra service reads from files, never from its environment."""
    databases = [db_password_var(name) for name, app in manifest.apps.items() if app.database]
    redis = [redis_password_var(name) for name, app in manifest.apps.items() if app.redis]
    return {"database": ["POSTGRES_PASSWORD", *databases], "redis": [REDIS_ADMIN_VAR, *redis], "backup": ["POSTGRES_PASSWORD"]}


# plano's own Redis user: it changes the apps' passwords at run time (secrets rotate).
REDIS_ADMIN = "plano"
REDIS_ADMIN_VAR = "REDIS_ADMIN_PASSWORD"


SECRET_OWNERS = {"database": POSTGRES_UID, "redis": REDIS_UID, "backup": APP_UID}


def secret_name(service: str, var: str) -> str:
    """A compose secret: the key's value for one service (database-postgres-password)."""
    return f"{service}-{var.lower().replace('_', '-')}"


def secret_file(mode: str, service: str, var: str) -> str:
    """Where plano writes it (git-ignored data/): one file per service, owned by its user."""
    return f"{data_root(mode)}/secrets/{service}/{var}"


def secret_in_container(var: str) -> str:
    return f"{SECRETS_IN_CONTAINER}/{var}"


def data_root(mode: str) -> str:
    """Where a mode keeps its data: prod in the seed's data/, dev in data/dev/, so
    the two never share a database initialised with the other's secrets."""
    return "data" if mode == "prod" else "data/dev"


def service(app: str, role: str) -> str:
    """The seed's names: app1-backend, app1-frontend."""
    return f"{app}-{role}"


def app_services(manifest: Manifest) -> dict[str, tuple[str, str]]:
    """Every app service of the stack (enabled ones), by compose name: app1-backend ->
    (app1, backend); apps in name order."""
    return {service(name, role): (name, role) for name, app in sorted(manifest.apps.items()) for role in app.services()}


def node_modules_volume(app: str, role: str) -> str:
    """Dev only: the image's node_modules, kept over the source bind mount."""
    return f"{service(app, role)}-node-modules"


def network(app: str) -> str:
    return f"{app}-net"


# How long nginx keeps an answer for a service's name (the `resolver ... valid=` of
# nginx.conf): how long a switch of `plano deploy` takes to reach every worker.
RESOLVER_VALID_SECONDS = 1
# The DNS server nginx asks, inside its own container (dnsmasq, started by
# entrypoint.d/45-plano-dns.sh): it answers a service's name from the override file
# a deploy writes (dns_override), else it asks Docker's DNS.
DNS_PORT_IN_NGINX = 5353
DOCKER_DNS = "127.0.0.11"


def engine_network(project: str, app: str) -> str:
    """The app's network as the engine names it: compose prefixes the project."""
    return f"{project}_{network(app)}"


def variable_prefix(app: str) -> str:
    """What an app's env variables start with: 'app-one' -> APP_ONE."""
    return app.upper().replace("-", "_")


def variable(app: str, key: str) -> str:
    """Env variable for an app: ('app-one', 'DB_PASSWORD') -> APP_ONE_DB_PASSWORD."""
    return f"{variable_prefix(app)}_{key}"


def db_password_var(app: str) -> str:
    return variable(app, "DB_PASSWORD")


def db_user_var(app: str) -> str:
    """Which of the app's two logins (db_logins) its URL names; absent: its own role."""
    return variable(app, "DB_USER")


def redis_password_var(app: str) -> str:
    return variable(app, "REDIS_PASSWORD")


def tag_var(app: str, role: str) -> str:
    return variable(app, f"{role.upper()}_TAG")


def db_name(app: str) -> str:
    return app


def db_role(app: str) -> str:
    return app


def db_logins(app: str) -> tuple[str, str]:
    """The two login roles an app's services use in turn (render/sql.py LOGIN_SQL): its own
    role, and a second one, so that a rotation gives a new password to the one no task
    uses while running tasks log in with the other."""
    return (db_role(app), f"{db_role(app)}_alt")


def db_login(app: str, env: dict[str, str]) -> str:
    """The login the app's URL names now (the env file's DB_USER, checked: one of db_logins)."""
    login = env.get(db_user_var(app)) or db_role(app)
    return login if login in db_logins(app) else db_role(app)


def db_other_login(app: str, env: dict[str, str]) -> str:
    current = db_login(app, env)
    return next(login for login in db_logins(app) if login != current)


def redis_user(app: str) -> str:
    return app


def redis_prefix(app: str) -> str:
    return f"{app}:"


def redis_rules(app: str) -> str:
    """An app's Redis user may use its own keys and channels only, and no dangerous command."""
    prefix = redis_prefix(app)
    return f"resetkeys ~{prefix}* resetchannels &{prefix}* +@all -@dangerous -scan -randomkey"


def upstream(app: str, role: str) -> str:
    return f"{app}_{role}".replace("-", "_")


def prod_image(manifest: Manifest, app_name: str, role: str) -> str:
    """Image name without tag: the registry's <app>-<role> unless plano.yml names one."""
    svc = manifest.apps[app_name].services()[role]
    return svc.image or f"{manifest.registry}/{service(app_name, role)}"


def source(app_name: str, app: App, role: str) -> str:
    """Source folder relative to the infra repo: the seed's side-by-side ../app1/backend."""
    return app.services()[role].source or f"../{app_name}/{role}"


def build_context(app_name: str, app: App, role: str) -> str:
    """The folder images are built from: the workspace root for a service in a workspace."""
    return app.services()[role].workspace or source(app_name, app, role)


def inner_folder(app_name: str, app: App, role: str) -> str:
    """The service's folder inside its build context: "apps/api", or "." on its own."""
    from plano.core.manifest import workspace_path  # at call time: plano --help does not load pydantic

    return workspace_path(build_context(app_name, app, role), source(app_name, app, role)) or "."


def dockerfile(app_name: str, app: App, role: str) -> str:
    """The service's Dockerfile, relative to its build context (compose's build.dockerfile)."""
    inner = inner_folder(app_name, app, role)
    return "Dockerfile" if inner == "." else f"{inner}/Dockerfile"


def workdir(app_name: str, app: App, role: str) -> str:
    """The service's folder in its containers: the app workdir, or its folder in the workspace."""
    inner = inner_folder(app_name, app, role)
    return APP_WORKDIR if inner == "." else f"{APP_WORKDIR}/{inner}"


def dev_node_modules(app_name: str, app: App, role: str) -> list[tuple[str, str]]:
    """Dev only: (volume, container path) of each node_modules kept from the image over
    the source bind mount: the context's, and the service's own in a workspace."""
    volumes = [(node_modules_volume(app_name, role), f"{APP_WORKDIR}/node_modules")]
    if inner_folder(app_name, app, role) != ".":
        volumes.append((f"{service(app_name, role)}-own-node-modules", f"{workdir(app_name, app, role)}/node_modules"))
    return volumes


def dev_domains(manifest: Manifest, app_name: str) -> list[str]:
    return [f"{app_name}.{manifest.dev.domain_suffix}"]


def server_names(manifest: Manifest, app_name: str) -> list[str]:
    return [*manifest.apps[app_name].domains, *dev_domains(manifest, app_name)]


def cert_dir(app: str) -> str:
    """Where nginx reads the app's certificate (ACME, your own, or a placeholder)."""
    return f"{CERTS_IN_NGINX}/plano/{app}"


def maintenance_flag(app: str, mode: str = "prod") -> str:
    """While this file exists, nginx answers the app's requests with its 503 page."""
    return f"{data_root(mode)}/nginx/maintenance/{app}"


# The dashboard's site, certificate lineage and access-log "app" (dashboard.domain):
# named so because no app may be (fields.RESERVED_NAMES).
DASHBOARD_SITE = "plano"
DASHBOARD_SOCKET = "dashboard.sock"  # in data/nginx/ (RUNTIME_IN_NGINX): plano dashboard listens, nginx proxies


def dashboard_socket(mode: str = "prod") -> str:
    """Where `plano dashboard` listens for nginx when dashboard.domain is set (a unix
    socket: nothing is opened on the network, as with 127.0.0.1)."""
    return f"{data_root(mode)}/nginx/{DASHBOARD_SOCKET}"


def site_file(app: str) -> str:
    return f"docker/nginx/sites-enabled/{app}.conf"


CUSTOM_SNIPPETS = "custom"  # under docker/nginx/, included by each app's site


def custom_snippets_dir(app: str) -> str:
    """User-owned nginx snippets for one app's HTTPS server; render never touches them."""
    return f"docker/nginx/{CUSTOM_SNIPPETS}/{app}"


def env_file(app: str, role: str) -> str:
    """User-owned, committed, non-secret settings for one service."""
    return f"env/{service(app, role)}.env"


def uploads_dir(app: str, mode: str = "prod") -> str:
    return f"{data_root(mode)}/uploads/{app}"


def project(manifest: Manifest, mode: str) -> str:
    return manifest.name if mode == "prod" else f"{manifest.name}-{mode}"




# ---------------------------------------------------------------- files under data/


def installed_cert_dir(mode: str, app: str) -> str:
    """Where plano installs the app's certificate and key for nginx (cert_dir inside it)."""
    return f"{data_root(mode)}/certs/plano/{app}"


def dns_overrides(mode: str) -> str:
    return f"{data_root(mode)}/nginx/dns"


def dns_override(mode: str, service_name: str) -> str:
    """While this file exists, nginx's DNS answers `service_name` with the addresses in
    it (a hosts file), not Docker's: a deploy switches nginx with it, with no reload."""
    return f"{dns_overrides(mode)}/{service_name}"


DEPLOY_LOG = "data/logs/deploys.jsonl"  # prod only: the deploy log (plano releases)


def k8s_deploy_log(environment: str) -> str:
    """The deploy log of `plano -e NAME k8s deploy` (run here, for the environment's
    namespace): apart from prod's, whose rollbacks read it."""
    return DEPLOY_LOG if environment == K8S_PROD else f"data/logs/deploys.{environment}.jsonl"


AUDIT_LOG = "data/logs/audit.jsonl"  # every command that changed something, by whom, from where (plano audit)


def deploy_lock(app: str, environment: str | None = None) -> str:
    """One deploy of `app` at a time: on this server, or (`plano -e NAME k8s deploy`, run
    here against a cluster) per environment, as each has its own namespace."""
    return f"data/logs/.deploy-{app}.lock" if environment is None else f"data/logs/.deploy-{app}.{environment}.lock"


def backups_dir(mode: str) -> str:
    return f"{data_root(mode)}/backups"


# ---------------------------------------------------------------- the swarm target

# What a node of the swarm is for; `plano swarm label NODE ROLE` sets the label, and
# one node may hold several roles.
SWARM_ROLES = ("edge", "data", "apps")


def swarm_label(role: str) -> str:
    """The node label of a role: plano.edge, plano.data, plano.apps (value "true")."""
    return f"plano.{role}"


def swarm_constraint(role: str) -> str:
    return f"node.labels.{swarm_label(role)} == true"


def swarm_infra_image(manifest: Manifest, service: str) -> str:
    """Where `plano swarm up` pushes an infra service's image (a swarm builds nothing):
    beside the apps' images in the registry, e.g. registry.example.com/acme/plano-nginx."""
    return f"{manifest.registry}/{manifest.name}-{service}"


def swarm_image_var(service: str) -> str:
    """The environment variable holding an infra image's tag (its build's content hash)."""
    return f"PLANO_{service.upper()}_IMAGE_TAG"


def swarm_secret_var(service: str, var: str) -> str:
    """The environment variable holding a Swarm secret's version (its content's hash)."""
    return f"PLANO_SECRET_{service.upper()}_{var}"


# On a swarm, Postgres and Redis mount only their admin password: the apps' roles and
# Redis users are made by two jobs (ops/provision.py) from the apps' own Swarm secrets,
# so a new app password is no change to them (a change would restart them, stop-first).
SWARM_OWN_SECRETS = {"database": ("POSTGRES_PASSWORD",), "redis": (REDIS_ADMIN_VAR,), "backup": ("POSTGRES_PASSWORD",)}
# Tells the database's init script that the provisioning job makes the apps' roles.
SWARM_APPS_BY_JOB = "PLANO_APPS_BY_JOB"
# data/redis/ on the data node: the ACL file Redis saves the apps' users in (ACL SAVE), so
# that they outlive a restart of Redis; the entrypoint reads it back.
REDIS_ACL_DIR = "redis"
REDIS_ACL_IN_CONTAINER = "/data/acl/users.acl"
SWARM_ACL_FILE_VAR = "PLANO_REDIS_ACL_FILE"  # set (to it) on a swarm only


# ---------------------------------------------------------------- kubernetes (export)
#
# `plano export kubernetes` writes a kustomize tree (render/kubernetes.py). Secrets are
# never in it: its objects name Secrets and keys (secretKeyRef, secret volumes), which
# `plano k8s secrets apply` creates in the namespace from .env.prod (with -e NAME: in the
# environment's namespace, from .env.NAME). Each key is the
# .env.prod variable of the same name, so the Secrets are these, and only these:
#
#   <app>-secrets      the app's own: <APP>_DB_PASSWORD (when it has a database),
#                      <APP>_REDIS_PASSWORD (when it has Redis). Its pods and its
#                      release Job read them; nothing else does.
#   database-secrets   POSTGRES_PASSWORD (the admin's, or the managed database's admin
#                      with database: external) and every <APP>_DB_PASSWORD: Postgres
#                      and the provisioning Jobs read them.
#   redis-secrets      REDIS_ADMIN_PASSWORD and every <APP>_REDIS_PASSWORD: Redis builds
#                      its ACL file from them at start.
#   backup-secrets     POSTGRES_PASSWORD, and RESTIC_PASSWORD (the content of
#                      backup.restic.password_file) when an offsite copy is configured.
#   acme-dns01         api-token: a Cloudflare API token (kubernetes.issuer: dns01 only; .env.prod's
#                      CLOUDFLARE_API_TOKEN), in cert-manager's own namespace, where a
#                      ClusterIssuer reads its Secrets.
#   <app>-tls          a kubernetes.io/tls Secret: cert-manager writes it, or, for an app
#                      with its own certificate (apps.X.tls), `secrets apply` from the files.
#
# RESTIC_PASSWORD is not in .env.prod: `secrets apply` reads backup.restic.password_file.

K8S_DIR = "k8s"  # in the infra repo; `plano render` keeps it up to date once it exists
K8S_BASE = "base"
K8S_OVERLAYS = "overlays"
K8S_PROD = "prod"  # the overlay without -e; every environment of plano.yml has its own beside it
K8S_RELEASE = "release"  # beside the base and in each overlay: the release Jobs, applied by `plano k8s deploy`

# Labels: the recommended ones, and the app a pod belongs to (its compose network).
K8S_NAME_LABEL = "app.kubernetes.io/name"
K8S_COMPONENT_LABEL = "app.kubernetes.io/component"
K8S_PART_OF_LABEL = "app.kubernetes.io/part-of"
K8S_MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
K8S_APP_LABEL = "plano.dev/app"
# The pods cert-manager starts to answer HTTP-01 challenges carry this label.
K8S_HTTP01_SOLVER_LABEL = "acme.cert-manager.io/http01-solver"
K8S_HTTP01_SOLVER_PORT = 8089
# The cluster's DNS pods (CoreDNS keeps kube-dns's label).
K8S_DNS_NAMESPACE = "kube-system"
K8S_DNS_LABELS = {"k8s-app": "kube-dns"}
K8S_NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace

K8S_DATABASE = "database"  # the Service name the apps' URLs already use (compose's service name)
K8S_REDIS = "redis"
K8S_BACKUP = "backup"
K8S_MAINTENANCE = "maintenance"
K8S_BACKUPS_CLAIM = "backups"
K8S_DNS01_SECRET = "acme-dns01"
K8S_DNS01_KEY = "api-token"
K8S_DNS01_VAR = "CLOUDFLARE_API_TOKEN"  # in .env.prod: what `plano k8s secrets apply` puts in acme-dns01
K8S_CERT_MANAGER_NAMESPACE = "cert-manager"  # cert-manager's own: where a ClusterIssuer reads its Secrets
K8S_RESTIC_KEY = "RESTIC_PASSWORD"


def k8s_namespaces(manifest: Manifest) -> dict[str, str]:
    """Each overlay of the export (prod first, then every environment) and its namespace:
    prod's kubernetes.namespace (default: the name), an environment's own (default
    <prod's>-<environment>). The rule is manifest.k8s_namespaces, which validation checks
    (each overlay its own namespace, at most 63 characters)."""
    from plano.core.manifest import k8s_namespaces  # at call time: plano --help does not load pydantic

    return k8s_namespaces(manifest)


def k8s_namespace(manifest: Manifest, environment: str = K8S_PROD) -> str:
    return k8s_namespaces(manifest)[environment]


def k8s_context(manifest: Manifest, environment: str = K8S_PROD) -> str | None:
    """The kubectl context an overlay is applied with: prod's kubernetes.context, an
    environment's own (default prod's); None: kubectl's current context."""
    settings = manifest.environments[environment].kubernetes if environment != K8S_PROD else None
    return (settings.context if settings else None) or manifest.kubernetes.context


def k8s_path(*parts: str) -> str:
    """A file of the tree, as the infra repo holds it: k8s/base/apps/app1.yaml."""
    return "/".join((K8S_DIR, *parts))


def k8s_overlay(environment: str = K8S_PROD) -> str:
    return k8s_path(K8S_OVERLAYS, environment)


def k8s_selector(name: str) -> dict[str, str]:
    """What a Service, a PodDisruptionBudget or a policy selects a workload's pods by."""
    return {K8S_NAME_LABEL: name}


def k8s_labels(manifest: Manifest, name: str, component: str, app: str | None = None) -> dict[str, str]:
    """Every object's labels: its name, what it is, the platform, plano, and its app."""
    labels = {K8S_NAME_LABEL: name, K8S_COMPONENT_LABEL: component, K8S_PART_OF_LABEL: manifest.name,
              K8S_MANAGED_BY_LABEL: "plano"}
    return labels | ({K8S_APP_LABEL: app} if app else {})


def k8s_app_secret(app: str) -> str:
    return f"{app}-secrets"


def k8s_infra_secret(service_name: str) -> str:
    """database-secrets, redis-secrets, backup-secrets."""
    return f"{service_name}-secrets"


def k8s_app_secret_keys(name: str, app: App) -> list[str]:
    """The keys of the app's own Secret (none: it has no Secret)."""
    return [*([db_password_var(name)] if app.database else []), *([redis_password_var(name)] if app.redis else [])]


def k8s_secrets(manifest: Manifest) -> dict[str, list[str]]:
    """Every Secret the tree names, with its keys (see above); `plano k8s secrets apply`
    creates exactly these. TLS Secrets of apps with their own certificate are apart."""
    wanted = {k8s_app_secret(name): k8s_app_secret_keys(name, app) for name, app in sorted(manifest.apps.items())}
    wanted = {name: keys for name, keys in wanted.items() if keys}
    infra = infra_secrets(manifest)
    wanted[k8s_infra_secret(K8S_DATABASE)] = infra["database"]
    wanted[k8s_infra_secret(K8S_REDIS)] = infra["redis"]
    wanted[k8s_infra_secret(K8S_BACKUP)] = [*infra["backup"], *([K8S_RESTIC_KEY] if manifest.backup.restic else [])]
    if manifest.kubernetes.issuer == "dns01":
        wanted[K8S_DNS01_SECRET] = [K8S_DNS01_KEY]
    return wanted


def k8s_env_config(app: str, role: str) -> str:
    """The ConfigMap of a service's own non-secret settings (env/<app>-<role>.env, compose's
    env_file): optional, made from that file (kubectl create configmap --from-env-file)."""
    return f"{service(app, role)}-env"


def k8s_tls_secret(app: str) -> str:
    return f"{app}-tls"


def k8s_issuer(manifest: Manifest) -> str:
    """The ClusterIssuer (cluster-wide: named after the platform)."""
    return f"{manifest.name}-acme"


def k8s_acme_account_secret(manifest: Manifest) -> str:
    """Where cert-manager keeps the ACME account key (in its own namespace)."""
    return f"{manifest.name}-acme-account"


def k8s_release_job(app: str, role: str) -> str:
    return f"{service(app, role)}-release"


def k8s_provision_job(app: str) -> str:
    return f"{app}-provision"


def k8s_uploads_claim(app: str) -> str:
    return f"{app}-uploads"


def k8s_infra_image(manifest: Manifest, service_name: str) -> str:
    """An image plano builds (the backup's): pushed beside the swarm's, in the registry."""
    return swarm_infra_image(manifest, service_name)
