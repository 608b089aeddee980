"""The dashboard's rules, through its real routes (Starlette's TestClient, over https so
that Secure cookies are sent back): nothing without a session or a token, CSRF on every
POST, the sign-in throttle, roles, the cookie's flags, the users file; and an action from
the page runs the CLI's operation as the signed-in user, under the same deploy lock, with
its audit line."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from plano.core import actor
from plano.core import naming as n
from plano.dashboard import security
from plano.dashboard.app import create_app
from plano.ops import access, audit, deploy
from tests.cli.test_dry_runs import engine_script
from tests.cli.test_dry_runs import infra as dry_infra  # noqa: F401 (a fixture)
from tests.scripted import Answer, ScriptedRunner

OPERATOR, VIEWER = ("alice", "correct horse battery"), ("vic", "viewer passphrase 42")


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def root(dry_infra) -> Path:  # noqa: F811
    access.set_password(dry_infra, *OPERATOR[:1], "operator", OPERATOR[1])
    access.set_password(dry_infra, VIEWER[0], "viewer", VIEWER[1])
    return dry_infra


@pytest.fixture
def clocks() -> tuple[Clock, Clock]:
    return Clock(), Clock(500.0)


def engine() -> ScriptedRunner:
    """The scripted engine of the CLI's dry-run tests; `docker ps` finds no container
    (the pages show every service absent: the real ones are for tests/integration)."""
    return (engine_script().query("docker", "ps", "-aq", answers=Answer(0, ""))
            .query("docker", "logs", answers=Answer(0, "2026-12-05T10:00:00.000000001Z listening on 3000\n")))


@pytest.fixture
def app(root, clocks):
    wall, mono = clocks
    return create_app(root, runner=engine, clock=wall, monotonic=mono)


def client(app) -> TestClient:
    return TestClient(app, base_url="https://localhost", follow_redirects=False)


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def sign_in(c: TestClient, user: str, password: str):
    page = c.get("/login")
    assert page.status_code == 200
    return c.post("/login", data={"user": user, "password": password, "csrf": form_csrf(page.text)})


def signed_in(app, who=OPERATOR) -> tuple[TestClient, str]:
    """A client with a session, and the session's CSRF token."""
    c = client(app)
    assert sign_in(c, *who).status_code == 303
    return c, form_csrf(c.get("/audit").text)


def routes(app) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, with its parameters filled in."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) or getattr(route, "methods", None):
            for method in sorted(route.methods - {"HEAD"}):
                found.append((method, route.path.replace("{app_name}", "app1").replace("{job_id}", "nojob").replace("{role}", "backend")
                             .replace("{backup_id}", "20261202T040000Z").replace("{since}", "1h")
                             .replace("{kind}", "requests")))
    return found


# ---------------------------------------------------------------- nothing without a session


def test_every_route_without_a_session_redirects_to_the_sign_in_or_answers_401(app):
    c = client(app)
    checked = []
    for method, path in routes(app):
        if path == "/login":
            continue
        for cookies in ({}, {security.SESSION_COOKIE: "forged.signature"}):
            c.cookies.clear()
            c.cookies.update(cookies)
            got = c.request(method, path, json={"tag": "2.0.0", "on": True} if path.startswith("/api") else None)
            if path.startswith("/api/"):
                assert (got.status_code, got.headers["www-authenticate"]) == (401, "Bearer"), (method, path)
            else:
                assert (got.status_code, got.headers["location"]) == (303, "/login"), (method, path)
        checked.append(f"{method} {path}")
    assert sorted(checked) == sorted([
        "GET /", "GET /apps/app1", "GET /apps/app1/logs/backend", "GET /audit", "GET /jobs/nojob", "POST /logout",
        "GET /apps/app1/traffic", "GET /apps/app1/traffic/1h/requests.svg", "GET /api/traffic", "GET /api/usage",
        "POST /apps/app1/deploy", "POST /apps/app1/rollback", "POST /apps/app1/maintenance", "POST /apps/app1/backup",
        "POST /apps/app1/backups/20261202T040000Z/verify",
        "GET /api/openapi.json", "GET /api/status", "GET /api/apps/app1/releases", "GET /api/jobs/nojob",
        "POST /api/apps/app1/deploy", "POST /api/apps/app1/rollback", "POST /api/apps/app1/maintenance",
        "POST /api/apps/app1/backup", "POST /api/apps/app1/backups/20261202T040000Z/verify",
    ])


