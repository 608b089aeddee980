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
# Groups that take -e but run here: about the environment's server (server trust|setup), or
# its Kubernetes namespace, which kubectl reaches from here (k8s); their audit line is written here.
HERE = frozenset({"server", "k8s"})
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


def own_words(args: list[str]) -> list[str]:
    """plano's own words of a command line: those before `--` (after it: a command's, e.g. prod exec's)."""
    return args[:args.index("--")] if "--" in args else args


def dry_run(args: list[str]) -> bool:
    return DRY_RUN in own_words(args)


def changes(args: list[str]) -> bool:
    """Whether the command line changes something (a dry run or a help page does not)."""
    return path(args) in CHANGING and not HELP & set(own_words(args)) and not dry_run(args)


def runs_here(args: list[str]) -> bool:
    """Whether a command line given -e still runs on this machine."""
    return path(args).split(" ")[0] in HERE


def detached(args: list[str]) -> bool:
    """Whether a server reached with -e runs it detached (see the module's doc): the
    commands that change something; a dry run or a help page is only read, attached."""
    return changes(args) and path(args) not in INTERACTIVE
