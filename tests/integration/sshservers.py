"""Test servers reached over SSH: containers of the shared engine built from
plano-test/sshd:bookworm (tests/harness/images/sshd: Debian bookworm's docker.io, as the
swarm nodes' image, plus openssh-server, sudo, git and python3-venv), each running sshd
and its own Docker engine (innerengine.Engine, so images come from the harness registry
at the same 127.0.0.1:5000 refs), on a network of the test's own, with port 22 published
on the host's 127.0.0.1 only.

    with servers("e2e-ab12cd", count=1, ports=(8080,)) as (one,):
        one.destination, one.ssh_port   # deploy@127.0.0.1, its published port
        one.ssh_env                     # SSH_AUTH_SOCK of the test's agent
        one.exec("docker", "ps")

The login is `deploy` (passwordless sudo, in the docker group) with the test's own key
(made here, no passphrase, held by an ssh-agent of the test's own); the host keys are made when the server starts, and
`new_host_keys()` changes them. Everything made carries the run's label; the end removes
the engines' containers, the servers, the network and the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import testrun
from tests.integration.innerengine import Engine, node_args
from tests.integration.net import free_ports
from tests.integration.stackfixtures import docker

SERVER_IMAGE = "plano-test/sshd:bookworm"
USER = "deploy"


@dataclass
class Server:
    name: str  # container, hostname and the alias in ssh_config
    engine: Engine
    ssh_port: int  # the host's 127.0.0.1 port that reaches its sshd (0: hidden, reached only on the network)
    ports: dict[int, int]  # its port -> the host's 127.0.0.1 port
    folder: Path  # the test's key and ssh config

    @property
    def key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def ssh_config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def agent(self) -> Path:
        return self.folder / "agent.sock"

    @property
    def ssh_env(self) -> dict[str, str]:
        """What gives plano's `ssh` (and git's) the test's key: the test's own ssh-agent,
        as a user's agent holds theirs (ssh reads the passwd entry's ~/.ssh/config, not $HOME's)."""
        return {"SSH_AUTH_SOCK": str(self.agent)}

    @property
    def destination(self) -> str:
        return f"{USER}@127.0.0.1"

    def exec(self, *command: str, user: str = "root", check: bool = True, timeout: float = 300,
             input_text: str | None = None) -> subprocess.CompletedProcess:
        return docker("exec", "-i", "-u", user, self.name, *command, check=check, timeout=timeout, input_text=input_text)

    def published(self, port: int) -> int:
        return self.ports[port]

    def new_host_keys(self) -> None:
        """A reinstalled server: new host keys, sshd restarted with them (the old
        connections' processes stay; a test closes its shared connection first)."""
        self.exec("sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && kill -HUP $(cat /run/sshd.pid)")


def write_client(folder: Path, servers: list[tuple[str, int]]) -> int:
    """The test's key, an ssh config naming each server (alias -> 127.0.0.1:port, for
    `ssh -F`), and an ssh-agent holding the key; returns the agent's pid."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "plano-test", "-f", str(folder / "id_ed25519")],
                   check=True)
    config = "".join(f"Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {USER}\n  IdentityFile {folder / 'id_ed25519'}\n"
                     "  IdentitiesOnly yes\n" for name, port in servers if port)
    (folder / "ssh_config").write_text(config)
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(folder / "agent.sock")], check=True, capture_output=True, text=True)
    pid = int(agent.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    subprocess.run(["ssh-add", "-q", str(folder / "id_ed25519")], check=True, env={**os.environ, "SSH_AUTH_SOCK": str(folder / "agent.sock")})
    return pid


@contextmanager
def servers(name: str, count: int = 1, ports: Sequence[int] = (), run: str | None = None,
            hidden: Sequence[int] = ()) -> Iterator[list[Server]]:
    """`hidden`: the indexes of servers that publish nothing (no SSH port on the host: a
    server behind a jump host, reached from another server on the test's network)."""
    run = run or testrun.current()
    testrun.record_project(name)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))  # short: socket paths stay < 108 bytes
    label = ["--label", f"{testrun.LABEL}={run}"]
    names = [f"{name}-{i}" for i in range(1, count + 1)]
    ssh_ports = [0 if i in hidden else port for i, port in enumerate(free_ports(count))]
    published = [{} if i in hidden else dict(zip(ports, free_ports(len(ports)))) for i in range(count)]
    made: list[Server] = []
    agent = 0
    try:
        agent = write_client(folder, list(zip(names, ssh_ports)))
        docker("network", "create", *label, name)
        for node, ssh_port, mapping in zip(names, ssh_ports, published):
            publish = [a for inner, outer in ({22: ssh_port, **mapping} if ssh_port else {}).items()
                       for a in ("-p", f"127.0.0.1:{outer}:{inner}")]
            docker("run", "-d", "--init", "--name", node, "--hostname", node, "--network", name, *label,
                   *node_args(folder / node), "--tmpfs", "/var/lib/docker:exec", *publish, SERVER_IMAGE)
            engine = Engine(node, folder / node)
            engine.launch()
            made.append(Server(node, engine, ssh_port, mapping, folder))
        since = time.monotonic()
        with ThreadPoolExecutor(len(made)) as pool:
            list(pool.map(lambda server: server.engine.wait(since), made))
        for server in made:
            server.exec("sh", "-c", f"cat >>/home/{USER}/.ssh/authorized_keys && chown {USER}: /home/{USER}/.ssh/authorized_keys "
                        f"&& chmod 600 /home/{USER}/.ssh/authorized_keys", input_text=(folder / "id_ed25519.pub").read_text())
            # docker.sock of the inner engine: the deploy user's, as the docker group gives it on a real server
            server.exec("sh", "-c", "chgrp docker /var/run/docker.sock && chmod 660 /var/run/docker.sock")
        for server in made:
            wait_for_sshd(server)
        yield made
    finally:
        for server in made:
            server.engine.remove_containers()
        docker("rm", "-f", "-v", *names, check=False)
        docker("network", "rm", name, check=False)
        if agent:
            os.kill(agent, signal.SIGTERM)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def wait_for_sshd(server: Server, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.ssh_port:
            probe = subprocess.run(["ssh-keyscan", "-p", str(server.ssh_port), "127.0.0.1"], capture_output=True, text=True,
                                   timeout=10, check=False)
        else:  # hidden: asked from inside
            probe = server.exec("ssh-keyscan", "-p", "22", "127.0.0.1", check=False, timeout=10)
        if probe.stdout.strip():
            return
        time.sleep(0.3)
    pytest.fail(f"sshd of {server.name} did not answer on 127.0.0.1:{server.ssh_port} within {seconds} s")
