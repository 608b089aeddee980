"""Facts read from a NestJS or Next.js service's code, each with where it was read:
the global prefix, the health route (controller prefix, URI versioning, the prefix's
`exclude`), the port it listens on, and the env names it reads that plano answers.
Pure reads of text; `adopt` prints them and writes them to plano.yml.
"""

from __future__ import annotations

import re
from pathlib import Path

from plano.core import manifest as mf

# app.setGlobalPrefix('api'), or through a constant: `const globalPrefix = 'api'` (Nx's main.ts)
PREFIX_RE = re.compile(r"""setGlobalPrefix\(\s*([^,)]+?)\s*[,)]""")
STRING_RE = re.compile(r"""['"`]/?([^'"`]*?)/?['"`]""")
IDENTIFIER_RE = re.compile(r"[A-Za-z_$][\w$]*")
# @Controller('health'), @Controller({ path: 'health', version: '2' }), @Controller(); then @Get('x'), @Get()
CONTROLLER_RE = re.compile(r"""@Controller\(\s*(?:['"`]([^'"`]*)['"`]|\{([^}]*)\})?\s*\)""")
GET_RE = re.compile(r"""@Get\(\s*(?:['"`]([^'"`]*)['"`])?\s*\)""")
OPTION_RE = r"""{key}\s*:\s*['"`]([^'"`]*)['"`]"""
HEALTH_NAMES = ("health", "healthz", "healthcheck", "ready", "readyz", "live", "livez")
# The env names code reads: process.env.X, process.env['X'], configService.get('X'), get<string>('X')
ENV_READ_RE = re.compile(r"""process\.env(?:\.([A-Z_][A-Z0-9_]*)|\[\s*['"`]([A-Z_][A-Z0-9_]*)['"`]\s*\])"""
                         r"""|\.get(?:OrThrow)?(?:<[^>]*>)?\(\s*['"`]([A-Z_][A-Z0-9_]*)['"`]""")
# Which of those names plano can answer, by the name's last word (and, for Postgres, its first).
DB_WORDS = ("DB", "DATABASE", "POSTGRES", "POSTGRESQL", "PG", "TYPEORM")
ENV_WORDS = {"HOST": "host", "HOSTNAME": "host", "PORT": "port", "USER": "user", "USERNAME": "user", "PASSWORD": "password",
             "PASS": "password", "NAME": "name", "DATABASE": "name", "DB": "name", "URL": "url"}
PG_NAMES = {"PGHOST": "host", "PGPORT": "port", "PGUSER": "user", "PGPASSWORD": "password", "PGDATABASE": "name"}
VERSIONING_RE = re.compile(r"""enableVersioning\(\s*\{([^}]*)\}""")
# app.listen(3001), app.listen(PORT) with `const PORT = 3001`, app.listen(process.env.PORT ?? 3000)
LISTEN_RE = re.compile(r"""\.listen\(\s*([^,)]+?)\s*[,)]""")
CONST_RE = r"""(?:const|let|var)\s+{name}\s*(?::\s*\w+\s*)?=\s*([^;\n]+)"""
PORT_FLAG_RE = re.compile(r"""(?:^|\s)(?:-p|--port)[\s=]+(\d{2,5})(?:\s|$)""")


def env_ref(name: str) -> str | None:
    """What plano provides for an env name the code reads: DB_HOST -> database.host."""
    if name in ("DATABASE_URL", "REDIS_URL") or name in mf.PLANO_ENV:
        return None  # plano sets those itself
    if name in PG_NAMES:
        return f"database.{PG_NAMES[name]}"
    first, _, last = name.partition("_")
    words = name.split("_")
    if first == "REDIS" and words[-1] in ENV_WORDS and ENV_WORDS[words[-1]] != "name":
        return f"redis.{ENV_WORDS[words[-1]]}"
    if first in DB_WORDS and last and words[-1] in ENV_WORDS:
        return f"database.{ENV_WORDS[words[-1]]}"
    return None


def env_mapping(sources: str) -> tuple[tuple[str, str], ...]:
    names = sorted({next(g for g in match.groups() if g) for match in ENV_READ_RE.finditer(sources)})
    return tuple((name, ref) for name in names if (ref := env_ref(name)))


def constant(value: str, source: str) -> str:
    """An argument, or the value of the constant it names when `source` defines it."""
    if IDENTIFIER_RE.fullmatch(value):
        const = re.search(CONST_RE.format(name=re.escape(value)), source)
        return const.group(1).strip() if const else value
    return value


def global_prefix(main_ts: str) -> str | None:
    """The global prefix main.ts sets (a string, or a constant holding one), without slashes."""
    match = PREFIX_RE.search(main_ts)
    literal = STRING_RE.fullmatch(constant(match.group(1), main_ts)) if match else None
    return literal.group(1) if literal else None


def listen_port(main_ts: str, where: str) -> tuple[int | None, str]:
    """The port a NestJS main.ts listens on when it is fixed: `listen(3001)`, or a
    constant holding a number. `listen(process.env.PORT ?? 3000)` follows PORT (None)."""
    match = LISTEN_RE.search(main_ts)
    if not match:
        return None, ""
    value = constant(match.group(1).strip(), main_ts)
    if "process.env" in value:
        return None, ""
    return (int(value), f"{where}: listen({match.group(1).strip()})") if value.isdigit() else (None, "")


def script_port(scripts: dict[str, str], where: str) -> tuple[int | None, str]:
    """A Next.js `dev` script's -p/--port (the production server follows PORT)."""
    match = PORT_FLAG_RE.search(scripts.get("dev", ""))
    return (int(match.group(1)), f"{where}: scripts.dev {scripts['dev']!r}") if match else (None, "")


def health_route(folder: Path, main_ts: str, prefix: str | None) -> tuple[str | None, str]:
    """The full path of the first health route of the controllers under src/: the
    global prefix (unless the route is in its `exclude`), the URI version, the
    controller's path, the route's own path."""
    excluded = re.search(r"""exclude\s*:\s*\[([^\]]*)\]""", main_ts)
    versioning = VERSIONING_RE.search(main_ts)
    uri_version = None
    if versioning and "HEADER" not in versioning.group(1) and "MEDIA_TYPE" not in versioning.group(1):
        found = re.search(OPTION_RE.format(key="defaultVersion"), versioning.group(1))
        uri_version = found.group(1) if found else None
    for path in sorted(folder.glob("src/**/*.ts")):
        if "node_modules" in path.parts or path.name.endswith(".spec.ts"):
            continue
        text = path.read_text(errors="replace")
        controller = CONTROLLER_RE.search(text)
        if not controller:
            continue
        options = controller.group(2) or ""
        base = controller.group(1) if controller.group(1) is not None else (
            (m.group(1) if (m := re.search(OPTION_RE.format(key="path"), options)) else ""))
        version = (m.group(1) if (m := re.search(OPTION_RE.format(key="version"), options)) else None) or uri_version
        gets = [get.group(1) or "" for get in GET_RE.finditer(text, controller.end())] or [""]  # a health controller's root
        for got in gets:
            route = "/".join(part.strip("/") for part in (base, got) if part.strip("/"))
            if route.rsplit("/", 1)[-1] not in HEALTH_NAMES:
                continue
            skip_prefix = bool(excluded and re.search(rf"""['"`]/?{re.escape(route)}/?['"`]""", excluded.group(1)))
            parts = [*([prefix.strip("/")] if prefix and not skip_prefix else []), *([f"v{version}"] if version else []), route]
            return "/" + "/".join(p for p in parts if p), f"{path.relative_to(folder.parent).as_posix()}"
    return None, ""
