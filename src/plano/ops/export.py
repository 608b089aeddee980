"""`plano export kubernetes`: the platform as a kustomize tree (render/kubernetes.py),
written with the same atomic, drift-checked writes as `plano render`.

Into the infra's k8s/ (the default), `plano render` keeps it up to date from then on;
elsewhere (--out), it is written once per export. A generated file edited by hand is
refused unless forced; one the manifest no longer produces (a removed app's) is removed.
"""

from __future__ import annotations

from pathlib import Path

from plano.core import files
from plano.core import naming as n
from plano.core.files import Plan, Tree
from plano.core.session import Session
from plano.render import kubernetes as k8s


def kubernetes_tree(session: Session) -> Tree:
    """The tree with paths inside the export folder (base/..., overlays/...)."""
    prefix = f"{n.K8S_DIR}/"
    return {rel.removeprefix(prefix): file for rel, file in k8s.render(session.manifest).items()}


def folder(session: Session, out: Path | None) -> Path:
    return out if out is not None else session.root / n.K8S_DIR


def kubernetes(session: Session, out: Path | None = None, force: bool = False) -> Plan:
    """Write the tree into `out` (default: the infra's k8s/); under --dry-run, say what
    would be written and removed."""
    target = folder(session, out)
    result = files.plan(target, kubernetes_tree(session), scanned=(n.K8S_BASE, n.K8S_OVERLAYS))
    if not force:
        files.refuse_hand_edits(result)
    if session.dry_run:
        for rel in result.changed:
            session.out.planned(f"# {'remove' if rel in result.removes else 'write'} {session.shown_path(target / rel)}")
        return result
    files.apply(target, result)
    return result
