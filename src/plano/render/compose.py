"""The three compose files, built as data and dumped as YAML."""

from __future__ import annotations

from typing import Any

from plano.core import fields
from plano.core import naming as n
from plano.core.files import File, Kind, Tree, with_header
from plano.core.manifest import App, Limits, Manifest
from plano.core.mode import Mode

NGINX_CMD = ["nginx", "-c", n.NGINX_CONF, "-g", "daemon off;"]
DEV_WATCH_ENV = {
    # TypeScript's watcher (NestJS start:dev) polls when file events don't cross the bind mount.
    "TSC_WATCHFILE": "PriorityPollingInterval",
    "TSC_WATCHDIRECTORY": "DynamicPriorityPolling",
    "CHOKIDAR_USEPOLLING": "true",
    "WATCHPACK_POLLING": "true",
}


# Every service's restart policy. Not `unless-stopped`: when dockerd dies while its
# containers run (killed, OOM, crashed) and starts again without live-restore, its
# restore stops the containers it finds alive and marks them stopped by hand, so
# `unless-stopped` ones stay down until someone runs `plano prod up` (measured:
# nothing ran 182 s after a restart). `always` ones start again at once; at boot both
# start with the engine. plano never leaves a stopped container behind (`prod down`
# and deploys remove them), so `always` resurrects nothing that was meant to stay down.
RESTART = "always"