def test_a_wrong_token_is_refused_and_the_api_never_takes_the_cookie(app, root):
    c, _ = signed_in(app)
    assert c.get("/api/apps/app1/releases").status_code == 401
    for bad in ("plano_" + "x" * 43, "nonsense", access.make_token(root, "ci")[:-1]):
        assert c.get("/api/apps/app1/releases", headers={"Authorization": f"Bearer {bad}"}).status_code == 401


def test_only_the_loopback_names_are_answered(app):
    c = TestClient(app, base_url="https://dashboard.attacker.example", follow_redirects=False)
    assert c.get("/login").status_code == 400


def test_the_session_cookie_is_signed_httponly_secure_samesite_strict(app):
    c = client(app)
    answer = sign_in(c, *OPERATOR)
    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith(security.SESSION_COOKIE + "="))
    flags = [part.strip() for part in cookie.split(";")[1:]]
    assert sorted(flags) == ["HttpOnly", "Path=/", "SameSite=strict", "Secure"]  # no Max-Age: gone with the browser
    value = cookie.split(";")[0].split("=", 1)[1]
    sid, _, signature = value.rpartition(".")
    assert len(sid) >= 40 and signature
    c.cookies.clear()
    c.cookies.set(security.SESSION_COOKIE, f"{sid}.{'A' * len(signature)}")
    assert c.get("/").status_code == 303
    c.cookies.set(security.SESSION_COOKIE, value)
    assert c.get("/audit").status_code == 200


def test_every_answer_carries_the_security_headers(app):
    got = client(app).get("/login")
    assert got.headers["content-security-policy"].startswith("default-src 'none'")
    assert (got.headers["x-frame-options"], got.headers["x-content-type-options"], got.headers["cache-control"]) == (
        "DENY", "nosniff", "no-store")


def test_signing_out_ends_the_session_on_the_server(app):
    c, csrf = signed_in(app)
    value = c.cookies[security.SESSION_COOKIE]
    assert c.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    c.cookies.set(security.SESSION_COOKIE, value)  # the old cookie, replayed
    assert c.get("/audit").headers["location"] == "/login"


def test_a_session_ends_after_an_hour_unused_and_after_twelve_hours(app, clocks):
    wall, _ = clocks
    c, _ = signed_in(app)
    wall.now += 3599
    assert c.get("/audit").status_code == 200
    wall.now += 3601
    assert c.get("/audit").status_code == 303
    c, _ = signed_in(app)
    for _ in range(13):
        wall.now += 3500
        got = c.get("/audit")
    assert got.status_code == 303
    signed_in(app)
    assert len(app.state.board.sessions.known) == 1  # a new sign-in forgets the sessions that ended unused


def test_a_removed_user_is_signed_out_at_their_next_request(app, root):
    c, _ = signed_in(app, VIEWER)
    access.remove_user(root, VIEWER[0])
    assert c.get("/audit").headers["location"] == "/login"


# ---------------------------------------------------------------- CSRF


def test_a_post_without_the_csrf_token_is_refused(app, root):
    c, csrf = signed_in(app)
    for data in ({"state": "on"}, {"state": "on", "csrf": ""}, {"state": "on", "csrf": csrf[:-2] + "xx"}):
        got = c.post("/apps/app1/maintenance", data=data)
        assert got.status_code == 403 and "CSRF" in got.text
    assert c.post("/apps/app1/deploy", data={"tag": "2.0.0"}).status_code == 403
    assert c.post("/logout", data={}).status_code == 403
    assert not (root / n.maintenance_flag("app1")).exists()
    assert audit.read(root) == []


def test_the_sign_in_form_has_its_own_csrf_token_bound_to_a_cookie(app):
    c = client(app)
    token = form_csrf(c.get("/login").text)
    other = client(app)  # a token from another browser's form, without its cookie
    assert other.post("/login", data={"user": OPERATOR[0], "password": OPERATOR[1], "csrf": token}).status_code == 403
    refused = c.post("/login", data={"user": OPERATOR[0], "password": OPERATOR[1]})
    assert refused.status_code == 403 and "out of date" in refused.text
    token = form_csrf(refused.text)  # the refusal's new form, with its new cookie
    assert c.post("/login", data={"user": OPERATOR[0], "password": OPERATOR[1], "csrf": token}).status_code == 303


