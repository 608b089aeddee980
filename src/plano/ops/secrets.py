"""`plano secrets ...`: the secret env files (.env.prod, .env.dev) kept in git encrypted
with SOPS and age (.env.prod.enc), so a server can be rebuilt from the infra repo and one key.

The plain values never reach a command line or the output: sops gets file paths, its
decrypted output is read from a pipe, compared in memory and written atomically (0600).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets
from plano.core.errors import (
    EnvironmentProblem,
    FileProblem,
    PlanoError,
    RefusedError,
    UsageError,
)
from plano.core.files import write_atomic, write_new
from plano.core.runner import Result
from plano.core.session import Session
from plano.engine import sops as s

CONFIG_HEADER = (
    "# SOPS rules for plano secrets: the age public keys that .env.prod.enc and .env.dev.enc are encrypted for.\n"
    "# Commit this file. Add a teammate: plano secrets init --recipient age1..., then plano secrets encrypt.\n"
)


@dataclass(frozen=True)
class Initialized:
    key_file: str
    key_created: bool
    public_key: str
    config: str
    recipients: list[str]
    config_written: bool


@dataclass(frozen=True)
class Written:
    path: str
    changed: bool


@dataclass(frozen=True)
class EnvState:
    file: str
    encrypted_file: str
    plain: bool
    encrypted: bool
    in_sync: bool | None  # None: cannot tell (a file missing, or no key to decrypt)
    differing_keys: list[str] = field(default_factory=list)  # names only, never values
    recipients: list[str] = field(default_factory=list)  # what the encrypted file is encrypted for
    missing_recipients: list[str] = field(default_factory=list)  # in .sops.yaml, not yet in the encrypted file
    detail: str = ""


# ---------------------------------------------------------------- pure decisions


def differing(plain: dict[str, str], decrypted: dict[str, str]) -> list[str]:
    """The keys whose values differ between two env files (either side missing counts)."""
    return sorted(key for key in plain.keys() | decrypted.keys() if plain.get(key) != decrypted.get(key))


def lost_by_decrypt(plain: dict[str, str], decrypted: dict[str, str]) -> list[str]:
    """The keys of the plain file whose value the decrypted one would not keep."""
    return sorted(key for key, value in plain.items() if value and decrypted.get(key) != value)


def merged_recipients(existing: list[str], added: list[str]) -> list[str]:
    return list(dict.fromkeys([*existing, *added]))


def flag(env_file: str) -> str:
    return " --dev" if env_file == n.ENV_DEV else ""


# ---------------------------------------------------------------- the key and .sops.yaml


def key_path() -> Path:
    return s.key_file(os.environ, Path.home())


def key_env() -> dict[str, str]:
    """Point sops at the key file when it exists (else sops looks in its other places)."""
    path = key_path()
    return s.key_env(path) if path.is_file() else {}


def ensure_identity(path: Path, recipients: list[str]) -> tuple[str, bool]:
    """The public key of the age identity at `path`, made (0600, folder 0700) when missing,
    never replaced. Of several identities, one already a recipient wins, else the first."""
    if path.exists():
        found = s.public_keys(path.read_text())
        if not found:
            raise RefusedError(f"{path}: holds no age identity (AGE-SECRET-KEY-1...); fix or move that file, "
                               f"or set {s.KEY_FILE_ENV} to another path")
        return next((key for key in found if key in recipients), found[0]), False
    secret, public = s.new_identity()
    make_private_dirs(path.parent)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_new(path, s.key_file_text(secret, public, created), 0o600)
    return public, True


def make_private_dirs(folder: Path) -> None:
    """Create the folders that are missing, each 0700 (folders that exist are left alone)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(mode=0o700)
        os.chmod(made, 0o700)


def read_config(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise UsageError(f"{path.name}: not valid YAML ({problem}); fix it or move it away, then run 'plano secrets init'") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("creation_rules", []), list):
        raise UsageError(f"{path.name}: not a SOPS config (a mapping with a creation_rules list); fix it or move it away")
    return data


