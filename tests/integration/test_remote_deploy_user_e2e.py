"""`plano server setup -e` making the deploy user, for real: production's plano.yml entry
names `deploy_user: ship`; setup connects as `host`'s login (the test server's sudo user
`deploy`), makes `ship` (a system user in the docker group, the laptop's chosen public
key in its authorized_keys, 0600 and its own, a sudo rule for its plano only, the infra
folder its own), and every command after that connects as ship: a deploy from the
laptop is recorded in the server's audit log with login ship. A second setup keeps
everything. A dry run with -e changes nothing on the server (no push, no checkout, no
audit line); on a server at this commit, it shows the server's own plan. A detached
command's stderr stays apart from its stdout."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.integration.test_remote_e2e import Site, git, laptop, ok, remote_site, served

pytestmark = pytest.mark.expected_seconds(150)  # on a 2-core machine

USER = "ship"
INFRA = f"/home/{USER}/infra"


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    with remote_site(tmp_path_factory.mktemp("deploy-user"), f"    deploy_user: {USER}\n") as made:
        yield made


def ship_key(site: Site) -> str:
    """A key of its own for the deploy user (as a CI's would be), held by the test's agent beside the admin's."""
    key = site.server.folder / "ship_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ship@ci", "-f", str(key)], check=True)
        subprocess.run(["ssh-add", "-q", str(key)], check=True, env={**os.environ, **site.server.ssh_env})
    return (site.server.folder / "ship_ed25519.pub").read_text().strip()


def test_setup_makes_the_deploy_user_and_every_later_command_connects_as_it(site):
    ok(laptop(site, "-e", "production", "server", "trust"))
    git(site.infra, "add", "ssh_known_hosts")
    git(site.infra, "commit", "-qm", "trust production")
    public = ship_key(site)
    started = time.monotonic()
    first = ok(laptop(site, "-e", "production", "server", "setup", "--deploy-key", str(site.server.folder / "ship_ed25519.pub"),
                      timeout=1500))
    first_seconds = time.monotonic() - started
    for done in (f"made the system user {USER}, in the docker group", f"authorized the key for {USER}",
                 f"a sudo rule for its plano only (/etc/sudoers.d/plano-{USER})", f"made {INFRA}, {USER}'s", "plano prod up"):
        assert f"done: {done}" in first.stdout, first.stdout

    server = site.server
    passwd = server.exec("getent", "passwd", USER).stdout.strip().split(":")
    assert int(passwd[2]) < 1000 and passwd[5] == f"/home/{USER}" and passwd[6] == "/bin/bash"  # a system user
    assert "docker" in server.exec("id", "-nG", USER).stdout.split()
    assert server.exec("stat", "-c", "%a %U %G", f"/home/{USER}/.ssh").stdout.strip() == f"700 {USER} {USER}"
    keys = f"/home/{USER}/.ssh/authorized_keys"
    assert server.exec("stat", "-c", "%a %U %G", keys).stdout.strip() == f"600 {USER} {USER}"
    assert server.exec("cat", keys).stdout == public + "\n"
    assert server.exec("cat", f"/etc/sudoers.d/plano-{USER}").stdout == (
        f"{USER} ALL=(root) NOPASSWD:SETENV: /home/{USER}/.plano/venv/bin/plano\n")
    assert server.exec("sudo", "-n", "true", user=USER, check=False).returncode != 0  # no sudo beyond its plano
    assert server.exec("docker", "version", "--format", "{{.Server.Version}}", user=USER).returncode == 0  # docker: its group
    assert server.exec("stat", "-c", "%U", INFRA).stdout.strip() == USER
    assert server.exec("stat", "-c", "%a %U", f"{INFRA}/.env.prod").stdout.strip() == "600 root"
    assert server.exec("test", "-x", f"/home/{USER}/.plano/venv/bin/plano").returncode == 0
    assert served(site) == {"1.0.0"}

    started = time.monotonic()
    again = ok(laptop(site, "-e", "production", "server", "setup", "--deploy-key", str(site.server.folder / "ship_ed25519.pub")))
    again_seconds = time.monotonic() - started
    for kept in (f"the user {USER}, in the docker group", "its authorized key", "its sudo rule (plano only)", f"{INFRA}, {USER}'s",
                 "plano already installed (same build)", "infra already at this commit", ".env.production already in .env.prod"):
        assert f"kept: {kept}" in again.stdout, again.stdout
    assert [line for line in again.stdout.splitlines() if "done:" in line] == ["  done: plano prod up"]
    assert again.stdout.splitlines()[-1] == (f"-e production commands connect as {USER}@127.0.0.1; deploy@127.0.0.1 is used by "
                                             "server setup only (apt packages, the deploy user, .env.prod: what needs root "
                                             "beside plano's own sudo rule)")
    assert server.exec("cat", keys).stdout == public + "\n"  # not added twice
    print(f"server setup with a deploy user: first {first_seconds:.1f} s, again {again_seconds:.1f} s")

    deployed = laptop(site, "-e", "production", "deploy", "app1", "--tag", "2.0.0")
    ok(deployed)
    assert served(site) == {"2.0.0"}
    assert "$ plano deploy app1 --tag 2.0.0  # on production (ship@127.0.0.1)" in deployed.stderr
    (entry,) = json.loads(ok(laptop(site, "-e", "production", "audit", "--json", "-n", "1")).stdout)
    assert (entry["login"], entry["command"], entry["exit"]) == (USER, ["plano", "deploy", "app1", "--tag", "2.0.0"], 0)
    head = git(site.infra, "rev-parse", "HEAD").strip()
    assert server.exec("git", "-C", INFRA, "rev-parse", "HEAD", user=USER).stdout.strip() == head