# ---------------------------------------------------------------- the sign-in throttle


def test_five_wrong_passwords_make_the_next_sign_in_wait(app, clocks):
    _, mono = clocks
    c = client(app)
    for _ in range(5):
        assert sign_in(c, OPERATOR[0], "wrong password!").status_code == 401
    refused = sign_in(c, *OPERATOR)  # even the right password, for a minute
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "61")
    assert "too many wrong passwords" in refused.text
    assert sign_in(client(app), *VIEWER).status_code == 303  # another user from the same address is not held up
    mono.now += 61
    assert sign_in(c, *OPERATOR).status_code == 303


def test_the_wait_doubles_with_each_further_failure():
    clock = Clock(0)
    throttle = security.Throttle(5, window=900, lockout=60, clock=clock)
    waits = []
    for _ in range(8):
        throttle.failed("alice|127.0.0.1")
        waits.append(throttle.wait("alice|127.0.0.1"))
    assert waits == [0, 0, 0, 0, 60, 120, 240, 480]
    clock.now += 480
    assert throttle.wait("alice|127.0.0.1") == 0
    clock.now += 900
    throttle.failed("alice|127.0.0.1")  # the old failures left the window
    assert throttle.wait("alice|127.0.0.1") == 0
    throttle.succeeded("alice|127.0.0.1")
    assert throttle.failures == {}


def test_twenty_wrong_passwords_from_one_address_hold_every_user(app):
    c = client(app)
    for i in range(20):
        assert sign_in(c, f"user{i}", "wrong password!").status_code == 401
    assert sign_in(c, *VIEWER).status_code == 429


# ---------------------------------------------------------------- roles


