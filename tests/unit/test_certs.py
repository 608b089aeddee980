"""Certificates: exact certbot argv, certbot's failures in one line, status rows,
your own certificate's checks, and the dev CA (pure parts; the real ACME flow is
tests/integration/test_certs_e2e.py)."""

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plano.core import manifest as mf
from plano.core.errors import UsageError
from plano.core.mode import Mode
from plano.engine import nginx, tls
from plano.engine.compose import ComposeContext
from plano.engine.stack import Stack
from plano.ops import certs, devca
from tests import scripted

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
COMPOSE = ["docker", "compose", "-p", "acme", "--env-file", ".env.prod", "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml"]


@pytest.fixture
def manifest() -> mf.Manifest:
    return mf.load_text(mf.new_document("acme", "registry.example.com/acme", "ops@example.com")
                        .replace("apps: {}", "apps:\n  app1:\n    domains: [app1.example.com, www.app1.example.com]\n"
                                 "  app2:\n    domains: [app2.example.com]\n"))


@pytest.fixture
def stack(manifest) -> Stack:
    ctx = ComposeContext(("docker", "compose"), "acme", ("docker-compose.yml", "docker-compose.prod.yml"), (".env.prod",))
    return Stack(Path("/infra"), manifest, Mode.PROD, ctx)


def test_certonly_argv(stack):
    assert certs.certonly_argv(stack, "app1", ["app1.example.com", "www.app1.example.com"], "ops@example.com",
                               "https://acme.test/dir") == [
        *COMPOSE, "run", "--rm", "--no-deps", "-T", "--entrypoint", "certbot", "certbot",
        "certonly", "--webroot", "-w", "/var/www/certbot", "--cert-name", "app1",
        "-d", "app1.example.com", "-d", "www.app1.example.com", "--email", "ops@example.com", "--agree-tos",
        "--non-interactive", "--keep-until-expiring", "--server", "https://acme.test/dir",
    ]
    assert "--force-renewal" in certs.certonly_argv(stack, "app2", ["app2.example.com"], "e@x.io", "https://a/dir", force=True)


def test_install_renew_and_nginx_argv(stack):
    assert certs.install_argv(stack, "app1") == [
        *COMPOSE, "run", "--rm", "--no-deps", "-T", "-e", "RENEWED_LINEAGE=/etc/letsencrypt/live/app1",
        "--entrypoint", "/plano/scripts/deploy-hook.sh", "certbot",
    ]
    assert certs.renew_argv(stack, force=True) == [
        *COMPOSE, "run", "--rm", "--no-deps", "-T", "--entrypoint", "certbot", "certbot", "renew", "--non-interactive",
        "--no-random-sleep-on-renew", "--webroot", "-w", "/var/www/certbot", "--deploy-hook", "/plano/scripts/deploy-hook.sh",
        "--force-renewal",
    ]
    assert nginx.test_argv(stack) == [*COMPOSE, "exec", "-T", "nginx", "nginx", "-c", "/etc/plano/nginx/nginx.conf", "-t", "-q"]
    assert nginx.reload_argv(stack) == [*COMPOSE, "exec", "-T", "nginx", "/etc/plano/nginx/bin/plano-reload.sh"]


def test_choosing_apps_and_server(manifest):
    assert mf.select_apps(manifest, (), True, required=True) == ["app1", "app2"]
    assert mf.select_apps(manifest, ("app2",), False, required=True) == ["app2"]
    assert mf.select_apps(manifest, (), False) == ["app1", "app2"]  # without `required`, none named is every app
    for names, all_apps, message in (((), False, "which app?"), (("app1",), True, "not both"), (("app9",), False, "apps/app9: no such app")):
        with pytest.raises(UsageError, match=message):
            mf.select_apps(manifest, names, all_apps, required=True)
    with pytest.raises(UsageError, match="--app app9: no such app"):
        mf.select_apps(manifest, ("app9",), False, flag="--app")
    assert certs.acme_server(manifest, None, False) == "https://acme-v02.api.letsencrypt.org/directory"
    assert certs.acme_server(manifest, None, True) == certs.LETSENCRYPT_STAGING
    with pytest.raises(UsageError, match="--server http://x: not an ACME directory URL"):
        certs.acme_server(manifest, "http://x", False)


