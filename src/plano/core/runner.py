"""The one place commands are run. Everything else builds argv lists.

A Runner only runs. Whether a command is a query (always run, even in a dry run) or
an action (run, or printed under --dry-run) is the Session's business, not the runner's.
"""

from __future__ import annotations

import errno
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NOT_FOUND = 127
CANNOT_RUN = 126
TIMED_OUT = 124
INTERRUPTED = 130


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

    @property
    def last_line(self) -> str:
        """The last line the command printed: for a one-line reason of a failure."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else f"no output (exit code {self.code})"


class Runner(Protocol):
    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None,
            stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        """Run and capture the output; `stdin` text is its input (else none)."""

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        """Run with the terminal's output (and input, unless `stdin` text is given);
        `env` adds variables (secrets that must not appear in argv)."""


def failure(argv: list[str], exc: OSError) -> Result:
    """Why a command could not even start, as the shell would say it."""
    if isinstance(exc, FileNotFoundError):
        return Result(argv, NOT_FOUND, "", f"{argv[0]}: command not found")
    if exc.errno == errno.E2BIG:
        return Result(argv, CANNOT_RUN, "", f"{argv[0]}: argument list too long ({len(argv)} arguments)")
    return Result(argv, CANNOT_RUN, "", f"{argv[0]}: cannot run it: {exc.strerror or exc}")


class SubprocessRunner:
    """Runs commands for real."""

    def run(self, argv: list[str], cwd: Path | None = None, timeout: float | None = None,
            stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                  input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
                                  env={**os.environ, **env} if env else None)
        except OSError as exc:
            return failure(argv, exc)
        except subprocess.TimeoutExpired:
            return Result(argv, TIMED_OUT, "", f"{shlex.join(argv[:3])} ...: timed out after {timeout} s")
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def stream(self, argv: list[str], cwd: Path | None = None, stdin: str | None = None,
               env: dict[str, str] | None = None) -> int:
        full_env = {**os.environ, **env} if env else None
        try:
            if stdin is None:
                return subprocess.run(argv, cwd=cwd, env=full_env).returncode
            return subprocess.run(argv, cwd=cwd, input=stdin, text=True, env=full_env).returncode
        except OSError as exc:
            result = failure(argv, exc)
            os.write(2, f"{result.err}\n".encode())
            return result.code
        except KeyboardInterrupt:
            return INTERRUPTED
