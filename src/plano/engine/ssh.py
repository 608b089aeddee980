"""How plano reaches a server: the system `ssh` client (OpenSSH), never a protocol of its own.

Every argv here is pure. One connection per command: the first ssh opens a master
(ControlMaster=auto) in a private folder, the next ones reuse it (ControlPersist keeps it
a minute). BatchMode: no password prompt, ever (CI). The user's ~/.ssh/config and agent
apply (aliases, jump hosts, keys), since this is their own ssh; the options given here
come first, so they win over the config for host keys: those are checked against the
known_hosts file plano keeps in the infra (StrictHostKeyChecking=yes), which
`plano server trust` fills once per server (from ssh-keyscan, or behind a jump host,
which ssh-keyscan cannot use, from a first contact by ssh itself: first_contact_argv).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

CONTROL_PERSIST_SECONDS = 60
CONNECT_TIMEOUT_SECONDS = 15
# Changed keys: OpenSSH's own words (both seen with StrictHostKeyChecking=yes).
CHANGED_KEY_MARKS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "has changed and you have requested strict checking")
UNKNOWN_KEY_MARKS = ("No ED25519 host key is known", "No ECDSA host key is known", "No RSA host key is known",
                     "Host key verification failed")
SSH_FAILED = 255  # ssh's own exit code when it could not connect (else the remote command's)


@dataclass(frozen=True)
class Remote:
    """A server as plano reaches it: `host` as plano.yml gives it (user@host or an alias)."""

    host: str
    port: int | None
    known_hosts: Path  # plano's file for this infra
    control_dir: Path  # a private folder (0700) for the connection's socket


@dataclass(frozen=True)
class Address:
    """Where ssh really connects, once ~/.ssh/config is applied (`ssh -G`)."""

    hostname: str
    port: int
    user: str
    proxied: bool = False  # through a jump host or a proxy command of ~/.ssh/config
    alias: str = ""  # HostKeyAlias of ~/.ssh/config: the name ssh looks the key up under instead

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts lists the server under: its HostKeyAlias as it is (ssh
        adds no port to it), else host, or [host]:port off port 22."""
        if self.alias:
            return self.alias
        return self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"


def options(remote: Remote) -> list[str]:
    port = ["-p", str(remote.port)] if remote.port else []
    settings = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(remote.known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "ControlMaster": "auto",
        "ControlPath": f"{remote.control_dir}/%C",
        "ControlPersist": str(CONTROL_PERSIST_SECONDS),
        "ConnectTimeout": str(CONNECT_TIMEOUT_SECONDS),
        "ServerAliveInterval": "10",
        "ServerAliveCountMax": "3",
        "LogLevel": "ERROR",
    }
    return [*port, *(a for key, value in settings.items() for a in ("-o", f"{key}={value}"))]


def ssh_argv(remote: Remote, command: str, tty: bool = False) -> list[str]:
    """`command` (one shell line, run by the login shell on the server)."""
    return ["ssh", *options(remote), *(["-t"] if tty else ["-T"]), remote.host, command]


def script_argv(remote: Remote, script: str, *args: str, tty: bool = False) -> list[str]:
    """A POSIX sh script run on the server with `args` as $1...: the arguments are
    quoted here once, so nothing the user typed is read by the remote shell."""
    return ssh_argv(remote, shlex.join(["sh", "-c", script, "plano", *args]), tty)


def local_forward(local_port: int, remote_port: int) -> str:
    """ssh's -L: this machine's 127.0.0.1:LOCAL to the server's own 127.0.0.1:REMOTE."""
    return f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"


def forward_argv(remote: Remote, local_port: int, remote_port: int, command: str) -> list[str]:
    """`command` on the server, with a local port forwarded to one of the server's loopback
    ports for as long as it runs; a local port already taken fails ssh at once
    (ExitOnForwardFailure) instead of running the command unreachable."""
    return ["ssh", *options(remote), "-o", "ExitOnForwardFailure=yes", "-L", local_forward(local_port, remote_port), "-T",
            remote.host, command]


def cancel_forward_argv(remote: Remote, local_port: int, remote_port: int) -> list[str]:
    """Remove the forward from the shared connection: the master keeps a forward a client
    asked for after that client ends."""
    return ["ssh", *options(remote), "-O", "cancel", "-L", local_forward(local_port, remote_port), remote.host]


