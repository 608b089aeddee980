"""plano.yml files that used to crash or hang plano: each is one `error:` line with the
line and column, exit 2, nothing written, in a bounded time and memory (every
command loads plano.yml the same way; `render` stands for them all)."""

import os
from pathlib import Path

import pytest

from plano.cli.main import main
from plano.core.errors import BAD_INPUT
from plano.core.files import tree_digest
from tests.cli.test_cli import INIT
from tests.hostile import CASES, Measured, measure


@pytest.fixture(scope="module")
def infra(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    os.chdir(root)
    assert main(INIT) == 0 and main(["-C", "infra", "app", "add", "app1", "--domain", "app1.example.com"]) == 0
    return root / "infra"


NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def render(infra: Path, unprivileged: bool = False) -> Measured:
    """`plano render` in a process of its own (tests/hostile.measure)."""
    return measure(["-C", str(infra), "render"], prefix=NO_DAC if unprivileged else ())


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_plano_yml_is_one_line_and_changes_nothing(infra, case):
    good = (infra / "plano.yml").read_text()
    make, expected = CASES[case]
    try:
        (infra / "plano.yml").write_bytes(make(good))
        before = tree_digest(infra)
        got = render(infra)
        assert tree_digest(infra) == before
    finally:
        (infra / "plano.yml").write_text(good)
    assert got.returncode == BAD_INPUT and got.stdout == "", got
    assert got.stderr.count("\n") == 1 and got.stderr.startswith("error: ") and expected in got.stderr, got.stderr
    assert 0 < got.peak_mb < 200, got.peak_mb
    if case not in ("too-big", "widest-allowed"):  # the whole file, and a validation error (a key path)
        assert got.stderr.startswith("error: plano.yml:") and got.stderr.split(":")[2].isdigit(), got.stderr  # line:column


@pytest.mark.parametrize("kind", ["folder", "dangling-symlink", "looping-symlink", "unreadable"])
def test_a_plano_yml_that_cannot_be_read_is_one_line(tmp_path, kind):
    (tmp_path / "x").mkdir()
    path = tmp_path / "x/plano.yml"
    expected = {"folder": "a folder, not a file", "dangling-symlink": "a symlink to 'nowhere.yml', which does not exist",
                "looping-symlink": "a symlink that loops", "unreadable": "not readable by this user"}[kind]
    if kind == "folder":
        path.mkdir()
    elif kind == "dangling-symlink":
        path.symlink_to("nowhere.yml")
    elif kind == "looping-symlink":
        path.symlink_to("plano.yml")
    else:
        path.write_text("version: 1\n")
        path.chmod(0)
    # root reads every file: as root, plano runs without the capabilities that let it.
    got = render(tmp_path / "x", unprivileged=kind == "unreadable" and os.geteuid() == 0)
    assert got.returncode == BAD_INPUT and got.stderr == f"error: {path}: {expected}" + got.stderr.split(expected, 1)[1], got.stderr
    assert got.stderr.count("\n") == 1
