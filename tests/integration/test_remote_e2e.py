"""Operating a server from a laptop over SSH, for real: this test process is the laptop
(an infra repo with app1 and `environments: {production: ...}`), a test server
(sshservers: sshd, sudo and its own Docker engine) is production. An unknown host key
is refused with its fingerprint, then trusted; `plano server setup -e production`
installs plano there and starts prod, and a second run changes nothing; `plano status
-e` and `plano deploy -e` run there with their output and exit codes; a file changed by
hand on the server is refused; a deploy whose SSH client is killed mid-way ends on
one version on the server with its lock released, under load with 0 failed requests;
a changed host key is refused in one line; two laptops deploying app1 at once: one runs,
the other is refused naming who holds the lock (user, host, since, command), and the
server's audit log has both, field by field; `plano status --all-environments` shows
production's status beside an environment that cannot be reached."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.innerengine import stand_in_in_registry
from tests.integration.loadgen import Load
from tests.integration.net import https_request, wait_for
from tests.integration.sshservers import Server, servers
from tests.integration.stackfixtures import (
    STAND_INS,
    make_workspace,
    plano,
    remove_images,
)
from tests.integration.test_deploy_e2e import build
from tests.integration.test_prod_e2e import set_env

pytestmark = pytest.mark.expected_seconds(150)  # on a 2-core machine

SERVER_INFRA = "/home/deploy/infra"


@dataclass
class Site:
    infra: Path
    server: Server
    name: str

    @property
    def https(self) -> int:
        return self.server.published(443)


def laptop(site: Site, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """plano on the laptop, with the test's ssh-agent (its key for the server)."""
    return subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=site.infra, capture_output=True, text=True, check=False,
                          timeout=timeout, env={**os.environ, **site.server.ssh_env, "NO_COLOR": "1", "COLUMNS": "200"})


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def git(infra: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=laptop", "-c", "user.email=laptop@example.com", *args], cwd=infra,
                          check=True, capture_output=True, text=True).stdout


def served(site: Site) -> set[str]:
    seen = set()
    for _ in range(10):
        _, _, body = https_request(site.https, "app1.example.com", "/api/version")
        seen.add(json.loads(body)["version"])
    return seen


def close_connection(site: Site) -> None:
    """The shared SSH connection (ControlPersist) closed, as after a minute unused."""
    from plano.engine import ssh
    from plano.ops.remote import control_dir

    remote = ssh.Remote("deploy@127.0.0.1", site.server.ssh_port, site.infra / "ssh_known_hosts", control_dir())
    subprocess.run(ssh.exit_master_argv(remote), capture_output=True, timeout=20, check=False)


@contextmanager
def remote_site(folder: Path, environment: str = "") -> Iterator[Site]:
    """The laptop's infra (app1, 1.0.0 and 2.0.0 of its images in the harness registry,
    .env.production, committed) and its production: one test server, not yet trusted;
    `environment`: more lines of production's entry in plano.yml."""
    ws = make_workspace(folder, apps=("app1",))
    try:
        text = (ws.infra / "plano.yml").read_text()
        for key, image in STAND_INS.items():  # the server's engine pulls them from the harness registry
            text = text.replace(f"  {key}: {image}", f"  {key}: {stand_in_in_registry(ws.name, key)}", 1)
        text = text.replace("  bind: 127.0.0.1", "  bind: 0.0.0.0", 1)  # prod: inside the server, published by its container
        text = text.replace(f"  http_port: {ws.ports['prod_http']}\n  https_port: {ws.ports['prod_https']}\n",
                            "  http_port: 80\n  https_port: 443\n", 1)
        for version in ("1.0.0", "2.0.0"):
            for role in ("backend", "frontend"):
                build(ws, role, version)
        with servers(f"{ws.name}-ssh", ports=(80, 443)) as (server,):
            text += f"environments:\n  production:\n    host: deploy@127.0.0.1\n    port: {server.ssh_port}\n{environment}"
            (ws.infra / "plano.yml").write_text(text)
            plano("render", cwd=ws.infra)
            shutil.copy(ws.infra / ".env.prod", ws.infra / ".env.production")  # the production secrets, here
            set_env(ws.infra / ".env.production", APP1_BACKEND_TAG="1.0.0", APP1_FRONTEND_TAG="1.0.0")
            git(ws.infra, "init", "-q")
            git(ws.infra, "add", "-A")
            git(ws.infra, "commit", "-qm", "infra")
            yield Site(ws.infra, server, ws.name)
    finally:
        remove_images(ws.name)


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    with remote_site(tmp_path_factory.mktemp("remote")) as made:
        yield made