def set_up(site: Site) -> None:
    if not (site.infra / "ssh_known_hosts").exists():
        ok(laptop(site, "-e", "production", "server", "trust"))
    if site.server.exec("test", "-x", f"/home/{USER}/.plano/venv/bin/plano", check=False).returncode != 0:
        ship_key(site)
        ok(laptop(site, "-e", "production", "server", "setup", "--deploy-key", str(site.server.folder / "ship_ed25519.pub"),
                  timeout=1500))


def audit_lines(site: Site) -> int:
    return len(site.server.exec("cat", f"{INFRA}/data/logs/audit.jsonl").stdout.splitlines())


def test_a_dry_run_with_e_changes_nothing_on_the_server(site):
    set_up(site)
    ok(laptop(site, "-e", "production", "status"))  # the server at this commit
    before = site.server.exec("git", "-C", INFRA, "rev-parse", "HEAD", user=USER).stdout.strip()
    refs = site.server.exec("git", "-C", INFRA, "for-each-ref", user=USER).stdout
    version, lines = served(site), audit_lines(site)
    target = "1.0.0" if version == {"2.0.0"} else "2.0.0"
    (site.infra / "dry-note.txt").write_text(f"{time.time()}\n")
    git(site.infra, "add", "dry-note.txt")
    git(site.infra, "commit", "-qm", "a change the server has not seen")
    commit = git(site.infra, "rev-parse", "HEAD").strip()

    dry = ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", target, "--dry-run"))
    assert f"git push -q --force ship@127.0.0.1:infra {commit}:refs/plano/laptop" in dry.stdout
    assert f"plano deploy app1 --tag {target} --dry-run  # on production (ship@127.0.0.1), in infra" in dry.stdout
    assert f"dry run: nothing was sent to production (ship@127.0.0.1); its infra is at {before[:12]}, not {commit[:12]}" in dry.stderr
    assert site.server.exec("git", "-C", INFRA, "rev-parse", "HEAD", user=USER).stdout.strip() == before
    assert site.server.exec("git", "-C", INFRA, "for-each-ref", user=USER).stdout == refs  # nothing pushed
    assert site.server.exec("git", "-C", INFRA, "cat-file", "-e", commit, user=USER, check=False).returncode != 0
    assert served(site) == version and audit_lines(site) == lines

    ok(laptop(site, "-e", "production", "status"))  # now at this commit: a dry run shows the server's own plan
    lines = audit_lines(site)
    own = ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", target, "--dry-run"))
    assert "detached" not in own.stderr and "dry run: nothing was sent" not in own.stderr
    assert "# append to data/logs/deploys.jsonl: app1-backend" in own.stdout, own.stdout  # the server's plano: its plan
    assert served(site) == version and audit_lines(site) == lines


def test_a_detached_commands_stderr_stays_apart_from_its_stdout(site):
    set_up(site)
    version = served(site)
    target = "1.0.0" if version == {"2.0.0"} else "2.0.0"
    deployed = ok(laptop(site, "-e", "production", "deploy", "app1", "--tag", target))
    assert ", detached" in deployed.stderr
    (before,) = version
    assert deployed.stdout.splitlines() == [f"app1-{role}: {before} -> {target}, done; recorded in .env.prod and "
                                            "data/logs/deploys.jsonl" for role in ("backend", "frontend")]  # its result: stdout
    assert "nginx sends new requests to the new containers" in deployed.stderr  # its progress: stderr
    assert f"app1-backend: {before} -> {target}\n" in deployed.stderr and "done; recorded" not in deployed.stderr
    assert served(site) == {target}
