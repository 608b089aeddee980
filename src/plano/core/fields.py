"""The grammar of every value a user gives plano: one checker per kind of field.

plano.yml (through the model's validators) and the flags (through cli/params.py) call
the same checkers, so `--tag` and `apps/app1/...` accept exactly the same values. A
checker takes the raw value and returns it (normalised where it says so) or raises
ValueError with one line: the value quoted by `shown`, what is wrong, and the fix.
Every pattern matches the whole value (`fullmatch`), ASCII only where the format is.
"""

from __future__ import annotations

import datetime
import ipaddress
import re

# ---------------------------------------------------------------- how values are quoted

SHOWN_MAX = 60


def shown(value: object) -> str:
    """A value as a message quotes it: repr-like, on one line, cut when long, and
    never a Python object's repr (a YAML tag or set is named by its kind)."""
    if isinstance(value, str):
        if len(value) <= SHOWN_MAX:
            return repr(value)
        return f"{value[:SHOWN_MAX]!r}... ({len(value)} characters)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() < 100 else f"a number of {len(hex(value)) * 6 // 5} digits or so"
    if isinstance(value, float):
        return repr(value)
    return kind(value)


WORD_RE = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)


def key(value: object) -> str:
    """A key in a plano.yml path (apps/app1/domains/0): as it is when it is a plain word."""
    return str(value) if isinstance(value, int) or (isinstance(value, str) and WORD_RE.fullmatch(value)) else shown(value)


