"""k8s/: the same platform as a kustomize tree, for a Kubernetes cluster. Pure:
Manifest -> Tree (`plano export kubernetes` writes it; `plano render` keeps it up to
date once k8s/ exists).

    k8s/base/                 every object, in the namespace kubernetes.namespace
      kustomization.yaml
      namespace.yaml          Pod Security "restricted" enforced on every pod
      network.yaml            default-deny, DNS, and the allows of the compose networks
      edge.yaml               the ClusterIssuer, the maintenance page's Deployment and Service
      database.yaml           Postgres (StatefulSet + PVC, or a managed one), provisioning Jobs
      redis.yaml              Redis and its per-app ACL users
      backup.yaml             the daily backup and its verify, as a CronJob
      apps/<app>.yaml         Deployments, Services, PDBs, uploads PVC, Ingress, Certificate
      release/                the release Jobs (`plano k8s deploy` runs them before the rollout)
    k8s/overlays/prod/        the images (registry and tag) and the replicas
      release/                the same images for the release Jobs
    k8s/overlays/<env>/       the same for each environment of plano.yml, in its own
      cluster-scoped.yaml     namespace (environments.<env>.kubernetes.namespace); this
      release/                transformer keeps the ClusterIssuer cluster-wide

Each object is built from what compose already decides (render/compose.py: the apps'
environment, the backup's settings; render/services.py: the Redis ACL script and
config, the provisioning SQL of render/sql.py) and from naming.py. No secret value is
in any file: objects name Secrets and keys (naming.k8s_secrets), and the apps'
connection URLs take their passwords through `$(VAR)`, which Kubernetes fills in from
the env entries before them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from plano.core import naming as n
from plano.core.files import File, Tree, with_header
from plano.core.manifest import App, Limits, Manifest, Service
from plano.render import compose, services
from plano.render.templating import render_template, static

Obj = dict[str, Any]

# Probes of an app service, all on its health route (compose's healthcheck): traffic
# only once ready; up to STARTUP x period to start; restarted only after LIVE's longer
# silence (a busy app answers late, not never).
READY = {"periodSeconds": 5, "timeoutSeconds": 4, "failureThreshold": 3}
STARTUP = {"periodSeconds": 5, "timeoutSeconds": 4, "failureThreshold": 60}
LIVE = {"periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 6}
# A stopping pod keeps serving this long (its preStop pause) while the endpoints and
# the ingress controller drop it, then gets SIGTERM and the rest of the grace period.
DRAIN_SECONDS = 10
GRACE_SECONDS = 45
DATABASE_GRACE_SECONDS = 60  # compose's stop_grace_period: time for Postgres's checkpoint
RELEASE_DEADLINE_SECONDS = 600  # a release command (migrations) running longer fails
PROVISION_TTL_SECONDS = 600  # a finished provisioning Job goes; the next apply runs it again (idempotent)
DEFAULT_TAG = "latest"  # as compose's ${APP1_BACKEND_TAG:-latest}; `plano k8s deploy --tag` sets the real one
# Outside the cluster: everything but private, shared and link-local ranges (pods,
# services, nodes, the cloud's metadata endpoint).
INTERNET = [
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]}},
    {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
]
PORTS = {"database": 5432, "redis": 6379, "maintenance": 8080}
NGINX_UID = 101  # the nginx user of the official nginx image (the maintenance page)
SECURITY_HEADERS = "infra/docker/nginx/plano/security-headers.conf"
MAINTENANCE_PAGE = "infra/docker/nginx/plano/maintenance.html"
MAINTENANCE_CONF = "kubernetes/maintenance.conf.j2"
CONFIG_IN_POD = "/etc/plano"


# ---------------------------------------------------------------- small pieces


def meta(manifest: Manifest, name: str, component: str, app: str | None = None, namespaced: bool = True) -> Obj:
    where = {"namespace": n.k8s_namespace(manifest)} if namespaced else {}
    return {"name": name, **where, "labels": n.k8s_labels(manifest, name, component, app)}


def obj(api: str, kind: str, metadata: Obj, **body: Any) -> Obj:
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **body}


def quantity(memory: str) -> str:
    """A compose memory size (256m, 1g) as Kubernetes says it (256Mi, 1Gi)."""
    return f"{memory[:-1]}{'Gi' if memory[-1] == 'g' else 'Mi'}"


def millicores(cpus: float) -> str:
    return f"{round(cpus * 1000)}m"


def resources(limits: Limits) -> Obj:
    """The manifest's limits as limits; memory requested whole (never overcommitted),
    CPU a tenth of its cap (or 100m uncapped). Kubernetes has no per-pod pids limit:
    the kubelet's podPidsLimit applies."""
    cpu_limit = {"cpu": millicores(limits.cpus)} if limits.cpus is not None else {}
    cpu_request = millicores(max(limits.cpus / 10, 0.01)) if limits.cpus is not None else "100m"
    memory = quantity(limits.memory)
    return {"requests": {"cpu": cpu_request, "memory": memory}, "limits": {"memory": memory, **cpu_limit}}