def test_a_viewer_reads_but_cannot_act(app, root):
    c, csrf = signed_in(app, VIEWER)
    page = c.get("/apps/app1")
    assert page.status_code == 200 and "You are a viewer" in page.text and 'action="/apps/app1/deploy"' not in page.text
    for path, data in (("/apps/app1/deploy", {"tag": "2.0.0"}), ("/apps/app1/rollback", {}), ("/apps/app1/maintenance", {"state": "on"}),
                       ("/apps/app1/backup", {}), ("/apps/app1/backups/20261202T040000Z/verify", {})):
        got = c.post(path, data={**data, "csrf": csrf})
        assert got.status_code == 403 and "vic is a viewer" in got.text
    token = access.make_token(root, "ci")
    got = client(app).post("/api/apps/app1/maintenance", json={"on": True}, headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 403
    assert not (root / n.maintenance_flag("app1")).exists()
    assert audit.read(root) == []


# ---------------------------------------------------------------- actions are the CLI's operations


def test_maintenance_from_the_page_runs_the_operation_as_the_signed_in_user(app, root):
    c, csrf = signed_in(app)
    got = c.post("/apps/app1/maintenance", data={"csrf": csrf, "state": "on"})
    assert got.status_code == 303 and got.headers["location"].startswith("/jobs/")
    app.state.board.jobs.wait(30)
    job = c.get(got.headers["location"])
    assert "app1: maintenance on" in job.text and 'id="job-state">ok<' in job.text
    assert (root / n.maintenance_flag("app1")).read_text() == "on\n"
    [entry] = audit.read(root)
    assert (entry.user, entry.host, entry.login, entry.command, entry.result, entry.exit) == (
        "alice", actor.cleaned(f"dashboard@{__import__('socket').gethostname()}"), actor.login(),
        ["plano", "maintenance", "on", "app1"], "ok", 0)
    assert "maintenance on" in c.get("/").text
    assert actor.current().user != "alice"  # only the job's thread acted as alice


def test_a_deploy_from_the_page_while_the_cli_deploys_is_refused_naming_the_holder(app, root, monkeypatch):
    monkeypatch.setenv("PLANO_USER", "bob")
    monkeypatch.setenv("PLANO_HOST", "bobs-laptop")
    c, csrf = signed_in(app)
    with deploy.deploy_lock(root, "app1", ("deploy", "app1", "--tag", "3.0.0")):
        got = c.post("/apps/app1/deploy", data={"csrf": csrf, "tag": "2.0.0", "service": ""})
        app.state.board.jobs.wait(30)
    job = c.get(got.headers["location"]).text
    assert 'id="job-state">failed<' in job
    assert re.search(r"a deploy of app1 is already running: bob on bobs-laptop since .* UTC \(plano deploy app1 --tag 3.0.0, pid \d+\)", job)
    [entry] = audit.read(root)
    assert (entry.user, entry.command, entry.exit) == ("alice", ["plano", "deploy", "app1", "--tag", "2.0.0"], 3)
    assert entry.result.startswith("failed: a deploy of app1 is already running: bob on bobs-laptop")


def test_a_bad_tag_or_app_is_refused_before_anything_runs(app, root):
    c, csrf = signed_in(app)
    got = c.post("/apps/app1/deploy", data={"csrf": csrf, "tag": "no good"})
    assert got.status_code == 400 and "--tag" in got.text
    assert c.post("/apps/app9/deploy", data={"csrf": csrf, "tag": "2.0.0"}).status_code == 404
    assert c.get("/apps/App1").status_code == 404
    assert audit.read(root) == []


def test_the_overview_shows_each_app_its_maintenance_and_the_drift_of_the_rendered_files(app, root):
    c, _ = signed_in(app, VIEWER)
    page = c.get("/").text
    assert 'id="app-app1"' in page and "app1-backend</strong> is absent: <code>plano prod up</code>" in page
    assert re.search(r'id="drift">up to date with plano.yml<', page)
    compose = root / "docker-compose.yml"
    compose.write_text(compose.read_text() + "# a hand edit\n")
    page = c.get("/").text
    assert 'id="drift">1 out of date with plano.yml, 1 edited by hand: <code>docker-compose.yml</code>' in page
    token = access.make_token(root, "ci")
    status = c.get("/api/status", headers={"Authorization": f"Bearer {token}"}).json()
    assert status["drift"] == {"changed": ["docker-compose.yml"], "edited": ["docker-compose.yml"]}
    assert status["maintenance"] == {"app1": False}
    assert [(row["service"], row["state"], row["recorded_tag"]) for row in status["apps"]] == [
        ("app1-backend", "absent", "1.1.0"), ("app1-frontend", "absent", "1.1.0")]


def test_a_backup_and_its_verification_from_the_page_are_the_clis_with_the_clis_audit_lines(app, root):
    c, csrf = signed_in(app)
    got = c.post("/apps/app1/backup", data={"csrf": csrf})
    app.state.board.jobs.wait(30)
    job = c.get(got.headers["location"]).text
    assert 'id="job-state">ok<' in job and "backup 20261202T040000Z of app1 done" in job and "plano-backup: done" in job
    got = c.post("/apps/app1/backups/20261202T040000Z/verify", data={"csrf": csrf})
    app.state.board.jobs.wait(30)
    assert 'id="job-state">ok<' in c.get(got.headers["location"]).text
    assert c.post("/apps/app1/backups/not-an-id/verify", data={"csrf": csrf}).status_code == 400
    # backup run is recorded, as on the command line; a verification changes nothing and is not
    assert [(e.user, e.command, e.result) for e in audit.read(root)] == [("alice", ["plano", "backup", "run", "app1"], "ok")]


# ---------------------------------------------------------------- the API


def test_the_api_reads_the_deploy_log_and_runs_actions_with_an_operators_token(app, root):
    reader, runner = access.make_token(root, "ci"), access.make_token(root, "deployer", "operator")
    c = client(app)
    got = c.get("/api/apps/app1/releases", headers={"Authorization": f"Bearer {reader}"})
    assert got.status_code == 200
    assert [(r["service"], r["from_tag"], r["to_tag"], r["user"]) for r in got.json()] == [
        ("app1-backend", "1.0.0", "1.1.0", "ops"), ("app1-frontend", "1.0.0", "1.1.0", "ops")]
    assert c.get("/api/apps/app9/releases", headers={"Authorization": f"Bearer {reader}"}).status_code == 404
    started = c.post("/api/apps/app1/maintenance", json={"on": True}, headers={"Authorization": f"Bearer {runner}"})
    assert started.status_code == 202 and started.json()["command"] == "plano maintenance on app1"
    app.state.board.jobs.wait(30)
    job = c.get(started.headers["location"], headers={"Authorization": f"Bearer {reader}"}).json()
    assert (job["state"], job["user"]) == ("ok", "token:deployer")
    assert audit.read(root)[-1].user == "token:deployer"
    schema = c.get("/api/openapi.json", headers={"Authorization": f"Bearer {reader}"}).json()
    assert sorted(schema["paths"]) == ["/api/apps/{app_name}/backup", "/api/apps/{app_name}/backups/{backup_id}/verify",
                                       "/api/apps/{app_name}/deploy", "/api/apps/{app_name}/maintenance",
                                       "/api/apps/{app_name}/releases", "/api/apps/{app_name}/rollback",
                                       "/api/jobs/{job_id}", "/api/status", "/api/traffic", "/api/usage"]
    bad = c.post("/api/apps/app1/deploy", json={"tag": "no good"}, headers={"Authorization": f"Bearer {runner}"})
    assert bad.status_code == 400 and "--tag" in bad.json()["detail"]


# ---------------------------------------------------------------- the users file


def test_users_and_tokens_are_kept_hashed_out_of_git_and_0600(root):
    token = access.make_token(root, "ci")
    folder = root / n.DASHBOARD_DIR
    users = root / n.DASHBOARD_USERS
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert OPERATOR[1] not in text and token not in text
    data = json.loads(text)
    assert data["users"]["alice"]["hash"].startswith("$argon2id$") and data["users"]["alice"]["role"] == "operator"
    assert data["tokens"]["ci"] == {"role": "viewer", "sha256": access.digest(token)}
    access.secret_key(root)
    assert stat.S_IMODE((root / n.DASHBOARD_KEY).stat().st_mode) == 0o600
    assert "/.dashboard/" in (root / ".gitignore").read_text().splitlines()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    listed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored=no"], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    assert ".dashboard" not in listed
    (root / ".gitignore").unlink()  # an infra rendered before the dashboard existed: the folder's own .gitignore
    listed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root, capture_output=True, text=True,
                            check=True).stdout
    assert ".dashboard" not in listed
    assert access.authenticate(root, "alice", OPERATOR[1]) == access.User("alice", "operator")
    assert access.authenticate(root, "alice", OPERATOR[1] + "x") is None
    assert access.authenticate(root, "nobody", OPERATOR[1]) is None


