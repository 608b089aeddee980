"""plano.yml as YAML: read bounded and total, parsed round-trip, dumped back.

Every way a file can be wrong (not UTF-8, a NUL byte, an alias bomb, 3,000 levels of
nesting, a 5,000-digit number, a tag, a folder, a looping symlink) is one ManifestError
with its line and column. The events are checked against the limits below before
ruamel builds anything, so no file makes plano run long or grow large.
"""

from __future__ import annotations

import errno
import io
import re
from pathlib import Path
from typing import Any

from plano.core.errors import ManifestError

MAX_BYTES = 128 * 1024  # a plano.yml of 100 apps is about 10 KiB
MAX_DEPTH = 24  # plano.yml's deepest value (apps/x/backend/env/NAME) is 5 levels down
MAX_NODES = 20_000  # values once every alias is expanded (100 apps: about 1,500)
MAX_DIGITS = 40  # an integer longer than this is no port, count or day of plano.yml
# The tags plain YAML resolves by itself; any other (!!set, !!binary, !foo) is refused.
CORE_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq"))
DEEP = f"nested more than {MAX_DEPTH} levels deep; plano.yml's settings are a few levels deep"
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DECIMAL_RE = re.compile(r"[-+]?[0-9_]+")


def yaml():
    from ruamel.yaml import YAML

    made = YAML(typ="rt")
    made.preserve_quotes = True
    made.indent(mapping=2, sequence=4, offset=2)
    made.width = 4096
    return made


def where(source: str, line: int, column: int) -> str:
    return f"{source}:{line + 1}:{column + 1}"


def read(path: Path, source: str) -> str:
    """The file's text, or one ManifestError: missing, a folder, a dangling or looping
    symlink, unreadable, too big, not UTF-8. `source` names it in errors about its text."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise unreadable(path, str(path), exc) from None
    if len(data) > MAX_BYTES:
        raise ManifestError(str(path), f"larger than {MAX_BYTES // 1024} KiB; plano.yml holds settings, not data: "
                                    "check that this is the right file")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        raise ManifestError(where(source, line, column), f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None


def unreadable(path: Path, source: str, exc: OSError) -> ManifestError:
    if exc.errno == errno.ENOENT and path.is_symlink():
        return ManifestError(source, f"a symlink to {str(path.readlink())!r}, which does not exist; point it at the real file")
    reasons = {
        errno.ENOENT: "no such file",
        errno.EISDIR: "a folder, not a file; move the folder away",
        errno.ELOOP: "a symlink that loops; point it at the real file",
        errno.EACCES: "not readable by this user; check its owner and mode (ls -l)",
        errno.ENAMETOOLONG: "the path is too long",
    }
    return ManifestError(source, reasons.get(exc.errno or 0, f"cannot read it: {exc.strerror or exc}"))


def parse(text: str, source: str) -> Any:
    """YAML text to round-trip data (comments kept), after `check`; syntax errors name the line."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        check(text, source)
        return yaml().load(text)
    except MarkedYAMLError as exc:
        raise syntax_error(exc, source) from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise ManifestError(source, f"YAML error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def check(text: str, source: str) -> None:
    """Refuse, before anything is built, what plain settings never hold."""
    bad = CONTROL_RE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start())
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1)
        name = "a NUL byte" if bad.group() == "\x00" else f"the control character 0x{ord(bad.group()):02x}"
        raise ManifestError(where(source, line, column), f"{name}; remove it (plano.yml is text)")
    import yaml as libyaml  # PyYAML: libyaml's parser reads the events 40 times faster than ruamel's

    loader = getattr(libyaml, "CSafeLoader", libyaml.SafeLoader)
    try:
        Scan(source).run(libyaml.parse(text, Loader=loader))
    except libyaml.MarkedYAMLError as exc:
        raise syntax_error(exc, source) from None


def syntax_error(exc, source: str) -> ManifestError:
    """A parser's error (libyaml's or ruamel's: the same fields) at its line and column."""
    mark = exc.problem_mark or exc.context_mark
    at = where(source, mark.line, mark.column) if mark else source
    problem = str(exc.problem or exc.context or "").replace("\n", " ")
    if "nesting depth" in problem:  # libyaml's own limit, met before the scan's in flow collections
        return ManifestError(at, DEEP)
    return ManifestError(at, f"YAML syntax error: {problem}; fix the syntax there")


class Scan:
    """One pass over the parser's events: depth, expanded size, tags, keys, numbers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.frames: list[list] = []  # [is_mapping, children seen, expanded size]
        self.sizes: dict[str, int] = {}  # an anchor's expanded size
        self.anchors: list[str | None] = []
        self.total = 0

    def fail(self, event, message: str) -> ManifestError:
        mark = event.start_mark
        return ManifestError(where(self.source, mark.line, mark.column), message)

    def run(self, events) -> None:
        from yaml import events as ev

        for event in events:
            if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
                self.node(event)
                self.frames.append([isinstance(event, ev.MappingStartEvent), 0, 0])
                self.anchors.append(event.anchor)
                if len(self.frames) > MAX_DEPTH:
                    raise self.fail(event, DEEP)
            elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                _, _, size = self.frames.pop()
                self.done(event, self.anchors.pop(), size + 1)
            elif isinstance(event, ev.ScalarEvent):
                self.node(event)
                self.scalar(event)
                self.done(event, event.anchor, 1)
            elif isinstance(event, ev.AliasEvent):
                self.node(event)
                self.done(event, None, self.sizes.get(event.anchor, 1))

    def node(self, event) -> None:
        """A node starts: its tag, and whether it stands where a key does."""
        tag = getattr(event, "tag", None)
        tag = getattr(tag, "value", tag)
        if tag is not None and tag not in CORE_TAGS:
            raise self.fail(event, f"the YAML tag {tag!r} is not used in plano.yml; remove it and write the value plainly")
        if self.frames and self.frames[-1][0] and self.frames[-1][1] % 2 == 0:
            if type(event).__name__ != "ScalarEvent":
                raise self.fail(event, "a key must be a plain word; a list, a mapping or an alias cannot be a key")
            if not event.style and event.value in ("", "~", "null", "Null", "NULL"):
                raise self.fail(event, "an empty (null) key; give the key a name")
        if self.frames:
            self.frames[-1][1] += 1

    def scalar(self, event) -> None:
        value = event.value
        if not event.style and len(value) > MAX_DIGITS and DECIMAL_RE.fullmatch(value):  # plain: None or ""
            raise self.fail(event, f"a number of {len(value)} digits; no setting of plano.yml takes one that long")

    def done(self, event, anchor: str | None, size: int) -> None:
        if anchor is not None:
            self.sizes[anchor] = size
        if self.frames:
            self.frames[-1][2] += size
        self.total += size if not self.frames else 0
        if size > MAX_NODES or self.total > MAX_NODES or (self.frames and self.frames[-1][2] > MAX_NODES):
            raise self.fail(event, f"more than {MAX_NODES} values once its aliases are expanded (an alias bomb?); "
                                   "write the settings out")


def dump(data: Any) -> str:
    out = io.StringIO()
    yaml().dump(data, out)
    return out.getvalue()
