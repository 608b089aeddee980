"""The env files: `.env` (shared), `.env.dev` and `.env.prod` (secrets, 0600, git-ignored)
and the committed `.env.prod.example` (keys only)."""

from __future__ import annotations

from dataclasses import dataclass

from plano.core import naming as n
from plano.core.files import File, Kind, Tree, with_header
from plano.core.manifest import Manifest

SECRET_NOTE = (
    "# Secrets for the {mode} stack: keep this file out of git (mode 0600).\n"
    "# plano adds missing keys and never changes a value; add your own keys at the end.\n"
)


@dataclass(frozen=True)
class EnvSpec:
    """What one env file must hold: secret keys (generated) and defaults (plain values)."""

    secrets: tuple[str, ...]
    defaults: dict[str, str]


def app_secrets(manifest: Manifest) -> list[str]:
    keys = ["POSTGRES_PASSWORD", n.REDIS_ADMIN_VAR]
    for name, app in manifest.apps.items():
        if app.database:
            keys.append(n.db_password_var(name))
        if app.redis:
            keys.append(n.redis_password_var(name))
    return keys


def tags(manifest: Manifest) -> dict[str, str]:
    return {n.tag_var(name, role): "latest" for name, app in manifest.apps.items() for role in app.services()}


def specs(manifest: Manifest) -> dict[str, EnvSpec]:
    return {
        n.ENV_BASE: EnvSpec((), {"TZ": "Etc/UTC"}),
        n.ENV_DEV: EnvSpec(tuple(app_secrets(manifest)), {}),
        n.ENV_PROD: EnvSpec(tuple(app_secrets(manifest)), tags(manifest)),
    }


def layout(spec: EnvSpec, values: dict[str, str], intro: str) -> str:
    managed = [*spec.secrets, *spec.defaults]
    lines = [intro.rstrip("\n")]
    lines += [f"{key}={values[key]}" for key in managed]
    extra = [key for key in values if key not in managed]
    if extra:
        lines.append("# Not used by plano.yml now (your own keys, or a removed app's secrets, kept for its data):")
        lines += [f"{key}={values[key]}" for key in extra]
    return "\n".join(lines) + "\n"


def example(spec: EnvSpec) -> str:
    body = (
        "# The keys .env.prod holds, without values. plano render fills .env.prod with\n"
        "# generated secrets; copy it to the server next to this file (never commit it).\n"
    )
    body += "".join(f"{key}=\n" for key in spec.secrets)
    body += "".join(f"{key}={value}\n" for key, value in spec.defaults.items())
    return with_header(n.ENV_PROD_EXAMPLE, body)


def render(manifest: Manifest, env_values: dict[str, dict[str, str]]) -> Tree:
    all_specs = specs(manifest)
    intros = {
        n.ENV_BASE: "# Shared by dev and prod, read first (then .env.dev or .env.prod). Kept out of git.\n",
        n.ENV_DEV: SECRET_NOTE.format(mode="dev"),
        n.ENV_PROD: SECRET_NOTE.format(mode="prod"),
    }
    tree: Tree = {
        path: File(layout(spec, env_values[path], intros[path]), kind=Kind.SECRET, mode=0o600)
        for path, spec in all_specs.items()
    }
    tree[n.ENV_PROD_EXAMPLE] = File(example(all_specs[n.ENV_PROD]))
    return tree
