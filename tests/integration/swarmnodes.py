"""A real multi-node Docker Swarm on this machine: N engines in containers of the shared
engine (innerengine.Engine, Debian bookworm's docker.io 20.10), on a user-defined
network of the test's own; node 1 is the manager (`docker swarm init` advertising its
address on that network), the others join it as workers.

    with swarm("e2e-ab12cd", ports=(8080,)) as cluster:
        cluster.docker("stack", "deploy", "-c", "stack.yml", "web")   # the host's CLI, on the manager
        cluster.exec(0, "docker", "node", "ls")                        # the node's own 20.10 CLI
        port = cluster.published(1, 8080)   # node 2's port 8080, as 127.0.0.1:port on the host

What the nested engines cannot do here (../shared/docs/offline-test-environment.md):
the swarm VIP and the ingress routing mesh do not answer (no IPVS), so services use
`endpoint_mode: dnsrr` and ports published with `mode: host`. Each node publishes
every port in `ports` on the host's 127.0.0.1 only, at a free port.

Each node's /var/lib/docker is a tmpfs (RAM; overlay2 on it, so no layer is copied),
or, for the nodes `persistent` names (True: all), an anonymous volume on the host's
disk (overlay2 too), which keeps the node's images and swarm state across `stop()` and
`start()` (a tmpfs is emptied when its container stops: the node would come back as an
engine that never joined). Only a node a test stops needs one. `dirs` are folders inside every node (e.g. a data/ folder a stack binds),
each a host folder of its own (Swarm.host_dir). Images come from the harness registry
through each node's read-only registry on its own 127.0.0.1:5000 (innerengine), so
image refs are the same on the host and on the nodes. Everything made here carries the test run's label (and the name is put in the
run's ledger, so its registry tags go too); the end removes the services, the nodes'
containers, the nodes and the network."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import testrun
from tests.integration.innerengine import NODE_IMAGE, Engine, node_args
from tests.integration.net import free_ports
from tests.integration.stackfixtures import docker

READY_WITHIN = 60  # seconds for every node to be Ready in `docker node ls`


@dataclass
class Swarm:
    name: str
    engines: list[Engine]
    addresses: list[str]  # each node's IP on the swarm's network
    ports: list[dict[int, int]] = field(default_factory=list)  # per node: its port -> the host's 127.0.0.1 port

    @property
    def manager(self) -> Engine:
        return self.engines[0]

    @property
    def nodes(self) -> list[str]:
        """The nodes' names: container name, hostname and swarm node name are the same."""
        return [engine.node for engine in self.engines]

    def docker(self, *args: str, check: bool = True, timeout: float = 300,
               input_text: str | None = None) -> subprocess.CompletedProcess:
        """The host's docker CLI against the manager's engine."""
        return self.manager.docker(*args, check=check, timeout=timeout, input_text=input_text)

    def docker_argv(self, *args: str) -> list[str]:
        """The same command as an argument list (for subprocess or for plano's DOCKER_HOST)."""
        return ["docker", "-H", self.manager.host, *args]

    def exec(self, index: int, *command: str, check: bool = True, timeout: float = 300,
             input_text: str | None = None) -> subprocess.CompletedProcess:
        """A command inside node `index` (0 is the manager), e.g. its own docker CLI."""
        return docker("exec", "-i", self.nodes[index], *command, check=check, timeout=timeout, input_text=input_text)

    def published(self, index: int, port: int) -> int:
        """The host's 127.0.0.1 port that reaches `port` on node `index`."""
        return self.ports[index][port]

    def host_dir(self, index: int, path: str) -> Path:
        """The host folder behind the node's folder `path` (one of swarm()'s `dirs`)."""
        return self.engines[index].sockets / "dirs" / path.strip("/")

    def stop(self, index: int) -> None:
        """A power cut of node `index`: every process of it killed at once (SIGKILL)."""
        docker("stop", "--time", "0", self.nodes[index])

    def start(self, index: int) -> float:
        """Boot node `index` again and start its engine; seconds until the engine answers."""
        docker("start", self.nodes[index])
        return self.engines[index].start()

    def pause(self, index: int) -> None:
        """Freeze node `index` (its engine and tasks stop answering, its state is kept):
        the manager marks it Down after about 15 s; `unpause` brings it back at once."""
        docker("pause", self.nodes[index])

    def unpause(self, index: int) -> None:
        docker("unpause", self.nodes[index])

    def label(self, index: int, **labels: str) -> None:
        """Set node labels (for `deploy.placement.constraints: [node.labels.KEY == VALUE]`)."""
        adds = [a for key, value in labels.items() for a in ("--label-add", f"{key}={value}")]
        self.docker("node", "update", *adds, self.nodes[index])

    def usage(self) -> dict[str, dict[str, str]]:
        """Each node's RAM (the container's, its tmpfs included) and what its /var/lib/docker
        holds (du -x: not the running containers' merged overlay mounts again)."""
        stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *self.nodes).stdout.splitlines()
        memory = {line.split(" ", 1)[0]: line.split(" ", 1)[1].split(" / ")[0] for line in stats}
        store = {node: docker("exec", node, "du", "-sxh", "/var/lib/docker").stdout.split()[0]
                 for node in self.nodes}
        return {node: {"memory": memory.get(node, "?"), "/var/lib/docker": store[node]} for node in self.nodes}