def on_server(site: Site, *args: str) -> subprocess.CompletedProcess:
    """plano run on the server itself, by its SSH user in the infra (as root through sudo, as -e runs it)."""
    return site.server.exec("sh", "-c", f'cd {SERVER_INFRA} && sudo -n /home/deploy/.plano/venv/bin/plano "$@"', "plano", *args,
                            user="deploy")


def test_a_fresh_server_is_trusted_set_up_and_operated_from_the_laptop(site):
    refused = laptop(site, "-e", "production", "status")
    assert refused.returncode == 3, refused.stderr
    assert "its SSH host key is not trusted yet (SHA256:" in refused.stderr and refused.stderr.count("\n") == 1
    assert "plano server trust -e production" in refused.stderr

    trusted = ok(laptop(site, "-e", "production", "server", "trust"))
    assert "trusted now" in trusted.stdout and "(ED25519)" in trusted.stdout
    git(site.infra, "add", "ssh_known_hosts")
    git(site.infra, "commit", "-qm", "trust production")

    started = time.monotonic()
    first = ok(laptop(site, "-e", "production", "server", "setup", timeout=1500))
    first_seconds = time.monotonic() - started
    assert "done: installed plano-" in first.stdout and "done: plano prod up" in first.stdout
    assert "done: infra brought to this commit" in first.stdout
    mode = site.server.exec("stat", "-c", "%a", f"{SERVER_INFRA}/.env.prod").stdout.strip()
    assert mode == "600"
    assert served(site) == {"1.0.0"}

    started = time.monotonic()
    again = ok(laptop(site, "-e", "production", "server", "setup"))
    again_seconds = time.monotonic() - started
    for kept in ("plano already installed (same build)", "infra already at this commit", ".env.production already in .env.prod"):
        assert f"kept: {kept}" in again.stdout
    assert "done: install" not in again.stdout
    print(f"server setup: first {first_seconds:.1f} s, again {again_seconds:.1f} s")

    status = ok(laptop(site, "-e", "production", "status"))
    assert "app1" in status.stdout and "1.0.0" in status.stdout
    head = git(site.infra, "rev-parse", "HEAD").strip()
    assert site.server.exec("git", "-C", SERVER_INFRA, "rev-parse", "HEAD", user="deploy").stdout.strip() == head

    started = time.monotonic()
    deployed = ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", "2.0.0"))
    remote_seconds = time.monotonic() - started
    assert "2.0.0" in deployed.stdout + deployed.stderr
    assert served(site) == {"2.0.0"}
    # The same deploy run on the server itself (back to 1.0.0, then 2.0.0 again from the laptop).
    started = time.monotonic()
    on_server(site, "deploy", "app1", "--tag", "1.0.0")
    local_seconds = time.monotonic() - started
    assert served(site) == {"1.0.0"}
    started = time.monotonic()
    ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", "2.0.0"))
    again_seconds = time.monotonic() - started
    print(f"deploy of app1: -e production {remote_seconds:.1f} s and {again_seconds:.1f} s, on the server {local_seconds:.1f} s")

    failed = laptop(site, "-e", "production", "deploy", "app1", "--tag", "no-such-tag", "--timeout", "30")
    assert failed.returncode != 0  # the server's exit code, not 0


def test_a_server_whose_infra_was_edited_by_hand_is_refused_unless_discarded(site):
    ensure_set_up(site)
    compose = f"{SERVER_INFRA}/docker-compose.prod.yml"
    site.server.exec("sh", "-c", f"echo '# hand edit' >>{compose}", user="deploy")
    (site.infra / "custom-note.txt").write_text("a new commit\n")
    git(site.infra, "add", "custom-note.txt")
    git(site.infra, "commit", "-qm", "a change")
    refused = laptop(site, "-e", "production", "status")
    assert refused.returncode == 3
    assert "docker-compose.prod.yml changed by hand on the server" in refused.stderr
    assert refused.stderr.count("\n") == 1
    ok(laptop(site, "--discard-server-edits", "-e", "production", "status"))
    assert "# hand edit" not in site.server.exec("cat", compose).stdout


