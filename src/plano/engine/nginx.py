"""Controlling the stack's running nginx: test, graceful reload, the DNS answers a
deploy switches services with, the probes it waits on, and the maintenance switch.
Reloads are actions: under --dry-run they are printed."""

from __future__ import annotations

from plano.core import naming as n
from plano.core.errors import PlanoError
from plano.core.session import Session
from plano.engine.stack import Stack, running_services


class NginxError(PlanoError):
    """nginx refused a configuration or a reload; it keeps serving the previous one."""


def test_argv(stack: Stack) -> list[str]:
    return stack.argv("exec", "-T", "nginx", "nginx", "-c", n.NGINX_CONF, "-t", "-q")


# The compose projects whose nginx runs on this engine (both modes in one call).
RUNNING_PROJECTS_ARGV = ["docker", "ps", "--filter", "label=com.docker.compose.service=nginx",
                         "--format", '{{.Label "com.docker.compose.project"}}']


def reload_argv(stack: Stack) -> list[str]:
    """The reload, returning once new workers have taken over (docker/nginx/bin/plano-reload.sh)."""
    return stack.argv("exec", "-T", "nginx", n.NGINX_RELOAD)


def nginx_says(output: str) -> str:
    """nginx's own reason, in one line: its [emerg]/[error] line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    reason = next((line for line in lines if "[emerg]" in line or "[error]" in line), lines[-1] if lines else "no output")
    return reason.split("] ", 1)[-1] if reason.startswith("nginx: [") else reason


def reload(session: Session, stack: Stack) -> None:
    """`nginx -t`, then a graceful reload: old workers finish what they hold."""
    tested = session.act(test_argv(stack), timeout=60)
    if not tested.ok:
        raise NginxError(f"nginx -t failed, nginx keeps its running configuration: {nginx_says(tested.output)}")
    reloaded = session.act(reload_argv(stack), timeout=60)
    if not reloaded.ok:
        raise NginxError(f"nginx reload failed: {nginx_says(reloaded.output)}")


def require_running(session: Session, stack: Stack, why: str) -> None:
    if "nginx" not in running_services(stack, session.runner):
        raise NginxError(f"nginx is not running; start the stack first (plano {stack.mode} up): {why}")


def hosts_lines(addresses: list[str], service: str) -> str:
    """A DNS override's content: a hosts file naming `service` at each address."""
    return "".join(f"{address} {service}\n" for address in addresses)


def override_dns(session: Session, stack: Stack, service: str, addresses: list[str] | None) -> None:
    """nginx's DNS answers `service` with these addresses (None: Docker's answer again).
    dnsmasq reads the file as it changes; nginx follows within its resolver's `valid`."""
    path = stack.root / n.dns_override(stack.mode, service)
    if addresses is None:
        session.remove(path)
    else:
        session.write(path, hosts_lines(addresses, service), 0o644)


def proc_net_address(address: str, port: int) -> str:
    """An IPv4 address and port as /proc/net/tcp writes them: 172.18.0.5:3000 -> 050012AC:0BB8."""
    packed = bytes(int(part) for part in address.split("."))
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def ready_argv(stack: Stack, seconds: int, urls: list[str]) -> list[str]:
    """Poll each URL from nginx's side until it answers 2xx/3xx (exit 1 at the deadline)."""
    return stack.argv("exec", "-T", "nginx", n.NGINX_PROBE, "ready", str(seconds), *urls)


def drained_argv(stack: Stack, seconds: int, targets: list[tuple[str, int]], after: float = 0) -> list[str]:
    """Wait `after` seconds, then until nginx holds no connection to any (address, port)
    (exit 1 at the deadline)."""
    return stack.argv("exec", "-T", "-e", f"PLANO_PROBE_AFTER={after:g}", "nginx", n.NGINX_PROBE, "drained", str(seconds),
                      *(proc_net_address(address, port) for address, port in targets))


def set_maintenance(session: Session, app: str, on: bool) -> str:
    """nginx checks the flag file on every request: no reload. Returns the flag's path."""
    rel = n.maintenance_flag(app, session.stack_mode)
    if on:
        session.write(session.root / rel, "on\n", 0o644)
    else:
        session.remove(session.root / rel)
    return rel
