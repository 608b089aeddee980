"""`plano export ...`: the platform for another runtime, as plain files."""

from __future__ import annotations

from pathlib import Path

import click

from plano.cli import params as P
from plano.cli.context import session
from plano.cli.output import summarize


@click.group("export")
def export_group() -> None:
    """Export the platform for another runtime (Kubernetes)."""


@export_group.command("kubernetes")
@click.option("--out", type=P.LOCAL_PATH, help="The folder to write [k8s/ in the infra, which `plano render` then keeps up to date].")
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
@click.pass_context
def kubernetes_cmd(ctx: click.Context, out: str | None, force: bool) -> None:
    """Write a kustomize tree: base/ and overlays/prod/ (kubectl apply -k k8s/overlays/prod).
    No secret value is written; see the README, 'Kubernetes'."""
    from plano.ops import export

    summarize(export.kubernetes(session(ctx), Path(out) if out else None, force))


def commands() -> list[click.Command]:
    return [export_group]
