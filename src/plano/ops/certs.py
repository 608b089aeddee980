"""`plano certs ...`: certificates from an ACME server (certbot in a one-off
container of the prod stack, HTTP-01 through the running nginx), your own per app,
status from a real TLS handshake, and the renewal. On a swarm, certbot's commands run
in its task on the edge node, where plano runs and nginx reads data/certs."""

from __future__ import annotations

import datetime as dt
import re
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import FileProblem, PlanoError, UsageError
from plano.core.manifest import App, Manifest, select_apps
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine import nginx, swarm
from plano.engine.stack import Stack, open_stack, require_engine
from plano.engine.tls import (
    CertFacts,
    cert_file,
    covers,
    facts,
    first_pem_der,
    installed_facts,
    key_access,
    served_der,
    tls_address,
)

LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"


class CertError(PlanoError):
    """A certificate could not be obtained or installed (the message names the domain)."""


def acme_server(manifest: Manifest, server: str | None, staging: bool) -> str:
    if server and staging:
        raise UsageError("give --server or --staging, not both")
    if server and not server.startswith("https://"):
        raise UsageError(f"--server {server}: not an ACME directory URL; write https://host/path")
    return server or (LETSENCRYPT_STAGING if staging else manifest.acme.server)


# ---------------------------------------------------------------- argv builders


@dataclass(frozen=True)
class InTask:
    """On a swarm: certbot's running task on this node (the edge node), where certbot
    commands run, with the same volumes as its one-off container on one server."""

    container: str


def certbot_argv(where: Stack | InTask, *args: str, env: tuple[str, ...] = (), entrypoint: str = "certbot") -> list[str]:
    """A one-off certbot container of the stack (its volumes, networks and settings), or
    on a swarm the running certbot task."""
    if isinstance(where, InTask):
        return swarm.task_exec_argv(where.container, [entrypoint, *args], env)
    flags = [item for pair in (("-e", e) for e in env) for item in pair]
    return where.argv("run", "--rm", "--no-deps", "-T", *flags, "--entrypoint", entrypoint, "certbot", *args)


def certbot_where(session: Session, st: Stack, why: str) -> Stack | InTask:
    """Where certbot runs, once nginx is known to serve the challenges: the stack's one-off
    container, or on a swarm the certbot task beside nginx on this node."""
    if session.manifest.target == "swarm":
        swarm.local_task(session, "nginx", why)
        return InTask(swarm.local_task(session, "certbot", why))
    nginx.require_running(session, st, why)
    return st


def certonly_argv(stack: Stack | InTask, app: str, domains: list[str], email: str, server: str, force: bool = False) -> list[str]:
    """One certificate named after the app for all its domains. Without `force`, a
    current certificate for the same names is kept (running again is harmless)."""
    names = [item for domain in domains for item in ("-d", domain)]
    return certbot_argv(
        stack, "certonly", "--webroot", "-w", n.WEBROOT, "--cert-name", app, *names,
        "--email", email, "--agree-tos", "--non-interactive",
        "--force-renewal" if force else "--keep-until-expiring", "--server", server,
    )


def install_argv(stack: Stack | InTask, app: str) -> list[str]:
    """Copy certbot's current certificate of `app` where nginx reads it (the deploy hook)."""
    return certbot_argv(stack, env=(f"RENEWED_LINEAGE=/etc/letsencrypt/live/{app}",), entrypoint=n.CERTBOT_DEPLOY_HOOK)


def renew_argv(stack: Stack | InTask, force: bool) -> list[str]:
    return certbot_argv(
        stack, "renew", "--non-interactive", "--no-random-sleep-on-renew", "--webroot", "-w", n.WEBROOT,
        "--deploy-hook", n.CERTBOT_DEPLOY_HOOK, *(["--force-renewal"] if force else []),
    )


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


def sites(manifest: Manifest, mode: Mode = Mode.PROD) -> dict[str, list[str]]:
    """Every certificate nginx serves and its names: one per app, and in prod the
    dashboard's (lineage naming.DASHBOARD_SITE) when dashboard.domain is set."""
    found = {app: mode.domains(manifest, app) for app in sorted(manifest.apps)}
    if manifest.dashboard.domain is not None and not mode.is_dev:
        found[n.DASHBOARD_SITE] = [manifest.dashboard.domain]
    return found


def chosen_sites(manifest: Manifest, apps: tuple[str, ...], all_apps: bool, dashboard: bool) -> list[str]:
    """The apps named (or every one with --all) and, with --dashboard or --all, the dashboard."""
    if dashboard and manifest.dashboard.domain is None:
        raise UsageError("--dashboard: plano.yml sets no dashboard/domain; add dashboard: {domain: ops.example.com} first")
    only_dashboard = dashboard and not (apps or all_apps)
    chosen = [] if only_dashboard else select_apps(manifest, apps, all_apps, required=True)
    if (dashboard or all_apps) and manifest.dashboard.domain is not None:
        chosen.append(n.DASHBOARD_SITE)
    return chosen