def kind(value: object) -> str:
    """What a YAML value is, in YAML's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, datetime.date):
        return "a date (quote it to make it a string)"
    for types, name in ((str, "a string"), (int, "an integer"), (float, "a number"), (dict, "a mapping"),
                        ((list, tuple), "a list"), ((set, frozenset), "a set")):
        if isinstance(value, types):
            return name
    return "a value of another kind"


def string(value: object, what: str, example: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is a string such as {example}, got {kind(value)}")
    return value


def matching(value: object, pattern: re.Pattern, what: str, example: str, refusal: str) -> str:
    """The value when the whole of it matches; else `refusal`, where {value} is the value quoted."""
    given = string(value, what, example)
    if not pattern.fullmatch(given):
        raise ValueError(refusal.format(value=shown(given)))
    return given


CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def printable(value: str, what: str, example: str) -> str:
    if CONTROL_RE.search(value):
        raise ValueError(f"{shown(value)} holds a control character (a newline, a tab, NUL...); give {what} on one line, e.g. {example}")
    return value


# ---------------------------------------------------------------- names

APP_NAME_RE = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*", re.ASCII)
APP_NAME_MAX = 30
# Names taken by the infra's own services, networks or roles.
RESERVED_NAMES = frozenset(
    {"nginx", "database", "redis", "certbot", "postgres", "backup", "plano", "default", "edge", "infra", "template0", "template1"}
)


def suggest_app_name(name: str) -> str:
    ascii_only = name.encode("ascii", "ignore").decode().lower()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", ascii_only).strip("-")
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"^[0-9-]+", "", cleaned))[:APP_NAME_MAX].rstrip("-")
    if not cleaned or cleaned in RESERVED_NAMES:
        cleaned = f"app-{cleaned}".rstrip("-") if cleaned else "app1"
    return cleaned


def app_name(value: object) -> str:
    """The one rule for app names: they become services, networks, roles, env keys and paths."""
    name = string(value, "an app name", "app1")
    if len(name) > APP_NAME_MAX:
        raise ValueError(f"app names are at most {APP_NAME_MAX} characters (try {suggest_app_name(name)!r})")
    if not APP_NAME_RE.fullmatch(name):
        raise ValueError(f"app names are lower-case letters, digits and single '-', start with a letter, "
                         f"end with a letter or digit (try {suggest_app_name(name)!r})")
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved for the infra's own services; pick another name (try 'app-{name}')")
    if name == "x" or name.startswith("x-"):  # x-net, x-backend: compose takes x-* keys for extensions and drops them
        raise ValueError(f"{name!r}: compose reads names starting with 'x-' as extension fields and ignores them; "
                         f"pick another name (try 'app-{name}')")
    return name


PROJECT_RE = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,39}", re.ASCII)


def project_name(value: object) -> str:
    return matching(value, PROJECT_RE, "the project name", "acme", "{value}: the project name is at most 40 lower-case letters, "
                    "digits and single '-', starting with a letter (it names the compose projects)")


ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*", re.ASCII)


def env_name(value: object) -> str:
    return matching(value, ENV_NAME_RE, "an env name", "DB_HOST", "{value} is not an env name; write it in capitals, digits and _, e.g. DB_HOST")


DATABASE_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)


def database_name(value: object) -> str:
    return matching(value, DATABASE_NAME_RE, "a database name", "app1_scratch",
                    "{value} is not a database name; use lower-case letters, digits and _, at most 63, e.g. app1_scratch")


BACKUP_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)


def backup_id(value: object) -> str:
    return matching(value, BACKUP_ID_RE, "a backup ID", "20261129T033000Z",
                    "{value} is not a backup ID; they look like 20261129T033000Z (see plano backup list)")


# ---------------------------------------------------------------- network names and addresses

LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def normalize_domain(value: str) -> str:
    return value.strip().lower().rstrip(".")


def domain(value: object, *, single_label: bool = False) -> str:
    """A DNS name (lower-cased, without the final dot); `single_label` allows 'localhost'."""
    given = string(value, "a domain", "app1.example.com")
    name = normalize_domain(given)
    if not name.isascii():
        raise ValueError(f"{shown(given)} is not a valid domain: use its ASCII (punycode) form, e.g. xn--...")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < (1 if single_label else 2) or not all(LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(f"{shown(given)} is not a valid domain: use dot-separated labels of letters, digits and '-', "
                         "e.g. app1.example.com")
    if labels[-1].isdigit():
        raise ValueError(f"{shown(given)} is an IP address or ends in a number: use a domain name")
    return name


EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*", re.ASCII)


def email(value: object) -> str:
    """An address as ACME servers take it: a plain local part, '@', a domain."""
    given = string(value, "an email address", "ops@example.com")
    local, at, host = given.rpartition("@")
    bad = f"{shown(given)} is not an email address; give one like ops@example.com (Let's Encrypt sends expiry notices to it)"
    if not at or len(given) > 254 or len(local) > 64 or not EMAIL_LOCAL_RE.fullmatch(local):
        raise ValueError(bad)
    try:
        domain(host)
    except ValueError:
        raise ValueError(bad) from None
    if host != normalize_domain(host):
        raise ValueError(bad)
    return given


def ip_address(value: object, what: str = "an IP address") -> str:
    given = string(value, what, "0.0.0.0")
    try:
        return str(ipaddress.ip_address(given))
    except ValueError:
        raise ValueError(f"{shown(given)} is not {what}; give an IPv4 or IPv6 address, e.g. 0.0.0.0 or 127.0.0.1") from None


def port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a port is an integer 1-65535, got {kind(value)}")
    if not 1 <= value <= 65535:
        raise ValueError(f"ports are 1-65535, got {shown(value)}")
    return value


# ---------------------------------------------------------------- images (the OCI reference grammar)

# github.com/distribution/reference: name components, a domain with an optional port,
# a tag, a digest. Lower case in the path, anything [\w.-] in the tag.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*", re.ASCII)
IMAGE_REF_RE = re.compile(rf"(?P<name>{IMAGE_NAME_RE.pattern})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
IMAGE_TAG_RE = re.compile(_TAG, re.ASCII)
IMAGE_NAME_MAX = 255


def image_ref(value: object) -> str:
    """An image with its tag or digest, e.g. nginx:1.28.0 or registry.example.com/nginx@sha256:..."""
    given = string(value, "an image reference", "nginx:1.28.0")
    match = IMAGE_REF_RE.fullmatch(given)
    if not match or len(match.group("name")) > IMAGE_NAME_MAX:
        raise ValueError(f"{shown(given)} is not an image reference; write it as name:tag, e.g. nginx:1.28.0")
    return given


def image_name(value: object, example: str = "registry.example.com/acme/app1-backend") -> str:
    """An image or registry path without a tag: [host[:port]/]lower-case/path."""
    given = string(value, "an image name", example)
    if not IMAGE_NAME_RE.fullmatch(given) or len(given) > IMAGE_NAME_MAX:
        raise ValueError(f"{shown(given)} is not an image name; give it without a tag, in lower case, e.g. {example}")
    return given


def registry(value: object) -> str:
    example = "registry.example.com/acme"
    try:
        return image_name(value, example)
    except ValueError:
        raise ValueError(f"{shown(value)} is not a registry path; write host[:port]/namespace in lower case, e.g. {example}") from None


def image_tag(value: object) -> str:
    return matching(value, IMAGE_TAG_RE, "an image tag", "1.2.3", "not an image tag; give e.g. 1.2.3 or a commit SHA "
                    "(letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')")


# ---------------------------------------------------------------- paths and URLs

URL_PATH_RE = re.compile(r"/[A-Za-z0-9._~/-]*", re.ASCII)


def url_path(value: object) -> str:
    """A path of the apps' URLs (`location` in nginx, the healthcheck's URL): /api."""
    given = string(value, "a URL path", "/api")
    if not URL_PATH_RE.fullmatch(given) or "//" in given or "/../" in f"{given}/" or "/./" in f"{given}/":
        raise ValueError(f"{shown(given)} is not a URL path; start it with '/' and use letters, digits and ._~-/, e.g. /api")
    return given if given == "/" else given.rstrip("/")


# Written as-is into compose files (volumes' short syntax splits on ':'), env files and
# scripts: no '$' (interpolation), no ':' and no quotes or control characters.
LOCAL_PATH_RE = re.compile(r"[\w./@+~ ,=-]+")
PATH_MAX = 1024
NAME_MAX = 255


def local_path(value: object, example: str = "../app1/backend") -> str:
    """A file or folder on this machine, relative to the infra or absolute. It may not
    exist yet (a repo cloned later), but it must be one that can be created."""
    given = string(value, "a path", example)
    if given.startswith("-"):  # never read as an option by a tool it is handed to
        raise ValueError(f"{shown(given)} starts with '-'; write ./{given} for a folder of that name")
    if not given.strip() or not LOCAL_PATH_RE.fullmatch(given) or given != given.strip():
        raise ValueError(f"{shown(given)} is not a path plano can use; give it relative to the infra or absolute, "
                         f"with letters, digits, spaces and ./_@+~,=- only (no '$', ':' or quotes), e.g. {example}")
    if len(given) > PATH_MAX or any(len(part.encode()) > NAME_MAX for part in given.split("/")):
        raise ValueError(f"{shown(given)} is too long for a path: at most {PATH_MAX} characters, {NAME_MAX} bytes a name")
    return given


# ---------------------------------------------------------------- remote servers

# An SSH destination as the system ssh takes it: [user@]host, where host is a DNS name,
# an IP address or an alias of ~/.ssh/config. Never read as an option (no leading '-').
SSH_USER_RE = r"[a-z_][a-z0-9_.-]{0,31}"
SSH_HOST_RE = re.compile(rf"(?:{SSH_USER_RE}@)?(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{{0,252}})|\[[0-9a-fA-F:.]+\])", re.ASCII)


def ssh_host(value: object) -> str:
    return matching(value, SSH_HOST_RE, "an SSH host", "deploy@srv1.example.com",
                    "{value} is not an SSH host; give user@host, a host or an alias of ~/.ssh/config, "
                    "e.g. deploy@srv1.example.com")


DEPLOY_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.ASCII)


def deploy_user(value: object) -> str:
    """The account `server setup` makes for plano on a server (useradd's portable names)."""
    name = matching(value, DEPLOY_USER_RE, "a user name", "deploy", "{value} is not a user name plano can create; give at most "
                    "32 lower-case letters, digits, '_' and '-', starting with a letter or '_', e.g. deploy")
    if name == "root":
        raise ValueError("'root' is not a deploy user; name an account of its own, e.g. deploy")
    return name


ENVIRONMENT_RE = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}", re.ASCII)