def test_the_dashboard_certificate_is_one_more_site(manifest):
    """dashboard.domain adds the lineage `plano` (no app may be named so): with --all or
    --dashboard, in prod's certificates only."""
    assert certs.sites(manifest) == {"app1": ["app1.example.com", "www.app1.example.com"], "app2": ["app2.example.com"]}
    with pytest.raises(UsageError, match="--dashboard: plano.yml sets no dashboard/domain"):
        certs.chosen_sites(manifest, (), False, True)
    manifest = manifest.model_copy(update={"dashboard": mf.DashboardSettings(domain="ops.example.com")})
    assert certs.sites(manifest)["plano"] == ["ops.example.com"]
    assert "plano" not in certs.sites(manifest, Mode.DEV)
    assert certs.chosen_sites(manifest, (), True, False) == ["app1", "app2", "plano"]
    assert certs.chosen_sites(manifest, (), False, True) == ["plano"]
    assert certs.chosen_sites(manifest, ("app2",), False, True) == ["app2", "plano"]
    assert certs.chosen_sites(manifest, ("app2",), False, False) == ["app2"]
    with pytest.raises(UsageError, match="which app?"):
        certs.chosen_sites(manifest, (), False, False)
    row = certs.status_row("plano", None, "ops.example.com", None, None, "no TLS handshake", NOW)
    assert (row.app, row.source, row.serving) == ("plano", "placeholder", False)


# What certbot printed against pebble (scripts/harness/pebble.sh), cut to the lines that matter.
REFUSED = 'An unexpected error occurred:\nOrder included an identifier for which issuance is forbidden by policy: "blocked-domain.example"\nAsk for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.'
UNREACHABLE = "An unexpected error occurred:\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='172.17.0.1', port=14000): Max retries exceeded with url: /dir (Caused by NewConnectionError(\"Failed to establish a new connection: [Errno 111] Connection refused\"))"
CHALLENGE = """Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:
  Domain: app1.example.com
  Type:   connection
  Detail: 127.0.0.1: Fetching http://app1.example.com/.well-known/acme-challenge/abc: Connection refused

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot."""


@pytest.mark.parametrize(("output", "expected"), [
    (REFUSED, "blocked-domain.example: the ACME server refuses to issue for this name (policy); remove it from the app's domains"),
    (UNREACHABLE, "app1.example.com, www.app1.example.com: the ACME server https://a/dir is unreachable; check --server and this machine's network, then run again"),
    (CHALLENGE, "app1.example.com: the ACME server could not validate it (connection: 127.0.0.1: Fetching http://app1.example.com/.well-known/acme-challenge/abc: Connection refused); check that the name points at this server and port 80 reaches nginx"),
    ("Something odd\nSaving debug log to /var/log/letsencrypt/letsencrypt.log\n", "app1.example.com, www.app1.example.com: certbot failed: Something odd"),
])
def test_certbot_failures_in_one_line(output, expected):
    assert certs.explain_failure(output, ["app1.example.com", "www.app1.example.com"], "https://a/dir") == expected


def self_signed(names: list[str], days: int = 90, key=None, now: dt.datetime = NOW) -> tuple[bytes, bytes]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xABC).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return devca.pem(cert), devca.key_pem(key)


def test_own_certificate_checks():
    chain, key = self_signed(["app1.example.com", "www.app1.example.com"])
    own = certs.check_own(chain, key, ["app1.example.com", "www.app1.example.com"], NOW, "apps/app1/tls")
    assert own.serial == "abc" and own.days_left(NOW) == 90
    _, other_key = self_signed(["x.example.com"])
    cases = [
        (chain, other_key, "apps/app1/tls/key: does not belong to the certificate"),
        (b"nothing", key, "apps/app1/tls/certificate: no PEM certificate in it"),
        (chain, b"nothing", "apps/app1/tls/key: not an unencrypted PEM private key"),
        (*self_signed(["app1.example.com"]), "apps/app1/tls/certificate: does not cover www.app1.example.com; get a certificate for them or remove them from apps/app1/domains"),
        (*self_signed(["app1.example.com", "www.app1.example.com"], days=-1), "apps/app1/tls/certificate: expired on"),
    ]
    for chain_pem, key_pem, message in cases:
        with pytest.raises(certs.CertError) as err:
            certs.check_own(chain_pem, key_pem, ["app1.example.com", "www.app1.example.com"], NOW, "apps/app1/tls")
        assert str(err.value).startswith(message)
    corrupt = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"  # valid base64, not a certificate
    with pytest.raises(certs.CertError) as err:
        certs.check_own(corrupt, key, ["app1.example.com"], NOW, "apps/app1/tls", "certs/app1.pem", "certs/app1.key")
    assert str(err.value) == ("apps/app1/tls/certificate (certs/app1.pem): not a readable X.509 certificate (corrupt PEM data); "
                              "give the fullchain PEM file")
    with pytest.raises(certs.CertError, match=r"^apps/app1/tls/key \(certs/app1.key\): does not belong to the certificate"):
        certs.check_own(chain, other_key, ["app1.example.com"], NOW, "apps/app1/tls", "certs/app1.pem", "certs/app1.key")


