"""Environments over SSH (`plano -e NAME ...`): plano.yml's environments, the exact ssh
and git command lines, the server scripts' arguments, host keys, and what -e refuses."""

from pathlib import Path

import pytest

from plano.cli.main import main
from plano.cli.server import forwarded
from plano.core import manifest as mf
from plano.core.errors import ManifestError, UsageError
from plano.engine import server as srv
from plano.engine import ssh
from plano.ops import remote
from tests.conftest import manifest_text

REMOTE = ssh.Remote("deploy@srv1.example.com", 2222, Path("/infra/ssh_known_hosts"), Path("/tmp/plano-ssh-0"))
OPTIONS = ["-p", "2222", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", "UserKnownHostsFile=/infra/ssh_known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
           "-o", "UpdateHostKeys=no", "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/plano-ssh-0/%C",
           "-o", "ControlPersist=60", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=10",
           "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
ENVIRONMENTS = """
environments:
  production: {host: deploy@srv1.example.com, port: 2222}
  staging: {host: staging-alias, path: /srv/infra}
"""


# ---------------------------------------------------------------- plano.yml


def test_environments_load_with_their_defaults():
    envs = mf.load_text(manifest_text(extra=ENVIRONMENTS)).environments
    assert envs["production"] == mf.Environment(host="deploy@srv1.example.com", port=2222, path="infra")
    assert envs["staging"] == mf.Environment(host="staging-alias", port=None, path="/srv/infra")
    assert mf.load_text(manifest_text()).environments == {}


@pytest.mark.parametrize(("entry", "error"), [
    ("  Prod: {host: a}", "environments/Prod: 'Prod': environment names are at most 30 lower-case letters"),
    ("  prod: {host: a}", "environments/prod: 'prod' is taken by the local stacks' .env.prod"),
    ("  production: {}", "environments/production: give host (a server plano reaches over SSH) or kubernetes"),
    ("  production: {host: -oProxyCommand=x}", "environments/production/host: '-oProxyCommand=x' is not an SSH host"),
    ("  production: {host: 'a b'}", "environments/production/host: 'a b' is not an SSH host"),
    ("  production: {host: a, port: 0}", "environments/production/port: ports are 1-65535, got 0"),
    ("  production: {host: a, path: 'a:b'}", "environments/production/path: 'a:b' is not a server path"),
    ("  production: {host: a, user: x}", "environments/production/user: unknown key"),
])
def test_a_wrong_environment_is_one_line_with_its_path(entry, error):
    with pytest.raises(ManifestError) as caught:
        mf.load_text(manifest_text(extra=f"environments:\n{entry}\n"))
    assert str(caught.value).startswith(error)
    assert "\n" not in str(caught.value)


def test_an_unknown_environment_is_refused_naming_the_declared_ones():
    manifest = mf.load_text(manifest_text(extra=ENVIRONMENTS))
    with pytest.raises(Exception, match=r"^-e qa: no such environment in plano.yml \(declared: production, staging\)"):
        mf.require_environment(manifest, "qa")


def test_each_environments_secrets_are_git_ignored():
    from plano.render.repo import render

    tree = render(mf.load_text(manifest_text(extra=ENVIRONMENTS)), {})
    assert "/.env.production\n/.env.staging\n" in tree[".gitignore"].content


# ---------------------------------------------------------------- argv


def test_ssh_argv():
    assert ssh.ssh_argv(REMOTE, "true") == ["ssh", *OPTIONS, "-T", "deploy@srv1.example.com", "true"]
    assert ssh.ssh_argv(REMOTE, "true", tty=True)[-3:] == ["-t", "deploy@srv1.example.com", "true"]


def test_without_a_port_ssh_configs_own_applies():
    alias = ssh.Remote("staging-alias", None, Path("/k"), Path("/c"))
    assert ssh.ssh_argv(alias, "true")[:3] == ["ssh", "-o", "BatchMode=yes"]
    assert ssh.resolve_argv(alias) == ["ssh", "-G", "staging-alias"]
    assert ssh.resolve_argv(REMOTE) == ["ssh", "-G", "-p", "2222", "deploy@srv1.example.com"]


def test_a_script_gets_its_arguments_quoted_once():
    argv = ssh.script_argv(REMOTE, srv.RUN, "infra", "deploy", "app1", "--tag", "1.2; rm -rf /")
    assert argv[:-1] == ["ssh", *OPTIONS, "-T", "deploy@srv1.example.com"]
    import shlex

    assert shlex.split(argv[-1]) == ["sh", "-c", srv.RUN, "plano", "infra", "deploy", "app1", "--tag", "1.2; rm -rf /"]


def test_git_push_goes_through_the_same_ssh():
    assert ssh.git_url(REMOTE, "infra") == "deploy@srv1.example.com:infra"
    assert ssh.git_url(REMOTE, "~/infra") == "deploy@srv1.example.com:infra"
    assert ssh.git_url(REMOTE, "/srv/infra") == "deploy@srv1.example.com:/srv/infra"
    import shlex

    assert shlex.split(ssh.git_ssh_command(REMOTE)) == ["ssh", *OPTIONS]


def test_host_key_argv():
    where = ssh.Address("srv1.example.com", 2222, "deploy")
    assert ssh.keyscan_argv(where) == ["ssh-keyscan", "-T", "15", "-p", "2222", "-t", "ed25519,ecdsa,rsa", "srv1.example.com"]
    assert ssh.known_argv(Path("/k"), where) == ["ssh-keygen", "-F", "[srv1.example.com]:2222", "-f", "/k"]
    assert ssh.known_argv(Path("/k"), ssh.Address("srv1", 22, "")) == ["ssh-keygen", "-F", "srv1", "-f", "/k"]
    assert ssh.exit_master_argv(REMOTE) == ["ssh", *OPTIONS, "-O", "exit", "deploy@srv1.example.com"]


def test_ssh_g_output_is_where_ssh_connects():
    text = "user deploy\nhostname 10.0.0.5\nport 2200\nidentityfile ~/.ssh/id_ed25519\n"
    assert ssh.parse_resolved(text) == ssh.Address("10.0.0.5", 2200, "deploy")
    assert ssh.parse_resolved(text).known_hosts_name == "[10.0.0.5]:2200"


def test_a_host_key_alias_is_the_name_the_key_is_trusted_under(tmp_path):
    """HostKeyAlias in the user's ssh config: ssh looks the key up under it, with no port."""
    import subprocess

    (tmp_path / "config").write_text("Host srv1\n  HostName 10.0.0.5\n  Port 2200\n  HostKeyAlias srv1-key\n")
    resolved = subprocess.run(["ssh", "-G", "-F", str(tmp_path / "config"), "srv1"], capture_output=True, text=True,
                              check=True, timeout=20).stdout  # the real ssh's own reading of it
    address = ssh.parse_resolved(resolved)
    assert (address.hostname, address.port, address.alias, address.known_hosts_name) == ("10.0.0.5", 2200, "srv1-key", "srv1-key")
    assert ssh.named("10.0.0.5 ssh-ed25519 AAAAC3Nz\n", address) == ["srv1-key ssh-ed25519 AAAAC3Nz"]
    assert ssh.keyscan_argv(address)[-1] == "10.0.0.5"  # scanned at the real address


def test_a_changed_key_is_told_from_an_unknown_one():
    changed = "@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\n"
    assert ssh.problem(changed) == "changed"
    assert ssh.problem("No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
                       "Host key verification failed.") == "unknown"
    assert ssh.problem("ssh: connect to host x port 22: Connection refused") is None


def test_key_blobs_ignore_the_names():
    known = "[h]:22 ssh-ed25519 AAAA1\n# comment\n"
    assert ssh.key_blobs(known) == ssh.key_blobs("h ssh-ed25519 AAAA1 extra")
    assert ssh.key_lines("# h:22 SSH-2.0\nh ssh-rsa B\nh ssh-ed25519 A\n") == ["h ssh-ed25519 A", "h ssh-rsa B"]


# ---------------------------------------------------------------- the server's answers


def test_the_servers_state_lines():
    state = srv.parse_state("repo=yes\ncommit=abc\nedited=plano.yml\nedited=docker-compose.yml\nplano=s1\ndocker=20.10\ngit=yes\n")
    assert state["edited"] == ["plano.yml", "docker-compose.yml"]
    assert srv.missing_packages(state) == ["python3-venv", "ca-certificates"]
    assert srv.missing_packages({"docker": [""], "git": ["yes"], "venv": ["yes"]}) == ["docker.io", "ca-certificates"]
    assert srv.missing_packages({"docker": ["28"], "git": ["yes"], "venv": ["yes"]}) == []


def test_the_environments_secrets_replace_values_and_keep_the_servers_tags():
    server = "APP1_DB_PASSWORD=old\nAPP1_BACKEND_TAG=1.4.2\n"
    assert remote.merged_env(server, "APP1_DB_PASSWORD=new\nEXTRA=x\n") == (
        "APP1_DB_PASSWORD=new\nAPP1_BACKEND_TAG=1.4.2\nEXTRA=x\n")
    assert remote.merged_env(server, "APP1_DB_PASSWORD=old\n") == server


# ---------------------------------------------------------------- the command line


def test_the_server_gets_the_command_without_the_roots_options():
    assert forwarded(["-e", "production", "deploy", "app1", "--tag", "1", "-e", "x"]) == ["deploy", "app1", "--tag", "1", "-e", "x"]
    assert forwarded(["--environment=production", "-C", "infra", "--accept-host-key", "status", "--json"]) == ["status", "--json"]
    assert forwarded(["-eproduction", "--dir=infra", "--discard-server-edits", "logs"]) == ["logs"]


@pytest.fixture
def infra(workspace):
    (workspace / "plano.yml").write_text(manifest_text(extra=ENVIRONMENTS))
    return workspace


@pytest.mark.parametrize("command", [["render"], ["app", "list"], ["secrets", "status"], ["init", "x", "--registry", "r.example.com/a",
                                                                                        "--email", "a@example.com"]])
def test_commands_about_this_infras_files_refuse_e(infra, capsys, command):
    assert main(["-e", "production", *command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: -e production: plano {command[0]} works on this machine's infra;")
    assert err.count("\n") == 1


def test_an_unknown_environment_on_the_command_line(infra, capsys):
    assert main(["-e", "qa", "status"]) == 2
    assert capsys.readouterr().err == ("error: -e qa: no such environment in plano.yml (declared: production, staging); "
                                       "add it under environments: (see README, 'Remote servers')\n")


def test_server_commands_need_e(infra, capsys):
    assert main(["server", "trust"]) == 2
    assert "which server? give -e NAME" in capsys.readouterr().err


# ---------------------------------------------------------------- the order of a -e command


def test_a_command_with_e_connects_brings_the_infra_to_this_commit_then_runs_detached(infra, monkeypatch):
    import shlex

    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")

    from tests.scripted import Answer, ScriptedRunner, session

    (infra / "ssh_known_hosts").write_text("[srv1.example.com]:2222 ssh-ed25519 AAAA\n")
    target = remote.Server("production", mf.Environment(host="deploy@srv1.example.com", port=2222),
                           ssh.Remote("deploy@srv1.example.com", 2222, infra / "ssh_known_hosts", remote.control_dir()))

    def script(text: str, *args: str) -> str:
        return shlex.join(["sh", "-c", text, "plano", *args])

    commit = "c0ffee" * 6 + "abcd"
    runner = (ScriptedRunner()
              .query("ssh", "-G", answers=Answer(0, "user deploy\nhostname srv1.example.com\nport 2222\n"))
              .query("ssh-keygen", "-F", answers=Answer(0, "[srv1.example.com]:2222 ssh-ed25519 AAAA\n"))
              .query("deploy@srv1.example.com", "true")
              .query(script(srv.STATE, "infra"), answers=Answer(0, "repo=yes\ncommit=old\nplano=s1\ndocker=28\ngit=yes\nvenv=yes\n"))
              .query("git", "rev-parse", "--show-toplevel", answers=Answer(0, f"{infra}\n"))
              .query("git", "rev-parse", "-q", answers=Answer(0, f"{commit}\n"))
              .query("git", "status", answers=Answer(0, ""))
              .on("git", "push")
              .on(script(srv.CHECKOUT, "infra", commit, ""))
              .on(script(srv.RUN_DETACHED, "infra", "alice", "laptop-7", "deploy", "app1", "--tag", "2")))
    code = remote.forward(session(infra, runner), "production", ["deploy", "app1", "--tag", "2"])
    assert code == 0
    ssh_cmd = ["ssh", *ssh.options(target.remote)]
    assert [call.argv for call in runner.calls] == [
        ["ssh", "-G", "-p", "2222", "deploy@srv1.example.com"],
        ["ssh-keygen", "-F", "[srv1.example.com]:2222", "-f", str(infra / "ssh_known_hosts")],
        [*ssh_cmd, "-T", "deploy@srv1.example.com", "true"],
        [*ssh_cmd, "-T", "deploy@srv1.example.com", script(srv.STATE, "infra")],
        ["git", "rev-parse", "--show-toplevel"], ["git", "rev-parse", "-q", "--verify", "HEAD^{commit}"],
        ["git", "status", "--porcelain", "--untracked-files=no"],
        ["git", "push", "-q", "--force", "deploy@srv1.example.com:infra", f"{commit}:refs/plano/laptop"],
        [*ssh_cmd, "-T", "deploy@srv1.example.com", script(srv.CHECKOUT, "infra", commit, "")],
        [*ssh_cmd, "-T", "deploy@srv1.example.com", script(srv.RUN_DETACHED, "infra", "alice", "laptop-7", "deploy", "app1", "--tag", "2")],
    ]
    push = runner.calls[7]
    assert push.env == {"GIT_SSH_COMMAND": ssh.git_ssh_command(target.remote)}
    assert runner.calls[-1].streamed


def test_server_edits_are_refused_before_anything_is_pushed(infra):
    from tests.scripted import Answer, ScriptedRunner, session

    runner = (ScriptedRunner()
              .query("git", "rev-parse", "--show-toplevel", answers=Answer(0, f"{infra}\n"))
              .query("git", "rev-parse", "-q", answers=Answer(0, "abc\n"))
              .query("git", "status", answers=Answer(0, "")))
    target = remote.server(session(infra, runner), "production")
    with pytest.raises(Exception, match=r"^production \(deploy@srv1.example.com\): docker-compose.yml, plano.yml changed by "
                                        r"hand on the server \(infra\); .* --discard-server-edits to overwrite$"):
        remote.sync(session(infra, runner), target, {"repo": ["yes"], "commit": ["old"], "edited": ["docker-compose.yml", "plano.yml"]})
    assert runner.actions == []


# ---------------------------------------------------------------- status --all-environments


def test_every_environments_status_one_unreachable_does_not_stop_the_others(infra, monkeypatch):
    import json
    import shlex

    from tests.scripted import Answer, ScriptedRunner, session

    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    (infra / "ssh_known_hosts").write_text("[srv1.example.com]:2222 ssh-ed25519 AAAA\n")
    report = {"apps": [{"service": "app1-backend", "state": "running"}, {"service": "app1-frontend", "state": "exited"}],
              "infra": [{"service": "nginx", "state": "running"}], "problems": [{"service": "app1-frontend", "state": "exited"}]}
    status_script = shlex.join(["sh", "-c", srv.RUN, "plano", "infra", "alice", "laptop-7", "status", "--json"])
    runner = (ScriptedRunner()
              .query("git", "rev-parse", "-q", answers=Answer(0, "abc\n"))
              .query("ssh", "-G", "-p", "2222", answers=Answer(0, "hostname srv1.example.com\nport 2222\n"))
              .query("ssh", "-G", "staging-alias", answers=Answer(255, "", "ssh: Could not resolve hostname staging-alias"))
              .query("ssh-keygen", "-F", answers=Answer(0, "[srv1.example.com]:2222 ssh-ed25519 AAAA\n"))
              .query("deploy@srv1.example.com", "true")
              .query("deploy@srv1.example.com", shlex.join(["sh", "-c", srv.STATE, "plano", "infra"]),
                     answers=Answer(0, "repo=yes\ncommit=abc\nplano=s1\n"))
              .query("deploy@srv1.example.com", status_script, answers=Answer(1, json.dumps(report))))
    production, staging = remote.statuses(session(infra, runner))
    assert production == remote.EnvironmentStatus("production", "deploy@srv1.example.com", "problems", "app1-frontend exited", "abc",
                                                  True, 1, report)
    assert staging == remote.EnvironmentStatus("staging", "staging-alias", "unreachable",
                                               "environments/staging/host: ssh cannot use it: ssh: Could not resolve hostname "
                                               "staging-alias", "", None, None, None)
    assert runner.actions == []  # a look changes nothing: no push, no checkout
    assert runner.calls[-2].argv[-1] == status_script  # production asked in full before staging


def test_status_of_every_environment_on_the_command_line(infra, capsys):
    assert main(["-e", "production", "status", "--all-environments"]) == 2
    assert "run it without -e" in capsys.readouterr().err
    (infra / "plano.yml").write_text(manifest_text())
    assert main(["status", "--all-environments"]) == 2
    assert "plano.yml declares no environments" in capsys.readouterr().err
    (infra / "plano.yml").write_text(manifest_text(extra="environments:\n  staging: {kubernetes: {}}\n"))
    assert main(["status", "--all-environments"]) == 2
    assert "plano.yml declares no environments with a host" in capsys.readouterr().err


def test_a_kubernetes_only_environment_has_no_server_and_no_row_in_every_environments_status(infra):
    from tests.scripted import Answer, ScriptedRunner, session

    (infra / "plano.yml").write_text(manifest_text(extra="environments:\n  staging: {kubernetes: {}}\n"))
    runner = ScriptedRunner().query("git", "rev-parse", "-q", answers=Answer(0, "abc\n"))
    made = session(infra, runner)
    assert remote.statuses(made) == []
    with pytest.raises(UsageError, match=r"^-e staging: environments/staging/host: not set; staging is a Kubernetes namespace only"):
        remote.server(made, "staging")
    assert [c.argv[:2] for c in runner.calls] == [["git", "rev-parse"]]


def test_ci_deploy_names_a_declared_environment():
    assert mf.load_text(manifest_text(1, ENVIRONMENTS).replace("    domains:", "    ci_deploy: staging\n    domains:", 1)
                        ).apps["app1"].ci_deploy == "staging"
    with pytest.raises(ManifestError, match=r"^apps/app1/ci_deploy: 'qa' is not an environment of plano.yml \(declared: production, "
                                            r"staging\); add it under environments:$"):
        mf.load_text(manifest_text(1, ENVIRONMENTS).replace("    domains:", "    ci_deploy: qa\n    domains:", 1))


# ---------------------------------------------------------------- the deploy user


def test_a_deploy_user_is_who_every_command_but_setups_admin_steps_connects_as(infra):
    from tests.scripted import ScriptedRunner, session

    text = manifest_text(extra=ENVIRONMENTS.replace("port: 2222}", "port: 2222, deploy_user: ship}")
                         .replace("path: /srv/infra}", "path: /srv/infra, deploy_user: ship}"))
    envs = mf.load_text(text).environments
    assert envs["production"].login_host == "ship@srv1.example.com"
    assert envs["staging"].login_host == "ship@staging-alias"  # the alias's own settings apply; the user is ship
    assert mf.load_text(manifest_text(extra=ENVIRONMENTS)).environments["production"].login_host == "deploy@srv1.example.com"
    (infra / "plano.yml").write_text(text)
    made = session(infra, ScriptedRunner())
    assert remote.server(made, "production").remote.host == "ship@srv1.example.com"
    assert remote.server(made, "production", admin=True).remote.host == "deploy@srv1.example.com"
    assert remote.server(made, "production").shown == "production (ship@srv1.example.com)"


@pytest.mark.parametrize(("value", "error"), [
    ("root", "environments/production/deploy_user: 'root' is not a deploy user; name an account of its own"),
    ("Ship", "environments/production/deploy_user: 'Ship' is not a user name plano can create"),
    ("a b", "environments/production/deploy_user: 'a b' is not a user name plano can create"),
])
def test_a_wrong_deploy_user_is_one_line(value, error):
    with pytest.raises(ManifestError) as caught:
        mf.load_text(manifest_text(extra=f"environments:\n  production: {{host: a, deploy_user: '{value}'}}\n"))
    assert str(caught.value).startswith(error)


def test_the_deploy_user_is_made_as_root_with_the_public_key_on_stdin(infra, tmp_path):
    import shlex

    from tests.scripted import Answer, ScriptedRunner, session

    runner = ScriptedRunner().on("deploy@srv1.example.com", answers=Answer(0, "done=made the system user ship, in the docker group\nhome=/home/ship\n"
                                                      "kept=its sudo rule (plano only)\ninfra=/home/ship/infra\n"))
    made = session(infra, runner)
    admin = remote.server(made, "production", admin=True)
    result = remote.SetupResult()
    assert remote.make_deploy_user(made, admin, "ship", "ssh-ed25519 AAAAC3 ci@example", result) == "/home/ship/infra"
    assert result.done == ["made the system user ship, in the docker group"] and result.kept == ["its sudo rule (plano only)"]
    (call,) = runner.calls
    assert call.argv[:-1] == ["ssh", *ssh.options(admin.remote), "-T", "deploy@srv1.example.com"]
    assert shlex.split(call.argv[-1]) == ["sh", "-c", srv.ROOT_SCRIPT, "plano", srv.DEPLOY_USER, "ship", "infra"]
    assert call.stdin == "ssh-ed25519 AAAAC3 ci@example\n"


def test_the_deploy_key_is_a_public_key_line_never_a_private_key(infra, tmp_path):
    from plano.core.errors import UsageError
    from tests.scripted import Answer, ScriptedRunner, session

    made = session(infra, ScriptedRunner().query("ssh-add", "-L", answers=Answer(0, "ssh-ed25519 AAAA1 a\nssh-rsa BBBB b\n")))
    assert remote.public_key(made, None) == "ssh-ed25519 AAAA1 a"  # the agent's first key
    given = tmp_path / "ci.pub"
    given.write_text("ssh-ed25519  AAAA2   ci key\n")
    assert remote.public_key(made, given) == "ssh-ed25519 AAAA2 ci key"
    private = tmp_path / "ci"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(UsageError, match=r"^--deploy-key .*/ci: that is a private key; give its public key \(PATH.pub\)"):
        remote.public_key(made, private)
    empty = session(infra, ScriptedRunner().query("ssh-add", "-L", answers=Answer(1, "The agent has no identities.")))
    with pytest.raises(UsageError, match=r"your ssh agent has none \(The agent has no identities.\); give --deploy-key PATH.pub$"):
        remote.public_key(empty, None)


# ---------------------------------------------------------------- host keys through a jump host


def test_first_contact_argv():
    assert ssh.first_contact_argv(REMOTE, Path("/tmp/plano-hostkey-x/known_hosts")) == [
        "ssh", "-p", "2222", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
        "-o", "UserKnownHostsFile=/tmp/plano-hostkey-x/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no", "-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "ControlMaster=no",
        "-o", "ControlPath=none", "-o", "PreferredAuthentications=none", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR",
        "-T", "deploy@srv1.example.com", "true"]


def test_ssh_g_tells_a_server_behind_a_jump_host():
    assert ssh.parse_resolved("hostname 10.0.0.5\nport 22\nproxyjump bastion\n").proxied
    assert ssh.parse_resolved("hostname 10.0.0.5\nproxycommand nc %h %p\n").proxied
    assert not ssh.parse_resolved("hostname 10.0.0.5\nproxyjump none\n").proxied
    assert not ssh.parse_resolved("hostname 10.0.0.5\nproxyusefdpass no\n").proxied
    where = ssh.Address("10.0.0.5", 2222, "deploy", True)
    assert ssh.named("|1|hashed= ssh-ed25519 AAAA1\n10.0.0.5 ssh-rsa BBBB\n", where) == [
        "[10.0.0.5]:2222 ssh-ed25519 AAAA1", "[10.0.0.5]:2222 ssh-rsa BBBB"]


def test_behind_a_jump_host_the_key_comes_from_a_first_contact_then_is_trusted_as_a_scanned_one(infra):
    from tests.scripted import Answer, ScriptedRunner, session

    class FirstContact(ScriptedRunner):
        """ssh's first contact as ssh does it: the offered key into the scratch file it is given."""

        def run(self, argv, cwd=None, timeout=None, stdin=None, env=None):
            got = super().run(argv, cwd, timeout, stdin, env)
            if "PreferredAuthentications=none" in argv:
                scratch = next(a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile="))
                Path(scratch).write_text("[10.0.0.5]:2222 ssh-ed25519 AAAAINNER\n")
            return got

    runner = (FirstContact()
              .query("ssh", "-G", answers=Answer(0, "user deploy\nhostname 10.0.0.5\nport 2222\nproxyjump bastion\n"))
              .query("PreferredAuthentications=none", answers=Answer(255, "", "deploy@10.0.0.5: Permission denied (publickey)."))
              .query("ssh-keygen", "-l", answers=Answer(0, "256 SHA256:inner [10.0.0.5]:2222 (ED25519)\n")))
    made = session(infra, runner)
    target = remote.server(made, "production")
    with pytest.raises(Exception, match=r"offers SHA256:inner \(ED25519\), not SHA256:other; do not trust it"):
        remote.trust(made, target, "SHA256:other")
    assert not (infra / "ssh_known_hosts").exists()
    assert remote.trust(made, target, "SHA256:inner") == (True, ["SHA256:inner (ED25519)"])
    assert (infra / "ssh_known_hosts").read_text() == "[10.0.0.5]:2222 ssh-ed25519 AAAAINNER\n"
    contact = next(call for call in runner.calls if "PreferredAuthentications=none" in call.argv)
    scratch = next(a.split("=", 1)[1] for a in contact.argv if a.startswith("UserKnownHostsFile="))
    assert contact.argv == ssh.first_contact_argv(target.remote, Path(scratch))
    assert not Path(scratch).exists()  # the scratch folder is gone
    assert not any(call.argv[0] == "ssh-keyscan" for call in runner.calls)


# ---------------------------------------------------------------- --dry-run with -e


def dry_runner(infra: Path, server_commit: str, commit: str):
    import shlex

    from tests.scripted import Answer, ScriptedRunner

    (infra / "ssh_known_hosts").write_text("[srv1.example.com]:2222 ssh-ed25519 AAAA\n")
    return (ScriptedRunner()
            .query("ssh", "-G", answers=Answer(0, "user deploy\nhostname srv1.example.com\nport 2222\n"))
            .query("ssh-keygen", "-F", answers=Answer(0, "[srv1.example.com]:2222 ssh-ed25519 AAAA\n"))
            .query("deploy@srv1.example.com", "true")
            .query("deploy@srv1.example.com", shlex.join(["sh", "-c", srv.STATE, "plano", "infra"]),
                   answers=Answer(0, f"repo=yes\ncommit={server_commit}\nplano=s1\n"))
            .query("git", "rev-parse", "--show-toplevel", answers=Answer(0, f"{infra}\n"))
            .query("git", "rev-parse", "-q", answers=Answer(0, f"{commit}\n"))
            .query("git", "status", answers=Answer(0, "")))


def test_a_dry_run_with_e_sends_nothing_to_a_server_at_another_commit(infra, monkeypatch):
    import shlex

    from tests.scripted import session

    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    commit = "c0ffee" * 6 + "abcd"
    runner = dry_runner(infra, "0ld" * 13 + "0", commit)
    made = session(infra, runner)
    args = ["deploy", "app1", "--tag", "2", "--dry-run"]
    assert remote.forward(made, "production", args) == 0
    assert runner.actions == []  # no push, no checkout, no plano run there
    options = ssh.options(remote.server(made, "production").remote)
    run = shlex.join(["ssh", *options, "-T", "deploy@srv1.example.com",
                      shlex.join(["sh", "-c", srv.RUN, "plano", "infra", "alice", "laptop-7", *args])])
    assert made.out.plans == [
        f"git push -q --force deploy@srv1.example.com:infra {commit}:refs/plano/laptop",
        shlex.join(["ssh", *options, "-T", "deploy@srv1.example.com", shlex.join(["sh", "-c", srv.CHECKOUT, "plano", "infra", commit, ""])]),
        "plano deploy app1 --tag 2 --dry-run  # on production (deploy@srv1.example.com), in infra"]
    assert run not in made.out.plans  # shown as the command, not as its ssh line
    assert made.out.notes[-1].startswith("dry run: nothing was sent to production (deploy@srv1.example.com); its infra is at 0ld0ld0ld0ld, "
                                         "not c0ffeec0ffee")


def test_a_dry_run_with_e_on_a_server_at_this_commit_is_the_servers_own_attached(infra, monkeypatch):
    import shlex

    from tests.scripted import session

    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    commit = "c0ffee" * 6 + "abcd"
    args = ["deploy", "app1", "--tag", "2", "--dry-run"]
    runner = dry_runner(infra, commit, commit).on(shlex.join(["sh", "-c", srv.RUN, "plano", "infra", "alice", "laptop-7", *args]))
    made = session(infra, runner)
    assert remote.forward(made, "production", args) == 0
    options = ssh.options(remote.server(made, "production").remote)
    assert runner.actions == [["ssh", *options, "-T", "deploy@srv1.example.com",
                               shlex.join(["sh", "-c", srv.RUN, "plano", "infra", "alice", "laptop-7", *args])]]
    assert made.out.plans == []


def test_the_dashboard_with_e_runs_the_servers_own_through_a_forwarded_port_then_removes_the_forward(infra, monkeypatch):
    import shlex

    from tests.scripted import Answer, ScriptedRunner, session

    monkeypatch.setenv("PLANO_USER", "alice")
    monkeypatch.setenv("PLANO_HOST", "laptop-7")
    (infra / "ssh_known_hosts").write_text("[srv1.example.com]:2222 ssh-ed25519 AAAA\n")
    commit = "c0ffee" * 6 + "abcd"

    def script(text: str, *args: str) -> str:
        return shlex.join(["sh", "-c", text, "plano", *args])

    runner = (ScriptedRunner()
              .query("ssh", "-G", answers=Answer(0, "user deploy\nhostname srv1.example.com\nport 2222\n"))
              .query("ssh-keygen", "-F", answers=Answer(0, "[srv1.example.com]:2222 ssh-ed25519 AAAA\n"))
              .query("deploy@srv1.example.com", "true")
              .query(script(srv.STATE, "infra"), answers=Answer(0, f"repo=yes\ncommit={commit}\nplano=s1\n"))
              .query("git", "rev-parse", "--show-toplevel", answers=Answer(0, f"{infra}\n"))
              .query("git", "rev-parse", "-q", answers=Answer(0, f"{commit}\n"))
              .query("git", "status", answers=Answer(0, ""))
              .query("-O", "cancel")
              .on("ExitOnForwardFailure=yes", answers=Answer(130)))
    made = session(infra, runner)
    assert remote.dashboard(made, "production", 8801) == 130  # ctrl-c
    options = ssh.options(remote.server(made, "production").remote)
    assert [call.argv for call in runner.calls][-2:] == [
        ["ssh", *options, "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:8801:127.0.0.1:8801", "-T",
         "deploy@srv1.example.com", script(srv.RUN, "infra", "alice", "laptop-7", "dashboard", "--port", "8801", "--until-eof")],
        ["ssh", *options, "-O", "cancel", "-L", "127.0.0.1:8801:127.0.0.1:8801", "deploy@srv1.example.com"],
    ]
    assert runner.calls[-2].streamed and not any("push" in call.argv for call in runner.calls)
    assert made.out.notes[-2] == "plano dashboard of production (deploy@srv1.example.com): http://127.0.0.1:8801/ (ctrl-c stops it, here and there)"


@pytest.mark.parametrize("uid", [0, 65534])
def test_the_packages_are_installed_as_root_without_sudo_when_the_login_is_root(uid):
    """A fresh server often has root only, and no sudo: its login installs the packages
    itself; any other login goes through sudo -n (run here for real with stand-in
    apt-get, sudo and usermod that write down how they were called)."""
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile

    if os.getuid() != 0:
        pytest.skip("needs root to play both logins (the suite runs as root: scripts/test.sh)")
    base = Path(tempfile.mkdtemp(prefix="plano-packages-"))  # not under pytest's 0700 folders: the other login reads it
    try:
        base.chmod(0o755)
        bin_dir, log = base / "bin", base / "calls.log"
        bin_dir.mkdir()
        log.touch(mode=0o666)
        log.chmod(0o666)
        for tool, then in (("apt-get", ""), ("usermod", ""), ("sudo", 'shift; exec "$@"')):
            (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n{then}\n')
            (bin_dir / tool).chmod(0o755)
        as_user = [] if uid == 0 else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        done = subprocess.run([*as_user, "sh", "-c", srv.INSTALL_PACKAGES, "plano", "docker.io", "git"], check=False,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(base)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        calls = log.read_text().splitlines()
    finally:
        shutil.rmtree(base)
    install = "apt-get install -y -q --no-install-recommends docker.io git"
    if uid == 0:
        assert calls == ["apt-get update -q", install]
    else:
        user = pwd.getpwuid(uid).pw_name
        assert calls == ["sudo -n apt-get update -q", "apt-get update -q",
                         f"sudo -n env DEBIAN_FRONTEND=noninteractive {install}", install,
                         f"sudo -n usermod -aG docker {user}", f"usermod -aG docker {user}"]