def pod_security(uid: int) -> Obj:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> Obj:
    """compose's hardening: no capability, no privilege gain, a read-only root."""
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def scratch(name: str, medium: str | None = None, size: str | None = None) -> Obj:
    """A writable folder in a read-only container (compose's tmpfs)."""
    spec = {"medium": medium} if medium else {}
    return {"name": name, "emptyDir": spec | ({"sizeLimit": size} if size else {})}


def mount(name: str, path: str, read_only: bool = False, sub_path: str | None = None) -> Obj:
    return {"name": name, "mountPath": path, **({"subPath": sub_path} if sub_path else {}), **({"readOnly": True} if read_only else {})}


def secret_volume(name: str, secret: str, keys: list[str], files: dict[str, str] | None = None) -> Obj:
    """Some keys of a Secret as files (/run/secrets/<KEY>, as compose's secrets), 0440 (the fsGroup reads them)."""
    items = [{"key": key, "path": (files or {}).get(key, key)} for key in keys]
    return {"name": name, "secret": {"secretName": secret, "items": items, "defaultMode": 0o440}}


def config_volume(name: str, config_map: str, mode: int = 0o444) -> Obj:
    return {"name": name, "configMap": {"name": config_map, "defaultMode": mode}}


def secret_env(var: str, secret: str) -> Obj:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": var}}}


def claim(manifest: Manifest, name: str, component: str, size: str, mode: str, app: str | None = None) -> Obj:
    storage = manifest.kubernetes.storage_class
    return obj("v1", "PersistentVolumeClaim", meta(manifest, name, component, app),
               spec={"accessModes": [mode], **({"storageClassName": storage} if storage else {}),
                     "resources": {"requests": {"storage": size}}})


def http_probe(svc: Service, timing: dict[str, int]) -> Obj:
    """compose's healthcheck (node_probe): a 2xx or 3xx of the health route, not followed."""
    return {"httpGet": {"path": svc.health, "port": "http"}, **timing}


def exec_probe(command: list[str], timing: dict[str, int]) -> Obj:
    return {"exec": {"command": command}, **timing}


