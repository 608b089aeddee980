"""A real ACME server for a test module: its own pebble (scripts/harness/pebble.sh),
with its own folder and ports, so that modules with certificates can run at once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests import testrun
from tests.integration.net import free_ports
from tests.integration.stackfixtures import Workspace, plano

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/harness/pebble.sh"
PORT_KEYS = ("PLANO_PEBBLE_PORT", "PLANO_PEBBLE_MGMT_PORT", "PLANO_PEBBLE_DNS_PORT", "PLANO_PEBBLE_CHALL_PORT")


@dataclass(frozen=True)
class Pebble:
    folder: Path
    ports: dict[str, int]
    validity: int | None = None
    listen: str | None = None  # the host address containers reach it at (default: docker0's)

    def env(self) -> dict[str, str]:
        own = {"PLANO_PEBBLE_DIR": str(self.folder), **{key: str(port) for key, port in self.ports.items()}}
        if self.validity is not None:
            own["PLANO_PEBBLE_VALIDITY"] = str(self.validity)
        if self.listen is not None:
            own["PLANO_PEBBLE_LISTEN"] = self.listen
        return {**os.environ, **own}

    def run(self, *args: str) -> str:
        proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=400, env=self.env())
        assert proc.returncode == 0, f"pebble.sh {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def settings(self) -> dict[str, str]:
        """PLANO_PEBBLE_URL (the directory, as containers reach it) and PLANO_PEBBLE_CA."""
        return dict(line.split("=", 1) for line in self.run("env").split())

    def root(self) -> str:
        """The issuing root of this start (it changes on every start)."""
        return self.run("root")

    def stop(self) -> None:
        self.run("stop")


def new_pebble(folder: Path, validity: int | None = None) -> Pebble:
    testrun.record_pebble(folder)
    return Pebble(folder, dict(zip(PORT_KEYS, free_ports(len(PORT_KEYS)))), validity)


@contextmanager
def acme_server(ws: Workspace, folder: Path, validity: int | None = None) -> Iterator[Pebble]:
    """A pebble checking HTTP-01 at the workspace's prod HTTP port, and the workspace's
    plano.yml pointed at it (`acme.server`, `acme.ca_bundle`), rendered."""
    pebble = new_pebble(folder, validity)
    pebble.run("start", str(ws.ports["prod_http"]))
    try:
        settings = pebble.settings()
        manifest = ws.infra / "plano.yml"
        manifest.write_text(manifest.read_text().replace(
            "  server: https://acme-v02.api.letsencrypt.org/directory\n",
            f"  server: {settings['PLANO_PEBBLE_URL']}\n  ca_bundle: {settings['PLANO_PEBBLE_CA']}\n"))
        plano("render", cwd=ws.infra)
        yield pebble
    finally:
        pebble.stop()
