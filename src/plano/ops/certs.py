"""Certificates: issue and renew with certbot (webroot, through the running nginx),
install your own, and report what nginx really serves.

Layout under data/certs/ (the certbot service's /etc/letsencrypt):
  live/, archive/, renewal/, accounts/   certbot's own
  plano/<app>/fullchain.pem, privkey.pem what nginx serves (ACME, yours, or a placeholder)
  webroot/.well-known/acme-challenge/    HTTP-01 answers, served by nginx on port 80

The argv builders and the reading of certbot's output are pure; `issue()`,
`renew()` and `install_own()` run them through one Runner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import PlanoError, UsageError
from plano.core.manifest import App, Manifest, require_app
from plano.core.runner import Runner
from plano.engine.stack import Stack

LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
WEBROOT = "/var/www/certbot"  # in the certbot and nginx containers
DEPLOY_HOOK = "/plano/scripts/deploy-hook.sh"
NGINX_CONF = "/etc/plano/nginx/nginx.conf"
PLACEHOLDER_CN = "plano placeholder"


class CertError(PlanoError):
    """A certificate could not be obtained or installed (the message names the domain)."""


# ---------------------------------------------------------------- choosing apps


def chosen_apps(manifest: Manifest, names: tuple[str, ...], all_apps: bool) -> list[str]:
    if all_apps and names:
        raise UsageError("give app names or --all, not both")
    if not names and not all_apps:
        raise UsageError("which app? give its name (e.g. plano certs issue app1) or --all")
    for name in names:
        require_app(manifest, name)
    chosen = list(names) if names else sorted(manifest.apps)
    if not chosen:
        raise UsageError("no apps yet: plano app add app1 --domain app1.example.com")
    return chosen


def acme_server(manifest: Manifest, server: str | None, staging: bool) -> str:
    if server and staging:
        raise UsageError("give --server or --staging, not both")
    if server and not server.startswith("https://"):
        raise UsageError(f"--server {server}: not an ACME directory URL; write https://host/path")
    return server or (LETSENCRYPT_STAGING if staging else manifest.acme.server)


# ---------------------------------------------------------------- argv builders


def certbot_argv(stack: Stack, *args: str, env: tuple[str, ...] = (), entrypoint: str = "certbot") -> list[str]:
    """A one-off certbot container of the stack (its volumes, networks and settings)."""
    flags = [item for pair in (("-e", e) for e in env) for item in pair]
    return stack.argv("run", "--rm", "--no-deps", "-T", *flags, "--entrypoint", entrypoint, "certbot", *args)


def certonly_argv(stack: Stack, app: str, domains: list[str], email: str, server: str, force: bool = False) -> list[str]:
    """One certificate named after the app for all its domains. Without `force`, a
    current certificate for the same names is kept (running again is harmless)."""
    names = [item for domain in domains for item in ("-d", domain)]
    return certbot_argv(
        stack, "certonly", "--webroot", "-w", WEBROOT, "--cert-name", app, *names,
        "--email", email, "--agree-tos", "--non-interactive",
        "--force-renewal" if force else "--keep-until-expiring", "--server", server,
    )


def install_argv(stack: Stack, app: str) -> list[str]:
    """Copy certbot's current certificate of `app` where nginx reads it (the deploy hook)."""
    return certbot_argv(stack, env=(f"RENEWED_LINEAGE=/etc/letsencrypt/live/{app}",), entrypoint=DEPLOY_HOOK)


def renew_argv(stack: Stack, force: bool) -> list[str]:
    return certbot_argv(
        stack, "renew", "--non-interactive", "--no-random-sleep-on-renew", "--webroot", "-w", WEBROOT,
        "--deploy-hook", DEPLOY_HOOK, *(["--force-renewal"] if force else []),
    )


def nginx_test_argv(stack: Stack) -> list[str]:
    return stack.argv("exec", "-T", "nginx", "nginx", "-c", NGINX_CONF, "-t", "-q")


def nginx_reload_argv(stack: Stack) -> list[str]:
    return stack.argv("exec", "-T", "nginx", "nginx", "-c", NGINX_CONF, "-s", "reload")


# ---------------------------------------------------------------- certbot's output, in one line