def renewed_apps(output: str) -> list[str]:
    """The lineages `certbot renew` reports as renewed (named after the apps, and the dashboard's)."""
    return re.findall(r"/live/([^/\s]+)/fullchain\.pem \(success\)", output)


# ---------------------------------------------------------------- status rows (pure)


@dataclass(frozen=True)
class CertRow:
    app: str
    domain: str
    source: str  # acme | own | placeholder
    issuer: str | None
    not_after: str | None
    days_left: int | None
    serial: str | None
    covers_domain: bool
    serving: bool
    error: str | None


def source_of(app: App | None, installed: CertFacts | None) -> str:
    if app is not None and app.tls:
        return "own"
    if installed is None or installed.placeholder:
        return "placeholder"
    return "acme"


def status_row(app_name: str, app: App | None, domain: str, installed: CertFacts | None,
               served: CertFacts | None, error: str | None, now: dt.datetime) -> CertRow:
    shown = served or installed
    return CertRow(
        app=app_name, domain=domain, source=source_of(app, installed),
        issuer=shown.issuer if shown else None,
        not_after=shown.not_after.isoformat() if shown else None,
        days_left=shown.days_left(now) if shown else None,
        serial=shown.serial if shown else None,
        covers_domain=bool(shown) and covers(shown.names, domain),
        serving=bool(served and installed and served.fingerprint == installed.fingerprint),
        error=error,
    )


def status(session: Session, now: dt.datetime | None = None) -> list[CertRow]:
    """Per domain of the session's mode: what is installed and what nginx serves."""
    mode, root, manifest = session.stack_mode, session.root, session.manifest
    now = now or dt.datetime.now(dt.UTC)
    host, port = tls_address(manifest, mode)
    rows = []
    for app_name, domains in sites(manifest, mode).items():
        installed = installed_facts(root, mode, app_name)
        for domain in domains:
            served, error = None, None
            try:
                served = facts(served_der(port, domain, host))
            except (OSError, ssl.SSLError, ValueError) as exc:
                error = f"no TLS handshake on {host}:{port}: {exc}"
            rows.append(status_row(app_name, manifest.apps.get(app_name), domain, installed, served, error, now))
    return rows


# ---------------------------------------------------------------- issuing


@dataclass
class Issued:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)  # installed, not yet served when issue returned


def issue(session: Session, apps: tuple[str, ...], all_apps: bool, staging: bool = False, server: str | None = None,
          force: bool = False, dashboard: bool = False) -> Issued:
    """One certificate per app for all its domains (and the dashboard's, with `dashboard`
    or `all_apps`); one that fails is reported and the others go on. No reload: nginx's
    workers load the installed files at the next TLS handshakes (ssl_certificate_cache,
    nginx.conf); this waits until they do."""
    st = open_stack(session)
    chosen = chosen_sites(st.manifest, apps, all_apps, dashboard)
    url = acme_server(st.manifest, server, staging)
    require_engine(session.runner)
    where = certbot_where(session, st, "the ACME server checks each domain through it")
    result = Issued()
    for app in chosen:
        try:
            if app in st.manifest.apps and st.manifest.apps[app].tls:
                own = install_own(session, app, st.manifest.apps[app])
                session.done(f"{app}: installed your certificate (issuer {own.issuer}, until {own.not_after.date()})")
            else:
                issue_acme(session, where, app, url, force)
                session.done(f"{app}: certificate installed")
            result.done.append(app)
        except CertError as exc:
            result.failed.append(app)
            session.out.note(f"error: {exc}")
    if result.done:
        result.late = [] if session.dry_run else wait_until_served(st.root, st.manifest, result.done)
    if result.failed:
        raise CertError(
            f"no new certificate for {', '.join(result.failed)} (see above); nginx keeps serving what it served, "
            "fix the cause and run the same command again"
        )
    return result


def issue_acme(session: Session, where: Stack | InTask, app: str, server: str, force: bool) -> None:
    domains = sites(session.manifest)[app]
    session.out.note(f"{app}: asking {server} for {', '.join(domains)}")
    got = session.act(certonly_argv(where, app, domains, session.manifest.email, server, force), timeout=600)
    if not got.ok:
        raise CertError(f"{app}: {explain_failure(got.output, domains, server)}")
    installed = session.act(install_argv(where, app), timeout=120)
    if not installed.ok:
        raise CertError(f"{app}: the certificate was issued but could not be installed: {installed.output}")


