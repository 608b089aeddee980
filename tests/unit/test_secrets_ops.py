"""`plano secrets` operations against a scripted runner: the exact sops commands, the
files written (atomically, with their modes), the refusals, and no value on a command line."""

import stat
from pathlib import Path

import pytest

from plano.core.errors import BAD_INPUT, ENVIRONMENT, REFUSED, PlanoError
from plano.core.files import tree_digest
from plano.engine import sops
from plano.ops import secrets
from tests.scripted import Answer, ScriptedRunner, session

PLAIN = "# Secrets for the prod stack\nPOSTGRES_PASSWORD=pg-secret-value-0123456789\nAPP1_TAG=latest\n"
RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
ENCRYPTED = ("#ENC[AES256_GCM,data:3v4=,type:comment]\nPOSTGRES_PASSWORD=ENC[AES256_GCM,data:vQ==,type:str]\n"
             "APP1_TAG=ENC[AES256_GCM,data:Fp==,type:str]\n"
             f"sops_age__list_0__map_recipient={RECIPIENT}\nsops_version=3.11.0\n")


@pytest.fixture
def infra(tmp_path, monkeypatch):
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "home/.config/sops/age/keys.txt"))
    root = tmp_path / "infra"
    root.mkdir()
    return root


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def with_config(root: Path, *recipients: str) -> None:
    (root / ".sops.yaml").write_text(secrets.config_text(sops.with_recipients({}, list(recipients or [RECIPIENT]))))


def key_file(root: Path) -> Path:
    return root.parent / "home/.config/sops/age/keys.txt"


def test_init_makes_a_private_key_once_and_a_sops_yaml(infra):
    runner = ScriptedRunner()  # init runs nothing
    made = secrets.init(session(infra, runner), [RECIPIENT])
    key = key_file(infra)
    assert made.key_created and made.key_file == str(key) and made.config_written
    assert mode_of(key) == 0o600 and mode_of(key.parent) == 0o700 and mode_of(key.parent.parent) == 0o700
    assert sops.public_keys(key.read_text()) == [made.public_key]
    assert made.recipients == [made.public_key, RECIPIENT]
    assert (infra / ".sops.yaml").read_text() == (
        secrets.CONFIG_HEADER + "creation_rules:\n"
        f"- path_regex: \\.env\\.(prod|dev)\\.enc$\n  age: {made.public_key},{RECIPIENT}\n")
    before = key.read_text()
    again = secrets.init(session(infra, runner), [])
    assert not again.key_created and not again.config_written and again.public_key == made.public_key
    assert key.read_text() == before and runner.calls == []


def test_init_keeps_other_rules_and_adds_a_teammate(infra):
    (infra / ".sops.yaml").write_text("creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    pgp: ABC\n")
    made = secrets.init(session(infra, ScriptedRunner()), [])
    teammate = sops.new_identity()[1]
    secrets.init(session(infra, ScriptedRunner()), [teammate])
    assert secrets.read_config(infra / ".sops.yaml") == {"creation_rules": [
        {"path_regex": sops.RULE_REGEX, "age": f"{made.public_key},{teammate}"},
        {"path_regex": "secrets/.*\\.yaml$", "pgp": "ABC"}]}


def test_init_refuses_a_bad_recipient_before_writing_anything(infra):
    before = tree_digest(infra.parent)
    with pytest.raises(PlanoError) as bad:
        secrets.init(session(infra, ScriptedRunner()), [RECIPIENT, "age1nope"])
    assert bad.value.exit_code == BAD_INPUT and str(bad.value).startswith("--recipient 'age1nope': not an age public key")
    assert tree_digest(infra.parent) == before and not key_file(infra).exists()


def test_init_refuses_a_key_file_without_an_identity(infra):
    key_file(infra).parent.mkdir(parents=True)
    key_file(infra).write_text("# my notes\n")
    with pytest.raises(PlanoError) as refused:
        secrets.init(session(infra, ScriptedRunner()), [])
    assert refused.value.exit_code == REFUSED
    assert str(refused.value) == (f"{key_file(infra)}: holds no age identity (AGE-SECRET-KEY-1...); fix or move that file, "
                                  "or set SOPS_AGE_KEY_FILE to another path")
    assert key_file(infra).read_text() == "# my notes\n" and not (infra / ".sops.yaml").exists()


