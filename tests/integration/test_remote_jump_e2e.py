"""A server behind a jump host, for real: two test servers (sshservers) on the test's
network, the inner one publishing nothing (reached only through the outer one), and the
laptop's ssh configured as a user's would be (`ProxyJump` in its config; the test gives
it with `ssh -F`, through an `ssh` first on the laptop's PATH, since ssh reads the
passwd entry's ~/.ssh/config, not $HOME's). ssh-keyscan cannot go through the jump
host: the inner server's key comes from a first contact through it, is shown with its
fingerprint (the inner server's real key) before it is trusted, a wrong --fingerprint
is refused, a trusted key then lets `-e` commands connect with strict checking through
the jump host, and a changed key is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.sshservers import Server, servers
from tests.integration.stackfixtures import REGISTRY, plano

pytestmark = pytest.mark.expected_seconds(60)  # on a 2-core machine


def ssh_client(folder: Path, outer: Server, inner: Server) -> dict[str, str]:
    """The laptop's environment: an `ssh` that reads the test's config (the jump host's own
    key checked against a known_hosts of the test's), and the test's agent."""
    scanned = subprocess.run(["ssh-keyscan", "-p", str(outer.ssh_port), "127.0.0.1"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    (folder / "jump_known_hosts").write_text(scanned)
    config = folder / "laptop_ssh_config"
    config.write_text(f"Host jump\n  HostName 127.0.0.1\n  Port {outer.ssh_port}\n  User deploy\n  IdentityFile {outer.key}\n"
                      f"  IdentitiesOnly yes\n  UserKnownHostsFile {folder / 'jump_known_hosts'}\n  StrictHostKeyChecking yes\n"
                      f"  BatchMode yes\n"
                      f"Host inner\n  HostName {inner.name}\n  User deploy\n  IdentityFile {inner.key}\n  IdentitiesOnly yes\n"
                      "  ProxyJump jump\n  HostKeyAlias staging-inner\n")  # ssh looks its key up under this name
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\ncase " $* " in *" -F "*) exec /usr/bin/ssh "$@" ;; esac\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, **outer.ssh_env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NO_COLOR": "1", "COLUMNS": "200"}


@pytest.fixture(scope="module")
def jump(tmp_path_factory, engine):
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("jump")
    plano("init", "infra", "--name", name, "--registry", f"{REGISTRY}/{name}", "--email", "ops@example.com", cwd=root)
    infra = root / "infra"
    with (infra / "plano.yml").open("a") as manifest:
        manifest.write("environments:\n  staging:\n    host: inner\n")
    with servers(f"{name}-jmp", count=2, hidden=(1,)) as (outer, inner):
        yield infra, outer, inner, ssh_client(root, outer, inner)


def laptop(infra: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "plano.cli", *args], cwd=infra, capture_output=True, text=True, check=False,
                          timeout=120, env=env)


def fingerprint(server: Server) -> str:
    """The server's own ed25519 key, as ssh-keygen -l shows it: SHA256:..."""
    return server.exec("ssh-keygen", "-l", "-f", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]


def test_a_server_behind_a_jump_host_is_shown_trusted_and_reached_through_it(jump):
    infra, outer, inner, env = jump
    assert inner.ssh_port == 0 and not inner.ports  # nothing published: only the jump host reaches it
    resolved = subprocess.run(["ssh", "-G", "inner"], capture_output=True, text=True, env=env, check=True).stdout
    assert "proxyjump jump" in resolved.splitlines()

    refused = laptop(infra, env, "-e", "staging", "status")
    assert refused.returncode == 3, refused.stderr
    inner_key = fingerprint(inner)
    assert f"its SSH host key is not trusted yet ({inner_key} (ED25519))" in refused.stderr, refused.stderr
    assert inner_key != fingerprint(outer)

    wrong = laptop(infra, env, "-e", "staging", "server", "trust", "--fingerprint", fingerprint(outer))
    assert wrong.returncode == 3 and f"the server offers {inner_key} (ED25519), not {fingerprint(outer)}" in wrong.stderr
    assert not (infra / "ssh_known_hosts").exists()

    trusted = laptop(infra, env, "-e", "staging", "server", "trust", "--fingerprint", inner_key)
    assert trusted.returncode == 0, trusted.stderr
    assert f"  {inner_key} (ED25519)" in trusted.stdout and "staging: trusted now" in trusted.stdout
    blob = inner.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
    assert (infra / "ssh_known_hosts").read_text() == f"staging-inner ssh-ed25519 {blob}\n"  # its HostKeyAlias
    assert not any(Path(p).name.startswith("plano-hostkey-") for p in os.listdir("/tmp"))  # the scratch folder is gone

    # Trusted: -e connects (strict checking, through the jump host), reads the server's state, and says what is missing.
    reached = laptop(infra, env, "-e", "staging", "status")
    assert reached.returncode == 2, reached.stderr
    assert reached.stderr == ("error: staging (inner): plano is not installed there yet; run plano server setup -e staging\n")

    # A reinstalled inner server: refused in one line, through the jump host as well.
    from plano.engine import ssh
    from plano.ops.remote import control_dir

    remote = ssh.Remote("inner", None, infra / "ssh_known_hosts", control_dir())
    subprocess.run(ssh.exit_master_argv(remote), capture_output=True, timeout=20, check=False, env=env)
    inner.new_host_keys()
    changed = laptop(infra, env, "-e", "staging", "status")
    assert changed.returncode == 3 and "host key CHANGED since it was trusted: refused" in changed.stderr, changed.stderr
    assert changed.stderr.count("\n") == 1
    assert laptop(infra, env, "-e", "staging", "server", "trust").returncode == 3