def rolling() -> Obj:
    """Start one new pod, wait for it to be ready, then stop an old one: never fewer."""
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def spread(name: str) -> list[Obj]:
    """Replicas on different nodes when there are several (a wish, not a rule)."""
    return [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": n.k8s_selector(name)}}]


def pod(uid: int, containers: list[Obj], volumes: list[Obj], **extra: Any) -> Obj:
    """A pod spec as every workload here has it: no API token, no service links (they
    would set REDIS_PORT=tcp://... in every app), plano's hardening."""
    return {"automountServiceAccountToken": False, "enableServiceLinks": False, **extra,
            "securityContext": pod_security(uid), "containers": containers, "volumes": volumes}


def replicas(manifest: Manifest, svc: Service) -> int:
    return svc.replicas or manifest.kubernetes.replicas


def image(name: str) -> str:
    """A workload's image as the base names it; each overlay maps it to the registry and tag."""
    return name


def backup_image(manifest: Manifest) -> str:
    return image(f"{manifest.name}-{n.K8S_BACKUP}")


def internet(manifest: Manifest) -> bool:
    return manifest.kubernetes.app_egress == "internet"


def external_database(manifest: Manifest) -> bool:
    return manifest.kubernetes.database == "external"


# ---------------------------------------------------------------- apps


WHERE = f"{n.ENV_DEV} or {n.ENV_PROD}"


def app_env(manifest: Manifest, name: str, app: App, role: str) -> list[Obj]:
    """compose's environment of the service, its `${APP1_DB_PASSWORD:?...}` as `$(APP1_DB_PASSWORD)`
    from the app's Secret (declared first: Kubernetes expands only earlier entries)."""
    env = compose.app_environment(manifest, name, app, role)
    env["NODE_OPTIONS"] = f"--max-old-space-size={compose.node_heap_mib(app.services()[role].limits)}"
    keys = n.k8s_app_secret_keys(name, app)
    used = [var for var in keys if any(compose.required(var, WHERE) in value for value in env.values())]
    plain = []
    for key, value in env.items():
        value = value.replace(compose.db_user(name), n.db_role(name))  # no rotation here: the app's own login
        for var in used:
            value = value.replace(compose.required(var, WHERE), f"$({var})")
        plain.append({"name": key, "value": value})
    return [*(secret_env(var, n.k8s_app_secret(name)) for var in used), *plain]


def app_storage(name: str, app: App, role: str) -> tuple[list[Obj], list[Obj]]:
    """(volumes, mounts): /tmp, Next.js's cache for a frontend, the uploads for a backend."""
    volumes, mounts = [scratch("tmp")], [mount("tmp", "/tmp")]
    if role == "frontend":
        volumes.append(scratch("next-cache"))
        mounts.append(mount("next-cache", f"{n.workdir(name, app, role)}/.next/cache"))
    else:
        volumes.append({"name": "uploads", "persistentVolumeClaim": {"claimName": n.k8s_uploads_claim(name)}})
        mounts.append(mount("uploads", n.UPLOADS_IN_APP))
    return volumes, mounts


def app_container(manifest: Manifest, name: str, app: App, role: str) -> Obj:
    svc = app.services()[role]
    volumes, mounts = app_storage(name, app, role)
    del volumes
    return {"name": role, "image": image(n.service(name, role)), "ports": [{"name": "http", "containerPort": svc.port}],
            # compose's env_file: the service's own settings, below plano's (env wins over envFrom)
            "envFrom": [{"configMapRef": {"name": n.k8s_env_config(name, role), "optional": True}}],
            "env": app_env(manifest, name, app, role),
            "readinessProbe": http_probe(svc, READY), "startupProbe": http_probe(svc, STARTUP), "livenessProbe": http_probe(svc, LIVE),
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
            "resources": resources(svc.limits), "securityContext": container_security(), "volumeMounts": mounts}


def deployment(manifest: Manifest, name: str, app: App, role: str) -> Obj:
    service_name = n.service(name, role)
    volumes, _ = app_storage(name, app, role)
    labels = n.k8s_labels(manifest, service_name, role, name)
    template = {"metadata": {"labels": labels},
                "spec": pod(n.APP_UID, [app_container(manifest, name, app, role)], volumes,
                            terminationGracePeriodSeconds=GRACE_SECONDS, topologySpreadConstraints=spread(service_name))}
    return obj("apps/v1", "Deployment", meta(manifest, service_name, role, name),
               spec={"replicas": replicas(manifest, app.services()[role]), "revisionHistoryLimit": 5,
                     "selector": {"matchLabels": n.k8s_selector(service_name)}, "strategy": rolling(), "template": template})


def service(manifest: Manifest, name: str, component: str, port: int, app: str | None = None, headless: bool = False) -> Obj:
    spec = {"clusterIP": "None"} if headless else {"type": "ClusterIP"}
    return obj("v1", "Service", meta(manifest, name, component, app),
               spec={**spec, "selector": n.k8s_selector(name), "ports": [{"name": "http" if component in n.ROLES else component,
                                                                           "port": port, "targetPort": port}]})


def disruption_budget(manifest: Manifest, name: str, role: str, app: str) -> Obj:
    """Node drains take one pod of the service at a time."""
    return obj("policy/v1", "PodDisruptionBudget", meta(manifest, name, role, app),
               spec={"maxUnavailable": 1, "selector": {"matchLabels": n.k8s_selector(name)}})


def security_headers() -> list[tuple[str, str]]:
    """The headers of render/nginx.py's security-headers.conf, read from that same file."""
    return re.findall(r'^add_header (\S+) "([^"]*)" always;$', static(SECURITY_HEADERS), re.MULTILINE)


SECURITY_HEADERS_CONFIG = "security-headers"
CUSTOM_HEADERS = "nginx.ingress.kubernetes.io/custom-headers"  # NAMESPACE/CONFIGMAP: each overlay patches it


def security_headers_config(manifest: Manifest) -> Obj:
    """The headers, as ingress-nginx's custom-headers annotation reads them."""
    return obj("v1", "ConfigMap", meta(manifest, SECURITY_HEADERS_CONFIG, "ingress"), data=dict(security_headers()))


def ingress_annotations(manifest: Manifest) -> dict[str, str]:
    """ingress-nginx's: HTTPS redirects (308, as compose's nginx), the body size of
    nginx.conf, and the security headers on every answer, errors included
    (more_set_headers, through the custom-headers annotation: no snippet, which
    ingress-nginx refuses by default; the controller's global-allowed-response-headers
    must list them)."""
    return {"nginx.ingress.kubernetes.io/ssl-redirect": "true", "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            "nginx.ingress.kubernetes.io/proxy-body-size": "25m",
            CUSTOM_HEADERS: f"{n.k8s_namespace(manifest)}/{SECURITY_HEADERS_CONFIG}"}


def ingress(manifest: Manifest, name: str, app: App) -> Obj:
    """The app's domains, its paths longest first (Prefix: /api and /api/..., as nginx's
    `= /api` and `/api/`), TLS from its certificate's Secret."""
    paths = [{"path": svc.path, "pathType": "Prefix",
              "backend": {"service": {"name": n.service(name, role), "port": {"name": "http"}}}}
             for role, svc in sorted(app.services().items(), key=lambda item: -len(item[1].path))]
    metadata = meta(manifest, name, "ingress", name) | {"annotations": ingress_annotations(manifest)}
    return obj("networking.k8s.io/v1", "Ingress", metadata,
               spec={"ingressClassName": manifest.kubernetes.ingress_class,
                     "tls": [{"hosts": list(app.domains), "secretName": n.k8s_tls_secret(name)}],
                     "rules": [{"host": domain, "http": {"paths": paths}} for domain in app.domains]})


def certificate(manifest: Manifest, name: str, app: App) -> Obj:
    """cert-manager's Certificate for the app's domains (certbot's ECDSA P-256 key)."""
    return obj("cert-manager.io/v1", "Certificate", meta(manifest, name, "certificate", name),
               spec={"secretName": n.k8s_tls_secret(name), "dnsNames": list(app.domains),
                     "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                     "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": n.k8s_issuer(manifest)}})


def app_objects(manifest: Manifest, name: str) -> list[Obj]:
    app = manifest.apps[name]
    objects: list[Obj] = [claim(manifest, n.k8s_uploads_claim(name), "uploads", manifest.kubernetes.uploads_size,
                                manifest.kubernetes.uploads_access_mode, name)]
    for role, svc in app.services().items():
        service_name = n.service(name, role)
        objects += [deployment(manifest, name, app, role), service(manifest, service_name, role, svc.port, name)]
        if replicas(manifest, svc) > 1:
            objects.append(disruption_budget(manifest, service_name, role, name))
    objects.append(ingress(manifest, name, app))
    if app.tls is None:
        objects.append(certificate(manifest, name, app))
    return objects


def release_job(manifest: Manifest, name: str, role: str) -> Obj:
    """The service's release command in its image (the overlay's tag), with its env and
    storage: `plano k8s deploy` creates it, waits for it, then rolls out."""
    app = manifest.apps[name]
    container = app_container(manifest, name, app, role)
    for key in ("ports", "readinessProbe", "startupProbe", "livenessProbe", "lifecycle"):
        del container[key]
    container["args"] = list(app.services()[role].release or [])
    volumes, _ = app_storage(name, app, role)
    job_name = n.k8s_release_job(name, role)
    template = {"metadata": {"labels": n.k8s_labels(manifest, job_name, "release", name)},
                "spec": pod(n.APP_UID, [container], volumes, restartPolicy="Never")}
    return obj("batch/v1", "Job", meta(manifest, job_name, "release", name),
               spec={"backoffLimit": 0, "activeDeadlineSeconds": RELEASE_DEADLINE_SECONDS, "template": template})


def releases(manifest: Manifest) -> dict[str, Obj]:
    """Each service with a release command: its Job, by compose service name."""
    return {n.service(name, role): release_job(manifest, name, role) for name, role in n.app_services(manifest).values()
            if manifest.apps[name].services()[role].release}


# ---------------------------------------------------------------- edge


def cluster_issuer(manifest: Manifest) -> Obj:
    """ACME from plano.yml's acme.server and email; HTTP-01 through the ingress class,
    or DNS-01 (Cloudflare: the acme-dns01 Secret in cert-manager's own namespace)."""
    if manifest.kubernetes.issuer == "http01":
        solver: Obj = {"http01": {"ingress": {"ingressClassName": manifest.kubernetes.ingress_class}}}
    else:
        solver = {"dns01": {"cloudflare": {"apiTokenSecretRef": {"name": n.K8S_DNS01_SECRET, "key": n.K8S_DNS01_KEY}}}}
    acme = {"server": manifest.acme.server, "email": manifest.email,
            "privateKeySecretRef": {"name": n.k8s_acme_account_secret(manifest)}, "solvers": [solver]}
    return obj("cert-manager.io/v1", "ClusterIssuer", meta(manifest, n.k8s_issuer(manifest), "issuer", namespaced=False),
               spec={"acme": acme})


def maintenance_objects(manifest: Manifest) -> list[Obj]:
    """The 503 page of compose's nginx (same page, same headers), as a Service that
    maintenance mode points an app's Ingress at."""
    name, port = n.K8S_MAINTENANCE, PORTS["maintenance"]
    folder = f"{CONFIG_IN_POD}/{name}"
    conf = render_template(MAINTENANCE_CONF, port=port, root=folder, headers=security_headers())
    config = obj("v1", "ConfigMap", meta(manifest, name, name), data={"nginx.conf": conf, "maintenance.html": static(MAINTENANCE_PAGE)})
    container = {"name": "nginx", "image": manifest.images.nginx, "command": ["nginx", "-c", f"{folder}/nginx.conf", "-g", "daemon off;"],
                 "ports": [{"name": name, "containerPort": port}],
                 "readinessProbe": {"httpGet": {"path": "/.plano/health", "port": port}, **READY},
                 "livenessProbe": {"httpGet": {"path": "/.plano/health", "port": port}, **LIVE},
                 "resources": resources(Limits(memory="32m", cpus=0.2, pids=32)), "securityContext": container_security(),
                 "volumeMounts": [mount("config", folder, read_only=True), mount("tmp", "/tmp")]}
    template = {"metadata": {"labels": n.k8s_labels(manifest, name, name)},
                "spec": pod(NGINX_UID, [container], [config_volume("config", name), scratch("tmp")])}
    workload = obj("apps/v1", "Deployment", meta(manifest, name, name),
                   spec={"replicas": 1, "selector": {"matchLabels": n.k8s_selector(name)}, "strategy": rolling(), "template": template})
    return [config, workload, service(manifest, name, name, port)]


# ---------------------------------------------------------------- data


SECRETS_DIR = n.SECRETS_IN_CONTAINER


def database_objects(manifest: Manifest) -> list[Obj]:
    name = n.K8S_DATABASE
    if external_database(manifest):
        outside = obj("v1", "Service", meta(manifest, name, name),
                      spec={"type": "ExternalName", "externalName": manifest.kubernetes.database_host,
                            "ports": [{"name": name, "port": PORTS[name]}]})
        return [outside, *provisioning(manifest)]
    return [service(manifest, name, name, PORTS[name], headless=True), postgres(manifest), *provisioning(manifest)]


def postgres(manifest: Manifest) -> Obj:
    """The official image, as its own user on a PVC (PGDATA one folder down: a volume's
    root may hold lost+found), the admin password from a file, compose's healthcheck."""
    name, port, data = n.K8S_DATABASE, PORTS["database"], "/var/lib/postgresql/data"
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
    env = {"POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "POSTGRES_PASSWORD_FILE": n.secret_in_container("POSTGRES_PASSWORD"),
           "PGDATA": f"{data}/pgdata"}
    container = {"name": "postgres", "image": manifest.images.postgres, "ports": [{"name": name, "containerPort": port}],
                 "env": [{"name": key, "value": value} for key, value in env.items()],
                 "readinessProbe": exec_probe(ready, READY), "startupProbe": exec_probe(ready, STARTUP),
                 "livenessProbe": exec_probe(ready, LIVE), "resources": resources(manifest.limits.database),
                 "securityContext": container_security(),
                 "volumeMounts": [mount("data", data), mount("secrets", SECRETS_DIR, read_only=True), mount("tmp", "/tmp"),
                                  mount("run", "/var/run/postgresql"), mount("shm", "/dev/shm")]}
    volumes = [secret_volume("secrets", n.k8s_infra_secret(name), ["POSTGRES_PASSWORD"]), scratch("tmp"), scratch("run"),
               scratch("shm", "Memory", "128Mi")]
    template = {"metadata": {"labels": n.k8s_labels(manifest, name, name)},
                "spec": pod(n.POSTGRES_UID, [container], volumes, terminationGracePeriodSeconds=DATABASE_GRACE_SECONDS)}
    storage = manifest.kubernetes.storage_class
    volume_claim = {"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], **({"storageClassName": storage} if storage else {}),
                             "resources": {"requests": {"storage": manifest.kubernetes.database_size}}}}
    return obj("apps/v1", "StatefulSet", meta(manifest, name, name),
               spec={"serviceName": name, "replicas": 1, "selector": {"matchLabels": n.k8s_selector(name)},
                     "updateStrategy": {"type": "RollingUpdate"}, "template": template, "volumeClaimTemplates": [volume_claim]})


PROVISION = "database-provision"


def provision_script(name: str) -> str:
    """The database's init script (render/services.py) for one app: sql.py's SQL, as is."""
    return render_template(services.INIT_TEMPLATE, **services.init_values([services.database_row(name)]))


def provisioning(manifest: Manifest) -> list[Obj]:
    apps = [name for name, app in sorted(manifest.apps.items()) if app.database]
    if not apps:
        return []
    config = obj("v1", "ConfigMap", meta(manifest, PROVISION, PROVISION), data={f"{name}.sh": provision_script(name) for name in apps})
    return [config, *(provision_job(manifest, name) for name in apps)]


def provision_job(manifest: Manifest, name: str) -> Obj:
    """The app's role and database, as the admin over the network; retried until the
    database answers. Idempotent, so the next `kubectl apply` after its TTL runs it again."""
    job_name, secret, var = n.k8s_provision_job(name), n.k8s_infra_secret(n.K8S_DATABASE), n.db_password_var(name)
    env = [{"name": "PGHOST", "value": n.K8S_DATABASE}, {"name": "PGCONNECT_TIMEOUT", "value": "5"},
           {"name": "POSTGRES_USER", "value": "postgres"},
           {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "POSTGRES_PASSWORD"}}}]
    container = {"name": "provision", "image": manifest.images.postgres, "command": ["sh", f"{CONFIG_IN_POD}/provision/{name}.sh"],
                 "env": env, "resources": resources(Limits(memory="64m", cpus=0.5, pids=64)), "securityContext": container_security(),
                 "volumeMounts": [mount("scripts", f"{CONFIG_IN_POD}/provision", read_only=True),
                                  mount("secrets", SECRETS_DIR, read_only=True), mount("tmp", "/tmp")]}
    volumes = [config_volume("scripts", PROVISION), secret_volume("secrets", secret, [var]), scratch("tmp")]
    template = {"metadata": {"labels": n.k8s_labels(manifest, job_name, PROVISION)},
                "spec": pod(n.POSTGRES_UID, [container], volumes, restartPolicy="OnFailure")}
    return obj("batch/v1", "Job", meta(manifest, job_name, PROVISION),
               spec={"backoffLimit": 20, "ttlSecondsAfterFinished": PROVISION_TTL_SECONDS, "template": template})


