"""Controlling the stack's running nginx: test, graceful reload, upstream pins
(deploys) and the maintenance switch. Reloads are actions: under --dry-run they
are printed."""

from __future__ import annotations

from plano.core import naming as n
from plano.core.errors import PlanoError
from plano.core.session import Session
from plano.engine.stack import Stack, running_services


class NginxError(PlanoError):
    """nginx refused a configuration or a reload; it keeps serving the previous one."""


def test_argv(stack: Stack) -> list[str]:
    return stack.argv("exec", "-T", "nginx", "nginx", "-c", n.NGINX_CONF, "-t", "-q")


def reload_argv(stack: Stack) -> list[str]:
    return stack.argv("exec", "-T", "nginx", "nginx", "-c", n.NGINX_CONF, "-s", "reload")


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


def pin_lines(addresses: list[str], port: int, service: str) -> str:
    """The upstream's servers while a deploy holds it: the containers by address, so
    that a new nginx worker has them from its first request (a name that the previous
    configuration did not hold leaves the upstream empty, "no live upstreams" and a
    502, until the worker has resolved it); and the service's own name, down, so that
    nginx keeps it resolved and the rendered file, put back, starts with its addresses."""
    servers = "".join(f"server {address}:{port};\n" for address in addresses)
    return (f"# plano deploy: these containers only, until the deploy ends\n{servers}"
            f"server {service}:{port} resolve down;\n")


def write_upstream(session: Session, stack: Stack, upstream: str, content: str | None) -> None:
    """The live upstream file: `content`, or the rendered default (None). Not reloaded."""
    default = (stack.root / n.upstream_file(upstream)).read_text()
    session.write(stack.root / n.runtime_upstream(stack.mode, upstream), default if content is None else content, 0o644)


def set_maintenance(session: Session, app: str, on: bool) -> str:
    """nginx checks the flag file on every request: no reload. Returns the flag's path."""
    rel = n.maintenance_flag(app, session.stack_mode)
    if on:
        session.write(session.root / rel, "on\n", 0o644)
    else:
        session.remove(session.root / rel)
    return rel