def config_text(data: dict) -> str:
    import yaml

    return CONFIG_HEADER + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def init(session: Session, added: list[str]) -> Initialized:
    """Reuse or create this machine's age identity; make `.sops.yaml` encrypt for it and `added`."""
    checked = [s.check_recipient(value) for value in added]  # every flag checked before anything is written
    config_path = session.root / n.SOPS_CONFIG
    config = read_config(config_path)
    existing = s.rule_recipients(config)
    path = key_path()
    public, created = ensure_identity(path, existing)
    recipients = merged_recipients(existing, [public, *checked])
    write = recipients != existing or s.plano_rule(config) is None
    if write:
        session.write(config_path, config_text(s.with_recipients(config, recipients)), 0o644)
    return Initialized(str(path), created, public, n.SOPS_CONFIG, recipients, write)


def configured_recipients(session: Session) -> list[str]:
    return s.rule_recipients(read_config(session.root / n.SOPS_CONFIG))


# ---------------------------------------------------------------- sops


def tool(session: Session) -> s.Sops:
    return s.Sops(s.find_binary(), session.root / n.SOPS_CONFIG)


def first_line(result: Result) -> str:
    lines = [line.strip() for line in result.err.splitlines() if line.strip()]
    return lines[0] if lines else f"exit code {result.code}"


def decrypted_values(session: Session, env_file: str) -> tuple[str, dict[str, str]]:
    """The decrypted text of the env file's encrypted copy, and its values (in memory only)."""
    encrypted = n.encrypted(env_file)
    got = session.query(s.decrypt_argv(tool(session), session.root / encrypted), env=key_env())
    if got.code == s.NO_KEY:
        raise EnvironmentProblem(
            f"{encrypted}: no age key here can decrypt it (looked in {key_path()}); put the team's key there or set "
            f"{s.KEY_FILE_ENV}, or have a teammate add your public key (plano secrets init --recipient) and re-encrypt")
    if not got.ok:
        raise PlanoError(f"{encrypted}: sops could not decrypt it: {first_line(got)}; restore it from git (git checkout -- {encrypted})")
    return got.out, secrets.parse_env(got.out)


def require_file(session: Session, name: str, fix: str) -> Path:
    path = session.root / name
    if not path.is_file():
        raise FileProblem(f"{name}: not found in {session.root}; {fix}")
    return path


def encrypt(session: Session, env_file: str) -> Written:
    """`.env.prod` -> `.env.prod.enc`, for `.sops.yaml`'s recipients. An encrypted file that
    already holds the same values for the same recipients is kept (no churn in git)."""
    plain = require_file(session, env_file, f"run 'plano render' (it generates it) or 'plano secrets decrypt{flag(env_file)}'")
    recipients = configured_recipients(session)
    if not recipients:
        raise FileProblem(f"{n.SOPS_CONFIG}: no age recipient for {n.encrypted(env_file)}; run 'plano secrets init' first")
    encrypted = session.root / n.encrypted(env_file)
    if encrypted.is_file() and in_sync_for(session, env_file, recipients):
        return Written(n.encrypted(env_file), False)
    got = session.query(s.encrypt_argv(tool(session), plain, n.encrypted(env_file)))
    if not got.ok:
        raise PlanoError(f"{env_file}: sops could not encrypt it: {first_line(got)}; check {n.SOPS_CONFIG} (plano secrets init rewrites it)")
    session.write(encrypted, got.out, 0o644)
    return Written(n.encrypted(env_file), True)


def in_sync_for(session: Session, env_file: str, recipients: list[str]) -> bool:
    """True when the encrypted file holds the plain file's values, for exactly these recipients."""
    if set(s.encrypted_recipients((session.root / n.encrypted(env_file)).read_text())) != set(recipients):
        return False
    try:
        _, values = decrypted_values(session, env_file)
    except PlanoError:  # no key here: encrypt anyway (a recipient only needs the public keys)
        return False
    return not differing(secrets.read_env(session.root / env_file), values)