def redis_objects(manifest: Manifest) -> list[Obj]:
    """compose's Redis: the same config and ACL script (render/services.py), reading the
    passwords from redis-secrets mounted as files; no persistence."""
    name, port = n.K8S_REDIS, PORTS["redis"]
    folder = f"{CONFIG_IN_POD}/{name}"
    script = render_template(services.REDIS_ENTRYPOINT, **services.redis_entrypoint_values(manifest))
    conf = render_template("infra/docker/redis/redis.conf.j2", maxmemory=services.redis_maxmemory(manifest))
    config = obj("v1", "ConfigMap", meta(manifest, name, name), data={"plano-entrypoint.sh": script, "redis.conf": conf})
    ping = ["redis-cli", "ping"]
    container = {"name": name, "image": manifest.images.redis, "command": ["sh", f"{folder}/plano-entrypoint.sh"],
                 "args": ["redis-server", f"{folder}/redis.conf", "--aclfile", "/tmp/users.acl"],
                 "ports": [{"name": name, "containerPort": port}],
                 "readinessProbe": exec_probe(ping, READY), "livenessProbe": exec_probe(ping, LIVE),
                 "resources": resources(manifest.limits.redis), "securityContext": container_security(),
                 "volumeMounts": [mount("config", folder, read_only=True), mount("secrets", SECRETS_DIR, read_only=True),
                                  mount("tmp", "/tmp"), mount("data", "/data")]}
    keys = n.k8s_secrets(manifest)[n.k8s_infra_secret(name)]
    volumes = [config_volume("config", name), secret_volume("secrets", n.k8s_infra_secret(name), keys), scratch("tmp"), scratch("data")]
    template = {"metadata": {"labels": n.k8s_labels(manifest, name, name)},
                "spec": pod(n.REDIS_UID, [container], volumes)}
    workload = obj("apps/v1", "Deployment", meta(manifest, name, name),
                   spec={"replicas": 1, "selector": {"matchLabels": n.k8s_selector(name)}, "strategy": rolling(), "template": template})
    return [config, workload, service(manifest, name, name, port)]


