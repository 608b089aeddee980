"""Errors a user can cause, each with a stable exit code.

Anything else that escapes is a bug and is shown as one (exit 70).
"""

from __future__ import annotations

# Exit codes, documented in the README ("Exit codes").
OK = 0
FAILED = 1  # a check or validator failed, or `render --check` found changes
BAD_INPUT = 2  # the manifest, a flag or an argument is wrong
REFUSED = 3  # plano refused to overwrite something (hand edits, existing infra)
ENVIRONMENT = 4  # a tool or engine plano needs is missing or unreachable
BUG = 70


class PlanoError(Exception):
    """An error the user can fix; the message is one line that says how."""

    exit_code = FAILED


class ManifestError(PlanoError):
    """plano.yml or a flag holds a value plano cannot use.

    `path` points into the manifest, e.g. ``apps/app1/domains/0``.
    """

    exit_code = BAD_INPUT

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(PlanoError):
    exit_code = BAD_INPUT


class RefusedError(PlanoError):
    exit_code = REFUSED


class DriftError(RefusedError):
    """Generated files were edited by hand; carries the diffs."""

    def __init__(self, paths: list[str], diff: str) -> None:
        self.paths = paths
        self.diff = diff
        names = ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else "")
        super().__init__(
            f"{names}: edited by hand since plano wrote it; move your change to plano.yml "
            "or a user-owned file (see README), or re-run with --force to overwrite"
        )


class EnvironmentProblem(PlanoError):
    exit_code = ENVIRONMENT


class CheckFailed(PlanoError):
    exit_code = FAILED


class FileProblem(PlanoError):
    """A file or folder plano must read or write cannot be used (permissions, a full
    disk, a folder where a file belongs)."""

    exit_code = ENVIRONMENT

    @classmethod
    def of(cls, exc: OSError, action: str = "use") -> FileProblem:
        where = exc.filename if exc.filename is not None else "a file"
        fix = {13: "check its owner and mode (ls -l); plano runs as the user who owns the infra",
               28: "free some disk space", 21: "a folder is where a file belongs; move it away",
               20: "a file is where a folder belongs; move it away", 17: "a file is where a folder belongs; move it away", 30: "the file system is read-only"}
        return cls(f"{where}: cannot {action} it: {exc.strerror or exc}; {fix.get(exc.errno or 0, 'fix it, then run the same command again')}")