def environment_name(value: object) -> str:
    """An environment's name: it names .env.NAME on the laptop and -e NAME on the command line."""
    name = matching(value, ENVIRONMENT_RE, "an environment name", "production", "{value}: environment names are at most 30 "
                    "lower-case letters, digits and single '-', starting with a letter, e.g. production")
    if name in ("dev", "prod", "example"):  # .env.dev and .env.prod are the local stacks' own files
        raise ValueError(f"{shown(name)} is taken by the local stacks' .env.{name}; name the environment after the server's "
                         "role, e.g. production or staging")
    return name


def server_path(value: object) -> str:
    """The infra folder on a server: absolute, or relative to the SSH user's home."""
    given = string(value, "a path", "infra")
    if given.startswith("-") or not LOCAL_PATH_RE.fullmatch(given) or " " in given or len(given) > PATH_MAX:
        raise ValueError(f"{shown(given)} is not a server path plano can use; give it relative to the SSH user's home or "
                         "absolute, with letters, digits and ./_@+~,=- only, e.g. infra or /srv/infra")
    return given.rstrip("/") or "/"


ACME_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!&'()*+,;=:@%/-]*)?", re.ASCII)


def acme_url(value: object) -> str:
    example = "https://acme-v02.api.letsencrypt.org/directory"
    given = string(value, "an ACME directory URL", example)
    if not ACME_URL_RE.fullmatch(given) or len(given) > 2048:
        raise ValueError(f"{shown(given)} is not an ACME directory URL; write https://host/path, e.g. {example}")
    return given


