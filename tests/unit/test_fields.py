"""Each field's grammar (core/fields.py), with exact expectations: what it takes, what
it refuses and how it says so. The hostile values are the ones a hostile-input run
found accepted: trailing newlines, `$` interpolation, quotes, options, non-ASCII digits."""

import pytest

from plano.core import fields
from plano.core.errors import UsageError

HOSTILE = ["", " ", "\n", "x\n", "a\nb", "${POSTGRES_PASSWORD}", "$HOME", "a'b", 'a"b', "a b", "-x", "--upload-pack=touch /tmp/p",
           "a;b", "a\x00b", "a\tb", "é", "٣", "x" * 10_000]


def refused(check, value) -> str:
    with pytest.raises(ValueError) as err:
        check(value)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize("check, good", [
    (fields.app_name, ["app1", "a", "my-shop", "a" * 30]),
    (fields.project_name, ["acme", "infra-2", "a" * 40]),
    (fields.domain, ["app1.example.com", "xn--caf-dma.example.com", "a-b.c.io"]),
    (fields.email, ["ops@example.com", "first.last+tag@sub.example.org", "o_p%s@example.io"]),
    (fields.image_ref, ["nginx:1.28.0", "nginx", "registry.example.com:5000/acme/app1-backend:1.2.3", "127.0.0.1:5000/x/y:latest",
                        "postgres@sha256:" + "a" * 64, "a/b__c-d.e:tag_1.2-rc"]),
    (fields.image_name, ["registry.example.com/acme/app1-backend", "localhost:5000/a", "app"]),
    (fields.registry, ["registry.example.com/acme", "127.0.0.1:5000/plano-test"]),
    (fields.image_tag, ["1.2.3", "latest", "0123abcd", "v1_2-rc.1", "a" * 128]),
    (fields.url_path, ["/", "/api", "/api/v1/health", "/a-b_c.d~e"]),
    (fields.local_path, ["../app1/backend", "/srv/apps/app1", "../My Shop/web", "certs/app1/fullchain.pem", "~/x"]),
    (fields.repo_url, ["git@github.com:acme/app1.git", "https://github.com/acme/app1.git", "ssh://git@host:2222/acme/app1.git",
                       "file:///srv/git/app1.git", "https://user@gitlab.example.com/acme/app1"]),
    (fields.acme_url, ["https://acme-v02.api.letsencrypt.org/directory", "https://127.0.0.1:14000/dir", "https://pebble:14000/dir"]),
    (fields.backup_id, ["20261129T033000Z"]),
    (fields.database_name, ["app1_scratch", "_x", "a" * 63]),
    (fields.service_name, ["app1-backend", "nginx", "x.y_z"]),
    (fields.time_of_day, ["00:00", "03:30", "23:59"]),
    (fields.line_count, ["100", "0", "all"]),
    (fields.memory, ["512m", "1g", "16m", "1024g", "1536M"]),
])
def test_each_field_takes_its_grammar_and_no_hostile_value(check, good):
    for value in good:
        check(value)
    for value in HOSTILE:
        if not (check is fields.local_path and value in ("a b", "é", "٣")):  # folders have spaces and letters of any script
            refused(check, value)
    if check is fields.domain:  # a domain is normalised: case, spaces around, the final dot
        assert check(" App1.Example.com.\n") == "app1.example.com"
    else:
        refused(check, good[0] + "\n")  # `$` matched before a trailing newline: fullmatch does not
    refused(check, 5)


@pytest.mark.parametrize("check, value, message", [
    (fields.app_name, "App1", "app names are lower-case letters, digits and single '-', start with a letter, end with a letter or digit (try 'app1')"),
    (fields.app_name, "a--b", "app names are lower-case letters, digits and single '-', start with a letter, end with a letter or digit (try 'a-b')"),
    (fields.app_name, "nginx", "'nginx' is reserved for the infra's own services; pick another name (try 'app-nginx')"),
    (fields.app_name, 3, "an app name is a string such as app1, got an integer"),
    (fields.app_name, "x-shop", "'x-shop': compose reads names starting with 'x-' as extension fields and ignores them; pick another name "
     "(try 'app-x-shop')"),
    (fields.image_tag, "1.0\nAPP1_DB_PASSWORD=x",
     "not an image tag; give e.g. 1.2.3 or a commit SHA (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"),
    (fields.email, "ops@example.com${POSTGRES_PASSWORD}",
     "'ops@example.com${POSTGRES_PASSWORD}' is not an email address; give one like ops@example.com (Let's Encrypt sends expiry notices to it)"),
    (fields.local_path, "${POSTGRES_PASSWORD}",
     "'${POSTGRES_PASSWORD}' is not a path plano can use; give it relative to the infra or absolute, with letters, digits, spaces "
     "and ./_@+~,=- only (no '$', ':' or quotes), e.g. ../app1/backend"),
    (fields.local_path, "a/" + "b" * 300, f"{fields.shown('a/' + 'b' * 300)} is too long for a path: at most 1024 characters, 255 bytes a name"),
    (fields.repo_url, "https://me:token@github.com/acme/app1.git",
     "'https://me:token@github.com/acme/app1.git' holds a password, and plano.yml is committed; use an SSH key or a git credential helper instead"),
    (fields.repo_url, "--upload-pack=touch /tmp/pwned",
     "'--upload-pack=touch /tmp/pwned' is not a git repository URL; give https://..., ssh://..., file://... or user@host:path, "
     "e.g. git@github.com:acme/app1.git"),
    (fields.backup_id, "2026112٩T033000Z", "'2026112٩T033000Z' is not a backup ID; they look like 20261129T033000Z (see plano backup list)"),
    (fields.port, 0, "ports are 1-65535, got 0"),
    (fields.port, True, "a port is an integer 1-65535, got true/false"),
    (fields.ip_address, "0.0.0.0:80", "'0.0.0.0:80' is not an IP address; give an IPv4 or IPv6 address, e.g. 0.0.0.0 or 127.0.0.1"),
    (fields.command, ["npm", ""], "give the command as a list of non-empty words, e.g. [npm, run, start:dev]; got ''"),
    (fields.command, ["npm", "a\x00b"], "'a\\x00b' holds a NUL byte, which no command can take; remove it"),
    (fields.free_text, "s3:host/\nbucket", "'s3:host/\\nbucket' holds a control character (a newline, a tab, NUL...); give a restic "
     "repository on one line, e.g. s3:s3.example.com/acme-backups"),
])
def test_messages_quote_the_value_on_one_line_and_say_the_fix(check, value, message):
    if check is fields.free_text:
        assert refused(lambda v: check(v, "a restic repository", "s3:s3.example.com/acme-backups"), value) == message
    else:
        assert refused(check, value) == message


