"""What a certificate says, and what nginx serves: read from PEM files and from a
real TLS handshake (no verification: plano only reads the leaf)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core.manifest import Manifest
from plano.core.mode import Mode

PLACEHOLDER_CN = "plano placeholder"


@dataclass(frozen=True)
class CertFacts:
    subject: str
    issuer: str
    not_after: dt.datetime
    serial: str
    names: tuple[str, ...]
    fingerprint: str  # sha256 of the DER
    not_before: dt.datetime | None = None

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
        not_before=cert.not_valid_before_utc,
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


def covers(names: tuple[str, ...], domain: str) -> bool:
    return any(name == domain or (name.startswith("*.") and domain.split(".", 1)[-1] == name[2:]) for name in names)


def cert_file(root: Path, mode: Mode, app: str) -> Path:
    return root / n.installed_cert_dir(mode, app) / "fullchain.pem"


def key_access() -> tuple[int, int | None]:
    """(mode, owner) of a private key plano installs for nginx. As root: 0640, certbot's
    user and group, which nginx's workers run with (they load keys at the TLS handshake;
    they hold the key in memory anyway). Without root no chown is possible: 0600, yours."""
    if os.geteuid() == 0:
        return 0o640, n.CERTBOT_UID
    return 0o600, None


def installed_facts(root: Path, mode: Mode, app: str) -> CertFacts | None:
    """The installed certificate, or None when there is none or it cannot be read."""
    try:
        return facts(first_pem_der(cert_file(root, mode, app).read_bytes()))
    except (OSError, ValueError):
        return None


def tls_address(manifest: Manifest, mode: Mode) -> tuple[str, int]:
    """Where this machine reaches the stack's HTTPS port."""
    settings = mode.settings(manifest)
    host = "127.0.0.1" if settings.bind in ("0.0.0.0", "::", "") else settings.bind
    return host, settings.https_port
