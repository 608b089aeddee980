"""The stack's own commands: `up` (checked, with certificates and teardown on
failure) and the compose commands plano passes through (down, ps, logs, exec,
restart, build or pull). Each returns compose's exit code or raises."""

from __future__ import annotations

from dataclasses import dataclass, field

from plano.core import naming as n
from plano.core.errors import PlanoError, UsageError
from plano.core.session import Session
from plano.engine import nginx
from plano.engine.stack import (
    Stack,
    check_ports,
    down_argv,
    exec_argv,
    logs_argv,
    open_stack,
    pull_argv,
    require_engine,
    running_services,
    simple_argv,
    up_argv,
    urls,
)
from plano.engine.tls import installed_facts
from plano.ops import devca, infra, secrets


@dataclass
class Started:
    urls: dict[str, str]
    placeholders: list[str] = field(default_factory=list)  # prod apps still on a self-signed certificate


def up(session: Session, build: bool = False, wait: bool = True) -> Started:
    """Start the stack and wait until it is healthy. An attempt that fails on a
    stack that was not running is taken down again (data is kept). A fresh clone
    with only the committed `.env.prod.enc` gets its `.env.prod` decrypted first."""
    if not session.stack_mode.is_dev:
        if session.manifest.target == "swarm":
            raise UsageError("target: plano.yml runs prod on a swarm; plano swarm up starts it there "
                             "(plano prod up is the one-server target's)")
        secrets.restore_plain(session, n.ENV_PROD)
    st = open_stack(session)
    mode = st.mode
    require_engine(session.runner)
    if infra.plan(st.root, st.manifest).changed:
        session.out.note("warning: rendered files are out of date with plano.yml; run 'plano render'")
    running = running_services(st, session.runner)
    check_ports(st, running)
    # A fresh clone has no data/: Docker would create the bind sources as root,
    # and the apps (non-root) could not write their uploads.
    infra.ensure_data_dirs(session, st.manifest)
    renewed = dev_certificates(session, st) if mode.is_dev else []
    if not mode.is_dev:
        pulled = session.act(pull_argv(st, quiet=True), timeout=1800)
        if not pulled.ok:
            raise PlanoError(f"prod pull failed, nothing was started: {pulled.last_line}; check the registry in plano.yml and 'docker login'")
    code = session.act_stream(up_argv(st, build, wait))
    if code:
        if not running:
            session.out.note("stopping what this attempt started (data is kept)")
            session.act(down_argv(st), timeout=300)
        raise PlanoError(f"{mode} up failed (compose exit code {code}); see the output above and 'plano {mode} logs'")
    if renewed and "nginx" in running:
        nginx.reload(session, st)
    placeholders = [] if mode.is_dev else [
        app for app in sorted(st.manifest.apps)
        if (facts := installed_facts(st.root, mode, app)) is None or facts.placeholder]
    return Started(urls(st.manifest, mode), placeholders)


def dev_certificates(session: Session, st: Stack) -> list[str]:
    """dev serves https://APP.localhost with certificates of the local dev CA (never in prod)."""
    domains = {app: st.mode.domains(st.manifest, app) for app in st.manifest.apps}
    if not all(devca.allowed(name) for names in domains.values() for name in names):
        session.out.note(f"warning: dev/domain_suffix is not {devca.PERMITTED}: dev keeps self-signed placeholder certificates")
        return []
    ca, created, renewed = devca.install_dev_certs(session, domains)
    if created:
        session.out.note(f"created the plano development CA: {ca.path}")
        session.out.note(devca.trust_hint(ca.path))
    return renewed


def run_compose(session: Session, argv_of) -> int:
    """One compose command of the session's stack, streamed; its exit code."""
    return session.act_stream(argv_of(open_stack(session)))


def down(session: Session, volumes: bool = False) -> int:
    return run_compose(session, lambda st: down_argv(st, volumes))


def ps(session: Session) -> int:
    return run_compose(session, lambda st: simple_argv(st, "ps"))


def logs(session: Session, services: tuple[str, ...], follow: bool, tail: str | None) -> int:
    return run_compose(session, lambda st: logs_argv(st, services, follow, tail))


def exec_in(session: Session, service: str, command: tuple[str, ...], tty: bool) -> int:
    return run_compose(session, lambda st: exec_argv(st, service, command, tty))


def restart(session: Session, services: tuple[str, ...]) -> int:
    return run_compose(session, lambda st: simple_argv(st, "restart", services))


def fetch_images(session: Session, services: tuple[str, ...]) -> int:
    """dev builds the app images from source; prod pulls them from the registry."""
    if session.stack_mode.is_dev:
        return run_compose(session, lambda st: simple_argv(st, "build", services))
    return run_compose(session, lambda st: pull_argv(st, services))