def decrypt(session: Session, env_file: str, force: bool = False) -> Written:
    """`.env.prod.enc` -> `.env.prod` (0600), refusing to drop values only the plain file has."""
    encrypted = n.encrypted(env_file)
    require_file(session, encrypted, f"run 'plano secrets encrypt{flag(env_file)}' where {env_file} is, then commit and pull it")
    text, values = decrypted_values(session, env_file)
    plain = session.root / env_file
    if plain.is_file():
        if plain.read_text() == text:
            return Written(env_file, False)
        lost = lost_by_decrypt(secrets.read_env(plain), values)
        if lost and not force:
            raise RefusedError(f"{env_file}: has values {encrypted} lacks ({', '.join(lost[:4])}{' ...' if len(lost) > 4 else ''}); "
                               f"run 'plano secrets encrypt{flag(env_file)}' to keep them, or add --force to drop them")
    session.write(plain, text, 0o600)
    return Written(env_file, True)


def restore_plain(session: Session, env_file: str) -> bool:
    """Decrypt the env file when only its encrypted copy is here (a fresh clone); True if it did."""
    if (session.root / env_file).exists() or not (session.root / n.encrypted(env_file)).is_file():
        return False
    if session.dry_run:  # what follows reads the plain file, which a dry run does not write
        raise PlanoError(f"{env_file}: missing, only {n.encrypted(env_file)} is here; run 'plano secrets decrypt{flag(env_file)}' "
                         "first (a dry run writes nothing)")
    decrypt(session, env_file)
    session.out.note(f"decrypted {n.encrypted(env_file)} to {env_file} (mode 0600)")
    return True


def edit(session: Session, env_file: str, force: bool = False) -> Written:
    """sops's editor flow on a copy of the encrypted file, which replaces it only when the
    edit succeeded; then the plain file is decrypted from it."""
    encrypted = n.encrypted(env_file)
    path = require_file(session, encrypted, f"run 'plano secrets encrypt{flag(env_file)}' first")
    plain = session.root / env_file
    if plain.is_file() and not force:
        _, values = decrypted_values(session, env_file)
        lost = lost_by_decrypt(secrets.read_env(plain), values)
        if lost:
            raise RefusedError(f"{env_file}: has values {encrypted} lacks ({', '.join(lost[:4])}); "
                               f"run 'plano secrets encrypt{flag(env_file)}' first, or add --force to drop them")
    copy = path.with_name(f"{path.name}.plano-tmp")  # git-ignored, like every *.plano-tmp
    write_atomic(copy, path.read_bytes(), 0o600)
    try:
        code = session.act_stream(s.edit_argv(tool(session), copy), env=key_env())
        if code == s.NO_KEY:
            raise EnvironmentProblem(f"{encrypted}: no age key here can decrypt it (looked in {key_path()}); put the team's key "
                                     f"there or set {s.KEY_FILE_ENV}; {encrypted} is unchanged")
        if code not in (0, s.UNCHANGED):
            raise PlanoError(f"{encrypted}: sops edit failed (exit code {code}, see above); {encrypted} is unchanged")
        if code == 0:
            os.chmod(copy, 0o644)
            os.replace(copy, path)
    finally:
        copy.unlink(missing_ok=True)
    decrypt(session, env_file, force=True)
    return Written(encrypted, code == 0)


# ---------------------------------------------------------------- status


def status(session: Session) -> list[EnvState]:
    """Per secret env file: which copies are here, whether they hold the same values, for whom."""
    try:
        configured = configured_recipients(session)
    except PlanoError:
        configured = []
    return [env_state(session, env_file, configured) for env_file in n.SECRET_ENVS]


def env_state(session: Session, env_file: str, configured: list[str]) -> EnvState:
    plain = (session.root / env_file).is_file()
    enc_path = session.root / n.encrypted(env_file)
    encrypted = enc_path.is_file()
    recipients = s.encrypted_recipients(enc_path.read_text()) if encrypted else []
    missing = [r for r in configured if r not in recipients] if encrypted else []
    state = EnvState(env_file, n.encrypted(env_file), plain, encrypted, None, [], recipients, missing)
    if not (plain and encrypted):
        return state
    try:
        _, values = decrypted_values(session, env_file)
    except PlanoError as exc:
        return replace(state, detail=str(exc).split(";")[0])
    keys = differing(secrets.read_env(session.root / env_file), values)
    return replace(state, in_sync=not keys, differing_keys=keys)
