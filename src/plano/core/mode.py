"""The two stacks of one infra: dev (base + dev override) and prod (base + prod override).

A Mode answers every question whose answer differs between them, so no other code
branches on the strings "dev" and "prod".
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from plano.core import naming as n
from plano.core.errors import UsageError

if TYPE_CHECKING:
    from plano.core.manifest import DevSettings, Manifest, ProdSettings


class Mode(StrEnum):
    DEV = "dev"
    PROD = "prod"

    @property
    def is_dev(self) -> bool:
        return self is Mode.DEV

    @property
    def compose_files(self) -> tuple[str, str]:
        return (n.BASE_COMPOSE, n.DEV_COMPOSE if self.is_dev else n.PROD_COMPOSE)

    @property
    def env_file(self) -> str:
        """The mode's own env file (its secrets)."""
        return n.ENV_DEV if self.is_dev else n.ENV_PROD

    @property
    def env_files(self) -> tuple[str, str]:
        return (n.ENV_BASE, self.env_file)

    @property
    def data_root(self) -> str:
        return n.data_root(self)

    def project(self, manifest: Manifest) -> str:
        return n.project(manifest, self)

    def settings(self, manifest: Manifest) -> DevSettings | ProdSettings:
        return manifest.dev if self.is_dev else manifest.prod

    def domains(self, manifest: Manifest, app: str) -> list[str]:
        """The names the app answers to in this mode (dev: app.localhost)."""
        return n.dev_domains(manifest, app) if self.is_dev else list(manifest.apps[app].domains)

    @classmethod
    def of(cls, dev: bool) -> Mode:
        """From a --dev (or not --prod) flag."""
        return cls.DEV if dev else cls.PROD

    @classmethod
    def named(cls, name: str) -> Mode:
        try:
            return cls(name)
        except ValueError:
            raise UsageError(f"mode must be one of {', '.join(m.value for m in cls)}, got {name!r}") from None