def explain_failure(output: str, domains: list[str], server: str) -> str:
    """What went wrong, for one app's order, from certbot's output."""
    problem = re.search(r"Domain: (\S+)\s+Type:\s+(\S+)\s+Detail:\s+(.+)", output)
    if problem:
        return f"{problem.group(1)}: the ACME server could not validate it ({problem.group(2)}: {problem.group(3).strip()}); " \
               "check that the name points at this server and port 80 reaches nginx"
    forbidden = re.search(r'forbidden by policy: "?([^"\s]+)"?', output)
    if forbidden:
        return f"{forbidden.group(1)}: the ACME server refuses to issue for this name (policy); remove it from the app's domains"
    names = ", ".join(domains)
    if re.search(r"ConnectionError|Connection refused|Name or service not known|Max retries exceeded|timed out", output):
        return f"{names}: the ACME server {server} is unreachable; check --server and this machine's network, then run again"
    if "too many certificates" in output.lower() or "rateLimited" in output:
        return f"{names}: the ACME server's rate limit; wait, or try with --staging"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip() and "log" not in line.lower()), "")
    return f"{names}: certbot failed: {last or 'no output'}"


def renewed_apps(output: str) -> list[str]:
    """The lineages `certbot renew` reports as renewed (named after the apps)."""
    return re.findall(r"/live/([^/\s]+)/fullchain\.pem \(success\)", output)


# ---------------------------------------------------------------- facts about a certificate


@dataclass(frozen=True)
class CertFacts:
    subject: str
    issuer: str
    not_after: dt.datetime
    serial: str
    names: tuple[str, ...]
    fingerprint: str  # sha256 of the DER

    def days_left(self, now: dt.datetime) -> int:
        return (self.not_after - now).days

    @property
    def placeholder(self) -> bool:
        return self.subject.startswith(PLACEHOLDER_CN)


