"""The infra repo on disk: init, app add/remove, render. I/O lives here, at the edge.

Every operation decides everything first (new plano.yml text, validated manifest,
rendered tree, plan with drift check) and only then writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plano.core import fields, files, secrets
from plano.core import manifest as mf
from plano.core import naming as n
from plano.core.errors import RefusedError, UsageError
from plano.core.files import File, Kind, Plan
from plano.core.manifest import Manifest, require_app
from plano.core.mode import Mode
from plano.core.runner import Runner
from plano.core.session import Session


def env_values(root: Path, manifest: Manifest, make: Callable[[], str] = secrets.new_secret) -> dict[str, dict[str, str]]:
    """Values for each env file: what is on disk, plus fresh secrets for missing keys."""
    from plano.render.envfiles import specs

    return {
        path: secrets.complete(secrets.read_env(root / path), spec.secrets, spec.defaults, make)
        for path, spec in specs(manifest).items()
    }


def build_tree(root: Path, manifest: Manifest) -> files.Tree:
    """Every file plano renders here; k8s/ only once the Kubernetes export made it."""
    from plano.render import render_infra

    return render_infra(manifest, env_values(root, manifest), with_kubernetes=(root / n.K8S_DIR).is_dir())


def plan(root: Path, manifest: Manifest, manifest_text: str | None = None) -> Plan:
    tree = build_tree(root, manifest)
    result = files.plan(root, tree)
    if manifest_text is not None and manifest_text != files.read_or_none(root / mf.MANIFEST_FILE):
        result.writes[mf.MANIFEST_FILE] = File(manifest_text, kind=Kind.USER)
    return result


def data_dirs(manifest: Manifest) -> list[str]:
    """data/ for prod and data/dev/ for dev, with an uploads folder per app."""
    return [
        path
        for mode in (Mode.PROD, Mode.DEV)
        for path in (
            *(f"{n.data_root(mode)}/{rel}" for rel in n.DATA_DIRS),
            *(n.uploads_dir(name, mode) for name in manifest.apps),
        )
    ]


def make_data_dirs(root: Path, manifest: Manifest) -> list[str]:
    """Create the missing data/ folders (never delete one); uploads belong to the app's user."""
    made = []
    for rel in data_dirs(manifest):
        path = root / rel
        if path.is_dir():
            continue
        path.mkdir(parents=True, exist_ok=True)
        if "/uploads/" in rel and os.geteuid() == 0:
            os.chown(path, n.APP_UID, n.APP_UID)
        if rel in (n.access_logs_dir(Mode.PROD), n.access_logs_dir(Mode.DEV)) and os.geteuid() != 0:
            # nginx's master (root without DAC_OVERRIDE) writes and rotates the log here: a
            # folder of another user must let it (sticky: nobody removes another's files).
            path.chmod(0o1777)
        made.append(rel)
    return made


# data/ folders written by a service that runs as a user of its own: (folder, uid, whole tree).
# Older plano ran certbot and backup as root, so an upgraded data/ holds root's files there.
DATA_OWNERS = (("certs", n.CERTBOT_UID, True), ("logs/certbot", n.CERTBOT_UID, True),
               ("backups", n.APP_UID, True), ("uploads", n.APP_UID, False))


def own_data(root: Path) -> None:
    """Give those folders to their service's user (numeric ids, user = group), as root only:
    a plano without root cannot chown, and its files were never root's either. The
    private keys nginx reads become 0640 and certs/plano/ 0775: nginx's workers read the
    keys, and its entrypoint (root without DAC_OVERRIDE) writes placeholders, through
    certbot's group."""
    if os.geteuid() != 0:
        return
    for (_, uid, _), paths in unowned_data(root).items():
        for path in paths:
            os.chown(path, uid, uid, follow_symlinks=False)
    for mode in Mode:
        installed = root / n.data_root(mode) / "certs/plano"
        if installed.is_dir():  # nginx's master writes the placeholders here through the group
            installed.chmod(0o775)
        for key in installed.glob("*/privkey.pem"):
            if not key.is_symlink() and not key.stat().st_mode & 0o040:
                key.chmod(0o640)


def unowned_data(root: Path) -> dict[tuple[str, int, bool], list[Path]]:
    """(folder, uid, whole tree) -> what in it does not belong to uid:uid yet (only folders with some)."""
    found = {}
    for mode in Mode:
        for rel, uid, tree in DATA_OWNERS:
            paths = not_owned(root / n.data_root(mode) / rel, uid, tree)
            if paths:
                found[(f"{n.data_root(mode)}/{rel}", uid, tree)] = paths
    return found


