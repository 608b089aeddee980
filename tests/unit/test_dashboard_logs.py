"""An app's page: the last log lines of each service (masked as plano masks a tool's
output, stdout and stderr merged in order), followed live over Server-Sent Events by a
real process that ends when the browser goes away; the certificate's details from its
file. The follower is a real child process (a `docker` script on PATH stands in for the
CLI: the real engine is for tests/integration), the server a real uvicorn."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

import httpx

from plano.core.mode import Mode
from plano.core.session import Session
from plano.dashboard import follow
from plano.dashboard.app import create_app
from plano.engine import tls
from plano.ops import logs
from tests.cli.test_dry_runs import infra as dry_infra  # noqa: F401 (a fixture)
from tests.scripted import Answer, RecordingOutput, ScriptedRunner
from tests.unit.test_dashboard import (  # noqa: F401 (fixtures)
    OPERATOR,
    client,
    clocks,
    engine,
    root,
    sign_in,
    signed_in,
)

T1, T2, T3 = "2026-12-05T10:00:00.000000001Z", "2026-12-05T10:00:01.000000001Z", "2026-12-05T10:00:02.000000001Z"


def secret_of(root: Path) -> str:  # noqa: F811
    values = Session(ScriptedRunner(), RecordingOutput(), directory=root, mode=Mode.PROD)
    values.infra  # noqa: B018
    return max(values.secret_values(), key=len)


# ---------------------------------------------------------------- argv and merging (pure)


def test_the_log_commands():
    assert logs.logs_argv(logs.Source("app1-backend", "abc123")) == [
        "docker", "logs", "--timestamps", "--tail", "100", "abc123"]
    assert logs.logs_argv(logs.Source("app1-backend", "abc123"), 50, follow=True) == [
        "docker", "logs", "--timestamps", "--tail", "50", "--follow", "abc123"]
    assert logs.logs_argv(logs.Source("app1-backend", None, "acme_app1-backend"), follow=True) == [
        "docker", "service", "logs", "--timestamps", "--no-trunc", "--tail", "100", "--follow", "acme_app1-backend"]


def test_stdout_and_stderr_are_merged_in_the_order_docker_received_them():
    out = f"{T1} a\n{T3} c\n"
    err = f"{T2} b\n{T3} c-err\n"
    assert logs.merged(out, err) == [f"{T1} a", f"{T2} b", f"{T3} c", f"{T3} c-err"]


def test_a_shown_line_is_masked_and_cut():
    assert logs.shown("password=hunter2hunter2 ok\r\n", {"hunter2hunter2"}) == "password=***** ok"
    assert logs.shown("x" * 5000, set()) == "x" * logs.LINE_MAX + " ..."


def test_the_last_lines_of_each_service_come_from_its_running_container(root):  # noqa: F811
    secret = secret_of(root)
    runner = (ScriptedRunner()
              .query("label=com.docker.compose.service=app1-backend", answers=Answer(0, "b4c\n"))
              .query("label=com.docker.compose.service=app1-frontend", answers=Answer(0, ""))
              .query("docker", "logs", answers=Answer(0, f"{T1} start\n{T3} connected with {secret}\n", f"{T2} warn\n")))
    session = Session(runner, RecordingOutput(), directory=root, mode=Mode.PROD)
    got = logs.last_lines(session, "app1")
    assert got == [logs.ServiceLog("backend", "app1-backend", [f"{T1} start", f"{T2} warn", f"{T3} connected with *****"], True),
                   logs.ServiceLog("frontend", "app1-frontend", [], False)]
    assert runner.queries == [
        ["docker", "ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=infra",
         "--filter", "label=com.docker.compose.service=app1-backend"],
        ["docker", "logs", "--timestamps", "--tail", "100", "b4c"],
        ["docker", "ps", "-q", "--no-trunc", "--filter", "label=com.docker.compose.project=infra",
         "--filter", "label=com.docker.compose.service=app1-frontend"],
    ]


# ---------------------------------------------------------------- the page


def self_signed(names: list[str], days: int) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA R1")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
            .serial_number(0xABC).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_the_app_page_shows_the_last_log_lines_masked_and_the_certificate(root, clocks):  # noqa: F811
    secret = secret_of(root)
    path = tls.cert_file(root, Mode.PROD, "app1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(self_signed(["app1.example.com", "www.app1.example.com"], 30))
    facts = tls.installed_facts(root, Mode.PROD, "app1")

    def runner() -> ScriptedRunner:
        made = ScriptedRunner().query("docker", "logs", answers=Answer(0, f"{T1} up\n{T3} token {secret} <b>\n", f"{T2} warn\n"))
        made.rules += engine().rules
        return made

    app = create_app(root, runner=runner, clock=clocks[0], monotonic=clocks[1])
    c, _ = signed_in(app)
    page = c.get("/apps/app1")
    assert page.status_code == 200
    html = page.text
    assert secret not in html
    assert f'<pre class="log" id="log-backend" data-follow="/apps/app1/logs/backend">{T1} up\n{T2} warn\n{T3} token ***** &lt;b&gt;\n</pre>' in html
    assert '<script src="/static/logs.js" defer></script>' in html
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    for shown in ("app1.example.com, www.app1.example.com", "Test CA R1", f'<dd id="cert-days">{facts.days_left(dt.datetime.now(dt.UTC))}</dd>',
                  facts.not_before.strftime("%Y-%m-%d %H:%M UTC"), facts.not_after.strftime("%Y-%m-%d %H:%M UTC"),
                  '<span class="badge good">app1.example.com</span>', "<code>abc</code>"):
        assert shown in html, shown
    assert facts.days_left(dt.datetime.now(dt.UTC)) in (29, 30)
    assert c.get("/static/logs.js").status_code == 200


def test_an_unknown_service_or_app_is_a_404_and_a_stopped_one_an_end_event(root, clocks):  # noqa: F811
    def stopped() -> ScriptedRunner:
        return ScriptedRunner().query("docker", "ps", answers=Answer(0, ""))

    app = create_app(root, runner=stopped, clock=clocks[0], monotonic=clocks[1])
    c, _ = signed_in(app)
    assert c.get("/apps/app1/logs/worker").status_code == 404
    assert c.get("/apps/nope/logs/backend").status_code == 404
    got = c.get("/apps/app1/logs/backend")
    assert (got.status_code, got.headers["content-type"]) == (200, "text/event-stream; charset=utf-8")
    assert got.text == (f"retry: {follow.IDLE_RETRY_MS}\nevent: end\n"
                        "data: app1-backend does not run now; its log is followed once it runs again\n\n")


# ---------------------------------------------------------------- following, with real processes


FAKE_DOCKER = """#!/bin/sh
# docker logs --follow, as the dashboard runs it: the last lines, then more until killed
case "$*" in *--follow*) ;; *) exit 1 ;; esac
echo $$ >> "{pids}"
printf '%s\\n' "{t1} first" "{t2} secret {secret}"
printf '%s\\n' "{t3} on stderr" >&2
{rest}
"""


def fake_docker(folder: Path, secret: str, rest: str) -> Path:
    folder.mkdir(exist_ok=True)
    script = folder / "docker"
    pids = folder / "pids"
    script.write_text(FAKE_DOCKER.format(pids=pids, t1=T1, t2=T2, t3=T3, secret=secret, rest=rest))
    script.chmod(0o755)
    return pids


class Served:
    """The dashboard served by a real uvicorn on 127.0.0.1, in a thread."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone(pid: int, seconds: float = 5) -> bool:
    """Whether the process is gone within `seconds`."""
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def session_cookie(app) -> str:
    c = client(app)
    assert sign_in(c, *OPERATOR).status_code == 303
    return c.cookies["plano_session"]


