"""Who may use the dashboard: its users (`plano dashboard passwd`), its API tokens
(`plano dashboard token`) and the key that signs its session cookies.

All three live in the infra's .dashboard/ folder, kept out of git the way the env files
are (the infra's .gitignore, and a .gitignore of the folder's own for an infra rendered
before it existed), the folder 0700 and each file 0600, each replaced whole on a change.
Passwords are stored as Argon2id hashes (argon2-cffi's defaults, with the parameters in
the hash); API tokens are 256 random bits, so a SHA-256 of each is what is kept (it is
looked up on every API call, and no dictionary reaches a random token). The dashboard
reads the file on each sign-in and each API call: a new user, a changed role or a
replaced token counts at once, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from plano.core import naming as n
from plano.core.errors import FileProblem, UsageError
from plano.core.files import write_atomic

ROLES = ("viewer", "operator")  # a viewer reads; an operator also deploys, rolls back, switches maintenance
NAME_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}", re.ASCII)
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
TOKEN_PREFIX = "plano_"
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def operator(self) -> bool:
        return self.role == "operator"


def hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


# ---------------------------------------------------------------- checking what is typed


def check_name(value: str, what: str = "USER") -> str:
    if not NAME_RE.fullmatch(value or ""):
        raise UsageError(f"{what} {value!r}: names are 1 to 32 lower-case letters, digits, '.', '_' or '-', "
                         "starting with a letter (e.g. alice)")
    return value


def check_role(value: str) -> str:
    if value not in ROLES:
        raise UsageError(f"--role {value!r}: one of {', '.join(ROLES)}")
    return value


def check_password(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise UsageError(f"password: at least {PASSWORD_MIN} characters (a passphrase of a few words will do)")
    if len(value) > PASSWORD_MAX or "\n" in value or "\r" in value:
        raise UsageError(f"password: one line of at most {PASSWORD_MAX} characters")
    return value


# ---------------------------------------------------------------- the files


def folder(root: Path) -> Path:
    """.dashboard/, made 0700 with its own .gitignore ('*': nothing in it is ever committed)."""
    path = root / n.DASHBOARD_DIR
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    path.chmod(DIR_MODE)
    ignore = path / ".gitignore"
    if not ignore.is_file():
        write_atomic(ignore, "# plano dashboard's users, tokens and key: never committed\n*\n", 0o644)
    return path


def load(root: Path) -> dict:
    """The users file: {"users": {name: {role, hash}}, "tokens": {name: {role, sha256}}}."""
    path = root / n.DASHBOARD_USERS
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"users": {}, "tokens": {}}
    except (OSError, ValueError) as exc:
        raise FileProblem(f"{n.DASHBOARD_USERS}: not readable ({exc}); set the passwords again with plano dashboard passwd") from None
    return {"users": dict(data.get("users") or {}), "tokens": dict(data.get("tokens") or {})}


def save(root: Path, data: dict) -> None:
    folder(root)
    write_atomic(root / n.DASHBOARD_USERS, json.dumps(data, indent=2, sort_keys=True) + "\n", FILE_MODE)


def secret_key(root: Path) -> bytes:
    """The key that signs session cookies: made once (256 random bits), then read."""
    path = root / n.DASHBOARD_KEY
    if not path.is_file():
        folder(root)
        write_atomic(path, secrets.token_hex(32) + "\n", FILE_MODE)
    key = path.read_text().strip()
    if len(key) < 32:
        raise FileProblem(f"{n.DASHBOARD_KEY}: too short to sign sessions; remove it and start plano dashboard again")
    return key.encode()


# ---------------------------------------------------------------- users


def set_password(root: Path, name: str, role: str, password: str) -> bool:
    """Add user `name` or change their password and role; True when they are new."""
    check_name(name)
    check_role(role)
    check_password(password)
    data = load(root)
    new = name not in data["users"]
    data["users"][name] = {"role": role, "hash": hasher().hash(password)}
    save(root, data)
    return new


def remove_user(root: Path, name: str) -> bool:
    data = load(root)
    found = data["users"].pop(check_name(name), None) is not None
    if found:
        save(root, data)
    return found


def users(root: Path) -> list[User]:
    return [User(name, entry.get("role", "viewer")) for name, entry in sorted(load(root)["users"].items())]


@cache
def dummy_hash() -> str:
    """A hash of a password no one has: an unknown user costs a sign-in the same time as a known one."""
    return hasher().hash(secrets.token_hex(16))


def authenticate(root: Path, name: str, password: str) -> User | None:
    """The user when `password` is theirs, else None (unknown user or wrong password)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    entry = load(root)["users"].get(name)
    try:
        ok = hasher().verify(entry["hash"] if entry else dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or entry is None:
        return None
    return User(name, entry.get("role", "viewer"))


def role_of(root: Path, name: str) -> str | None:
    """The user's role now (None: removed since they signed in)."""
    entry = load(root)["users"].get(name)
    return entry.get("role", "viewer") if entry else None


# ---------------------------------------------------------------- API tokens


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(root: Path, name: str, role: str = "viewer") -> str:
    """A new API token called `name` (one of that name is replaced); only its hash is kept,
    so the token is shown this once."""
    check_name(name, "NAME")
    check_role(role)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    data = load(root)
    data["tokens"][name] = {"role": role, "sha256": digest(token)}
    save(root, data)
    return token


def remove_token(root: Path, name: str) -> bool:
    data = load(root)
    found = data["tokens"].pop(check_name(name, "NAME"), None) is not None
    if found:
        save(root, data)
    return found


def token_user(root: Path, token: str) -> User | None:
    """Who an API token acts as: `token:NAME` with the token's role; None when no token matches."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    wanted = digest(token)
    for name, entry in sorted(load(root)["tokens"].items()):
        if hmac.compare_digest(str(entry.get("sha256", "")), wanted):
            return User(f"token:{name}", entry.get("role", "viewer"))
    return None