def facts(der: bytes) -> CertFacts:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)

    def common_name(name) -> str:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME) or name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(values[0].value) if values else name.rfc4514_string()

    try:
        sans = tuple(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        sans = ()
    return CertFacts(
        subject=common_name(cert.subject),
        issuer=common_name(cert.issuer),
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
        names=sans,
        fingerprint=hashlib.sha256(der).hexdigest(),
    )


def first_pem_der(pem: bytes) -> bytes:
    match = re.search(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S)
    if not match:
        raise ValueError("no PEM certificate in it")
    return ssl.PEM_cert_to_DER_cert(match.group(0).decode())


def served_der(port: int, server_name: str, host: str = "127.0.0.1", timeout: float = 5) -> bytes:
    """The leaf certificate nginx sends for `server_name` (no verification: we only read it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            context.wrap_socket(sock, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError("no certificate in the handshake")
    return der


# ---------------------------------------------------------------- status rows (pure)


def source_of(app: App, installed: CertFacts | None) -> str:
    if app.tls:
        return "own"
    if installed is None or installed.placeholder:
        return "placeholder"
    return "acme"


def status_row(app_name: str, app: App, domain: str, installed: CertFacts | None,
               served: CertFacts | None, error: str | None, now: dt.datetime) -> dict:
    shown = served or installed
    return {
        "app": app_name,
        "domain": domain,
        "source": source_of(app, installed),
        "issuer": shown.issuer if shown else None,
        "not_after": shown.not_after.isoformat() if shown else None,
        "days_left": shown.days_left(now) if shown else None,
        "serial": shown.serial if shown else None,
        "covers_domain": bool(shown) and covers(shown.names, domain),
        "serving": bool(served and installed and served.fingerprint == installed.fingerprint),
        "error": error,
    }


def covers(names: tuple[str, ...], domain: str) -> bool:
    return any(name == domain or (name.startswith("*.") and domain.split(".", 1)[-1] == name[2:]) for name in names)


# ---------------------------------------------------------------- I/O edges


def cert_file(root: Path, mode: str, app: str) -> Path:
    return root / n.data_root(mode) / "certs" / "plano" / app / "fullchain.pem"


def installed_facts(root: Path, mode: str, app: str) -> CertFacts | None:
    path = cert_file(root, mode, app)
    try:
        return facts(first_pem_der(path.read_bytes()))
    except (OSError, ValueError):
        return None


def tls_address(manifest: Manifest, mode: str) -> tuple[str, int]:
    """Where this machine reaches the stack's HTTPS port."""
    settings = manifest.prod if mode == "prod" else manifest.dev
    host = "127.0.0.1" if settings.bind in ("0.0.0.0", "::", "") else settings.bind
    return host, settings.https_port


def wait_until_served(root: Path, manifest: Manifest, apps: list[str], seconds: float = 15) -> list[str]:
    """After a reload, nginx's new workers take over within moments: wait until each
    app's first domain is served its installed certificate. Returns the apps that are not."""
    import time

    host, port = tls_address(manifest, "prod")
    pending = {app: installed_facts(root, "prod", app) for app in apps}
    deadline = time.monotonic() + seconds
    while pending and time.monotonic() < deadline:
        for app, installed in list(pending.items()):
            try:
                if installed and facts(served_der(port, manifest.apps[app].domains[0], host)).fingerprint == installed.fingerprint:
                    del pending[app]
            except (OSError, ssl.SSLError):
                pass
        if pending:
            time.sleep(0.2)
    return sorted(pending)


def status(root: Path, manifest: Manifest, mode: str, now: dt.datetime | None = None) -> list[dict]:
    now = now or dt.datetime.now(dt.UTC)
    host, port = tls_address(manifest, mode)
    rows = []
    for app_name, app in sorted(manifest.apps.items()):
        installed = installed_facts(root, mode, app_name)
        domains = app.domains if mode == "prod" else n.dev_domains(manifest, app_name)
        for domain in domains:
            served, error = None, None
            try:
                served = facts(served_der(port, domain, host))
            except (OSError, ssl.SSLError) as exc:
                error = f"no TLS handshake on {host}:{port}: {exc}"
            rows.append(status_row(app_name, app, domain, installed, served, error, now))
    return rows


def reload_nginx(stack: Stack, runner: Runner) -> None:
    tested = runner.run(nginx_test_argv(stack), cwd=stack.root, timeout=60)
    if not tested.ok:
        raise CertError(f"nginx -t failed, nginx keeps serving the previous certificates: {tested.output.splitlines()[-1:]}")
    reloaded = runner.run(nginx_reload_argv(stack), cwd=stack.root, timeout=60)
    if not reloaded.ok:
        raise CertError(f"nginx reload failed: {reloaded.output}")


def require_nginx(stack: Stack, runner: Runner) -> None:
    from plano.engine.stack import running_services

    if "nginx" not in running_services(stack, runner):
        raise CertError(f"nginx is not running; start the stack first (plano {stack.mode} up): the ACME server checks "
                        "each domain through it")


def issue_acme(stack: Stack, runner: Runner, app: str, server: str, force: bool, say: Callable[[str], None]) -> None:
    domains = stack.manifest.apps[app].domains
    say(f"{app}: asking {server} for {', '.join(domains)}")
    got = runner.run(certonly_argv(stack, app, domains, stack.manifest.email, server, force), cwd=stack.root, timeout=600)
    if not got.ok:
        raise CertError(f"{app}: {explain_failure(got.output, domains, server)}")
    installed = runner.run(install_argv(stack, app), cwd=stack.root, timeout=120)
    if not installed.ok:
        raise CertError(f"{app}: the certificate was issued but could not be installed: {installed.output}")


def install_own(root: Path, mode: str, app_name: str, app: App, now: dt.datetime | None = None) -> CertFacts:
    """Check your certificate and key (they match, still valid) and install them atomically."""
    from plano.core.files import write_atomic

    assert app.tls is not None
    now = now or dt.datetime.now(dt.UTC)
    where = f"apps/{app_name}/tls"
    cert_path, key_path = (root / app.tls.certificate), (root / app.tls.key)
    try:
        chain, key = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise CertError(f"{where}: cannot read {exc.filename}: {exc.strerror}; fix the path in plano.yml") from None
    own = check_own(chain, key, app.domains, now, where)
    target = cert_file(root, mode, app_name).parent
    write_atomic(target / "privkey.pem", key, 0o600)
    write_atomic(target / "fullchain.pem", chain, 0o644)
    return own


def check_own(chain: bytes, key: bytes, domains: list[str], now: dt.datetime, where: str) -> CertFacts:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        der = first_pem_der(chain)
    except ValueError:
        raise CertError(f"{where}/certificate: no PEM certificate in it; give the fullchain PEM file") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        raise CertError(f"{where}/key: not an unencrypted PEM private key; give the key file without a passphrase") from None
    cert = x509.load_der_x509_certificate(der)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, public) != private.public_key().public_bytes(serialization.Encoding.DER, public):
        raise CertError(f"{where}/key: does not belong to the certificate; give the key the certificate was made for")
    own = facts(der)
    if own.not_after <= now:
        raise CertError(f"{where}/certificate: expired on {own.not_after.date()}; give a current certificate")
    missing = [domain for domain in domains if not covers(own.names, domain)]
    if missing:
        raise CertError(f"{where}/certificate: does not cover {', '.join(missing)}; get a certificate for them or remove them from " + where.rsplit("/", 1)[0] + "/domains")
    return own