def not_owned(top: Path, uid: int, tree: bool = True) -> list[Path]:
    """The folder (or its whole tree, symlinks themselves) where owner or group is not uid."""
    if not top.is_dir():
        return []
    paths = [top] if not tree else [top, *(Path(d) / f for d, dirs, fs in os.walk(top) for f in [*dirs, *fs])]
    return [path for path in paths if not owned_by(path, uid)]


def owned_by(path: Path, uid: int) -> bool:
    info = path.lstat()
    return (info.st_uid, info.st_gid) == (uid, uid)


def own_restic_repository(manifest: Manifest) -> None:
    """A local restic repository is written by the backup service's user only (as root only)."""
    restic = manifest.backup.restic
    if restic and restic.repository.startswith("/") and os.geteuid() == 0:
        Path(restic.repository).mkdir(parents=True, exist_ok=True)
        for path in not_owned(Path(restic.repository), n.APP_UID):
            os.chown(path, n.APP_UID, n.APP_UID, follow_symlinks=False)


def secret_files(root: Path, manifest: Manifest) -> dict[str, tuple[str, int]]:
    """Each infra service's secrets, from the mode's env files: data/<mode>/secrets/<service>/<KEY>
    -> (value, the service user's uid)."""
    found = {}
    for mode in Mode:
        values = {**secrets.read_env(root / n.ENV_BASE), **secrets.read_env(root / mode.env_file)}
        for service, keys in n.infra_secrets(manifest).items():
            for key in keys:
                if values.get(key):
                    found[n.secret_file(mode, service, key)] = (values[key], n.SECRET_OWNERS[service])
    return found


def secret_mode() -> int:
    """0400 and owned by the service's user when plano runs as root; else 0444 (plano cannot
    chown), and only the 0700 folders keep the other users of this machine out."""
    return 0o400 if os.geteuid() == 0 else 0o444


def stale_secret_files(root: Path, manifest: Manifest) -> dict[str, tuple[str, int]]:
    """Those whose file is missing or differs (value, mode or owner)."""
    return {rel: (value, uid) for rel, (value, uid) in secret_files(root, manifest).items()
            if not secret_file_is(root / rel, value, uid)}


def secret_file_is(path: Path, value: str, uid: int) -> bool:
    try:
        info = path.stat()
        return (path.read_text() == value and info.st_mode & 0o777 == secret_mode()
                and (os.geteuid() != 0 or info.st_uid == uid))
    except OSError:
        return False


def write_secret_files(root: Path, manifest: Manifest) -> None:
    for rel, (value, uid) in stale_secret_files(root, manifest).items():
        write_secret(root / rel, value, uid)