def exit_master_argv(remote: Remote) -> list[str]:
    """Close the shared connection (after the server changed what a login gets, e.g. groups)."""
    return ["ssh", *options(remote), "-O", "exit", remote.host]


def git_ssh_command(remote: Remote) -> str:
    """GIT_SSH_COMMAND for `git push` to the server: the same ssh, the same connection."""
    return shlex.join(["ssh", *options(remote)])


def git_url(remote: Remote, path: str) -> str:
    """git's scp-like address of the infra repo on the server (relative: from the login's home)."""
    return f"{remote.host}:{home_relative(path)}"


def home_relative(path: str) -> str:
    """A server path as plano.yml gives it, for tools that start in the login's home."""
    return path.removeprefix("~/")


# ---------------------------------------------------------------- host keys


def resolve_argv(remote: Remote) -> list[str]:
    """What ssh would connect to, with ~/.ssh/config applied; nothing is contacted."""
    return ["ssh", "-G", *(["-p", str(remote.port)] if remote.port else []), remote.host]


def parse_resolved(text: str) -> Address:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), value.strip())
    proxied = any(values.get(key, "none") != "none" for key in ("proxyjump", "proxycommand"))
    return Address(values.get("hostname", ""), int(values.get("port") or 22), values.get("user", ""), proxied,
                   values.get("hostkeyalias", ""))


def keyscan_argv(address: Address) -> list[str]:
    return ["ssh-keyscan", "-T", str(CONNECT_TIMEOUT_SECONDS), "-p", str(address.port), "-t", "ed25519,ecdsa,rsa",
            address.hostname]


def first_contact_argv(remote: Remote, scratch: Path) -> list[str]:
    """The server's host key as ssh itself receives it, for a server behind a jump host
    (ssh-keyscan cannot use ProxyJump or ProxyCommand; this is the user's ssh, whose config
    takes it there): ssh accepts the key into `scratch` (a new file of plano's, nothing
    else), authenticates with nothing ("none": no key or name is offered to a server not
    yet trusted) and ends. The key is then shown and trusted as ssh-keyscan's would be."""
    port = ["-p", str(remote.port)] if remote.port else []
    settings = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "accept-new",
        "UserKnownHostsFile": str(scratch),
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "HashKnownHosts": "no",
        "CheckHostIP": "no",
        "ControlMaster": "no",
        "ControlPath": "none",
        "PreferredAuthentications": "none",
        "ConnectTimeout": str(CONNECT_TIMEOUT_SECONDS),
        "LogLevel": "ERROR",
    }
    return ["ssh", *port, *(a for key, value in settings.items() for a in ("-o", f"{key}={value}")), "-T", remote.host, "true"]


def named(lines: str, address: Address) -> list[str]:
    """Key lines (known_hosts' or ssh-keyscan's) under the name known_hosts lists the server as."""
    return sorted(f"{address.known_hosts_name} {kind} {key}" for kind, key in key_blobs(lines))


def fingerprints_argv() -> list[str]:
    """Fingerprints of the key lines given on stdin (SHA256:..., as ssh shows them)."""
    return ["ssh-keygen", "-l", "-f", "-"]


def known_argv(known_hosts: Path, address: Address) -> list[str]:
    """The known_hosts lines of the server (exit 1: none)."""
    return ["ssh-keygen", "-F", address.known_hosts_name, "-f", str(known_hosts)]


def key_lines(keyscan_output: str) -> list[str]:
    """ssh-keyscan's key lines (its comments dropped), one per key type."""
    return sorted({line.strip() for line in keyscan_output.splitlines() if line.strip() and not line.startswith("#")})


def key_blobs(lines: str) -> set[tuple[str, str]]:
    """(type, key) of known_hosts or keyscan lines, whatever names they carry."""
    blobs = set()
    for line in lines.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#"):
            blobs.add((parts[1], parts[2]))
    return blobs


def problem(stderr: str) -> str | None:
    """'changed' or 'unknown' when ssh refused the server's host key, else None."""
    if any(mark in stderr for mark in CHANGED_KEY_MARKS):
        return "changed"
    if any(mark in stderr for mark in UNKNOWN_KEY_MARKS):
        return "unknown"
    return None