def plano(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=root, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def test_passwd_reads_the_password_from_stdin_and_token_prints_it_once(root):
    done = plano(root, "dashboard", "passwd", "carol", "--role", "operator", stdin="a long enough passphrase\n")
    assert (done.returncode, done.stdout) == (0, "carol: added, role operator (in .dashboard/users.json, hashed, mode 0600)\n")
    assert access.authenticate(root, "carol", "a long enough passphrase") == access.User("carol", "operator")
    again = plano(root, "dashboard", "passwd", "carol", stdin="another long passphrase\n")
    assert again.stdout == "carol: password set, role operator (in .dashboard/users.json, hashed, mode 0600)\n"
    short = plano(root, "dashboard", "passwd", "dave", stdin="short\n")
    assert (short.returncode, short.stderr) == (2, "error: password: at least 12 characters (a passphrase of a few words will do)\n")
    bad = plano(root, "dashboard", "passwd", "Dave!", stdin="a long enough passphrase\n")
    assert bad.returncode == 2 and "USER 'Dave!'" in bad.stderr
    made = plano(root, "dashboard", "token", "ci")
    assert made.returncode == 0 and re.fullmatch(r"plano_[A-Za-z0-9_-]{43}\n", made.stdout)
    assert access.token_user(root, made.stdout.strip()) == access.User("token:ci", "viewer")
    assert plano(root, "dashboard", "token", "ci", "--remove").returncode == 0
    assert access.token_user(root, made.stdout.strip()) is None


def test_the_dashboard_will_not_start_without_a_user(dry_infra):  # noqa: F811
    done = plano(dry_infra, "dashboard", "--port", "8899")
    assert (done.returncode, done.stderr) == (
        3, "error: no dashboard user yet: add one with plano dashboard passwd USER --role operator, then start it again\n")


def test_with_e_the_dashboard_takes_only_a_port(root, capsys):
    from plano.cli.main import main
    from plano.cli.server import dashboard_port

    assert [dashboard_port(args) for args in (["dashboard"], ["dashboard", "--port", "8801"], ["dashboard", "--port=9000"],
                                               ["dashboard", "passwd", "alice"], ["dashboard", "token", "ci"],
                                               ["dashboard", "--help"])] == [8800, 8801, 9000, None, None, None]
    assert main(["-e", "staging", "dashboard", "--port", "0"]) == 2
    assert capsys.readouterr().err == "error: dashboard --port 0: with -e, plano dashboard takes --port N (1-65535) only\n"


def test_until_eof_the_dashboard_stops_when_its_stdin_closes(root):
    """What `plano -e NAME dashboard` relies on: the server's dashboard ends with the SSH
    session that started it (its stdin closes)."""
    import socket
    import time

    from tests.integration.browser import answers

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    served = subprocess.Popen([sys.executable, "-m", "plano.cli", "dashboard", "--port", str(port), "--until-eof"], cwd=root,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not answers(f"http://127.0.0.1:{port}/login"):
            assert served.poll() is None and time.monotonic() < deadline, served.stderr.read().decode()
            time.sleep(0.2)
        started = time.monotonic()
        served.stdin.close()
        assert served.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if served.poll() is None:
            served.kill()
            served.wait()


def test_the_actor_given_to_a_thread_is_that_threads_alone():
    import threading

    seen = {}

    def work():
        with actor.acting_as("alice", "dashboard@here"):
            seen["inside"] = actor.current()
        seen["after"] = actor.current()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen["inside"] == actor.Actor("alice", "dashboard@here", actor.login())
    assert seen["after"] == actor.current() != seen["inside"]


class HeldPull:
    """The scripted engine, whose `compose pull` waits until the test lets it go: a deploy
    from the page that holds the app's lock for as long as the test needs."""

    def __init__(self) -> None:
        import threading

        self.pulling, self.go = threading.Event(), threading.Event()
        self.inner = engine()

    def run(self, argv, **kwargs):
        if "pull" in argv:
            self.pulling.set()
            assert self.go.wait(60)
        return self.inner.run(argv, **kwargs)

    def stream(self, argv, **kwargs):
        return self.inner.stream(argv, **kwargs)


def test_a_cli_deploy_while_the_page_deploys_is_refused_naming_the_dashboard_user(root, clocks, capsys):
    import os
    import socket

    from plano.cli.main import main

    held = HeldPull()
    app = create_app(root, runner=lambda: held, clock=clocks[0], monotonic=clocks[1])
    c, csrf = signed_in(app)
    got = c.post("/apps/app1/deploy", data={"csrf": csrf, "tag": "2.0.0", "service": ""})
    assert held.pulling.wait(30)
    try:
        capsys.readouterr()
        code = main(["deploy", "app1", "--tag", "3.0.0"], runner=engine())
        err = capsys.readouterr().err
    finally:
        held.go.set()
        app.state.board.jobs.wait(60)
    assert code == 3
    host = actor.cleaned(f"dashboard@{socket.gethostname()}")
    assert re.fullmatch(rf"error: a deploy of app1 is already running: alice on {re.escape(host)} since .* UTC "
                        rf"\(plano deploy app1 --tag 2\.0\.0, pid {os.getpid()}\); wait for it to end, then run again\n", err)
    job = c.get(got.headers["location"]).text
    assert 'id="job-state">ok<' in job and "app1-backend: 1.1.0 -&gt; 2.0.0" in job
    assert [(e.user, e.command[1:], e.exit) for e in audit.read(root)] == [
        (actor.current().user, ["deploy", "app1", "--tag", "3.0.0"], 3), ("alice", ["deploy", "app1", "--tag", "2.0.0"], 0)]


def test_without_an_engine_the_pages_say_so_in_one_line(root, clocks):
    def no_engine() -> ScriptedRunner:
        down = Answer(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
        return ScriptedRunner().query("docker", answers=down).query("docker-compose", answers=down)

    app = create_app(root, runner=no_engine, clock=clocks[0], monotonic=clocks[1])
    c, _ = signed_in(app, VIEWER)
    for path in ("/", "/apps/app1"):
        got = c.get(path)
        assert got.status_code == 503 and "the stack&#39;s status could not be read: " in got.text, got.text[-800:]
    token = access.make_token(root, "ci")
    got = c.get("/api/status", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 503 and got.json()["detail"].startswith("the stack's status could not be read: ")