def write_secret(path: Path, value: str, uid: int) -> None:
    """Through a new file (files.write_atomic), in 0700 folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in (path.parent, path.parent.parent):
        folder.chmod(0o700)
    files.write_atomic(path, value, secret_mode(), owner=uid if os.geteuid() == 0 else None)


def prepare_data(root: Path, manifest: Manifest) -> None:
    """What a stack needs in data/ before it starts: folders, owners, secret files."""
    make_data_dirs(root, manifest)
    own_data(root)
    own_restic_repository(manifest)
    write_secret_files(root, manifest)


def ensure_data_dirs(session: Session, manifest: Manifest) -> None:
    """prepare_data as an action of the session (a dry run lists what it would write)."""
    if session.dry_run:
        for rel in data_dirs(manifest):
            if not (session.root / rel).is_dir():
                session.out.planned(f"# create {rel}/")
        for rel in stale_secret_files(session.root, manifest):
            session.out.planned(f"# write {rel}")
        if os.geteuid() == 0:
            for rel, uid, tree in unowned_data(session.root):
                session.out.planned(f"# chown {'-R ' if tree else ''}{uid}:{uid} {rel}")
        return
    prepare_data(session.root, manifest)


def sync(root: Path, manifest: Manifest, manifest_text: str | None = None, force: bool = False) -> Plan:
    """Render and write: refuses hand edits unless forced; writes nothing on refusal."""
    result = plan(root, manifest, manifest_text)
    if not force:
        files.refuse_hand_edits(result)
    files.apply(root, result)
    prepare_data(root, manifest)
    return result


# ---------------------------------------------------------------- init


def project_name(folder: Path) -> str:
    """A compose project name from the folder name: 'My Infra' -> 'my-infra'."""
    import re

    cleaned = re.sub(r"[^a-z0-9-]+", "-", folder.resolve().name.lower()).strip("-")
    cleaned = re.sub(r"^[^a-z]+", "", cleaned)[:40].rstrip("-")
    return cleaned or "infra"


def init(
    session: Session, root: Path, registry: str, email: str, name: str | None, force: bool, images: dict[str, str] | None = None
) -> Plan:
    """A new infra repo in `root`: plano.yml, every rendered file, secrets, data/, git."""
    if (root / mf.MANIFEST_FILE).exists() and not force:
        raise RefusedError(f"{root / mf.MANIFEST_FILE}: an infra already exists here; use 'plano render', or 'plano init --force' to start over (secrets are kept)")
    text = mf.new_document(name or project_name(root), registry, email, images)
    manifest = mf.load_text(text)
    if root.exists() and not root.is_dir():
        raise UsageError(f"DIRECTORY {root}: a file is there; give a folder for the infra")
    result = sync(root, manifest, text, force=force)
    git_init(root, session.runner)
    return result


def git_facts(session: Session, repo: Path):
    """The repo's default branch (origin's HEAD, else the checked-out branch), its
    origin and its pipelines: queries, read before anything is decided."""
    from plano.ops.adopt import GitFacts, existing_pipelines

    def ask(*args: str) -> str:
        got = session.query(["git", "-C", str(repo), *args], timeout=30, cwd=repo)
        return got.out.strip() if got.ok else ""

    branch = ask("symbolic-ref", "--short", "refs/remotes/origin/HEAD").removeprefix("origin/") or ask("symbolic-ref", "--short", "HEAD")
    return GitFacts(branch or "main", ask("remote", "get-url", "origin") or None, existing_pipelines(repo))


def git_init(root: Path, runner: Runner) -> None:
    if not runner.run(["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"]).ok:
        runner.run(["git", "init", "-q", str(root)])


# ---------------------------------------------------------------- apps


def with_app(infra: mf.Infra, name: str, entry: dict[str, Any]) -> tuple[str, Manifest]:
    """plano.yml with the app added (comments kept), validated; nothing is written."""
    fields.given("NAME", fields.app_name, name)
    doc = mf.parse(infra.text)
    apps = doc.get("apps")
    if apps is None or not hasattr(apps, "fa"):
        from ruamel.yaml.comments import CommentedMap

        apps = doc["apps"] = CommentedMap(apps or {})
    if name in apps:
        raise RefusedError(f"apps/{name}: already registered; change it in plano.yml or 'plano app remove {name}' first")
    apps.fa.set_block_style()
    apps[name] = entry
    text = mf.dump(doc)
    return text, mf.load_text(text)


def add_app(session: Session, name: str, entry: dict[str, Any], force: bool = False) -> Plan:
    text, manifest = with_app(session.infra, name, entry)
    return synced(session, manifest, text, force)


def synced(session: Session, manifest: Manifest, text: str | None, force: bool = False) -> Plan:
    """sync() in the session's infra, which then reloads plano.yml (and nginx, where it
    runs and one of its files changed)."""
    refuse_fresh_secrets(session.root)
    result = sync(session.root, manifest, text, force)
    session.reload()
    if any(rel.startswith(NGINX_FILES) for rel in result.changed):
        reload_running_nginx(session)
    return result


NGINX_FILES = "docker/nginx/"  # mounted into nginx, read at its start and at each reload


def reload_running_nginx(session: Session) -> None:
    """nginx reads docker/nginx/ from a bind mount: a changed site (an app's, the
    dashboard's) is served once nginx reloads. Each mode's stack whose nginx runs here is
    reloaded (`nginx -t` first: a failing test leaves it on its running configuration)."""
    from plano.engine import nginx
    from plano.engine.stack import open_stack

    found = session.query(nginx.RUNNING_PROJECTS_ARGV, timeout=30)
    projects = set(found.out.split()) if found.ok else set()
    manifest = session.manifest
    for mode in (Mode.PROD, Mode.DEV):
        if mode.project(manifest) not in projects or (mode is Mode.PROD and manifest.target == "swarm"):
            continue
        nginx.reload(session, open_stack(session.with_mode(mode)))
        session.done(f"nginx of the {mode} stack reloaded: it serves the rendered sites")


def refuse_fresh_secrets(root: Path) -> None:
    """A clone holding only `.env.prod.enc` must not get freshly generated secrets in a new
    `.env.prod`: the database and Redis of that infra were initialised with the committed ones."""
    for env_file in n.SECRET_ENVS:
        if not (root / env_file).exists() and (root / n.encrypted(env_file)).is_file():
            flag = " --dev" if env_file == n.ENV_DEV else ""
            raise RefusedError(f"{env_file}: missing, but {n.encrypted(env_file)} is here; run 'plano secrets decrypt{flag}' first "
                               "(a render would generate new secrets in its place)")


def render(session: Session, force: bool = False) -> Plan:
    return synced(session, session.manifest, None, force)


def check_render(session: Session) -> Plan:
    """What `render` would change, writing nothing."""
    return plan(session.root, session.manifest)


def remove_app(session: Session, name: str, force: bool = False) -> Plan:
    require_app(session.manifest, name)
    doc = mf.parse(session.infra.text)
    del doc["apps"][name]
    text = mf.dump(doc)
    return synced(session, mf.load_text(text), text, force)


def app_entry(
    domains: list[str],
    backend: dict[str, Any],
    frontend: dict[str, Any],
    database: bool = True,
    redis: bool = True,
    repo: str | None = None,
    ci_deploy: str | None = None,
) -> dict[str, Any]:
    """The plano.yml entry for `app add`: only what differs from the defaults is written."""
    entry: dict[str, Any] = {"domains": list(domains)}
    for role, values in (("backend", backend), ("frontend", frontend)):
        chosen = {key: value for key, value in values.items() if value is not None}
        if chosen:
            entry[role] = chosen
    if not database:
        entry["database"] = False
    if not redis:
        entry["redis"] = False
    if repo:
        entry["repo"] = repo
    if ci_deploy:
        entry["ci_deploy"] = ci_deploy
    return entry


def new_app(session: Session, name: str, domains: list[str], repo: Path | None, ci_deploy: str | None = None) -> tuple[Path, Plan]:
    """Create the app repo next to the infra (git init) and register the app."""
    from plano.ops import scaffold

    infra = session.infra
    repo = repo or infra.root.parent / name
    default = (infra.root.parent / name).resolve() == repo.resolve()
    source = None if default else os.path.relpath(repo.resolve(), infra.root.resolve())
    entry = app_entry(
        domains,
        {"source": f"{source}/backend" if source else None},
        {"source": f"{source}/frontend" if source else None},
        ci_deploy=ci_deploy,
    )
    text, manifest = with_app(infra, name, entry)  # bad input fails here, before any write
    if repo.exists() and any(repo.iterdir()):
        raise RefusedError(f"{repo}: not empty; use 'plano app adopt {repo}' for an existing repo")
    scaffold.create_repo(repo, name, manifest.registry, manifest.apps[name].domains[0], manifest.images.node,
                         manifest.apps[name].ci_deploy)
    git_init(repo, session.runner)
    return repo, synced(session, manifest, text)


def adopt_app(
    session: Session, repo: Path, name: str | None, domains: list[str], backend_dir: str | None = None, frontend_dir: str | None = None,
    database: bool = True, redis: bool = True, ci: str = "auto", ci_deploy: str | None = None,
):
    """Register an existing app repo: add the files it lacks (never overwriting one), then
    the app, with a database and a Redis user only when its backend uses them (and the
    flags allow them)."""
    from plano.ops import adopt

    infra = session.infra
    if name is None:
        name = repo.resolve().name
        try:
            fields.app_name(name)
        except ValueError:
            raise UsageError(f"{fields.shown(str(repo))}: the folder name {fields.shown(name)} is not an app name; give one with --name "
                             f"{fields.suggest_app_name(name)}") from None
    found = adopt.survey(repo, backend_dir, frontend_dir)
    repo_rel = os.path.relpath(repo.resolve(), infra.root.resolve())
    registry, node = infra.manifest.registry, infra.manifest.images.node
    adoption = adopt.plan_adoption(name, repo_rel, found, registry, domains[0] if domains else "", node, git_facts(session, repo), ci,
                                   ci_deploy)
    entry = app_entry(domains, adoption.backend, adoption.frontend, database and adoption.database, redis and adoption.redis,
                      ci_deploy=ci_deploy)
    text, manifest = with_app(infra, name, entry)
    repo_plan = files.plan(repo, adoption.files)
    files.apply(repo, repo_plan)
    return name, adoption, repo_plan, synced(session, manifest, text)
