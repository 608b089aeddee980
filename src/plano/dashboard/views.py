"""What the pages show, laid out from what the ops return, and the pages' rendering
(Jinja2, autoescaped, StrictUndefined: a name a template uses and no view gives fails
the test that renders it, not a user's page)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi.responses import HTMLResponse

from plano.core.session import Session
from plano.ops import deploy, maintenance
from plano.ops.status import Report, ServiceRow, uptime

HERE = Path(__file__).parent


@cache
def environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["uptime"] = uptime
    env.filters["size"] = size
    env.filters["epoch"] = epoch
    return env


def page(template: str, status: int = 200, *, visitor, title: str, refresh: int | None = None, **context) -> HTMLResponse:
    csrf = visitor.signed.csrf if visitor is not None else context.pop("csrf", "")
    html = environment().get_template(template).render(visitor=visitor, title=title, refresh=refresh, csrf=csrf, **context)
    return HTMLResponse(html, status_code=status)


def epoch(seconds: float | None) -> str:
    import time

    return "-" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def size(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def maintenance_flags(session: Session) -> dict[str, bool]:
    return {name: maintenance.is_on(session, name) for name in sorted(session.manifest.apps)}


def health(row: ServiceRow) -> str:
    """One word a badge shows: the service's health, else its state."""
    if row.state != "running":
        return row.state
    return row.health or "running"


def app_rows(session: Session, report: Report) -> list[dict]:
    """One entry per app: its services, maintenance, certificate, a deploy running."""
    flags = maintenance_flags(session)
    certs = {c.app: c for c in report.certificates}
    apps: dict[str, dict] = {}
    for row in report.apps:
        entry = apps.setdefault(row.app, {"name": row.app, "url": row.url, "services": [], "maintenance": flags.get(row.app, False),
                                          "certificate": certs.get(row.app), "deploying": deploy.deploy_running(session.root, row.app)})
        entry["services"].append({"row": row, "health": health(row), "role": row.service.removeprefix(f"{row.app}-")})
    for entry in apps.values():
        entry["ok"] = all(s["health"] in ("healthy", "running") and s["row"].matches for s in entry["services"])
    return list(apps.values())


def drift(session: Session) -> dict:
    """The rendered files out of date with plano.yml (`plano render --check`), and which of
    them were edited by hand."""
    from plano.ops import infra

    plan = infra.check_render(session)
    return {"changed": sorted(plan.changed), "edited": sorted(plan.edited)}


def overview(session: Session, report: Report) -> dict:
    return {"report": report, "apps": app_rows(session, report), "drift": drift(session)}


def app_view(session: Session, report: Report, app: str) -> dict:
    entry = next((a for a in app_rows(session, report) if a["name"] == app), None)
    releases = list(reversed(deploy.releases(session, app)))[:50]
    roles = list(session.manifest.apps[app].services())
    return {"app": entry, "name": app, "releases": releases, "roles": roles, "backups": backups(session, app),
            "logs": service_logs(session, app), "certificate": certificate(session, app)}


def service_logs(session: Session, app: str) -> dict:
    """The last lines of each service (ops.logs), the page's view without its script."""
    from plano.core.errors import PlanoError
    from plano.ops import logs

    try:
        return {"services": logs.last_lines(session, app), "lines": logs.LINES, "error": None}
    except PlanoError as exc:
        return {"services": [], "lines": logs.LINES, "error": str(exc)}


def certificate(session: Session, app: str) -> dict | None:
    """The installed certificate's details (its file, as nginx loads it), None without one."""
    import datetime as dt

    from plano.engine import tls

    facts = tls.installed_facts(session.root, session.stack_mode, app)
    if facts is None:
        return None
    now = dt.datetime.now(dt.UTC)
    return {"names": list(facts.names), "subject": facts.subject, "issuer": facts.issuer, "serial": facts.serial,
            "not_before": stamp(facts.not_before), "not_after": stamp(facts.not_after), "days_left": facts.days_left(now),
            "placeholder": facts.placeholder, "fingerprint": facts.fingerprint,
            "domains": [{"name": d, "covered": tls.covers(facts.names, d)} for d in session.stack_mode.domains(session.manifest, app)]}


def stamp(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def backups(session: Session, app: str) -> dict:
    """The backups that hold the app (newest first), as `plano backup list` reads them."""
    from plano.core.errors import PlanoError
    from plano.ops import backup

    try:
        listed = backup.listing(session)
    except PlanoError as exc:
        return {"rows": [], "last_success": None, "last_failure": None, "verified": {}, "error": str(exc)}
    rows = [row for row in reversed(listed.backups) if app in row.apps][:20]
    return {"rows": rows, "last_success": listed.last_success, "last_failure": listed.last_failure,
            "verified": listed.verified, "error": None}