def test_commands_take_any_printable_text():
    # Exec form: no shell. `$` reaches compose doubled (render/compose.literal), not refused.
    assert fields.command(["sh", "-c", "echo ${HOME}; exit 0"]) == ["sh", "-c", "echo ${HOME}; exit 0"]


def test_shown_is_one_line_cut_and_never_an_object_repr():
    assert fields.shown("a\nb") == "'a\\nb'"
    assert fields.shown("x" * 100) == repr("x" * 60) + "... (100 characters)"
    assert fields.shown(None) == "null" and fields.shown(True) == "true" and fields.shown(3) == "3"
    assert fields.shown(10 ** 5000).startswith("a number of ")  # str() of it would raise
    assert fields.shown({"a": 1}) == "a mapping" and fields.shown({1, 2}) == "a set" and fields.shown(object()) == "a value of another kind"


def test_a_flag_value_is_reported_by_the_flag():
    with pytest.raises(UsageError) as err:
        fields.given("--tag", fields.image_tag, "a b")
    assert str(err.value).startswith("--tag 'a b': not an image tag")
    with pytest.raises(UsageError) as err:
        fields.given("--domain", fields.domain, "bad_domain")
    assert str(err.value).startswith("--domain: 'bad_domain' is not a valid domain")


def test_suggested_names_pass_the_name_check():
    for name in ("My App!", "1st", "a--b", "café", "nginx", "", "-" * 40, "x" * 50):
        assert fields.app_name(fields.suggest_app_name(name))


def test_limits_take_sizes_numbers_and_counts():
    assert [fields.memory(v) for v in ("512m", "2G", "1536M")] == ["512m", "2g", "1536m"]
    assert [fields.memory_bytes(v) for v in ("16m", "512m", "1g")] == [16 * 2**20, 512 * 2**20, 2**30]
    assert [fields.cpus(v) for v in (0.5, 1, 2, 0.01, 1.25)] == [0.5, 1.0, 2.0, 0.01, 1.25]
    assert isinstance(fields.cpus(2), float)
    assert [fields.pids(v) for v in (8, 256, 4194304)] == [8, 256, 4194304]


@pytest.mark.parametrize("check, value, message", [
    (fields.memory, 512, "512 has no unit; write 512m for megabytes or 512g for gigabytes"),
    (fields.memory, "1.5g", "'1.5g' is not a memory size; write a whole number of megabytes or gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)"),
    (fields.memory, "512k", "'512k' is not a memory size; write a whole number of megabytes or gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)"),
    (fields.memory, "512 m", "'512 m' is not a memory size; write a whole number of megabytes or gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)"),
    (fields.memory, "0512m", "'0512m' is not a memory size; write a whole number of megabytes or gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)"),
    (fields.memory, "8m", "'8m' is out of range; give 16m to 1024g"),
    (fields.memory, "2000g", "'2000g' is out of range; give 16m to 1024g"),
    (fields.memory, True, "a memory size is a string such as 512m, got true/false"),
    (fields.cpus, "0.5", "a CPU limit is a number such as 0.5 or 2 (null: no cap), got a string"),
    (fields.cpus, True, "a CPU limit is a number such as 0.5 or 2 (null: no cap), got true/false"),
    (fields.cpus, 0, "0 is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.cpus, 0.005, "0.005 is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.cpus, 1.333, "1.333 is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.cpus, float("nan"), "nan is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.cpus, float("inf"), "inf is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.cpus, 2000, "2000 is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"),
    (fields.pids, 1.5, "a process limit is a whole number such as 256, got a number"),
    (fields.pids, "256", "a process limit is a whole number such as 256, got a string"),
    (fields.pids, False, "a process limit is a whole number such as 256, got true/false"),
    (fields.pids, 4, "4 is not a process limit; give 8 to 4194304, e.g. 256"),
    (fields.pids, -1, "-1 is not a process limit; give 8 to 4194304, e.g. 256"),
    (fields.pids, 2**22 + 1, "4194305 is not a process limit; give 8 to 4194304, e.g. 256"),
])
def test_limit_messages_name_the_fix(check, value, message):
    assert refused(check, value) == message