REPO_URL_RE = re.compile(r"(?:https|http|ssh|git|file)://[A-Za-z0-9._~!&'()*+,;=:@%/\[\]-]+", re.ASCII)
# git's scp-like form: [user@]host:path, where the host holds no '/' before the ':'.
REPO_SCP_RE = re.compile(r"(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!//)[A-Za-z0-9._~/@+-]+", re.ASCII)


def repo_url(value: object) -> str:
    """A git repository URL: https://, ssh://, git://, file:// or git@host:path."""
    example = "git@github.com:acme/app1.git"
    given = string(value, "a git repository URL", example)
    bad = f"{shown(given)} is not a git repository URL; give https://..., ssh://..., file://... or user@host:path, e.g. {example}"
    if given.startswith("-") or len(given) > 2048:
        raise ValueError(bad)
    if REPO_URL_RE.fullmatch(given):
        authority = given.split("://", 1)[1].split("/", 1)[0]
        if ":" in authority.split("@", 1)[0] and "@" in authority:
            raise ValueError(f"{shown(given)} holds a password, and plano.yml is committed; use an SSH key or a git "
                             "credential helper instead")
        return given
    if REPO_SCP_RE.fullmatch(given):
        return given
    raise ValueError(bad)


# ---------------------------------------------------------------- resource limits

MEMORY_RE = re.compile(r"[1-9][0-9]{0,6}[mMgG]", re.ASCII)
MIB = 1024 * 1024
MEMORY_MIN, MEMORY_MAX = 16 * MIB, 1024 * 1024 * MIB  # 16m (a process needs more than Docker's 6m floor), 1024g


def memory(value: object) -> str:
    """A memory limit as compose takes it: whole megabytes or gigabytes, 512m or 1g (lower-cased)."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} has no unit; write {value}m for megabytes or {value}g for gigabytes")
    given = matching(value, MEMORY_RE, "a memory size", "512m", "{value} is not a memory size; write a whole number of "
                     "megabytes or gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)").lower()
    if not MEMORY_MIN <= memory_bytes(given) <= MEMORY_MAX:
        raise ValueError(f"{shown(given)} is out of range; give 16m to 1024g")
    return given


def memory_bytes(value: str) -> int:
    """A checked memory size (512m, 1g) in bytes."""
    return int(value[:-1]) * MIB * (1024 if value[-1] == "g" else 1)


CPUS_MAX = 1024


def cpus(value: object) -> float:
    """A CPU limit: a number of CPUs with at most two decimals (0.5, 1, 2); the engine
    refuses more than the server has."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a CPU limit is a number such as 0.5 or 2 (null: no cap), got {kind(value)}")
    if not 0.01 <= value <= CPUS_MAX or abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError(f"{shown(value)} is not a CPU limit; give 0.01 to {CPUS_MAX} with at most two decimals, e.g. 0.5 or 2")
    return float(value)