def cron_schedule(time: str) -> str:
    """backup.time (HH:MM, UTC) as a cron line."""
    hour, minute = time.split(":")
    return f"{int(minute)} {int(hour)} * * *"


def backup_objects(manifest: Manifest) -> list[Obj]:
    """compose's backup service (its image, environment and script), run daily as a
    CronJob: `plano-backup.sh run`, then `verify` of what it wrote."""
    name = n.K8S_BACKUP
    env = compose.backup_service(manifest)["environment"]
    env.pop("BACKUP_TIME")
    files = {"POSTGRES_PASSWORD": "POSTGRES_PASSWORD", n.K8S_RESTIC_KEY: compose.RESTIC_PASSWORD_IN_BACKUP.rsplit("/", 1)[1]}
    keys = n.k8s_secrets(manifest)[n.k8s_infra_secret(name)]
    volumes = [secret_volume("secrets", n.k8s_infra_secret(name), keys, files),
               {"name": "backups", "persistentVolumeClaim": {"claimName": n.K8S_BACKUPS_CLAIM}},
               *({"name": f"uploads-{app}", "persistentVolumeClaim": {"claimName": n.k8s_uploads_claim(app), "readOnly": True}}
                 for app in sorted(manifest.apps)),
               scratch("tmp"), scratch("postgres-home")]
    mounts = [mount("secrets", SECRETS_DIR, read_only=True), mount("backups", "/backups"),
              *(mount(f"uploads-{app}", f"/uploads/{app}", read_only=True) for app in sorted(manifest.apps)),
              mount("tmp", "/tmp"), mount("postgres-home", "/var/lib/postgresql")]
    container = {"name": name, "image": backup_image(manifest), "command": ["sh", "-c", "plano-backup.sh run && plano-backup.sh verify"],
                 "env": [{"name": key, "value": value} for key, value in env.items()],
                 "resources": resources(manifest.limits.backup), "securityContext": container_security(), "volumeMounts": mounts}
    template = {"metadata": {"labels": n.k8s_labels(manifest, name, name)},
                "spec": pod(n.APP_UID, [container], volumes, restartPolicy="Never")}
    job = {"backoffLimit": 0, "template": template}
    cron = obj("batch/v1", "CronJob", meta(manifest, name, name),
               spec={"schedule": cron_schedule(manifest.backup.time), "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
                     "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
                     "jobTemplate": {"metadata": {"labels": n.k8s_labels(manifest, name, name)}, "spec": job}})
    return [claim(manifest, n.K8S_BACKUPS_CLAIM, name, manifest.kubernetes.backups_size, "ReadWriteOnce"), cron]


