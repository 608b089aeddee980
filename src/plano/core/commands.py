"""What kind of command a plano command line is, decided once: the commands that change
a stack or its data are the ones the audit log records (ops/audit.py) and the ones that
run detached on a server reached with -e (ops/remote.py: a dropped connection does not
stop them half-way), except the interactive ones, which need the terminal."""

from __future__ import annotations

# "group sub" or "command": the command path, as typed after the root's options.
CHANGING = frozenset({
    "deploy", "rollback", "maintenance",
    "prod up", "prod down", "prod restart", "prod pull", "prod exec",
    "certs issue", "certs renew",
    "backup run", "backup restore", "backup prune",
    "db create", "db drop", "db psql",
    "swarm init", "swarm join", "swarm label", "swarm up", "swarm down",
    "secrets rotate",
    "k8s apply", "k8s deploy", "k8s maintenance", "k8s secrets",
})
# They change something (or may: a shell, psql) but need the user's terminal.
INTERACTIVE = frozenset({"prod exec", "db psql"})
# The command groups of the command line (tests/unit check it against the click tree).
GROUPS = frozenset({"app", "backup", "certs", "dashboard", "db", "dev", "export", "k8s", "prod", "secrets", "server", "swarm"})
HELP = frozenset({"-h", "--help"})
DRY_RUN = "--dry-run"


def path(args: list[str]) -> str:
    """The command path of a command line (the root's options already left out): its
    first word, and the second when the first is a group (groups have no options)."""
    if not args or args[0].startswith("-"):
        return ""
    if args[0] in GROUPS and len(args) > 1 and not args[1].startswith("-"):
        return f"{args[0]} {args[1]}"
    return args[0]


def changes(args: list[str]) -> bool:
    """Whether the command line changes something (a dry run or a help page does not)."""
    return path(args) in CHANGING and not HELP & set(args) and DRY_RUN not in args


def detached(args: list[str]) -> bool:
    """Whether a server reached with -e runs it detached (see the module's doc)."""
    found = path(args)
    return found in CHANGING and found not in INTERACTIVE
