"""plano.yml: the typed model, loading with path-prefixed errors, round-trip edits.

Loading is `text -> raw data -> Manifest`; every mistake becomes one ManifestError
whose path points into the file (``apps/app1/domains/0``).
"""

from __future__ import annotations

import io
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from plano.core.errors import ManifestError, UsageError

MANIFEST_FILE = "plano.yml"

APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
APP_NAME_MAX = 30
# Names taken by the infra's own services, networks or roles.
RESERVED_NAMES = frozenset(
    {"nginx", "database", "redis", "certbot", "postgres", "backup", "plano", "default", "edge", "infra", "template0", "template1"}
)
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$")
REGISTRY_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
# What an app's own env names can point at (apps.X.backend.env: {DB_HOST: database.host}).
ENV_REFS = {
    "database": ("host", "port", "user", "password", "name", "url"),
    "redis": ("host", "port", "user", "password", "url", "prefix"),
}
# Set by plano for every app service; an env mapping cannot take them over.
PLANO_ENV = frozenset({"NODE_ENV", "PORT", "HOSTNAME", "TRUST_PROXY", "UPLOADS_DIR", "DATABASE_URL", "REDIS_URL",
                       "REDIS_KEY_PREFIX", "BACKEND_URL", "PUBLIC_URL"})
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

DEFAULT_IMAGES = {
    "nginx": "nginx:1.28.0",
    "postgres": "postgres:17.6",
    "redis": "redis:7.4.5",
    "certbot": "certbot/certbot:v4.0.0",
    "node": "node:22.20.0-bookworm-slim",
}


def suggest_app_name(name: str) -> str:
    ascii_only = name.encode("ascii", "ignore").decode().lower()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", ascii_only).strip("-")
    cleaned = re.sub(r"^[0-9-]+", "", cleaned)[:APP_NAME_MAX].rstrip("-")
    if not cleaned or cleaned in RESERVED_NAMES:
        cleaned = f"app-{cleaned}".rstrip("-") if cleaned else "app1"
    return cleaned


def check_app_name(name: object) -> str:
    """The one rule for app names; raises ValueError with the fix."""
    if not isinstance(name, str):
        raise ValueError(f"app names are strings, got {type(name).__name__}")
    rule = "app names are lower-case letters, digits and '-', start with a letter, end with a letter or digit"
    if len(name) > APP_NAME_MAX:
        raise ValueError(f"app names are at most {APP_NAME_MAX} characters (try {suggest_app_name(name)!r})")
    if not APP_NAME_RE.match(name) or name.endswith("-") or "--" in name:
        raise ValueError(f"{rule} (try {suggest_app_name(name)!r})")
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} is reserved for the infra's own services; pick another name (try 'app-{name}')")
    return name


def workspace_path(workspace: str, source: str) -> str | None:
    """Where `source` lies inside `workspace` ("apps/api", "." for the root), both
    relative to the infra or absolute; None when it is outside."""
    root, inner = posixpath.normpath(workspace), posixpath.normpath(source)
    if inner == root:
        return "."
    relative = posixpath.relpath(inner, root) if inner.startswith("/") == root.startswith("/") else ".."
    return None if relative == ".." or relative.startswith("../") else relative


def normalize_domain(value: str) -> str:
    return value.strip().lower().rstrip(".")


