"""The local development CA: HTTPS for https://app1.localhost in dev.

Made once per user (not per infra) in $PLANO_DEV_CA_DIR, else
$XDG_DATA_HOME/plano/dev-ca, else ~/.local/share/plano/dev-ca. Its name
constraints allow `localhost` and its subdomains only, so even a leaked key
cannot sign a certificate that a browser accepts for a real domain; and plano
uses it for the dev stack only, never in prod.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plano.core import naming as n
from plano.core.errors import UsageError
from plano.core.files import write_atomic
from plano.core.mode import Mode
from plano.core.session import Session
from plano.engine.tls import key_access

PERMITTED = "localhost"
CA_YEARS = 10
LEAF_DAYS = 397  # what browsers accept
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class DevCA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path  # of ca.pem


def ca_dir() -> Path:
    if os.environ.get("PLANO_DEV_CA_DIR"):
        return Path(os.environ["PLANO_DEV_CA_DIR"])
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(data) / "plano" / "dev-ca"


def allowed(name: str) -> bool:
    return name == PERMITTED or name.endswith(f".{PERMITTED}")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def make_ca(now: dt.datetime, owner: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "plano development CA"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"plano dev CA {owner}"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DNSName(PERMITTED)], excluded_subtrees=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def ensure_ca(folder: Path | None = None, now: dt.datetime | None = None, session: Session | None = None) -> tuple[DevCA, bool]:
    """The CA, made on first use. Returns (ca, created). A CA file that cannot be read
    is named, never replaced (apps' certificates and browsers trust it)."""
    folder = folder or ca_dir()
    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise UsageError(f"{folder}: the plano development CA there is not readable (ca.pem, ca-key.pem); "
                             "move the folder away to make a new CA, or set PLANO_DEV_CA_DIR") from None
        return DevCA(cert, key, cert_path), False
    now = now or dt.datetime.now(dt.UTC)
    cert, key = make_ca(now, f"{getpass.getuser()}@{socket.gethostname()}")
    planned = session is not None and session.dry_run
    if not planned:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write = session.write if session is not None else write_atomic
    write(key_path, key_pem(key), 0o600)
    write(cert_path, pem(cert), 0o644)
    return DevCA(cert, key, cert_path), True


def issue_leaf(ca: DevCA, names: list[str], now: dt.datetime) -> tuple[bytes, bytes]:
    """(fullchain PEM, key PEM) for `names`, which must all be under .localhost."""
    refused = [name for name in names if not allowed(name)]
    if refused:
        raise UsageError(
            f"dev/domain_suffix: the dev CA signs *.{PERMITTED} names only, not {refused[0]}; "
            f"use domain_suffix: {PERMITTED}"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return pem(cert) + pem(ca.cert), key_pem(key)


def leaf_is_current(chain_pem: bytes | None, ca: DevCA, names: list[str], now: dt.datetime) -> bool:
    """True when the installed certificate was signed by this CA for exactly these
    names and is not near its end (else plano makes a new one)."""
    if not chain_pem:
        return False
    try:
        cert = x509.load_pem_x509_certificate(chain_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except (ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca.cert.subject
        and sorted(sans) == sorted(names)
        and cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)
    )


def trust_hint(path: Path) -> str:
    return (
        f"trust it once to get no browser warning for https://*.localhost: "
        f"Debian/Ubuntu: sudo cp {path} /usr/local/share/ca-certificates/plano-dev-ca.crt && sudo update-ca-certificates; "
        f"macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {path}; "
        f"Firefox: Settings > Certificates > Import; curl: --cacert {path}"
    )


def install_dev_certs(session: Session, app_domains: dict[str, list[str]], folder: Path | None = None,
                      now: dt.datetime | None = None) -> tuple[DevCA, bool, list[str]]:
    """Make sure each app's dev certificate is current; returns (ca, ca_created, apps renewed)."""
    now = now or dt.datetime.now(dt.UTC)
    root = session.root
    ca, created = ensure_ca(folder, now, session)
    renewed = []
    for app, names in sorted(app_domains.items()):
        target = root / n.installed_cert_dir(Mode.DEV, app)
        try:
            current = (target / "fullchain.pem").read_bytes()
        except OSError:
            current = None
        if leaf_is_current(current, ca, names, now):
            continue
        chain, key = issue_leaf(ca, names, now)
        session.write(target / "privkey.pem", key, *key_access())
        session.write(target / "fullchain.pem", chain, 0o644)
        renewed.append(app)
    return ca, created, renewed