# ---------------------------------------------------------------- isolation


def policy(manifest: Manifest, name: str, selector: Obj, ingress: list[Obj] | None = None, egress: list[Obj] | None = None) -> Obj:
    """An allow: pods matching `selector` accept `ingress` and may open `egress` (the
    namespace's default-deny stops everything else)."""
    types = [kind for kind, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    rules = {key: value for key, value in (("ingress", ingress), ("egress", egress)) if value is not None}
    return obj("networking.k8s.io/v1", "NetworkPolicy", meta(manifest, name, "network-policy"),
               spec={"podSelector": selector, "policyTypes": types, **rules})


def tcp(*ports: int | str) -> list[Obj]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def from_namespace(namespace: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {n.K8S_NAMESPACE_LABEL: namespace}}}


def labelled(key: str, value: str) -> Obj:
    return {"podSelector": {"matchLabels": {key: value}}}


def apps_using(manifest: Manifest, kind: str) -> list[str]:
    return [name for name, app in sorted(manifest.apps.items()) if getattr(app, kind)]


def one_of_apps(apps: list[str]) -> Obj:
    return {"podSelector": {"matchExpressions": [{"key": n.K8S_APP_LABEL, "operator": "In", "values": apps}]}}


def database_peer(manifest: Manifest) -> list[Obj]:
    """Where the database is, as an egress rule's `to`: its pods, or outside the cluster."""
    return INTERNET if external_database(manifest) else [labelled(n.K8S_NAME_LABEL, n.K8S_DATABASE)]