def test_a_deploy_whose_connection_is_cut_ends_on_one_version_with_the_lock_released(site):
    ensure_set_up(site)
    before = served(site)
    assert len(before) == 1
    target = "1.0.0" if before == {"2.0.0"} else "2.0.0"
    load = Load(site.https, "app1.example.com", workers=4).start()
    client = subprocess.Popen([sys.executable, "-m", "plano.cli", "-e", "production", "deploy", "app1", "--tag", target],
                              cwd=site.infra, env={**os.environ, **site.server.ssh_env}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        for line in client.stdout:  # the server's output arrives: the deploy runs there
            lines.append(line)
            if "app1" in line and "$ plano deploy" not in line:
                break
        os.killpg(client.pid, signal.SIGKILL)  # the laptop's plano and its ssh client
        client.wait(timeout=20)
        close_connection(site)  # and the shared connection with them
        lock = f"{SERVER_INFRA}/data/logs/.deploy-app1.lock"
        held = site.server.exec("flock", "-n", lock, "true", check=False).returncode != 0
        assert held, "the deploy had already ended when its client was killed: nothing was cut"
        wait_for(lambda: site.server.exec("flock", "-n", lock, "true", check=False).returncode == 0 and not
                 site.server.exec("pgrep", "-f", "plano deploy", check=False).stdout.strip(),
                 "the deploy on the server did not end and release its lock", seconds=300, interval=1)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
        load.stop()
    assert served(site) == {target}, f"the server is not on one version: {served(site)}; laptop saw:\n{''.join(lines)}"
    assert not load.failures, load.summary()
    print(f"cut deploy: {len(load.results)} requests, 0 failed; laptop saw {len(lines)} lines before the cut")


def test_a_changed_host_key_is_refused_in_one_line(site):
    ensure_set_up(site)
    close_connection(site)
    site.server.new_host_keys()
    refused = laptop(site, "-e", "production", "status")
    assert refused.returncode == 3
    assert "host key CHANGED since it was trusted: refused" in refused.stderr and refused.stderr.count("\n") == 1
    assert laptop(site, "-e", "production", "server", "trust").returncode == 3
    # The documented way back: remove the old key, trust the new one.
    subprocess.run(["ssh-keygen", "-R", f"[127.0.0.1]:{site.server.ssh_port}", "-f", str(site.infra / "ssh_known_hosts")],
                   check=True, capture_output=True)
    ok(laptop(site, "-e", "production", "server", "trust"))
    ok(laptop(site, "-e", "production", "status"))


def as_laptop(site: Site, user: str, host: str, *args: str) -> subprocess.Popen:
    """plano on another laptop: its user's name and its host name, as PLANO_USER and PLANO_HOST set them."""
    env = {**os.environ, **site.server.ssh_env, "NO_COLOR": "1", "PLANO_USER": user, "PLANO_HOST": host}
    return subprocess.Popen([sys.executable, "-m", "plano.cli", *args], cwd=site.infra, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_laptops_deploying_at_once_one_is_refused_naming_the_other_and_both_are_audited(site):
    ensure_set_up(site)
    ok(laptop(site, "-e", "production", "audit"))  # the server at this commit first: the two then push nothing
    before = served(site)
    assert len(before) == 1
    target = "1.0.0" if before == {"2.0.0"} else "2.0.0"
    head = git(site.infra, "rev-parse", "HEAD").strip()
    started = time.monotonic()
    clients = {who: as_laptop(site, who, f"{who}-laptop", "-e", "production", "deploy", "app1", "--tag", target)
               for who in ("alice", "bob")}
    outputs = {who: proc.communicate(timeout=600)[0] for who, proc in clients.items()}
    seconds = time.monotonic() - started
    codes = {who: proc.returncode for who, proc in clients.items()}
    assert sorted(codes.values()) == [0, 3], (codes, outputs)
    winner = next(who for who, code in codes.items() if code == 0)
    loser = next(who for who, code in codes.items() if code == 3)
    refusal = next(line for line in outputs[loser].splitlines() if line.startswith("error: "))
    assert refusal.startswith(f"error: a deploy of app1 is already running: {winner} on {winner}-laptop since "), refusal
    assert f" UTC (plano deploy app1 --tag {target}, pid " in refusal and refusal.endswith("wait for it to end, then run again")
    assert served(site) == {target}

    entries = json.loads(ok(laptop(site, "-e", "production", "audit", "--json", "-n", "2")).stdout)
    assert {e["user"] for e in entries} == {"alice", "bob"}, entries
    by = {e["user"]: e for e in entries}
    for who, e in by.items():
        assert list(e) == ["started", "ended", "user", "host", "login", "commit", "command", "result", "exit"]
        assert e["host"] == f"{who}-laptop" and e["login"] == "deploy"  # the SSH login is shared; the user is the laptop's
        assert e["commit"] == head and e["command"] == ["plano", "deploy", "app1", "--tag", target]
        assert e["started"] <= e["ended"] and e["started"].endswith("+00:00")
    assert (by[winner]["result"], by[winner]["exit"]) == ("ok", 0)
    assert by[loser]["exit"] == 3
    assert by[loser]["result"].startswith(f"failed: a deploy of app1 is already running: {winner} on {winner}-laptop since ")
    log = f"{SERVER_INFRA}/data/logs/audit.jsonl"
    assert site.server.exec("stat", "-c", "%a %U", log).stdout.strip() == "640 root"
    lines = site.server.exec("cat", log).stdout.splitlines()
    assert all(isinstance(json.loads(line)["exit"], int) for line in lines)  # every line whole
    print(f"two laptops at once: {seconds:.1f} s, {winner} deployed, {loser} refused; audit log {len(lines)} lines")


def test_status_of_all_environments_shows_an_unreachable_one_beside_production(site):
    ensure_set_up(site)
    manifest = site.infra / "plano.yml"
    text = manifest.read_text()
    try:  # a second environment nobody answers for (not committed: a look pushes nothing)
        manifest.write_text(text + "  staging:\n    host: deploy@127.0.0.1\n    port: 9\n")
        started = time.monotonic()
        shown = laptop(site, "status", "--all-environments", "--json")
        seconds = time.monotonic() - started
    finally:
        manifest.write_text(text)
    rows = {row["environment"]: row for row in json.loads(shown.stdout)}
    assert rows["staging"]["state"] == "unreachable" and "127.0.0.1 port 9" in rows["staging"]["detail"]
    assert shown.returncode == 1  # not every environment is ok
    production = rows["production"]
    assert production["state"] in ("ok", "problems") and production["code"] in (0, 1), production
    assert production["commit"] == site.server.exec("git", "-C", SERVER_INFRA, "rev-parse", "HEAD", user="deploy").stdout.strip()
    assert {row["service"] for row in production["status"]["apps"]} == {"app1-backend", "app1-frontend"}
    print(f"status --all-environments: {seconds:.1f} s for 2 environments (one unreachable)")


def ensure_set_up(site: Site) -> None:
    """The tests' order may be shuffled: each needs a trusted, set-up server."""
    if not (site.infra / "ssh_known_hosts").exists():
        ok(laptop(site, "-e", "production", "server", "trust"))
    if site.server.exec("test", "-x", "/home/deploy/.plano/venv/bin/plano", check=False).returncode != 0:
        ok(laptop(site, "-e", "production", "server", "setup", timeout=1500))


def server_answers(site: Site, port: int) -> bool:
    """Whether something answers on the server's own 127.0.0.1:PORT."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/login', timeout=3)"
    return site.server.exec("python3", "-c", probe, check=False).returncode == 0


def test_the_servers_dashboard_is_reached_from_the_laptop_and_stops_with_it(site):
    """plano -e production dashboard: the server's own dashboard (its users), reached here
    through ssh -L; ctrl-c here stops it there and removes the forward."""
    import re
    import urllib.error
    import urllib.request

    from tests.integration.browser import answers
    from tests.integration.net import free_ports

    ensure_set_up(site)
    env = {**os.environ, **site.server.ssh_env, "NO_COLOR": "1"}
    added = subprocess.run([sys.executable, "-m", "plano.cli", "-e", "production", "dashboard", "passwd", "ops", "--role", "viewer"],
                           cwd=site.infra, input="a long enough passphrase\n", capture_output=True, text=True, timeout=300,
                           env=env, check=False)
    assert added.returncode == 0, added.stderr
    assert not (site.infra / ".dashboard" / "users.json").exists()  # the server's user, not the laptop's
    [port] = free_ports(1)
    started = subprocess.Popen([sys.executable, "-m", "plano.cli", "-e", "production", "dashboard", "--port", str(port)],
                               cwd=site.infra, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               start_new_session=True, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: started.poll() is None and answers(f"{base}/login"), "the server's dashboard did not answer here", 120, 0.5)
        assert server_answers(site, port)
        with urllib.request.urlopen(f"{base}/login", timeout=10) as page:
            form = page.read().decode()
            cookie = page.headers["Set-Cookie"].split(";")[0]
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        body = f"user=ops&password=a+long+enough+passphrase&csrf={csrf}".encode()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(urllib.request.Request(f"{base}/login", data=body, headers={"Cookie": cookie}), timeout=30)
            raise AssertionError("signing in did not redirect")
        except urllib.error.HTTPError as answer:
            assert answer.code == 303 and answer.headers["Location"] == "/"
            session = [c.split(";")[0] for c in answer.headers.get_all("Set-Cookie") if c.startswith("plano_session=")]
        with urllib.request.urlopen(urllib.request.Request(f"{base}/", headers={"Cookie": session[0]}), timeout=60) as overview:
            assert 'id="app-app1"' in overview.read().decode()
    finally:
        os.killpg(started.pid, signal.SIGINT)  # ctrl-c in the laptop's terminal
        _, err = started.communicate(timeout=60)
    assert f"plano dashboard of production (deploy@127.0.0.1): {base}/ (ctrl-c stops it, here and there)" in err, err
    wait_for(lambda: not server_answers(site, port), "the server's dashboard outlived the laptop's command", 30, 0.5)
    assert not answers(f"{base}/login")  # the forward is gone from the shared connection
