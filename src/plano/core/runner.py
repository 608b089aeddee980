"""The one place commands are run. Everything else builds argv lists."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Result:
    argv: list[str]
    code: int
    out: str = ""
    err: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def output(self) -> str:
        return (self.out + self.err).strip()


class Runner(Protocol):
    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None) -> Result:
        """Run and capture the output."""

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        """Run with the terminal's output (and input, unless `stdin` text is given);
        `env` adds variables (secrets that must not appear in argv)."""


class SubprocessRunner:
    """Runs commands for real and captures their output."""

    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None) -> Result:
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return Result(argv, 127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Result(argv, 124, "", f"{shlex.join(argv)}: timed out after {timeout} s")
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        full_env = {**os.environ, **env} if env else None
        try:
            if stdin is None:
                return subprocess.run(argv, cwd=cwd, env=full_env).returncode
            return subprocess.run(argv, cwd=cwd, input=stdin, text=True, env=full_env).returncode
        except FileNotFoundError:
            return 127
        except KeyboardInterrupt:
            return 130


@dataclass
class RecordingRunner:
    """Records commands instead of running them (dry runs and tests); answers `code`."""

    code: int = 0
    calls: list[list[str]] = field(default_factory=list)

    stdin: list[str | None] = field(default_factory=list)

    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None) -> Result:
        self.calls.append(list(argv))
        return Result(list(argv), self.code)

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        self.calls.append(list(argv))
        self.stdin.append(stdin)
        return self.code