def check_domain(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"a domain is a string such as app1.example.com, got {type(value).__name__}")
    name = normalize_domain(value)
    labels = name.split(".")
    if not name.isascii():
        raise ValueError(f"{value!r} is not a valid domain: use its ASCII (punycode) form, e.g. xn--...")
    if len(name) > 253 or len(labels) < 2 or not all(LABEL_RE.match(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a valid domain: use dot-separated labels of letters, digits and '-', e.g. app1.example.com"
        )
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is an IP address or ends in a number: use a domain name")
    return name


Domain = Annotated[str, BeforeValidator(check_domain)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Port = int


def check_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"ports are 1-65535, got {value}")
    return value


class Images(Model):
    """Infra images; pin them, or point them at your mirror."""

    nginx: str = DEFAULT_IMAGES["nginx"]
    postgres: str = DEFAULT_IMAGES["postgres"]
    redis: str = DEFAULT_IMAGES["redis"]
    certbot: str = DEFAULT_IMAGES["certbot"]
    node: str = DEFAULT_IMAGES["node"]  # NODE_IMAGE build argument of the apps' Dockerfiles

    @field_validator("*")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE_RE.match(value):
            raise ValueError(f"{value!r} is not an image reference; write it as name:tag, e.g. nginx:1.28.0")
        return value


class ProdSettings(Model):
    bind: str = "0.0.0.0"
    http_port: Port = 80
    https_port: Port = 443

    _ports = field_validator("http_port", "https_port")(check_port)


class DevSettings(Model):
    bind: str = "127.0.0.1"
    http_port: Port = 80
    https_port: Port = 443
    database_port: Port = 5432
    redis_port: Port = 6379
    domain_suffix: str = "localhost"

    _ports = field_validator("http_port", "https_port", "database_port", "redis_port")(check_port)


class Service(Model):
    enabled: bool = True
    port: Port = 3000
    path: str
    health: str
    source: str | None = None  # default: ../<app>/<role>
    # The root of the workspace (npm/pnpm/yarn workspaces, Nx) the service belongs to:
    # the build context of its images and the folder mounted in dev; source is inside it.
    workspace: str | None = None
    dev_target: str = "dev"
    dev_command: list[str]
    image: str | None = None  # default: <registry>/<app>-<role>
    release: list[str] | None = None  # run once per deploy in the new image, before traffic switches (migrations)
    test: list[str] = Field(default_factory=lambda: ["npm", "test"])  # `plano dev test`, in the dev container
    # The env names the app reads, each pointing at a value plano provides: DB_HOST: database.host
    env: dict[str, str] = Field(default_factory=dict)

    _port = field_validator("port")(check_port)

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        refs = [f"{kind}.{key}" for kind, keys in ENV_REFS.items() for key in keys]
        for name, ref in value.items():
            if not ENV_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not an env name; write it in capitals, digits and _, e.g. DB_HOST")
            if name in PLANO_ENV:
                raise ValueError(f"{name} is set by plano for every app; remove it from env")
            if ref not in refs:
                raise ValueError(f"{name}: {ref!r} is not something plano provides; give one of {', '.join(refs)}")
        return value

    @field_validator("path", "health")
    @classmethod
    def _url_path(cls, value: str) -> str:
        if not PATH_RE.match(value) or "//" in value or "/../" in f"{value}/":
            raise ValueError(f"{value!r} is not a URL path; start it with '/', e.g. /api")
        return value if value == "/" else value.rstrip("/")

    @field_validator("dev_command", "release", "test")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value or not all(value):
            raise ValueError("give the command as a list of non-empty words, e.g. [npm, run, start:dev]")
        return value

    @field_validator("source", "workspace")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "\n" in value or "$" in value):
            raise ValueError(f"{value!r} is not a folder path; give it relative to the infra, e.g. ../app1/backend")
        return value

    @model_validator(mode="after")
    def _inside_workspace(self) -> "Service":
        if self.workspace is not None and self.source is not None and workspace_path(self.workspace, self.source) is None:
            raise ValueError(f"source {self.source!r} is not inside workspace {self.workspace!r}; give the service's folder "
                             "inside the workspace root")
        return self

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and not REGISTRY_RE.match(value):
            raise ValueError(f"{value!r} is not an image name; give it without a tag, e.g. registry.example.com/acme/app1-backend")
        return value


class Backend(Service):
    path: str = "/api"
    health: str = "/api/health"
    dev_command: list[str] = Field(default_factory=lambda: ["npm", "run", "start:dev"])


class Frontend(Service):
    path: str = "/"
    health: str = "/"
    dev_command: list[str] = Field(default_factory=lambda: ["npm", "run", "dev"])


class Tls(Model):
    """Your own certificate for an app, used instead of Let's Encrypt: PEM files,
    relative to the infra folder or absolute. `plano certs issue` installs them."""

    certificate: str  # the certificate, then its intermediates (fullchain)
    key: str  # its private key

    @field_validator("certificate", "key")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the path of a PEM file, e.g. certs/app1/fullchain.pem")
        return value


class App(Model):
    domains: list[Domain] = Field(min_length=1)
    backend: Backend = Field(default_factory=Backend)
    frontend: Frontend = Field(default_factory=Frontend)
    database: bool = True
    redis: bool = True
    repo: str | None = None
    tls: Tls | None = None  # your own certificate instead of ACME

    @model_validator(mode="after")
    def _routes(self) -> "App":
        if not (self.backend.enabled or self.frontend.enabled):
            raise ValueError("an app needs its backend or its frontend enabled")
        for role, svc in (("backend", self.backend), ("frontend", self.frontend)):
            for name, ref in svc.env.items():
                kind = ref.split(".", 1)[0]
                if not getattr(self, kind):
                    raise ValueError(f"{role}/env/{name}: {ref} points at the app's {kind}, which is off ({kind}: false)")
        if self.backend.enabled and self.frontend.enabled and self.backend.path == self.frontend.path:
            raise ValueError(f"backend and frontend are both served at {self.backend.path!r}; give the backend its own path, e.g. /api")
        return self

    def services(self) -> dict[str, Service]:
        roles = {"backend": self.backend, "frontend": self.frontend}
        return {role: svc for role, svc in roles.items() if svc.enabled}


LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class Acme(Model):
    """Where certificates come from: Let's Encrypt unless you run your own ACME CA."""

    server: str = LETSENCRYPT  # the ACME directory URL (`plano certs issue --server` overrides it once)
    ca_bundle: str | None = None  # a CA file certbot trusts for the server's HTTPS (a private ACME CA)

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        if not re.match(r"^https://[^\s/]+(/\S*)?$", value):
            raise ValueError(f"{value!r} is not an ACME directory URL; write https://host/path, e.g. {LETSENCRYPT}")
        return value


class Restic(Model):
    """An encrypted offsite copy of every backup (restic; s3:, sftp:, rest: or a path)."""

    repository: str  # e.g. s3:s3.example.com/acme-backups, or /mnt/offsite/restic
    password_file: str  # a file holding the repository password, relative to the infra or absolute

    @field_validator("repository", "password_file")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a value, e.g. repository: s3:s3.example.com/acme-backups")
        return value


class Backup(Model):
    """The backup service: a daily run at `time` (UTC), then retention, then offsite."""

    time: str = "03:30"
    keep_daily: int = Field(default=7, ge=1)
    keep_weekly: int = Field(default=4, ge=0)
    keep_monthly: int = Field(default=6, ge=0)
    restic: Restic | None = None

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.match(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", value):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM in UTC, e.g. 03:30")
        return value


class Manifest(Model):
    version: Literal[1] = 1
    name: str
    registry: str
    email: str
    images: Images = Field(default_factory=Images)
    acme: Acme = Field(default_factory=Acme)
    backup: Backup = Field(default_factory=Backup)
    prod: ProdSettings = Field(default_factory=ProdSettings)
    dev: DevSettings = Field(default_factory=DevSettings)
    apps: dict[str, App] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9-]{0,39}$", value) or value.endswith("-"):
            raise ValueError("the project name is lower-case letters, digits and '-', starting with a letter (it names the compose projects)")
        return value

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        if not REGISTRY_RE.match(value):
            raise ValueError(f"{value!r} is not a registry path; write host[:port]/namespace, e.g. registry.example.com/acme")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address; Let's Encrypt sends expiry notices to it")
        return value



def require_app(manifest: Manifest, name: str, field: str | None = None) -> App:
    """The app named on the command line; `field` names the flag in the error (default apps/NAME)."""
    if name not in manifest.apps:
        known = ", ".join(sorted(manifest.apps)) or "none"
        raise UsageError(f"{field or 'apps/' + name}: no such app in plano.yml (registered: {known}); see plano app list")
    return manifest.apps[name]


def select_apps(manifest: Manifest, names: tuple[str, ...] | list[str], all_apps: bool, *,
                required: bool = False, flag: str | None = None) -> list[str]:
    """The one rule for "which apps": the names given (each must exist), or every app
    with --all. Without either, every app, unless the command needs a choice (`required`)."""
    if all_apps and names:
        raise UsageError("give app names or --all, not both")
    if required and not names and not all_apps:
        raise UsageError("which app? give its name (e.g. app1) or --all")
    for name in names:
        require_app(manifest, name, flag and f"{flag} {name}")
    chosen = list(names) if names else sorted(manifest.apps)
    if required and not chosen:
        raise UsageError("no apps yet: plano app add app1 --domain app1.example.com")
    return chosen


def require_role(manifest: Manifest, app: str, role: str) -> str:
    """A --service given on the command line: one the app has."""
    services = require_app(manifest, app).services()
    if role not in services:
        raise UsageError(f"--service {role}: app {app} has no {role}; it has {', '.join(services)}")
    return role


# ---------------------------------------------------------------- validation