def test_encrypt_runs_sops_on_paths_and_writes_its_output(infra):
    with_config(infra)
    (infra / ".env.prod").write_text(PLAIN)
    runner = ScriptedRunner().on("encrypt", answers=Answer(0, ENCRYPTED))
    done = secrets.encrypt(session(infra, runner), ".env.prod")
    assert done == secrets.Written(".env.prod.enc", True)
    assert runner.actions == [[sops.find_binary(), "--config", str(infra / ".sops.yaml"), "encrypt", "--input-type", "dotenv",
                               "--output-type", "dotenv", "--filename-override", ".env.prod.enc", str(infra / ".env.prod")]]
    assert runner.calls[0].stdin is None
    assert (infra / ".env.prod.enc").read_text() == ENCRYPTED and mode_of(infra / ".env.prod.enc") == 0o644


def test_encrypt_keeps_an_encrypted_file_that_holds_the_same_values(infra):
    with_config(infra)
    (infra / ".env.prod").write_text(PLAIN)
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    runner = ScriptedRunner().on("decrypt", answers=Answer(0, PLAIN))
    assert secrets.encrypt(session(infra, runner), ".env.prod") == secrets.Written(".env.prod.enc", False)
    assert [argv[3] for argv in runner.actions] == ["decrypt"]
    # a recipient added to .sops.yaml: encrypted again, for both
    teammate = sops.new_identity()[1]
    with_config(infra, RECIPIENT, teammate)
    runner = ScriptedRunner().on("encrypt", answers=Answer(0, ENCRYPTED + f"sops_age__list_1__map_recipient={teammate}\n"))
    assert secrets.encrypt(session(infra, runner), ".env.prod").changed
    assert [argv[3] for argv in runner.actions] == ["encrypt"]


def test_encrypt_needs_the_plain_file_and_a_recipient(infra):
    with pytest.raises(PlanoError) as missing:
        secrets.encrypt(session(infra, ScriptedRunner()), ".env.dev")
    assert missing.value.exit_code == ENVIRONMENT
    assert str(missing.value) == (f".env.dev: not found in {infra}; run 'plano render' (it generates it) "
                                  "or 'plano secrets decrypt --dev'")
    (infra / ".env.dev").write_text(PLAIN)
    with pytest.raises(PlanoError) as no_config:
        secrets.encrypt(session(infra, ScriptedRunner()), ".env.dev")
    assert str(no_config.value) == ".sops.yaml: no age recipient for .env.dev.enc; run 'plano secrets init' first"


def test_a_failed_encryption_writes_nothing(infra):
    with_config(infra)
    (infra / ".env.prod").write_text(PLAIN)
    runner = ScriptedRunner().on("encrypt", answers=Answer(1, "", "error loading config: no matching creation rules found\n"))
    with pytest.raises(PlanoError) as failed:
        secrets.encrypt(session(infra, runner), ".env.prod")
    assert str(failed.value) == (".env.prod: sops could not encrypt it: error loading config: no matching creation rules found; "
                                 "check .sops.yaml (plano secrets init rewrites it)")
    assert not (infra / ".env.prod.enc").exists()


def test_decrypt_writes_a_private_plain_file(infra):
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    key_file(infra).parent.mkdir(parents=True)
    key_file(infra).write_text("AGE-SECRET-KEY-1X\n")
    runner = ScriptedRunner().on("decrypt", answers=Answer(0, PLAIN))
    assert secrets.decrypt(session(infra, runner), ".env.prod") == secrets.Written(".env.prod", True)
    assert (infra / ".env.prod").read_text() == PLAIN and mode_of(infra / ".env.prod") == 0o600
    assert runner.calls[0].argv == [sops.find_binary(), "--config", str(infra / ".sops.yaml"), "decrypt",
                                    "--input-type", "dotenv", "--output-type", "dotenv", str(infra / ".env.prod.enc")]
    assert runner.calls[0].env == {"SOPS_AGE_KEY_FILE": str(key_file(infra))}
    assert secrets.decrypt(session(infra, runner), ".env.prod") == secrets.Written(".env.prod", False)