def test_wildcards_cover_one_level():
    assert tls.covers(("*.example.com",), "app1.example.com")
    assert not tls.covers(("*.example.com",), "a.b.example.com") and not tls.covers(("*.example.com",), "example.com")


def test_status_row_says_what_is_served(manifest):
    chain, _ = self_signed(["app1.example.com", "www.app1.example.com"])
    installed = tls.facts(tls.first_pem_der(chain))
    row = certs.status_row("app1", manifest.apps["app1"], "app1.example.com", installed, installed, None, NOW)
    assert row == certs.CertRow(
        app="app1", domain="app1.example.com", source="acme", issuer="app1.example.com",
        not_after=installed.not_after.isoformat(), days_left=90, serial="abc", covers_domain=True,
        serving=True, error=None,
    )
    other = tls.facts(tls.first_pem_der(self_signed(["app1.example.com"])[0]))
    assert certs.status_row("app1", manifest.apps["app1"], "app1.example.com", installed, other, None, NOW).serving is False
    down = certs.status_row("app1", manifest.apps["app1"], "app1.example.com", None, None, "no TLS handshake", NOW)
    assert down.source == "placeholder" and down.serving is False and down.issuer is None


def test_dev_ca_signs_localhost_names_only(tmp_path):
    ca, created = devca.ensure_ca(tmp_path, NOW)
    assert created and oct((tmp_path / "ca-key.pem").stat().st_mode & 0o777) == "0o600"
    assert devca.ensure_ca(tmp_path, NOW)[1] is False  # made once
    constraints = ca.cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value.permitted_subtrees == [x509.DNSName("localhost")]
    chain, key = devca.issue_leaf(ca, ["app1.localhost"], NOW)
    leaf = x509.load_pem_x509_certificate(chain)
    assert leaf.issuer == ca.cert.subject and chain.count(b"BEGIN CERTIFICATE") == 2
    leaf.verify_directly_issued_by(ca.cert)
    assert serialization.load_pem_private_key(key, None).public_key().public_numbers() == leaf.public_key().public_numbers()
    with pytest.raises(UsageError, match="dev/domain_suffix: the dev CA signs \\*.localhost names only, not app1.example.com"):
        devca.issue_leaf(ca, ["app1.example.com"], NOW)


def test_dev_certificates_are_made_once_and_renewed_when_due(tmp_path):
    ca_folder, root = tmp_path / "ca", tmp_path / "infra"
    here = scripted.session(root, scripted.ScriptedRunner())
    _, created, renewed = devca.install_dev_certs(here, {"app1": ["app1.localhost"]}, ca_folder, NOW)
    assert created and renewed == ["app1"]
    target = root / "data/dev/certs/plano/app1"
    key = (target / "privkey.pem").stat()
    if os.geteuid() == 0:  # nginx's workers read it through certbot's group
        assert (oct(key.st_mode & 0o777), key.st_uid, key.st_gid) == ("0o640", 1001, 1001)
    else:
        assert (oct(key.st_mode & 0o777), key.st_uid) == ("0o600", os.geteuid())
    assert devca.install_dev_certs(here, {"app1": ["app1.localhost"]}, ca_folder, NOW)[2] == []
    later = NOW + dt.timedelta(days=devca.LEAF_DAYS - 10)
    assert devca.install_dev_certs(here, {"app1": ["app1.localhost"]}, ca_folder, later)[2] == ["app1"]
    (target / "fullchain.pem").write_text("placeholder")
    assert devca.install_dev_certs(here, {"app1": ["app1.localhost"]}, ca_folder, NOW)[2] == ["app1"]


def test_renewed_apps_from_certbots_summary():
    output = """Congratulations, all renewals succeeded:
  /etc/letsencrypt/live/app1/fullchain.pem (success)
  /etc/letsencrypt/live/app2/fullchain.pem (success)"""
    assert certs.renewed_apps(output) == ["app1", "app2"]
    assert certs.renewed_apps("No renewals were attempted.") == []