def _first_error(exc: ValidationError) -> ManifestError:
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"] if part not in ("function-after", "function-before")]
    path = "/".join(loc)
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        return ManifestError(path, "unknown key; remove it or check its spelling (see README, 'plano.yml')")
    if kind == "missing":
        return ManifestError(path, "required; add it")
    if kind == "value_error":
        return ManifestError(path, str(err["ctx"]["error"]))
    if kind == "too_short":
        return ManifestError(path, "needs at least one entry")
    if kind == "literal_error":
        return ManifestError(path, f"must be {err['ctx']['expected']}, got {given!r}")
    expected = {
        "int_type": "an integer", "string_type": "a string", "bool_type": "true or false",
        "list_type": "a list", "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    }.get(kind)
    if expected:
        return ManifestError(path, f"expected {expected}, got {type(given).__name__} {given!r}")
    return ManifestError(path, err["msg"])


def _check_unique_domains(manifest: Manifest) -> None:
    seen: dict[str, str] = {}
    for app_name, app in manifest.apps.items():
        for index, domain in enumerate(app.domains):
            here = f"apps/{app_name}/domains/{index}"
            if domain in seen:
                raise ManifestError(here, f"{domain} is already used by {seen[domain]}; each domain belongs to one app")
            seen[domain] = here


def _check_host_ports(manifest: Manifest) -> None:
    for section, settings in (("dev", manifest.dev), ("prod", manifest.prod)):
        taken: dict[int, str] = {}
        for field in ("http_port", "https_port", "database_port", "redis_port"):
            port = getattr(settings, field, None)
            if port is None:
                continue
            if port in taken:
                raise ManifestError(f"{section}/{field}", f"port {port} is already used by {section}/{taken[port]}; pick another port")
            taken[port] = field


def validate(data: Any) -> Manifest:
    """Raw data (from YAML) to a Manifest, or one ManifestError."""
    if not isinstance(data, dict):
        raise ManifestError("", f"{MANIFEST_FILE} must be a mapping of keys (name, registry, email, apps...)")
    apps = data.get("apps")
    if isinstance(apps, dict):
        for name in apps:
            try:
                check_app_name(name)
            except ValueError as exc:
                raise ManifestError(f"apps/{name}", str(exc)) from None
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    _check_unique_domains(manifest)
    _check_host_ports(manifest)
    return manifest


# ---------------------------------------------------------------- YAML I/O


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def parse(text: str, source: str = MANIFEST_FILE) -> Any:
    """YAML text to round-trip data (comments kept); syntax errors name the line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ManifestError(where, f"YAML syntax error: {exc.problem or exc.context}; fix the syntax there") from None
    except YAMLError as exc:
        raise ManifestError(source, f"YAML error: {exc}") from None


def dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def to_plain(data: Any) -> Any:
    """Round-trip containers to plain dicts and lists, so strict validation sees builtins."""
    if isinstance(data, dict):
        return {key: to_plain(value) for key, value in data.items()}
    if isinstance(data, list):
        return [to_plain(value) for value in data]
    if isinstance(data, bool):
        return bool(data)
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    if isinstance(data, str):
        return str(data)
    return data


def load_text(text: str, source: str = MANIFEST_FILE) -> Manifest:
    return validate(to_plain(parse(text, source)))


@dataclass(frozen=True)
class Infra:
    """An infra folder and its plano.yml, as text (for round-trip edits) and as a model."""

    root: Path
    text: str
    manifest: Manifest


def load_infra(root: Path) -> Infra:
    path = root / MANIFEST_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError("", f"no {MANIFEST_FILE} in {root}; run 'plano init' first or pass --dir") from None
    return Infra(root, text, load_text(text))


def find_root(start: Path) -> Path:
    """The infra folder: the nearest folder upwards holding plano.yml."""
    for folder in (start, *start.parents):
        if (folder / MANIFEST_FILE).is_file():
            return folder
    raise ManifestError("", f"no {MANIFEST_FILE} in {start} or above; run 'plano init infra' or pass --dir")


def new_document(name: str, registry: str, email: str, images: dict[str, str] | None = None) -> str:
    """The commented plano.yml that `plano init` writes."""
    image = {**DEFAULT_IMAGES, **(images or {})}
    return f"""\
# plano.yml: the single source of truth for this infra.
# Edit it, then run `plano render`. Reference: README.md, section "plano.yml".
version: 1
name: {name}                 # names the compose projects ({name}, {name}-dev)
registry: {registry}   # where CI pushes <app>-backend and <app>-frontend
email: {email}               # Let's Encrypt account and expiry notices

# Infra images, pinned. Point them at your mirror if you have one.
images:
  nginx: {image['nginx']}
  postgres: {image['postgres']}
  redis: {image['redis']}
  certbot: {image['certbot']}
  node: {image['node']}   # base of the app images (build argument NODE_IMAGE)

# Certificates for prod: `plano certs issue --all` once `plano prod up` runs.
acme:
  server: {LETSENCRYPT}
  # ca_bundle: acme-ca.pem   # only for a private ACME CA: the CA of its HTTPS

# Backups: daily at `time` (UTC) into data/backups/, then retention. Optional offsite
# copy: restic: {{repository: s3:s3.example.com/acme-backups, password_file: restic-password}}
backup:
  time: "03:30"
  keep_daily: 7
  keep_weekly: 4
  keep_monthly: 6

prod:
  bind: 0.0.0.0
  http_port: 80
  https_port: 443

dev:
  bind: 127.0.0.1
  http_port: 80
  https_port: 443
  database_port: 5432        # Postgres for local tools, on 127.0.0.1 only
  redis_port: 6379
  domain_suffix: localhost   # app1 is served at https://app1.localhost

# Add apps with `plano app add NAME --domain DOMAIN`.
apps: {{}}
"""