def running_engine() -> ScriptedRunner:
    return ScriptedRunner().query("label=com.docker.compose.service=app1-backend", answers=Answer(0, "b4c\n"))


class Events:
    """A stream's events as they come (keep-alive comments left out). It holds one iterator
    of the response for its life: an iterator dropped would close the connection (the
    browser going away, which the tests make happen on purpose only)."""

    def __init__(self, response) -> None:
        self.chunks = response.iter_text()
        self.buffer = ""

    def next(self, count: int) -> list[str]:
        found: list[str] = []
        while len(found) < count:
            while "\n\n" not in self.buffer:
                self.buffer += next(self.chunks)
            block, self.buffer = self.buffer.split("\n\n", 1)
            if not block.startswith(":"):
                found.append(block)
        return found


def test_the_follower_is_killed_when_the_browser_goes_away(root, clocks, tmp_path, monkeypatch):  # noqa: F811
    secret = secret_of(root)
    pids = fake_docker(tmp_path / "bin", secret, "exec sleep 600")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    app = create_app(root, runner=running_engine, clock=clocks[0], monotonic=clocks[1])
    board = app.state.board
    cookie = session_cookie(app)
    with Served(app) as base, httpx.Client(base_url=base, headers={"Cookie": f"plano_session={cookie}"}, timeout=20) as http:
        with http.stream("GET", "/apps/app1/logs/backend") as response:
            assert response.status_code == 200 and response.headers["x-accel-buffering"] == "no"
            stream = Events(response)
            events = stream.next(4)
            [pid] = [int(line) for line in pids.read_text().split()]
            assert alive(pid) and board.followers.running == {pid}
        # the stream closed: the page went away
        assert gone(pid), "the docker logs follower outlived its page"
        assert board.followers.running == set()
    assert events == [f"retry: {follow.RETRY_MS}\nevent: reset\ndata: ", f"data: {T1} first", f"data: {T2} secret *****",
                      f"data: {T3} on stderr"]


