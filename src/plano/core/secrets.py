"""Secrets: generated once with a CSPRNG, kept in git-ignored 0600 env files.

Values already on disk always win, so a re-render never rotates a password.
"""

from __future__ import annotations

import re
import secrets as _random
from collections.abc import Callable, Iterable
from pathlib import Path

ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
MIN_LENGTH = 32


def new_secret() -> str:
    """43 URL-safe characters (256 bits): safe inside postgres:// and redis:// URLs."""
    return _random.token_urlsafe(32)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What Postgres stores for a SCRAM-SHA-256 password (RFC 5803's format). Sent in
    ALTER ROLE ... PASSWORD instead of the password, a statement the server logs (on an
    error, or with log_statement) shows no password."""
    import base64
    import hashlib
    import hmac

    salt = salt if salt is not None else _random.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
            f"${b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}")


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = ENV_LINE_RE.match(line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match.group(1)] = value
    return values


def set_env_value(text: str, key: str, value: str) -> str:
    """The env file's text with KEY set to VALUE; every other line kept as it was."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = ENV_LINE_RE.match(line)
        if match and match.group(1) == key and not line.lstrip().startswith("#"):
            lines[i] = f"{key}={value}"
            break
    else:
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


SECRET_KEY_RE = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b|^KEY\b")
MASK = "*****"


def secret_values(paths: Iterable[Path]) -> set[str]:
    """The secret values of env files (keys naming a password, secret, token or key)."""
    return {value for path in paths for key, value in read_env(path).items() if SECRET_KEY_RE.search(key) and len(value) >= 8}


def mask(text: str, values: Iterable[str]) -> str:
    """`text` with every secret value replaced by *****, longest first."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def read_env(path: Path) -> dict[str, str]:
    try:
        return parse_env(path.read_text())
    except FileNotFoundError:
        return {}


def complete(
    existing: dict[str, str],
    secret_keys: Iterable[str],
    defaults: dict[str, str],
    make: Callable[[], str] = new_secret,
) -> dict[str, str]:
    """Existing values, plus a fresh secret for each missing secret key and defaults for the rest."""
    values = dict(existing)
    for key in secret_keys:
        if not values.get(key):
            values[key] = make()
    for key, value in defaults.items():
        values.setdefault(key, value)
    return values