def renew(session: Session, force: bool = False) -> tuple[list[str], list[str]]:
    """Renew what is due now; returns (certbot's renewed lines, apps not yet served).
    No reload: certbot's deploy hook installs the files, nginx's workers load them."""
    st = open_stack(session)
    require_engine(session.runner)
    where = certbot_where(session, st, "renewals are checked through it")
    result = session.act(renew_argv(where, force), timeout=1800)
    if not result.ok:
        raise CertError(f"renewal failed: {explain_failure(result.output, ['some domains'], 'in data/certs/renewal/')}")
    renewed = [line.strip() for line in result.output.splitlines() if line.strip().endswith("(success)")]
    served = sites(st.manifest)
    apps = [app for app in renewed_apps(result.output) if app in served]
    return renewed, ([] if session.dry_run else wait_until_served(st.root, st.manifest, apps))


SETTLE_SECONDS = n.CERT_CACHE_VALID_SECONDS + 1  # valid=, counted in whole seconds by nginx


def wait_until_served(root: Path, manifest: Manifest, apps: list[str], seconds: float = SETTLE_SECONDS + 10,
                      settle: float = SETTLE_SECONDS) -> list[str]:
    """Just after the files were installed: wait until each app's first domain is served
    its installed certificate, and `settle` seconds in all, after which every nginx worker
    (each has its own cache) has checked the files again. Returns the apps not served."""
    host, port = tls_address(manifest, Mode.PROD)
    names = sites(manifest)
    installed = {app: installed_facts(root, Mode.PROD, app) for app in apps}
    unreadable = [app for app, found in installed.items() if found is None]  # nothing to wait for
    pending = {app: found for app, found in installed.items() if found is not None}
    awaited, start = bool(pending), time.monotonic()
    deadline = start + seconds
    while pending and time.monotonic() < deadline:
        for app, expected in list(pending.items()):
            try:
                if facts(served_der(port, names[app][0], host)).fingerprint == expected.fingerprint:
                    del pending[app]
            except (OSError, ssl.SSLError, ValueError):
                pass
        if pending:
            time.sleep(0.2)
    if awaited and not pending:
        time.sleep(max(0.0, start + settle - time.monotonic()))
    return sorted([*pending, *unreadable])


# ---------------------------------------------------------------- your own certificate


def install_own(session: Session, app_name: str, app: App, now: dt.datetime | None = None) -> CertFacts:
    """Check your certificate and key (they match, still valid) and install them atomically."""
    assert app.tls is not None
    now = now or dt.datetime.now(dt.UTC)
    where = f"apps/{app_name}/tls"
    root = session.root
    cert_path, key_path = (root / app.tls.certificate), (root / app.tls.key)
    try:
        chain, key = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as exc:
        raise CertError(f"{where}: cannot read {exc.filename}: {exc.strerror}; fix the path in plano.yml") from None
    own = check_own(chain, key, app.domains, now, where, app.tls.certificate, app.tls.key)
    target = cert_file(root, session.stack_mode, app_name).parent
    try:
        session.write(target / "privkey.pem", key, *key_access())
        session.write(target / "fullchain.pem", chain, 0o644)
    except OSError as exc:
        raise FileProblem.of(exc, "write") from None
    return own


def check_own(chain: bytes, key: bytes, domains: list[str], now: dt.datetime, where: str,
              cert_path: str = "", key_path: str = "") -> CertFacts:
    """Your certificate and key, checked; each error names the field and the file."""
    cert_at = f"{where}/certificate" + (f" ({cert_path})" if cert_path else "")
    key_at = f"{where}/key" + (f" ({key_path})" if key_path else "")
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        der = first_pem_der(chain)
    except ValueError:
        raise CertError(f"{cert_at}: no PEM certificate in it; give the fullchain PEM file") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertError(f"{key_at}: not an unencrypted PEM private key; give the key file without a passphrase") from None
    try:
        cert = x509.load_der_x509_certificate(der)
        own = facts(der)
    except ValueError:
        raise CertError(f"{cert_at}: not a readable X.509 certificate (corrupt PEM data); give the fullchain PEM file") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.DER, public) != private.public_key().public_bytes(serialization.Encoding.DER, public):
        raise CertError(f"{key_at}: does not belong to the certificate; give the key the certificate was made for")
    if own.not_after <= now:
        raise CertError(f"{cert_at}: expired on {own.not_after.date()}; give a current certificate")
    missing = [domain for domain in domains if not covers(own.names, domain)]
    if missing:
        raise CertError(f"{cert_at}: does not cover {', '.join(missing)}; get a certificate for them or remove them from " + where.rsplit("/", 1)[0] + "/domains")
    return own