PIDS_MIN, PIDS_MAX = 8, 4194304  # the kernel's largest pid_max


def pids(value: object) -> int:
    """A limit on processes and threads (a fork bomb stops there)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a process limit is a whole number such as 256, got {kind(value)}")
    if not PIDS_MIN <= value <= PIDS_MAX:
        raise ValueError(f"{shown(value)} is not a process limit; give {PIDS_MIN} to {PIDS_MAX}, e.g. 256")
    return value


REPLICAS_MAX = 50


def replicas(value: object) -> int:
    """How many tasks of a service a swarm runs at once (nodes permitting)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"replicas is a whole number such as 2, got {kind(value)}")
    if not 1 <= value <= REPLICAS_MAX:
        raise ValueError(f"{shown(value)} replicas: give 1 to {REPLICAS_MAX} (2 or more keep serving while a node is down)")
    return value


# ---------------------------------------------------------------- free text

def command(value: object) -> list[str]:
    """A command as a list of words (exec form): no shell, so any printable text."""
    if not isinstance(value, list) or not value:
        raise ValueError("give the command as a list of non-empty words, e.g. [npm, run, start:dev]")
    for word in value:
        if not isinstance(word, str) or not word:
            raise ValueError(f"give the command as a list of non-empty words, e.g. [npm, run, start:dev]; got {shown(word)}")
        if "\x00" in word:
            raise ValueError(f"{shown(word)} holds a NUL byte, which no command can take; remove it")
    return value


TIME_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)


def time_of_day(value: object) -> str:
    return matching(value, TIME_RE, "a time of day", "03:30", "{value} is not a time of day; write HH:MM in UTC, e.g. 03:30")


def free_text(value: object, what: str, example: str) -> str:
    """A one-line value with no grammar of its own (a restic repository URL)."""
    given = string(value, what, example)
    if not given.strip():
        raise ValueError(f"give {what}, e.g. {example}")
    return printable(given, what, example)


def given(flag: str, check, value):
    """`check(value)` for a value from the command line: its error names the flag."""
    from plano.core.errors import UsageError

    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(about(flag, value, exc)) from None


def about(flag: str, value: object, exc: ValueError) -> str:
    """A checker's error as the flag's: `--tag 'a b': not an image tag; ...`."""
    quoted = shown(value)
    return f"{flag}: {exc}" if quoted in str(exc) else f"{flag} {quoted}: {exc}"


STAGE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}", re.ASCII)


def stage_name(value: object) -> str:
    """A Dockerfile stage (dev_target): the name after AS in FROM ... AS dev."""
    return matching(value, STAGE_RE, "a Dockerfile stage name", "dev",
                    "{value} is not a Dockerfile stage name; give the name after AS in FROM ... AS dev, e.g. dev")


SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}", re.ASCII)


def service_name(value: object) -> str:
    """A compose service of the stack (app1-backend, nginx): never an option of compose."""
    return matching(value, SERVICE_RE, "a service name", "app1-backend",
                    "not a service name; give one as `plano prod ps` lists it, e.g. app1-backend or nginx")


NODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", re.ASCII)


def node_name(value: object) -> str:
    """A swarm node, by hostname or ID as `docker node ls` shows it (never an option)."""
    return matching(value, NODE_RE, "a node name", "srv1",
                    "not a node name; give a HOSTNAME or ID as plano swarm nodes lists it")


def line_count(value: object) -> str:
    """`--tail`: a number of lines, or all."""
    given = string(value, "a number of lines", "100")
    if given != "all" and not (given.isascii() and given.isdigit() and len(given) <= 9):
        raise ValueError("give a number of lines, e.g. 100, or all")
    return given
