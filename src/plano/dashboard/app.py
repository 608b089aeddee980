"""The dashboard's routes: the pages (HTML forms, no script) and the JSON API under /api.
Every route but /login and /static needs a session (pages) or a Bearer token (API);
what each shows or does is an ops function's (see the package's doc)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.middleware.trustedhost import TrustedHostMiddleware

from plano.core import fields
from plano.core.errors import BAD_INPUT, PlanoError
from plano.core.runner import Runner, SubprocessRunner
from plano.dashboard import charts, follow, security, views
from plano.dashboard.jobs import Jobs, reading_session
from plano.ops import access
from plano.ops.deploy import Record

HERE = Path(__file__).parent
HOSTS = ("127.0.0.1", "localhost")
USER_LIMIT = 5  # wrong passwords for one user from one address, within the throttle's window
ADDRESS_LIMIT = 20  # wrong passwords from one address, whatever the user
ROLE_NAMES = Literal["backend", "frontend"]


class SignInNeeded(Exception):
    """A page asked for without a session: the answer is a redirect to /login."""


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Visitor:
    user: access.User
    signed: security.SignedIn


@dataclass
class Dashboard:
    """What the routes share: the infra, the sessions, the throttles, the jobs."""

    root: Path
    runner: Callable[[], Runner] = SubprocessRunner
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sessions: security.Sessions = field(init=False)
    forms: security.LoginForms = field(init=False)
    by_user: security.Throttle = field(init=False)
    by_address: security.Throttle = field(init=False)
    jobs: Jobs = field(init=False)
    followers: follow.Followers = field(default_factory=follow.Followers)

    def __post_init__(self) -> None:
        key = access.secret_key(self.root)
        self.sessions = security.Sessions(key, self.clock)
        self.forms = security.LoginForms(key)
        self.by_user = security.Throttle(USER_LIMIT, clock=self.monotonic)
        self.by_address = security.Throttle(ADDRESS_LIMIT, clock=self.monotonic)
        self.jobs = Jobs(self.root, self.runner)

    def reading(self):
        return reading_session(self.root, self.runner)


# ---------------------------------------------------------------- the API's models


class DeployRequest(BaseModel):
    tag: str = Field(description="The image tag to run, e.g. 1.2.3 or a commit SHA", max_length=128)
    service: ROLE_NAMES | None = Field(None, description="Only this service (default: both)")
    timeout: float = Field(180, ge=1, le=86400, description="Seconds the new containers have to answer their health route")


class RollbackRequest(BaseModel):
    service: ROLE_NAMES | None = Field(None, description="Only this service (default: both)")
    timeout: float = Field(180, ge=1, le=86400)


class MaintenanceRequest(BaseModel):
    on: bool


class JobOut(BaseModel):
    id: str
    action: str
    app: str
    user: str
    command: str
    started: str
    ended: str | None
    state: Literal["running", "ok", "failed"]
    result: str
    lines: list[str]


class UsageOut(BaseModel):
    service: str
    container: str
    cpu_percent: float = Field(description="Of one CPU: 200 is two CPUs busy")
    memory_bytes: int
    memory_limit_bytes: int
    memory_percent: float


Window = Literal["1h", "1d"]


# ---------------------------------------------------------------- the app


def create_app(root: Path, runner: Callable[[], Runner] = SubprocessRunner, hosts: tuple[str, ...] = HOSTS,
               clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> FastAPI:
    """The dashboard of the infra at `root` (its users: ops/access.py)."""
    board = Dashboard(root, runner, clock, monotonic)
    app = FastAPI(title="plano dashboard", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description="The JSON API of plano's dashboard: status, releases and the actions the CLI has. "
                              "Authenticate with a Bearer token from `plano dashboard token NAME`.")
    app.state.board = board
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    app.add_middleware(security.FromNginx)  # outermost: the request as nginx received it

    app.add_middleware(SecurityHeaders)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    add_handlers(app)
    add_pages(app, board)
    add_api(app, board)
    return app


class SecurityHeaders:
    """security.HEADERS on every answer (those a route set itself kept). Plain ASGI, not
    Starlette's BaseHTTPMiddleware: a streamed answer (a log followed) goes through as it
    is, and its route sees the browser go away (Request.is_disconnected)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in security.HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


