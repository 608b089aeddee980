"""A rendered tree against its golden copy under tests/golden/ (refreshed with
--update-golden): the same files, each with the same content."""

import shutil
from pathlib import Path

from plano.core.files import Tree


def assert_matches(tree: Tree, folder: Path, update: bool) -> None:
    if update:
        shutil.rmtree(folder, ignore_errors=True)
        for rel, file in tree.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(file.content)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert sorted(on_disk) == sorted(tree), "files differ from the golden tree (refresh with --update-golden)"
    for rel, file in tree.items():
        assert file.content == (folder / rel).read_text(), f"{rel} differs from tests/golden/{folder.name}/{rel}"