@contextmanager
def swarm(name: str, nodes: int = 3, ports: Sequence[int] = (), dirs: Sequence[str] = (),
          persistent: bool | Collection[int] = False, run: str | None = None, shared: Sequence[Path] = (),
          writable_registry: bool = False) -> Iterator[Swarm]:
    """A swarm of `nodes` engines named `name`-1..N on the network `name`; removed at the end.
    `persistent`: True, or the indexes of the nodes (0 is the manager) whose /var/lib/docker
    survives stop() and start(). The manager (node 1) also sees each host folder of `shared`
    at the same path (an infra plano runs from: the edge node's files), and with
    `writable_registry` its registry takes pushes (what plano builds on it)."""
    run = run or testrun.current()
    testrun.record_project(name)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))  # short: the sockets' paths must stay < 108 bytes
    label = ["--label", f"{testrun.LABEL}={run}"]
    names = [f"{name}-{i}" for i in range(1, nodes + 1)]
    published = [dict(zip(ports, free_ports(len(ports)))) for _ in names]
    try:
        docker("network", "create", *label, name)
        kept = set(range(nodes)) if persistent is True else set(persistent or ())
        same = [a for path in shared for a in ("-v", f"{path}:{path}")]
        engines = [start_node(node, name, folder / node, [*label, *store(i in kept), *binds(folder / node, dirs), *(same if i == 0 else [])],
                              mapping, writable_registry and i == 0)
                   for i, (node, mapping) in enumerate(zip(names, published))]
        cluster = Swarm(name, engines, [address(node, name) for node in names], published)
        form(cluster)
        yield cluster
    finally:
        remove(names, name, folder)


def store(persistent: bool) -> list[str]:
    """The node's /var/lib/docker: an anonymous volume (removed with the node) or a tmpfs."""
    return ["-v", "/var/lib/docker"] if persistent else ["--tmpfs", "/var/lib/docker:exec"]


def binds(folder: Path, dirs: Sequence[str]) -> list[str]:
    """`-v` arguments giving each of `dirs` a host folder under the node's `folder`."""
    args = []
    for path in dirs:
        (folder / "dirs" / path.strip("/")).mkdir(parents=True, exist_ok=True)
        args += ["-v", f"{folder / 'dirs' / path.strip('/')}:{path}"]
    return args


def start_node(node: str, network: str, folder: Path, args: list[str], ports: dict[int, int],
               writable_registry: bool = False) -> Engine:
    """Run the node container and launch its engine (not waited for: form() waits)."""
    publish = [a for inner, outer in ports.items() for a in ("-p", f"127.0.0.1:{outer}:{inner}")]
    docker("run", "-d", "--init", "--name", node, "--hostname", node, "--network", network,
           *node_args(folder, writable_registry=writable_registry), *args,
           *publish, NODE_IMAGE)
    engine = Engine(node, folder)
    engine.launch()
    return engine


def address(node: str, network: str) -> str:
    return docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks {json.dumps(network)}).IPAddress}}}}",
                  node).stdout.strip()


def form(cluster: Swarm) -> None:
    """Wait for every engine, init the swarm on the manager, join the others, wait until all are Ready."""
    since = time.monotonic()
    with ThreadPoolExecutor(len(cluster.engines)) as pool:
        list(pool.map(lambda engine: engine.wait(since), cluster.engines))
    cluster.docker("swarm", "init", "--advertise-addr", cluster.addresses[0])
    token = cluster.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    for engine, ip in zip(cluster.engines[1:], cluster.addresses[1:]):
        engine.docker("swarm", "join", "--advertise-addr", ip, "--token", token, f"{cluster.addresses[0]}:2377")
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        states = cluster.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
        if sum(line.endswith(" Ready") for line in states) == len(cluster.engines):
            return
        time.sleep(0.5)
    pytest.fail(f"the swarm's nodes were not all Ready within {READY_WITHIN} s: {states}")


def remove(names: list[str], network: str, folder: Path) -> None:
    """Services first (or the swarm starts their tasks again), then each engine's containers
    (their cgroups are the host's), then the nodes, the network and the host folder."""
    states = {n: docker("inspect", "-f", "{{.State.Status}}", n, check=False).stdout.strip() for n in names}
    for node in (n for n, state in states.items() if state == "paused"):
        docker("unpause", node, check=False)  # a frozen engine would not answer
    running = [n for n, state in states.items() if state in ("running", "paused")]
    if running:
        manager = Engine(names[0], folder / names[0])
        services = manager.docker("service", "ls", "-q", check=False).stdout.split()
        if services:
            manager.docker("service", "rm", *services, check=False)
        with ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda node: Engine(node, folder / node).remove_containers(), running))
    if made := [n for n, state in states.items() if state]:
        docker("rm", "-f", "-v", *made, check=False)
    docker("network", "rm", network, check=False)
    shutil.rmtree(folder, ignore_errors=True)