def add_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    def to_login(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(PageError)
    def page_error(request: Request, exc: PageError) -> Response:
        visitor = getattr(request.state, "visitor", None)
        return views.page("error.html", exc.status, visitor=visitor, title="error", message=str(exc))


# ---------------------------------------------------------------- who is asking


def page_visitor(request: Request) -> Visitor:
    board: Dashboard = request.app.state.board
    signed = board.sessions.find(request.cookies.get(security.SESSION_COOKIE))
    if signed is None:
        raise SignInNeeded()
    role = access.role_of(board.root, signed.user)
    if role is None:  # removed since: every session of theirs ends
        board.sessions.end_user(signed.user)
        raise SignInNeeded()
    visitor = Visitor(access.User(signed.user, role), signed)
    request.state.visitor = visitor
    return visitor


PageVisitor = Annotated[Visitor, Depends(page_visitor)]


def checked_form(visitor: Visitor, csrf: str) -> None:
    if not security.same(csrf, visitor.signed.csrf):
        raise PageError(403, "this form's CSRF token is missing or out of date: open the page again, then send it")


def operator_page(visitor: Visitor) -> None:
    if not visitor.user.operator:
        raise PageError(403, f"{visitor.user.name} is a viewer: an operator runs actions (plano dashboard passwd "
                             f"{visitor.user.name} --role operator)")


bearer = HTTPBearer(auto_error=False, description="A token from `plano dashboard token NAME`")


def api_user(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> access.User:
    board: Dashboard = request.app.state.board
    user = access.token_user(board.root, credentials.credentials) if credentials else None
    if user is None:
        raise HTTPException(401, "a Bearer token from plano dashboard token NAME is needed", headers={"WWW-Authenticate": "Bearer"})
    return user


ApiUser = Annotated[access.User, Depends(api_user)]


def api_operator(user: ApiUser) -> access.User:
    if not user.operator:
        raise HTTPException(403, f"the token {user.name.removeprefix('token:')} is a viewer's: "
                                 "an operator's token (plano dashboard token NAME --role operator) runs actions")
    return user


ApiOperator = Annotated[access.User, Depends(api_operator)]


def known_app(board: Dashboard, app: str) -> str:
    """The app's name when plano.yml has it; else the 404 of a page or the API."""
    try:
        fields.app_name(app)
        manifest = board.reading().manifest
    except ValueError:
        raise LookupError(f"no app {app!r} here") from None
    if app not in manifest.apps:
        raise LookupError(f"no app {app!r} in plano.yml (its apps: {', '.join(sorted(manifest.apps)) or 'none'})")
    return app


# ---------------------------------------------------------------- the actions (pages and API alike)


def start_deploy(board: Dashboard, user: access.User, app: str, tag: str, role: str | None, timeout: float = 180):
    from plano.ops import deploy

    deploy.check_tag(tag)
    command = ["deploy", app, "--tag", tag, *(["--service", role] if role else [])]
    return board.jobs.start("deploy", app, user.name, command, lambda s: summary(deploy.deploy(s, app, role, tag, timeout)))


def start_rollback(board: Dashboard, user: access.User, app: str, role: str | None, timeout: float = 180):
    from plano.ops import deploy

    command = ["rollback", app, *(["--service", role] if role else [])]
    return board.jobs.start("rollback", app, user.name, command, lambda s: summary(deploy.rollback(s, app, role, timeout)))


def start_maintenance(board: Dashboard, user: access.User, app: str, on: bool):
    from plano.ops import maintenance

    state = "on" if on else "off"

    def switch(session) -> str:
        flag = maintenance.switch(session, app, on)
        return f"{app}: maintenance {state} (nginx checks {flag} on every request)"

    return board.jobs.start("maintenance", app, user.name, ["maintenance", state, app], switch)


def start_backup(board: Dashboard, user: access.User, app: str):
    from plano.ops import backup

    return board.jobs.start("backup", app, user.name, ["backup", "run", app],
                            lambda s: f"backup {backup.run(s, (app,))} of {app} done")


def start_verify(board: Dashboard, user: access.User, app: str, backup_id: str):
    from plano.ops import backup

    backup.check_id(backup_id)

    def verify(session) -> str:
        backup.verify(session, backup_id)
        return f"backup {backup_id} verified: checksums, and every database restored into a scratch one and compared"

    return board.jobs.start("verify", app, user.name, ["backup", "verify", backup_id], verify)


def summary(records) -> str:
    return "; ".join(f"{r.service}: {r.from_tag} -> {r.to_tag}" for r in records) or "nothing to do"


# ---------------------------------------------------------------- pages


def add_pages(app: FastAPI, board: Dashboard) -> None:
    def login_form(status: int = 200, message: str = "", user: str = "") -> Response:
        token, cookie = board.forms.issue()
        response = views.page("login.html", status, visitor=None, title="sign in", csrf=token, message=message, user=user)
        response.set_cookie(security.LOGIN_COOKIE, cookie, max_age=int(security.LOGIN_FORM_SECONDS), **security.COOKIE_FLAGS)
        return response

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        if board.sessions.find(request.cookies.get(security.SESSION_COOKIE)):
            return RedirectResponse("/", status_code=303)
        return login_form()

    @app.post("/login", include_in_schema=False)
    def login(request: Request, user: str = Form("", max_length=64), password: str = Form("", max_length=access.PASSWORD_MAX),
              csrf: str = Form("", max_length=200)) -> Response:
        if not board.forms.check(request.cookies.get(security.LOGIN_COOKIE), csrf):
            return login_form(403, "the sign-in form was out of date; here is a new one", user)
        address = request.client.host if request.client else "-"
        keys = (board.by_user, f"{user}|{address}"), (board.by_address, address)
        wait = max(throttle.wait(key) for throttle, key in keys)
        if wait > 0:
            response = login_form(429, f"too many wrong passwords: try again in {int(wait) + 1} s", user)
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        found = access.authenticate(board.root, user, password)
        if found is None:
            for throttle, key in keys:
                throttle.failed(key)
            return login_form(401, "wrong user or password", user)
        board.by_user.succeeded(keys[0][1])
        cookie, _ = board.sessions.start(found.name)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(security.SESSION_COOKIE, cookie, **security.COOKIE_FLAGS)
        response.delete_cookie(security.LOGIN_COOKIE, **security.COOKIE_FLAGS)
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, visitor: PageVisitor, csrf: str = Form("", max_length=200)) -> Response:
        checked_form(visitor, csrf)
        board.sessions.end(request.cookies.get(security.SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(security.SESSION_COOKIE, **security.COOKIE_FLAGS)
        return response

    @app.get("/", include_in_schema=False)
    def overview(visitor: PageVisitor) -> Response:
        session = board.reading()
        report = read_status(session)
        return views.page("overview.html", visitor=visitor, title="overview", **views.overview(session, report),
                          jobs=board.jobs.recent()[:10])

    @app.get("/apps/{app_name}", include_in_schema=False)
    def app_page(app_name: str, visitor: PageVisitor) -> Response:
        page_app(board, app_name)
        session = board.reading()
        report = read_status(session)
        return views.page("app.html", visitor=visitor, title=app_name, **views.app_view(session, report, app_name),
                          jobs=board.jobs.recent(app_name)[:10])

    @app.get("/apps/{app_name}/logs/{role}", include_in_schema=False)
    async def log_stream(app_name: str, role: str, request: Request, visitor: PageVisitor) -> Response:
        """The service's log, followed live (Server-Sent Events, dashboard/follow.py)."""
        argv, secret_values, idle = await run_in_threadpool(follow_source, board, app_name, role)
        if argv is None:  # it does not run now: the page asks again in a while
            return StreamingResponse(iter([f"retry: {follow.IDLE_RETRY_MS}\n" + follow.event(idle, "end")]),
                                     media_type="text/event-stream")
        try:
            events = await board.followers.stream(argv, secret_values, request.receive)
        except follow.TooMany as exc:
            raise PageError(503, str(exc)) from None
        return StreamingResponse(events, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    @app.post("/apps/{app_name}/deploy", include_in_schema=False)
    def deploy_form(app_name: str, visitor: PageVisitor, csrf: str = Form("", max_length=200),
                    tag: str = Form("", max_length=128), service: str = Form("", max_length=16)) -> Response:
        role = acting(board, visitor, csrf, app_name, service)
        return to_job(page_call(lambda: start_deploy(board, visitor.user, app_name, tag.strip(), role)))

    @app.post("/apps/{app_name}/rollback", include_in_schema=False)
    def rollback_form(app_name: str, visitor: PageVisitor, csrf: str = Form("", max_length=200),
                      service: str = Form("", max_length=16)) -> Response:
        role = acting(board, visitor, csrf, app_name, service)
        return to_job(page_call(lambda: start_rollback(board, visitor.user, app_name, role)))

    @app.post("/apps/{app_name}/maintenance", include_in_schema=False)
    def maintenance_form(app_name: str, visitor: PageVisitor, csrf: str = Form("", max_length=200),
                         state: str = Form("", max_length=8)) -> Response:
        acting(board, visitor, csrf, app_name, "")
        if state not in ("on", "off"):
            raise PageError(400, "state: on or off")
        return to_job(page_call(lambda: start_maintenance(board, visitor.user, app_name, state == "on")))

    @app.post("/apps/{app_name}/backup", include_in_schema=False)
    def backup_form(app_name: str, visitor: PageVisitor, csrf: str = Form("", max_length=200)) -> Response:
        acting(board, visitor, csrf, app_name, "")
        return to_job(page_call(lambda: start_backup(board, visitor.user, app_name)))

    @app.post("/apps/{app_name}/backups/{backup_id}/verify", include_in_schema=False)
    def verify_form(app_name: str, backup_id: str, visitor: PageVisitor, csrf: str = Form("", max_length=200)) -> Response:
        acting(board, visitor, csrf, app_name, "")
        return to_job(page_call(lambda: start_verify(board, visitor.user, app_name, backup_id)))

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def job_page(job_id: str, visitor: PageVisitor) -> Response:
        job = board.jobs.snapshot(job_id)
        if job is None:
            raise PageError(404, "no such job here (jobs are kept until the dashboard restarts; the deploy log and "
                                 "plano audit keep the record)")
        return views.page("job.html", visitor=visitor, title=f"{job['action']} {job['app']}", job=job,
                          refresh=1 if job["state"] == "running" else None)

    @app.get("/apps/{app_name}/traffic", include_in_schema=False)
    def traffic_page(app_name: str, visitor: PageVisitor, since: Window = "1h") -> Response:
        page_app(board, app_name)
        session = board.reading()
        report = page_traffic(session, since, app_name)
        return views.page("traffic.html", visitor=visitor, title=f"{app_name} traffic", name=app_name, since=since,
                          report=report, figures=report.apps[app_name], kinds=charts.KINDS,
                          usage=[u for u in page_usage(session) if u.service.startswith(f"{app_name}-")])

    @app.get("/apps/{app_name}/traffic/{since}/{kind}.svg", include_in_schema=False)
    def traffic_chart(app_name: str, since: Window, kind: Literal["requests", "errors", "latency"], visitor: PageVisitor) -> Response:
        page_app(board, app_name)
        report = page_traffic(board.reading(), since, app_name)
        return Response(charts.svg(report.apps[app_name], kind), media_type="image/svg+xml",
                        headers={"Content-Security-Policy": charts.CSP, "Cache-Control": "no-store"})

    @app.get("/audit", include_in_schema=False)
    def audit_page(visitor: PageVisitor) -> Response:
        from plano.ops import audit

        entries = list(reversed(audit.read(board.root, 100)))
        return views.page("audit.html", visitor=visitor, title="audit log", entries=entries)


def follow_source(board: Dashboard, app: str, role: str) -> tuple[list[str] | None, set[str], str]:
    """The follower's argv for the app's `role` and the secrets its lines are masked with
    (a 404 for an unknown app or service); when the service does not run, no argv and why."""
    from plano.ops import logs

    page_app(board, app)
    session = board.reading()
    try:
        where = logs.source(session, app, role)
    except PlanoError as exc:
        raise PageError(404 if exc.exit_code == BAD_INPUT else 503, str(exc)) from None
    if not where.found:
        return None, set(), f"{where.service} does not run now; its log is followed once it runs again"
    return logs.logs_argv(where, logs.LINES, follow=True), session.secret_values(), ""


def acting(board: Dashboard, visitor: Visitor, csrf: str, app: str, service: str) -> str | None:
    """The checks of every action form, in order: CSRF, role, app, service."""
    checked_form(visitor, csrf)
    operator_page(visitor)
    page_app(board, app)
    if service not in ("", "backend", "frontend"):
        raise PageError(400, "service: backend, frontend or both")
    return service or None


def page_app(board: Dashboard, app: str) -> None:
    try:
        known_app(board, app)
    except LookupError as exc:
        raise PageError(404, str(exc)) from None
    except PlanoError as exc:
        raise PageError(503, str(exc)) from None


def page_call(start):
    try:
        return start()
    except PlanoError as exc:
        raise PageError(400 if exc.exit_code == BAD_INPUT else 409, str(exc)) from None


def to_job(job) -> Response:
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def page_traffic(session, since: str, app: str):
    from plano.ops import traffic

    try:
        return traffic.collect(session, since, app)
    except (PlanoError, OSError) as exc:
        raise PageError(503, f"the access log could not be read: {exc}") from None


def page_usage(session) -> list:
    from plano.ops import traffic

    try:
        return traffic.usage(session)
    except PlanoError:
        return []  # no engine here: the traffic page still shows the log's figures


def read_status(session):
    from plano.ops import status

    try:
        return status.collect(session)
    except PlanoError as exc:
        raise PageError(503, f"the stack's status could not be read: {exc}") from None


# ---------------------------------------------------------------- the JSON API


def add_api(app: FastAPI, board: Dashboard) -> None:
    def api_app(app_name: str) -> str:
        try:
            return known_app(board, app_name)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except PlanoError as exc:
            raise HTTPException(503, str(exc)) from None

    def api_call(start) -> JSONResponse:
        try:
            job = start()
        except PlanoError as exc:
            raise HTTPException(400 if exc.exit_code == BAD_INPUT else 409, str(exc)) from None
        return JSONResponse(job.public(), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(user: ApiUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/status", tags=["status"], summary="What plano status --json shows, for prod")
    def api_status(user: ApiUser) -> JSONResponse:
        from plano.ops import status

        session = board.reading()
        try:
            report = status.collect(session)
        except PlanoError as exc:
            raise HTTPException(503, f"the stack's status could not be read: {exc}") from None
        return JSONResponse({**dataclasses.asdict(report), "maintenance": views.maintenance_flags(session),
                             "drift": views.drift(session)})

    @app.get("/api/apps/{app_name}/releases", tags=["releases"], summary="The app's deploy log, oldest first",
             response_model=list[Record])
    def api_releases(app_name: str, user: ApiUser) -> list[dict]:
        from plano.ops import deploy

        return [dataclasses.asdict(r) for r in deploy.releases(board.reading(), api_app(app_name))]

    @app.post("/api/apps/{app_name}/deploy", tags=["actions"], status_code=202, response_model=JobOut,
              summary="plano deploy APP --tag TAG, as a job", responses={409: {"description": "refused"}})
    def api_deploy(app_name: str, body: DeployRequest, user: ApiOperator) -> JSONResponse:
        name = api_app(app_name)
        return api_call(lambda: start_deploy(board, user, name, body.tag, body.service, body.timeout))

    @app.post("/api/apps/{app_name}/rollback", tags=["actions"], status_code=202, response_model=JobOut,
              summary="plano rollback APP, as a job")
    def api_rollback(app_name: str, body: RollbackRequest, user: ApiOperator) -> JSONResponse:
        name = api_app(app_name)
        return api_call(lambda: start_rollback(board, user, name, body.service, body.timeout))

    @app.post("/api/apps/{app_name}/maintenance", tags=["actions"], status_code=202, response_model=JobOut,
              summary="plano maintenance on|off APP, as a job")
    def api_maintenance(app_name: str, body: MaintenanceRequest, user: ApiOperator) -> JSONResponse:
        name = api_app(app_name)
        return api_call(lambda: start_maintenance(board, user, name, body.on))

    @app.post("/api/apps/{app_name}/backup", tags=["actions"], status_code=202, response_model=JobOut,
              summary="plano backup run APP, as a job")
    def api_backup(app_name: str, user: ApiOperator) -> JSONResponse:
        name = api_app(app_name)
        return api_call(lambda: start_backup(board, user, name))

    @app.post("/api/apps/{app_name}/backups/{backup_id}/verify", tags=["actions"], status_code=202, response_model=JobOut,
              summary="plano backup verify ID, as a job")
    def api_verify(app_name: str, backup_id: str, user: ApiOperator) -> JSONResponse:
        name = api_app(app_name)
        return api_call(lambda: start_verify(board, user, name, backup_id))

    @app.get("/api/traffic", tags=["traffic"], summary="What plano traffic --json shows: per app and bucket, requests, "
             "requests/s, 4xx, 5xx, p50/p95 ms, from nginx's access log")
    def api_traffic(user: ApiUser, since: Window = "1h", app: str | None = None) -> JSONResponse:
        from plano.ops import traffic

        name = api_app(app) if app is not None else None
        try:
            return JSONResponse(traffic.public(traffic.collect(board.reading(), since, name)))
        except (PlanoError, OSError) as exc:
            raise HTTPException(503, f"the access log could not be read: {exc}") from None

    @app.get("/api/usage", tags=["traffic"], summary="CPU and memory of each running service (one docker stats sample)",
             response_model=list[UsageOut])
    def api_usage(user: ApiUser) -> list[dict]:
        from plano.ops import traffic

        try:
            return [dataclasses.asdict(u) for u in traffic.usage(board.reading())]
        except PlanoError as exc:
            raise HTTPException(503, f"the engine could not be read: {exc}") from None

    @app.get("/api/jobs/{job_id}", tags=["actions"], response_model=JobOut, summary="An action's state and output")
    def api_job(job_id: str, user: ApiUser) -> dict:
        job = board.jobs.snapshot(job_id)
        if job is None:
            raise HTTPException(404, "no such job here")
        return job
