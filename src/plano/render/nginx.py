"""nginx.conf, one site per app, and the shared snippets."""

from __future__ import annotations

from dataclasses import dataclass

from plano.core import naming as n
from plano.core.files import Tree
from plano.core.manifest import Manifest
from plano.render.templating import generated

T = "infra/docker/nginx"
STATIC = ("plano/tls.conf", "plano/security-headers.conf", "plano/proxy.conf", "plano/maintenance.html")
SCRIPTS = (
    "entrypoint.d/40-plano-placeholder-certs.sh",
    "entrypoint.d/45-plano-dns.sh",
    "bin/plano-reload.sh",
    "bin/plano-probe.sh",
)
ROTATION = "entrypoint.d/50-plano-access-log.sh"  # keeps the access log bounded
PID_FILE = "/tmp/nginx.pid"  # nginx.conf's `pid`


@dataclass(frozen=True)
class Upstream:
    name: str
    host: str
    port: int


@dataclass(frozen=True)
class Route:
    path: str
    upstream: str

    @property
    def locations(self) -> list[str]:
        """`/api` serves `/api` itself and everything under `/api/`."""
        return ["/"] if self.path == "/" else [f"= {self.path}", f"{self.path}/"]


def site(manifest: Manifest, app_name: str) -> dict[str, object]:
    app = manifest.apps[app_name]
    services = app.services()
    upstreams = [Upstream(n.upstream(app_name, role), n.service(app_name, role), svc.port) for role, svc in services.items()]
    # Longest path first reads naturally; nginx picks the longest prefix anyway.
    routes = sorted(
        (Route(svc.path, n.upstream(app_name, role)) for role, svc in services.items()),
        key=lambda route: -len(route.path),
    )
    return {
        "app": app_name,
        "names": n.server_names(manifest, app_name),
        **https_names(app_name),
        "upstreams": upstreams,
        "keepalive": manifest.target == "compose",
        "routes": routes,
        "runtime": n.RUNTIME_IN_NGINX,
        "conf_dir": n.NGINX_CONF_DIR,
        "custom": n.CUSTOM_SNIPPETS,
    }


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    del env_values
    tree: Tree = {}
    tree |= generated("docker/nginx/nginx.conf", f"{T}/nginx.conf.j2", client_max_body_size="25m",
                      resolver_valid=n.RESOLVER_VALID_SECONDS, dns_port=n.DNS_PORT_IN_NGINX,
                      cert_valid=n.CERT_CACHE_VALID_SECONDS, certs_group=n.CERTS_GROUP,
                      access_log=f"{n.LOGS_IN_NGINX}/{n.ACCESS_LOG}", pid_file=PID_FILE)
    tree |= generated("docker/nginx/Dockerfile", f"{T}/Dockerfile.j2", name=manifest.name, image=manifest.images.nginx,
                      certs_gid=n.CERTBOT_UID, certs_group=n.CERTS_GROUP)
    for name in STATIC:
        tree |= generated(f"docker/nginx/{name}", f"{T}/{name}")
    paths = {"conf_dir": n.NGINX_CONF_DIR, "conf": n.NGINX_CONF, "runtime": n.RUNTIME_IN_NGINX, "certs": n.CERTS_IN_NGINX,
             "certbot_owner": n.CERTBOT_USER, "dns_port": n.DNS_PORT_IN_NGINX, "docker_dns": n.DOCKER_DNS}
    for name in SCRIPTS:
        tree |= generated(f"docker/nginx/{name}", f"{T}/{name}.j2", mode=0o755, **paths)
    tree |= generated(f"docker/nginx/{ROTATION}", f"{T}/{ROTATION}.j2", mode=0o755, logs=n.LOGS_IN_NGINX,
                      access_log=n.ACCESS_LOG, keep=n.ACCESS_LOG_KEEP, rotate_bytes=n.ACCESS_LOG_ROTATE_BYTES,
                      check_seconds=n.ACCESS_LOG_CHECK_SECONDS, pid_file=PID_FILE)
    for app_name in manifest.apps:
        values = site(manifest, app_name)
        tree |= generated(n.site_file(app_name), f"{T}/site.conf.j2", **values)
    if manifest.dashboard.domain is not None:
        tree |= generated(n.site_file(n.DASHBOARD_SITE), f"{T}/dashboard-site.conf.j2", **dashboard_site(manifest.dashboard.domain))
    return tree


def https_names(site_name: str) -> dict[str, str]:
    """What a site's HTTPS server is named by: its SNI check's and certificate folder's
    variables, the folder, and the ACME webroot."""
    var = site_name.replace("-", "_")
    return {"misdirected": f"plano_misdirected_{var}", "cert_var": f"plano_cert_dir_{var}",
            "cert_dir": n.cert_dir(site_name), "webroot": n.WEBROOT}


def dashboard_site(domain: str) -> dict[str, object]:
    return {"site": n.DASHBOARD_SITE, "name": domain, **https_names(n.DASHBOARD_SITE),
            "socket": f"{n.RUNTIME_IN_NGINX}/{n.DASHBOARD_SOCKET}"}