def app_policy(manifest: Manifest, name: str) -> Obj:
    """The app's compose network: its pods talk to each other, the ingress controller
    to them, they to the database and Redis when they use them (and out, if allowed)."""
    app = manifest.apps[name]
    own = labelled(n.K8S_APP_LABEL, name)
    controller = from_namespace(manifest.kubernetes.ingress_namespace)
    ingress = [{"from": [own]}, {"from": [controller], "ports": tcp(*(svc.port for svc in app.services().values()))}]
    egress = [{"to": [own]}]
    if app.database:
        egress.append({"to": database_peer(manifest), "ports": tcp(PORTS["database"])})
    if app.redis:
        egress.append({"to": [labelled(n.K8S_NAME_LABEL, n.K8S_REDIS)], "ports": tcp(PORTS["redis"])})
    if internet(manifest):
        egress.append({"to": INTERNET})
    return policy(manifest, f"{name}-network", {"matchLabels": {n.K8S_APP_LABEL: name}}, ingress, egress)


def infra_policies(manifest: Manifest) -> list[Obj]:
    controller = from_namespace(manifest.kubernetes.ingress_namespace)
    databases, caches = apps_using(manifest, "database"), apps_using(manifest, "redis")
    policies = []
    if not external_database(manifest):
        clients = [*([one_of_apps(databases)] if databases else []), labelled(n.K8S_NAME_LABEL, n.K8S_BACKUP),
                   labelled(n.K8S_COMPONENT_LABEL, PROVISION)]
        policies.append(policy(manifest, "database-network", {"matchLabels": n.k8s_selector(n.K8S_DATABASE)},
                               ingress=[{"from": clients, "ports": tcp(PORTS["database"])}], egress=[]))
    policies.append(policy(manifest, "redis-network", {"matchLabels": n.k8s_selector(n.K8S_REDIS)},
                           ingress=[{"from": [one_of_apps(caches)], "ports": tcp(PORTS["redis"])}] if caches else [], egress=[]))
    backup_egress = [{"to": database_peer(manifest), "ports": tcp(PORTS["database"])}]
    if manifest.backup.restic:  # the offsite copy
        backup_egress.append({"to": INTERNET})
    policies += [
        policy(manifest, "backup-network", {"matchLabels": n.k8s_selector(n.K8S_BACKUP)}, ingress=[], egress=backup_egress),
        policy(manifest, "provision-network", {"matchLabels": {n.K8S_COMPONENT_LABEL: PROVISION}}, ingress=[],
               egress=[{"to": database_peer(manifest), "ports": tcp(PORTS["database"])}]),
        policy(manifest, "maintenance-network", {"matchLabels": n.k8s_selector(n.K8S_MAINTENANCE)},
               ingress=[{"from": [controller], "ports": tcp(PORTS["maintenance"])}], egress=[]),
    ]
    if manifest.kubernetes.issuer == "http01":  # cert-manager's solver pods answer the CA through the controller
        policies.append(policy(manifest, "acme-http01-solver", {"matchLabels": {n.K8S_HTTP01_SOLVER_LABEL: "true"}},
                               ingress=[{"from": [controller], "ports": tcp(n.K8S_HTTP01_SOLVER_PORT)}], egress=[]))
    return policies


