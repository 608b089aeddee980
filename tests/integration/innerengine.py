"""A Docker engine of the test's own, in a container of the shared engine.

The node image is `plano-test/dind:bookworm`: Debian bookworm's docker.io 20.10 (the
engine CI's machines and the shared harness run). What `docker run --privileged` would
give, less CAP_SYS_RESOURCE, comes from stackfixtures.ENGINE_IN_A_CONTAINER
(../shared/docs/offline-test-environment.md). A host folder is mounted at /run/outer:
it holds the engine's config and logs and the second socket its dockerd listens on, so
that the host's own docker CLI (`docker -H unix://FOLDER/docker.sock`) drives it.

Images reach the inner engine from the harness's registry: the node's 127.0.0.1 is its
own, so a second, read-only registry process runs inside the node on 127.0.0.1:5000,
over the harness registry's storage mounted read-only. An image ref
`127.0.0.1:5000/...` then means the same image on the host and in every node, and
pulls copy nothing until a node needs the image. The /var/lib/docker given to the node
(a tmpfs or a volume) takes overlay2: it is not on the outer engine's overlay, so the
vfs driver of the image's own /etc/docker/daemon.json (which copies every layer) is
not needed."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.stackfixtures import (
    ENGINE_IN_A_CONTAINER,
    REGISTRY,
    STAND_INS,
    docker,
)

NODE_IMAGE = "plano-test/dind:bookworm"
REGISTRY_STORAGE = Path(os.environ.get("PLANO_REGISTRY_DIR", "/var/lib/plano-registry")) / "storage"
DAEMON_JSON = {"storage-driver": "overlay2"}
REGISTRY_CONFIG = """version: 0.1
storage:
  filesystem:
    rootdirectory: /registry
  maintenance:
    readonly:
      enabled: true
http:
  addr: 127.0.0.1:5000
"""


def node_args(folder: Path, daemon: dict | None = None, writable_registry: bool = False) -> list[str]:
    """`docker run` arguments for an engine node whose outer folder is `folder` (made
    here, with the engine's config and the registry's), less its /var/lib/docker, name
    and image. With `writable_registry`, the node's registry takes pushes too (into the
    harness registry's storage: a push there is seen on the host and the other nodes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "daemon.json").write_text(json.dumps(daemon or DAEMON_JSON))
    config = REGISTRY_CONFIG.replace("      enabled: true", "      enabled: false") if writable_registry else REGISTRY_CONFIG
    (folder / "registry.yml").write_text(config)
    registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    return [*ENGINE_IN_A_CONTAINER, "-v", f"{folder}:/run/outer", "-v", f"{registry}:/usr/local/bin/registry:ro",
            "-v", f"{REGISTRY_STORAGE}:/registry{'' if writable_registry else ':ro'}"]


def as_registry_user() -> str:
    """The node's registry runs as the harness registry's user: what a writable one pushes
    into the shared storage must stay the harness registry's to write and delete (as root,
    its folders, blob prefixes shared by every repository among them, made the harness
    registry answer 500 to pushes and deletes of other tests)."""
    try:
        user = pwd.getpwnam("docker-registry")
    except KeyError:
        return ""
    return f"setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --clear-groups "


@dataclass
class Engine:
    """dockerd in the container `node`, answering on a socket under `sockets` (a host folder)."""

    node: str
    sockets: Path

    @property
    def host(self) -> str:
        return f"unix://{self.sockets}/docker.sock"

    def inside(self, *command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return docker("exec", self.node, *command, check=check, timeout=timeout)

    def launch(self) -> None:
        """Start dockerd (and the registry), as systemd would, without waiting."""
        self.inside("sh", "-c", f"pgrep -x registry >/dev/null || {{ {as_registry_user()}registry serve /run/outer/registry.yml "
                    ">>/run/outer/registry.log 2>&1 & }")
        docker("exec", "-d", self.node, "sh", "-c", "exec dockerd --config-file /run/outer/daemon.json "
               "-H unix:///var/run/docker.sock -H unix:///run/outer/docker.sock >>/run/outer/dockerd.log 2>&1")

    def wait(self, since: float, seconds: float = 60) -> float:
        """Seconds from `since` until dockerd answers."""
        while time.monotonic() - since < seconds:
            if self.docker("info", "--format", "{{.ServerVersion}}", check=False).returncode == 0:
                return time.monotonic() - since
            time.sleep(0.2)
        pytest.fail(f"the inner engine of {self.node} did not answer within {seconds} s:\n{self.log()[-3000:]}")

    def start(self) -> float:
        """Start dockerd (and the read-only registry); seconds until it answers."""
        started = time.monotonic()
        self.launch()
        return self.wait(started)

    def kill(self) -> None:
        """`kill -9` of dockerd alone: its containerd goes with it (it is dockerd's child,
        with a parent-death signal), the containers' shims and processes stay."""
        self.inside("sh", "-c", "kill -9 $(pgrep -x dockerd)")
        self.inside("sh", "-c", "while pgrep -x dockerd >/dev/null; do sleep 0.1; done")

    def docker(self, *args: str, check: bool = True, timeout: float = 300,
               input_text: str | None = None) -> subprocess.CompletedProcess:
        """The host's docker CLI against this engine."""
        proc = subprocess.run(["docker", "-H", self.host, *args], check=False, capture_output=True, text=True,
                              timeout=timeout, input=input_text)
        if check:
            assert proc.returncode == 0, f"inner docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def remove_containers(self) -> None:
        """Remove the inner engine's containers (their cgroups are the host's: they would stay)."""
        subprocess.run(["sh", "-c", f"docker -H {self.host} ps -aq | xargs -r docker -H {self.host} rm -f"],
                       check=False, capture_output=True, timeout=120)

    def log(self) -> str:
        path = self.sockets / "dockerd.log"
        return path.read_text(errors="replace") if path.is_file() else ""


def stand_in_in_registry(project: str, key: str) -> str:
    """The stand-in image, pushed to the harness registry under the project (the run's
    end untags it when the project is in its ledger)."""
    image = f"{REGISTRY}/{project}/stand-in-{key}:sid"
    docker("tag", STAND_INS[key], image)
    docker("push", image, timeout=600)
    docker("rmi", image)
    return image