def test_a_follower_that_ends_says_so_and_a_stopped_dashboard_kills_the_rest(root, clocks, tmp_path, monkeypatch):  # noqa: F811
    secret = secret_of(root)
    pids = fake_docker(tmp_path / "bin", secret, 'case "$*" in *b4c*) exit 0 ;; esac\nexec sleep 600')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    def two() -> ScriptedRunner:
        return (ScriptedRunner().query("label=com.docker.compose.service=app1-backend", answers=Answer(0, "b4c\n"))
                .query("label=com.docker.compose.service=app1-frontend", answers=Answer(0, "f00\n")))

    app = create_app(root, runner=two, clock=clocks[0], monotonic=clocks[1])
    cookie = session_cookie(app)
    served = Served(app)
    with served as base, httpx.Client(base_url=base, headers={"Cookie": f"plano_session={cookie}"}, timeout=20) as http:
        ended = http.get("/apps/app1/logs/backend").text  # the container stopped: the stream ends by itself
        assert ended.endswith("event: end\ndata: the log ended (exit code 0): the container stopped or was replaced\n\n")
        following = http.stream("GET", "/apps/app1/logs/frontend")
        response = following.__enter__()
        stream = Events(response)
        assert len(stream.next(2)) == 2
        follower = [int(line) for line in pids.read_text().split()][-1]
        assert alive(follower)
        served.server.should_exit = True  # the dashboard stops (ctrl-c) while the page still follows
        served.thread.join(20)
        app.state.board.followers.stop_all()  # what server.serve does once uvicorn returned
        assert gone(follower)


def test_followers_are_bounded(root, clocks, tmp_path, monkeypatch):  # noqa: F811
    pids = fake_docker(tmp_path / "bin", "x" * 12, "exec sleep 600")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    app = create_app(root, runner=running_engine, clock=clocks[0], monotonic=clocks[1])
    app.state.board.followers.limit = 1
    cookie = session_cookie(app)
    with Served(app) as base, httpx.Client(base_url=base, headers={"Cookie": f"plano_session={cookie}"}, timeout=20) as http:
        with http.stream("GET", "/apps/app1/logs/backend") as first:
            held = Events(first)
            held.next(2)
            with httpx.Client(base_url=base, headers={"Cookie": f"plano_session={cookie}"}, timeout=20) as other:
                second = other.get("/apps/app1/logs/backend")
            assert second.status_code == 503 and "1 logs are followed already" in second.text
        pid = int(pids.read_text().split()[0])
        assert gone(pid)


def test_without_a_session_the_stream_is_not_started(root, clocks, tmp_path, monkeypatch):  # noqa: F811
    pids = fake_docker(tmp_path / "bin", "x" * 12, "exec sleep 600")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    app = create_app(root, runner=running_engine, clock=clocks[0], monotonic=clocks[1])
    got = client(app).get("/apps/app1/logs/backend")
    assert (got.status_code, got.headers["location"]) == (303, "/login")
    assert not pids.exists()


# ---------------------------------------------------------------- backups: verified or not


def test_a_verification_is_read_from_the_status_log():
    from plano.ops import backup

    text = ("ok 2026-12-01T03:00:05Z 20261201T030000Z\n"
            "ok 2026-12-01T09:12:00Z verify 20261201T030000Z\n"
            "failed 2026-12-02T03:00:09Z run 20261202T030000Z did not complete\n"
            "ok 2026-12-02T04:00:00Z offsite 20261201T030000Z\n"
            "ok 2026-12-03T10:00:00Z verify 20261201T030000Z\n")
    assert backup.parse_verified(text) == {"20261201T030000Z": "2026-12-03T10:00:00Z"}


def test_the_overview_says_whether_the_last_backup_was_verified(root, clocks, capsys):  # noqa: F811
    import json

    from plano.cli.main import main
    from plano.ops import backup

    folder = backup.backups_dir(root, Mode.PROD)
    for backup_id in ("20261201T030000Z", "20261202T030000Z"):
        (folder / backup_id).mkdir(parents=True)
        (folder / backup_id / "manifest.json").write_text(json.dumps({"files": [{"name": "app1.dump", "bytes": 10}]}))
    (folder / ".status").write_text("ok 2026-12-01T03:00:05Z 20261201T030000Z\nok 2026-12-01T09:00:00Z verify 20261201T030000Z\n"
                                    "ok 2026-12-02T03:00:05Z 20261202T030000Z\n")
    app = create_app(root, runner=engine, clock=clocks[0], monotonic=clocks[1])
    c, _ = signed_in(app)
    html = c.get("/").text
    assert ('<dd id="backup-verified"><span class="badge wait">not verified</span> '
            '<code>plano backup verify 20261202T030000Z</code></dd>') in html
    page = c.get("/apps/app1").text
    assert '<td data-label="verified"><span class="badge good">verified</span> 2026-12-01T09:00:00Z</td>' in page
    capsys.readouterr()
    main(["status"], runner=engine())
    assert ("backups: 2, last 20261202T030000Z (not verified: plano backup verify 20261202T030000Z); last success "
            "2026-12-02T03:00:05Z") in capsys.readouterr().out
    with (folder / ".status").open("a") as log:
        log.write("ok 2026-12-02T08:00:00Z verify 20261202T030000Z\n")
    assert '<dd id="backup-verified"><span class="badge good">verified</span> at 2026-12-02T08:00:00Z</dd>' in c.get("/").text