def logging() -> dict[str, Any]:
    """Capped json-file logs (a fresh dict each time: the YAML has no anchors)."""
    return {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def literal(text: str) -> str:
    """User text as compose reads it back unchanged: `$` doubled, so compose never
    interpolates it (a command's `${POSTGRES_PASSWORD}` stays those characters)."""
    return text.replace("$", "$$")


def required(var: str, where: str) -> str:
    return f"${{{var}:?{var} is missing: set it in {where} (plano render creates it)}}"


def hardening(*caps: str) -> dict[str, Any]:
    block: dict[str, Any] = {"security_opt": ["no-new-privileges:true"], "cap_drop": ["ALL"]}
    if caps:
        block["cap_add"] = list(caps)
    return block


# `init: true`: Docker's init (tini) is PID 1 and hands the stop signal to the service's
# process, which then has its default handlers (a Node.js server as PID 1 ignores
# SIGTERM unless it installs a handler; a shell loop ignores it while a child runs),
# and reaps orphans. Each service then exits on its own stop signal, not by the
# SIGKILL after the grace period. Not for the database: its entrypoint starts as root
# and execs Postgres as the postgres user, and a root tini without CAP_KILL (all
# capabilities are dropped) may not signal it ("Operation not permitted"): tini exits
# and Postgres is killed without its shutdown checkpoint. Postgres as PID 1 handles
# its stop signal (SIGINT, fast shutdown) and reaps its own children.
INIT: dict[str, Any] = {"init": True}


def healthcheck(test: list[str], start: str = "30s") -> dict[str, Any]:
    return {"test": test, "interval": "10s", "timeout": "5s", "retries": 5, "start_period": start}


def built(context: str, arg: str, image: str) -> dict[str, Any]:
    return {"context": context, "args": {arg: image}}


def app_networks(manifest: Manifest, uses: str | None = None) -> list[str]:
    """Networks of all apps, or of those using `uses` ("database", "redis")."""
    return [n.network(name) for name, app in manifest.apps.items() if uses is None or getattr(app, uses)]


# Data mounts per mode: the dev override points the same container paths at data/dev/.
def nginx_data(mode: Mode) -> list[str]:
    data = n.data_root(mode)
    return [f"./{data}/certs:{n.CERTS_IN_NGINX}", f"./{data}/certs/webroot:{n.WEBROOT}:ro", f"./{data}/nginx:{n.RUNTIME_IN_NGINX}",
            f"./{n.access_logs_dir(mode)}:{n.LOGS_IN_NGINX}"]


def certbot_data(mode: Mode) -> list[str]:
    data = n.data_root(mode)
    return [f"./{data}/certs:/etc/letsencrypt", f"./{data}/certs/webroot:{n.WEBROOT}", f"./{data}/logs/certbot:/var/log/letsencrypt"]


def backup_data(mode: Mode) -> list[str]:
    data = n.data_root(mode)
    return [f"./{data}/backups:/backups", f"./{data}/uploads:/uploads"]


def host_path(path: str) -> str:
    """A path from plano.yml as compose wants it: absolute, or ./relative to the infra."""
    return path if path.startswith("/") else f"./{path}"


def bind_source(path: str) -> str:
    """A folder as a bind mount's source: compose reads `app:` as a named volume, `./app:` as a path."""
    return path if path.startswith(("/", "./", "../", "~")) or path in (".", "..") else f"./{path}"


RESTIC_PASSWORD_IN_BACKUP = "/run/secrets/restic-password"
PGPASSFILE_IN_BACKUP = "/tmp/plano-pgpass"


def secrets_of(manifest: Manifest, service: str) -> dict[str, Any]:
    """A service's secret files, mounted read-only at /run/secrets/<KEY> (none: no key)."""
    wanted = n.infra_secrets(manifest)[service]
    return {"secrets": [{"source": n.secret_name(service, var), "target": var} for var in wanted]} if wanted else {}


def secret_sources(manifest: Manifest, mode: Mode) -> dict[str, Any]:
    """Top-level `secrets:`: files plano writes from the env file (compose's `environment:`
    source refuses read-only services, see the README), owned by the service's user."""
    return {n.secret_name(service, var): {"file": f"./{n.secret_file(mode, service, var)}"}
            for service, wanted in n.infra_secrets(manifest).items() for var in wanted}


def backup_service(manifest: Manifest) -> dict[str, Any]:
    settings = manifest.backup
    env: dict[str, str] = {
        "PGHOST": "database",
        "PGUSER": "postgres",
        "PGDATABASE": "postgres",
        # plano-backup.sh writes the passfile (0600, tmpfs) from the secret file at start.
        "PGPASSFILE": PGPASSFILE_IN_BACKUP,
        "POSTGRES_PASSWORD_FILE": n.secret_in_container("POSTGRES_PASSWORD"),
        "BACKUP_APPS": " ".join(sorted(manifest.apps)),
        "BACKUP_DB_APPS": " ".join(sorted(name for name, app in manifest.apps.items() if app.database)),
        "BACKUP_TIME": settings.time,
        "KEEP_DAILY": str(settings.keep_daily),
        "KEEP_WEEKLY": str(settings.keep_weekly),
        "KEEP_MONTHLY": str(settings.keep_monthly),
    }
    volumes = backup_data(Mode.PROD)
    if settings.restic:
        env |= {"RESTIC_REPOSITORY": literal(settings.restic.repository), "RESTIC_PASSWORD_FILE": RESTIC_PASSWORD_IN_BACKUP,
                "RESTIC_CACHE_DIR": "/tmp/restic-cache"}
        volumes = [*volumes, f"{host_path(settings.restic.password_file)}:{RESTIC_PASSWORD_IN_BACKUP}:ro"]
        if settings.restic.repository.startswith("/"):  # a local repository: the same path inside
            volumes.append(f"{settings.restic.repository}:{settings.restic.repository}")
    return {
        "build": built("./docker/backup", "POSTGRES_IMAGE", manifest.images.postgres),
        "restart": RESTART,
        **INIT,
        "user": n.BACKUP_USER,
        "environment": env,
        "volumes": volumes,
        **secrets_of(manifest, "backup"),
        "depends_on": {"database": {"condition": "service_healthy"}},
        "healthcheck": {"test": ["CMD", "backup-health.sh"], "interval": "15s", "timeout": "10s", "retries": 1, "start_period": "10s"},
        "networks": ["backup"],
        "read_only": True,
        # The Postgres image declares its data folder a VOLUME (/var/lib/postgresql/data up
        # to 17, /var/lib/postgresql from 18): unmounted, each new backup container would
        # leave an anonymous volume behind. This service runs no server there.
        "tmpfs": ["/tmp", "/var/lib/postgresql", "/var/lib/postgresql/data"],
        # As the apps' user (it reads and restores their uploads), with no capability.
        **hardening(),
        "logging": logging(),
    }


def database_data(mode: Mode) -> list[str]:
    return [f"./{n.data_root(mode)}/database:/var/lib/postgresql/data"]


def uploads_data(app: str, mode: Mode) -> list[str]:
    return [f"./{n.uploads_dir(app, mode)}:{n.UPLOADS_IN_APP}"]


def nginx_service(manifest: Manifest) -> dict[str, Any]:
    return {
        "build": built("./docker/nginx", "NGINX_IMAGE", manifest.images.nginx),
        "command": NGINX_CMD,
        "restart": RESTART,
        **INIT,
        "volumes": [f"./docker/nginx:{n.NGINX_CONF_DIR}:ro", *nginx_data(Mode.PROD)],
        "healthcheck": healthcheck(["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8081/.plano/health"], "10s"),
        "networks": ["edge", *app_networks(manifest)],
        "read_only": True,
        "tmpfs": ["/tmp", "/var/cache/nginx", "/run"],
        **hardening("CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"),
        "logging": logging(),
    }


ACME_CA_IN_CERTBOT = "/etc/plano/acme-ca.pem"


def certbot_service(manifest: Manifest) -> dict[str, Any]:
    # Tunable from the env file (a short-lived test CA renews in seconds).
    environment = {"ACME_EMAIL": literal(manifest.email), "RENEW_INTERVAL_SECONDS": "${PLANO_RENEW_INTERVAL_SECONDS:-43200}"}
    volumes = certbot_data(Mode.PROD)
    bundle = manifest.acme.ca_bundle
    if bundle:  # a private ACME CA: certbot (python-requests) trusts this file
        environment["REQUESTS_CA_BUNDLE"] = ACME_CA_IN_CERTBOT
        volumes = [*volumes, f"{bundle if bundle.startswith('/') else './' + bundle}:{ACME_CA_IN_CERTBOT}:ro"]
    return {
        "build": built("./docker/certbot", "CERTBOT_IMAGE", manifest.images.certbot),
        "restart": RESTART,
        **INIT,
        "user": n.CERTBOT_USER,
        "environment": environment,
        "volumes": volumes,
        "healthcheck": healthcheck(["CMD", "grep", "-qx", "ok", "/tmp/plano-renew-status"], "60s"),
        "networks": ["edge"],
        "read_only": True,
        "tmpfs": ["/tmp", f"/var/lib/letsencrypt:uid={n.CERTBOT_UID},gid={n.CERTBOT_UID}"],
        **hardening(),
        "logging": logging(),
    }


def database_service(manifest: Manifest) -> dict[str, Any]:
    env = {"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "POSTGRES_PASSWORD_FILE": n.secret_in_container("POSTGRES_PASSWORD")}
    return {
        "build": built("./docker/database", "POSTGRES_IMAGE", manifest.images.postgres),
        "restart": RESTART,
        "environment": env,
        "volumes": database_data(Mode.PROD),
        **secrets_of(manifest, "database"),
        "shm_size": "128mb",
        # Its stop signal is the image's SIGINT (fast shutdown: a checkpoint, then exit);
        # a busy server may need more than 10 s to checkpoint before Docker kills it.
        "stop_grace_period": "60s",
        # -h 127.0.0.1: the init-time server listens on the socket only, so this
        # passes only once initialisation is over.
        "healthcheck": healthcheck(["CMD", "pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]),
        "networks": [*app_networks(manifest, "database"), "backup"],
        "read_only": True,
        "tmpfs": ["/tmp", "/var/run/postgresql"],
        **hardening("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
        "logging": logging(),
    }


def redis_service(manifest: Manifest) -> dict[str, Any]:
    return {
        "build": built("./docker/redis", "REDIS_IMAGE", manifest.images.redis),
        "restart": RESTART,
        **INIT,
        "user": "redis",
        **secrets_of(manifest, "redis"),
        "healthcheck": healthcheck(["CMD", "redis-cli", "ping"], "10s"),
        "networks": app_networks(manifest, "redis") or ["edge"],
        "read_only": True,
        "tmpfs": ["/tmp", "/data"],
        **hardening(),
        "logging": logging(),
    }


def app_environment(manifest: Manifest, name: str, app: App, role: str) -> dict[str, str]:
    where = f"{n.ENV_DEV} or {n.ENV_PROD}"
    port = str(app.services()[role].port)
    env = {"NODE_ENV": "production", "PORT": port, "HOSTNAME": "0.0.0.0"}
    if role == "backend":
        env["TRUST_PROXY"] = "1"
        env["UPLOADS_DIR"] = n.UPLOADS_IN_APP
        if app.database:
            password = required(n.db_password_var(name), where)
            env["DATABASE_URL"] = f"postgres://{db_user(name)}:{password}@database:5432/{n.db_name(name)}"
        if app.redis:
            password = required(n.redis_password_var(name), where)
            env["REDIS_URL"] = f"redis://{n.redis_user(name)}:{password}@redis:6379/0"
            env["REDIS_KEY_PREFIX"] = n.redis_prefix(name)
    elif app.backend.enabled:
        env["BACKEND_URL"] = f"http://{n.service(name, 'backend')}:{app.backend.port}"
    env["PUBLIC_URL"] = f"https://{app.domains[0]}"
    for key, ref in app.services()[role].env.items():
        env[key] = provided(name, ref, where)
    return env


def db_user(app: str) -> str:
    """The login the app's URL names: the env file's choice (plano secrets rotate switches
    between naming.db_logins), its own role by default."""
    return f"${{{n.db_user_var(app)}:-{n.db_role(app)}}}"


def provided(app: str, ref: str, where: str) -> str:
    """The value behind an env mapping's reference (apps.X.<role>.env), e.g. database.host."""
    kind, key = ref.split(".", 1)
    if kind == "database":
        password = required(n.db_password_var(app), where)
        return {"host": "database", "port": "5432", "user": db_user(app), "name": n.db_name(app), "password": password,
                "url": f"postgres://{db_user(app)}:{password}@database:5432/{n.db_name(app)}"}[key]
    password = required(n.redis_password_var(app), where)
    return {"host": "redis", "port": "6379", "user": n.redis_user(app), "password": password, "prefix": n.redis_prefix(app),
            "url": f"redis://{n.redis_user(app)}:{password}@redis:6379/0"}[key]


def node_probe(port: int, path: str) -> list[str]:
    """Healthy means a 2xx or 3xx answer of the service's own health route: a 404 (a
    wrong path) or a 401 is not health. Redirects are not followed, so a 3xx counts
    as the app answering, not as whatever it points to."""
    script = (
        f"fetch('http://127.0.0.1:{port}{path}',{{redirect:'manual',signal:AbortSignal.timeout(4000)}})"
        ".then(r=>process.exit(r.status>=200&&r.status<400?0:1)).catch(()=>process.exit(1))"
    )
    return ["CMD", "node", "-e", script]


def app_service(manifest: Manifest, name: str, app: App, role: str) -> dict[str, Any]:
    svc = app.services()[role]
    depends = {}
    if role == "backend":
        depends = {dep: {"condition": "service_healthy"} for dep, wanted in (("database", app.database), ("redis", app.redis)) if wanted}
    spec: dict[str, Any] = {
        "restart": RESTART,
        **INIT,
        "environment": app_environment(manifest, name, app, role),
        "env_file": [{"path": f"./{n.env_file(name, role)}", "required": False}],
    }
    if role == "backend":
        spec["volumes"] = uploads_data(name, Mode.PROD)
    if depends:
        spec["depends_on"] = depends
    spec.update(
        {
            "healthcheck": healthcheck(node_probe(svc.port, svc.health)),
            "networks": [n.network(name)],
            "read_only": True,
            # Next.js writes its cache as the image's non-root user (uid 1000 in Node images).
            "tmpfs": ["/tmp", f"{n.workdir(name, app, role)}/.next/cache:uid=1000,gid=1000"] if role == "frontend" else ["/tmp"],
            **hardening(),
            "logging": logging(),
        }
    )
    return spec


def base(manifest: Manifest) -> dict[str, Any]:
    services = {
        "nginx": nginx_service(manifest),
        "certbot": certbot_service(manifest),
        "database": database_service(manifest),
        "redis": redis_service(manifest),
        "backup": backup_service(manifest),
    }
    for name, app in manifest.apps.items():
        for role in app.services():
            services[n.service(name, role)] = app_service(manifest, name, app, role)
    networks = {"edge": {}, "backup": {}} | {n.network(name): {} for name in manifest.apps}
    return {"name": manifest.name, "include": [n.CUSTOM_COMPOSE], "services": services, "networks": networks,
            "secrets": secret_sources(manifest, Mode.PROD)}


def published(bind: str, host: int, container: int) -> str:
    return f"{bind}:{host}:{container}"


def dev(manifest: Manifest) -> dict[str, Any]:
    d = manifest.dev
    services: dict[str, Any] = {
        "nginx": {"ports": [published(d.bind, d.http_port, 80), published(d.bind, d.https_port, 443)], "volumes": nginx_data(Mode.DEV)},
        "certbot": {"volumes": certbot_data(Mode.DEV)},
        "backup": {"volumes": backup_data(Mode.DEV)},
        "database": {"ports": [published(d.bind, d.database_port, 5432)], "volumes": database_data(Mode.DEV)},
        "redis": {"ports": [published(d.bind, d.redis_port, 6379)]},
    }
    for name, app in manifest.apps.items():
        for role, svc in app.services().items():
            context, dockerfile, workdir = n.build_context(name, app, role), n.dockerfile(name, app, role), n.workdir(name, app, role)
            services[n.service(name, role)] = {
                "build": {"context": context, **({"dockerfile": dockerfile} if dockerfile != "Dockerfile" else {}),
                          "target": svc.dev_target, "args": {"NODE_IMAGE": manifest.images.node}},
                **({"working_dir": workdir} if workdir != n.APP_WORKDIR else {}),
                "command": [literal(word) for word in svc.dev_command],
                "environment": {"NODE_ENV": "development", **DEV_WATCH_ENV, "PUBLIC_URL": f"https://{n.dev_domains(manifest, name)[0]}"},
                # node_modules comes from the image, in a named volume over the bind mount:
                # the host's never leaks in, and `dev down --volumes` removes it (an
                # anonymous one is handed from container to container and outlives down).
                "volumes": [
                    f"{bind_source(context)}:{n.APP_WORKDIR}",
                    *(f"{volume}:{path}" for volume, path in n.dev_node_modules(name, app, role)),
                    *(uploads_data(name, Mode.DEV) if role == "backend" else []),
                ],
                "read_only": False,
                # Dev servers compile on start (slowly on a busy laptop): more time before unhealthy.
                "healthcheck": {"start_period": "180s"},
            }
    volumes = {volume: {} for name, app in manifest.apps.items() for role in app.services()
               for volume, _ in n.dev_node_modules(name, app, role)}
    return {"name": Mode.DEV.project(manifest), "services": services, **({"volumes": volumes} if volumes else {}),
            "secrets": secret_sources(manifest, Mode.DEV)}


HEAP_SHARE = 0.75  # of a Node service's memory limit, for V8's old space: the rest is buffers, code, stacks


def limited(limits: Limits) -> dict[str, Any]:
    """A service's limits as plain compose keys, which `compose up` applies without swarm.
    Swap equal to memory: no swap, so the memory limit is the real one. No cpus: no cap."""
    cpus = {"cpus": limits.cpus} if limits.cpus is not None else {}
    return {"mem_limit": limits.memory, "memswap_limit": limits.memory, **cpus, "pids_limit": limits.pids}


def node_heap_mib(limits: Limits) -> int:
    """V8 sizes its heap from the machine, or (Node >= 20) from the cgroup, but not under
    it: measured in a 256m container, Node 24's heap limit is 259 MB. Below the limit,
    V8 collects before the kernel kills the process, and a leak ends in a heap error."""
    return int(fields.memory_bytes(limits.memory) * HEAP_SHARE) // fields.MIB


def prod(manifest: Manifest) -> dict[str, Any]:
    p = manifest.prod
    services: dict[str, Any] = {
        "nginx": {"ports": [published(p.bind, p.http_port, 80), published(p.bind, p.https_port, 443)], **limited(manifest.limits.nginx)},
        **{name: limited(getattr(manifest.limits, name)) for name in ("certbot", "database", "redis", "backup")},
    }
    for name, app in manifest.apps.items():
        for role, svc in app.services().items():
            image = n.prod_image(manifest, name, role)
            services[n.service(name, role)] = {
                "image": f"{image}:${{{n.tag_var(name, role)}:-latest}}",
                "environment": {"NODE_OPTIONS": f"--max-old-space-size={node_heap_mib(svc.limits)}"},
                **limited(svc.limits),
            }
    return {"services": services}


def dump(data: dict[str, Any]) -> str:
    """YAML from data, keys in the order built; libyaml's C emitter when present."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, width=4096, indent=2)


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    del env_values  # compose files never hold secret values, only ${VARIABLES}
    files = {n.BASE_COMPOSE: base(manifest), n.DEV_COMPOSE: dev(manifest), n.PROD_COMPOSE: prod(manifest)}
    tree = {path: File(with_header(path, dump(data))) for path, data in files.items()}
    tree[n.CUSTOM_COMPOSE] = File(CUSTOM_COMPOSE_TEXT, kind=Kind.USER)
    return tree


CUSTOM_COMPOSE_TEXT = """\
# Your own extra services. plano created this file once and never touches it again.
# docker-compose.yml includes it, so plano and the plain `docker compose` commands
# both pick it up. Services here cannot redefine plano's services; add new ones, e.g.:
#
# services:
#   mailpit:
#     image: axllent/mailpit:v1.21
#     ports: ["127.0.0.1:8025:8025"]
services: {}
"""