def test_decrypt_refuses_to_drop_values_only_the_plain_file_has(infra):
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    mine = PLAIN.replace("pg-secret-value-0123456789", "pg-newer-value-9876543210") + "EXTRA=kept-value\n"
    (infra / ".env.prod").write_text(mine)
    runner = ScriptedRunner().on("decrypt", answers=Answer(0, PLAIN))
    with pytest.raises(PlanoError) as refused:
        secrets.decrypt(session(infra, runner), ".env.prod")
    assert refused.value.exit_code == REFUSED
    assert str(refused.value) == (".env.prod: has values .env.prod.enc lacks (EXTRA, POSTGRES_PASSWORD); "
                                  "run 'plano secrets encrypt' to keep them, or add --force to drop them")
    assert "value" not in str(refused.value).replace("values", "")
    assert (infra / ".env.prod").read_text() == mine
    secrets.decrypt(session(infra, runner), ".env.prod", force=True)
    assert (infra / ".env.prod").read_text() == PLAIN


def test_decrypt_without_the_key_is_one_line_and_writes_nothing(infra):
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    failure = "Failed to get the data key required to decrypt the SOPS file.\n\nGroup 0: FAILED\n  age1...: FAILED\n"
    runner = ScriptedRunner().on("decrypt", answers=Answer(128, "", failure))
    with pytest.raises(PlanoError) as no_key:
        secrets.decrypt(session(infra, runner), ".env.prod")
    assert no_key.value.exit_code == ENVIRONMENT and "\n" not in str(no_key.value)
    assert str(no_key.value).startswith(f".env.prod.enc: no age key here can decrypt it (looked in {key_file(infra)}); ")
    assert runner.calls[0].env == {}  # no key file: sops looks in its other places
    assert not (infra / ".env.prod").exists()


def test_decrypt_needs_the_encrypted_file(infra):
    with pytest.raises(PlanoError) as missing:
        secrets.decrypt(session(infra, ScriptedRunner()), ".env.dev")
    assert str(missing.value) == (f".env.dev.enc: not found in {infra}; run 'plano secrets encrypt --dev' where .env.dev is, "
                                  "then commit and pull it")


def test_restore_plain_only_when_the_plain_file_is_missing(infra):
    runner = ScriptedRunner().on("decrypt", answers=Answer(0, PLAIN))
    assert not secrets.restore_plain(session(infra, runner), ".env.prod")  # nothing encrypted
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    made = session(infra, runner)
    assert secrets.restore_plain(made, ".env.prod")
    assert made.out.notes == ["decrypted .env.prod.enc to .env.prod (mode 0600)"]
    assert not secrets.restore_plain(session(infra, runner), ".env.prod")
    assert len(runner.calls) == 1
    (infra / ".env.prod").unlink()
    with pytest.raises(PlanoError) as dry:
        secrets.restore_plain(session(infra, runner, dry_run=True), ".env.prod")
    assert str(dry.value) == ".env.prod: missing, only .env.prod.enc is here; run 'plano secrets decrypt' first (a dry run writes nothing)"
    assert len(runner.calls) == 1 and not (infra / ".env.prod").exists()


def test_edit_replaces_the_encrypted_file_only_after_a_successful_edit(infra):
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    runner = ScriptedRunner().on("edit", answers=[Answer(200), Answer(1)]).on("decrypt", answers=Answer(0, PLAIN))
    assert secrets.edit(session(infra, runner), ".env.prod") == secrets.Written(".env.prod.enc", False)
    edit = next(call for call in runner.calls if "edit" in call.argv)
    assert edit.streamed and edit.argv[-1] == str(infra / ".env.prod.enc.plano-tmp")
    assert (infra / ".env.prod").read_text() == PLAIN
    with pytest.raises(PlanoError) as failed:
        secrets.edit(session(infra, runner), ".env.prod")
    assert str(failed.value) == ".env.prod.enc: sops edit failed (exit code 1, see above); .env.prod.enc is unchanged"
    assert sorted(p.name for p in infra.iterdir()) == [".env.prod", ".env.prod.enc"]  # no copy left behind


def test_status_compares_values_in_memory(infra):
    with_config(infra)
    (infra / ".env.prod").write_text(PLAIN + "NEW=only-here\n")
    (infra / ".env.prod.enc").write_text(ENCRYPTED)
    (infra / ".env.dev").write_text(PLAIN)
    runner = ScriptedRunner().on("decrypt", answers=Answer(0, PLAIN))
    dev, prod = secrets.status(session(infra, runner))
    assert dev == secrets.EnvState(".env.dev", ".env.dev.enc", True, False, None)
    assert prod == secrets.EnvState(".env.prod", ".env.prod.enc", True, True, False, ["NEW"], [RECIPIENT], [])