def network_objects(manifest: Manifest) -> list[Obj]:
    dns = {"to": [{"namespaceSelector": {"matchLabels": {n.K8S_NAMESPACE_LABEL: n.K8S_DNS_NAMESPACE}},
                   "podSelector": {"matchLabels": n.K8S_DNS_LABELS}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    deny = policy(manifest, "default-deny", {}, ingress=[], egress=[])
    return [deny, policy(manifest, "allow-dns", {}, egress=[dns]), *infra_policies(manifest),
            *(app_policy(manifest, name) for name in sorted(manifest.apps))]


def namespace(manifest: Manifest) -> Obj:
    """One namespace for the platform; Pod Security "restricted" refuses any pod
    without plano's hardening (cert-manager's HTTP-01 solver pods, started here, must
    comply too: recent cert-manager releases give them such a security context)."""
    ns = n.k8s_namespace(manifest)
    metadata = meta(manifest, ns, "namespace", namespaced=False)
    metadata["labels"] |= {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    return obj("v1", "Namespace", metadata)


# ---------------------------------------------------------------- the tree


def kustomization(**body: Any) -> Obj:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", **body}


def images(manifest: Manifest, names: list[str]) -> list[Obj]:
    """The overlay's images: each base name to its registry image and tag."""
    known = {n.service(name, role): n.prod_image(manifest, name, role) for name, role in n.app_services(manifest).values()}
    known[backup_image(manifest)] = n.k8s_infra_image(manifest, n.K8S_BACKUP)
    return [{"name": name, "newName": known[name], "newTag": DEFAULT_TAG} for name in names]


def json_patch(kind: str, keys: tuple[str, ...], value: str) -> Obj:
    """A kustomize patch: one JSON patch (RFC 6902) of every object of `kind`, replacing
    the value at `keys` (each escaped as a JSON pointer's token)."""
    path = "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)
    return {"target": {"kind": kind}, "patch": json.dumps([{"op": "replace", "path": path, "value": value}])}


def environment_patches(manifest: Manifest, environment: str) -> list[Obj]:
    """What kustomize's `namespace:` leaves saying prod's namespace: the Namespace's name
    label, and each Ingress's custom-headers annotation (ingress-nginx reads the
    ConfigMap as NAMESPACE/NAME). Nothing else holds it (tests/unit check the built overlays)."""
    ns = n.k8s_namespace(manifest, environment)
    patches = [json_patch("Namespace", ("metadata", "labels", n.K8S_NAME_LABEL), ns)]
    if manifest.apps:
        patches.append(json_patch("Ingress", ("metadata", "annotations", CUSTOM_HEADERS), f"{ns}/{SECURITY_HEADERS_CONFIG}"))
    return patches


CLUSTER_SCOPED = ("ClusterIssuer",)  # kinds of the base kustomize does not know are cluster-wide (cert-manager's)
CLUSTER_SCOPED_FILE = "cluster-scoped.yaml"  # in each environment's overlay


def cluster_scoped() -> list[Obj]:
    """kustomize's `namespace:` gives every object of a kind it does not know a namespace,
    a cluster-wide ClusterIssuer too: a transformer takes it off again (the overlay's
    transformers run after its own namespace:, its patches before it)."""
    remove = json.dumps([{"op": "remove", "path": "/metadata/namespace"}])
    return [{"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": f"cluster-scoped-{kind.lower()}"},
             "target": {"kind": kind}, "patch": remove} for kind in CLUSTER_SCOPED]


def in_environment(manifest: Manifest, environment: str) -> Obj:
    """An environment's overlay moves everything to its namespace (prod's is the base's)."""
    if environment == n.K8S_PROD:
        return {}
    return {"namespace": n.k8s_namespace(manifest, environment)}


def overlay(manifest: Manifest, environment: str = n.K8S_PROD) -> Obj:
    apps = list(n.app_services(manifest))
    counts = [{"name": name, "count": replicas(manifest, manifest.apps[app].services()[role])}
              for name, (app, role) in n.app_services(manifest).items()]
    patches = ({"patches": environment_patches(manifest, environment), "transformers": [CLUSTER_SCOPED_FILE]}
               if environment != n.K8S_PROD else {})
    return kustomization(resources=[f"../../{n.K8S_BASE}"], **in_environment(manifest, environment),
                         images=images(manifest, [*apps, backup_image(manifest)]), replicas=counts, **patches)


def release_overlay(manifest: Manifest, environment: str, jobs: list[str]) -> Obj:
    return kustomization(resources=[f"../../../{n.K8S_BASE}/{n.K8S_RELEASE}"], **in_environment(manifest, environment),
                         images=images(manifest, jobs))


def documents(objects: list[Obj]) -> str:
    return "".join(f"---\n{compose.dump(o)}" for o in objects)


def base_files(manifest: Manifest) -> dict[str, list[Obj]]:
    files = {"namespace.yaml": [namespace(manifest)], "network.yaml": network_objects(manifest),
             "edge.yaml": [cluster_issuer(manifest), security_headers_config(manifest), *maintenance_objects(manifest)], "database.yaml": database_objects(manifest),
             "redis.yaml": redis_objects(manifest), "backup.yaml": backup_objects(manifest)}
    files |= {f"apps/{name}.yaml": app_objects(manifest, name) for name in sorted(manifest.apps)}
    return files


def tree(manifest: Manifest) -> dict[str, str]:
    """k8s/ as text by path, before headers."""
    base = base_files(manifest)
    out = {n.k8s_path(n.K8S_BASE, rel): documents(objects) for rel, objects in base.items()}
    out[n.k8s_path(n.K8S_BASE, "kustomization.yaml")] = compose.dump(kustomization(resources=list(base)))
    for env in n.k8s_namespaces(manifest):
        out[f"{n.k8s_overlay(env)}/kustomization.yaml"] = compose.dump(overlay(manifest, env))
        if env != n.K8S_PROD:
            out[f"{n.k8s_overlay(env)}/{CLUSTER_SCOPED_FILE}"] = documents(cluster_scoped())
    jobs = releases(manifest)
    if jobs:
        for service_name, job in jobs.items():
            out[n.k8s_path(n.K8S_BASE, n.K8S_RELEASE, f"{service_name}.yaml")] = documents([job])
        out[n.k8s_path(n.K8S_BASE, n.K8S_RELEASE, "kustomization.yaml")] = compose.dump(
            kustomization(resources=[f"{service_name}.yaml" for service_name in jobs]))
        for env in n.k8s_namespaces(manifest):
            out[f"{n.k8s_overlay(env)}/{n.K8S_RELEASE}/kustomization.yaml"] = compose.dump(release_overlay(manifest, env, list(jobs)))
    return out


def render(manifest: Manifest) -> Tree:
    return {path: File(with_header(path, text)) for path, text in tree(manifest).items()}

