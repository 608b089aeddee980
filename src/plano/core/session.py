"""The Session: what every operation is given, made once per command by an interface.

It carries the infra folder (found lazily: `init` has none yet), the loaded manifest,
the mode, the runner, the output and the dry-run switch. Operations never build a
runner or print on their own: a test gives them a scripted runner, the dashboard and
remote operation give them another output, and the code path stays the same.

Commands come in two kinds:
- queries (`query`): they read state (docker ps, inspect, version probes) and always
  run, so a dry run decides with the same facts as the real one;
- actions (`act`, `act_stream`, `write`, `remove`, `pause`): they change something and,
  under --dry-run, are printed by this same code instead of being run.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from plano.core.runner import Result, Runner

if TYPE_CHECKING:  # loaded when first used, so that plano --help stays fast
    from plano.core.manifest import Infra, Manifest
    from plano.core.mode import Mode


class Output(Protocol):
    def info(self, text: str) -> None:
        """A result the user asked for (stdout)."""

    def note(self, text: str) -> None:
        """Progress, warnings and the commands being run (stderr)."""

    def planned(self, text: str) -> None:
        """An action a dry run shows instead of running it (stdout)."""


@dataclass
class Session:
    runner: Runner
    out: Output
    directory: Path | None = None  # -C; else the nearest folder upwards holding plano.yml
    mode: Mode | None = None
    dry_run: bool = False
    sleep: Callable[[float], None] = time.sleep
    command: tuple[str, ...] = ()  # the command line as typed, the root's options left out (the lock and audit name it)
    _infra: list[Infra] = field(default_factory=list, repr=False)  # shared by copies: loaded once

    # ------------------------------------------------------------ the infra

    @property
    def root(self) -> Path:
        from plano.core.manifest import find_root

        return self.infra.root if self._infra else (self.directory or find_root(Path.cwd()))

    @property
    def infra(self) -> Infra:
        from plano.core.manifest import find_root, load_infra

        if not self._infra:
            self._infra.append(load_infra(self.directory or find_root(Path.cwd())))
        return self._infra[0]

    @property
    def manifest(self) -> Manifest:
        return self.infra.manifest

    def secret_values(self) -> set[str]:
        """The secrets of the infra's env files, to mask in what plano prints; none
        before plano.yml was loaded (an error about plano.yml itself)."""
        from plano.core import naming as n
        from plano.core.secrets import secret_values

        if not self._infra:
            return set()
        root = self._infra[0].root
        return secret_values(root / name for name in (n.ENV_DEV, n.ENV_PROD))

    def reload(self) -> None:
        """Forget the loaded plano.yml (after an operation rewrote it)."""
        self._infra.clear()

    def at(self, directory: Path) -> Session:
        """The same session for another infra folder (init, demo)."""
        return replace(self, directory=directory, _infra=[])

    def with_mode(self, mode: Mode, dry_run: bool | None = None) -> Session:
        return replace(self, mode=mode, dry_run=self.dry_run if dry_run is None else dry_run)

    @property
    def stack_mode(self) -> Mode:
        if self.mode is None:
            raise RuntimeError("this operation needs a mode; the interface sets it with with_mode()")
        return self.mode

    # ------------------------------------------------------------ commands

    def query(self, argv: list[str], timeout: float = 60, cwd: Path | None = None, stdin: str | None = None,
              env: dict[str, str] | None = None) -> Result:
        return self.runner.run(argv, cwd=cwd or self.root, timeout=timeout, stdin=stdin, env=env)

    def act(self, argv: list[str], timeout: float = 600, stdin: str | None = None, env: dict[str, str] | None = None,
            shown: str | None = None, cwd: Path | None = None) -> Result:
        """An action whose output plano reads. `shown` replaces the argv in what is
        printed (e.g. a script with its secrets masked)."""
        if self.dry_run:
            self.out.planned(shown or shlex.join(argv))
            return Result(list(argv), 0)
        return self.runner.run(argv, cwd=cwd or self.root, timeout=timeout, stdin=stdin, env=env)

    def act_stream(self, argv: list[str], stdin: str | None = None, env: dict[str, str] | None = None,
                   shown: str | None = None, cwd: Path | None = None) -> int:
        """An action whose output goes to the terminal as it happens."""
        if self.dry_run:
            self.out.planned(shown or shlex.join(argv))
            return 0
        self.out.note(f"$ {shown or shlex.join(argv)}")
        return self.runner.stream(argv, cwd=cwd or self.root, stdin=stdin, env=env)

    def done(self, text: str) -> None:
        """What an action achieved; a dry run achieved nothing, so it says nothing."""
        if not self.dry_run:
            self.out.info(text)

    # ------------------------------------------------------------ files and time

    def write(self, path: Path, content: str | bytes, mode: int, owner: int | None = None) -> None:
        if self.dry_run:
            self.out.planned(f"# write {self.shown_path(path)}")
            return
        from plano.core.files import write_atomic

        if owner is None:
            write_atomic(path, content, mode)
        else:
            write_atomic(path, content, mode, owner)

    def remove(self, path: Path) -> None:
        if self.dry_run:
            self.out.planned(f"# remove {self.shown_path(path)}")
            return
        path.unlink(missing_ok=True)

    def pause(self, seconds: float) -> None:
        """A wait that only matters when actions really ran (drains, settling)."""
        if not self.dry_run and seconds > 0:
            self.sleep(seconds)

    def shown_path(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)
