"""plano.yml files a hostile-input run used to crash or hang plano: each is a function
of a good file's text, giving the bytes to write; and how one run of plano is measured.
Shared by the CLI test and bench/hostile_manifest.py (time and memory against the good file)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


def alias_bomb(good: str) -> str:
    """Billion laughs: 9 levels of 9 aliases each, 9**10 values once expanded."""
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"lol{level}: &a{level} [{', '.join(f'*a{level - 1}' for _ in range(9))}]")
    return good + "\n".join(lines) + "\n"


def deep_block(good: str) -> str:
    """600 levels of block mappings, one space deeper each (3,000 would pass 128 KiB)."""
    return good + "x:\n" + "".join(f"{' ' * (level + 1)}k:\n" for level in range(400))


# name -> (bytes of the file, what the one-line error says)
CASES: dict[str, tuple[Callable[[str], bytes], str]] = {
    "not-utf8": (lambda good: good.encode() + b"x: \xff\xfe\n", "not UTF-8 (byte 0xff); save the file as UTF-8"),
    "nul-byte": (lambda good: (good + "x: a\x00b\n").encode(), "a NUL byte; remove it"),
    "huge-number": (lambda good: good.replace("http_port: 80\n", f"http_port: {'9' * 5000}\n", 1).encode(),
                    "a number of 5000 digits"),
    "deep-flow": (lambda good: (good + "x: " + "[" * 3000 + "]" * 3000 + "\n").encode(), "nested more than 24 levels deep"),
    "deep-block": (lambda good: deep_block(good).encode(), "nested more than 24 levels deep"),
    "alias-bomb": (lambda good: alias_bomb(good).encode(), "once its aliases are expanded (an alias bomb?)"),
    "unknown-tag": (lambda good: good.replace("registry: ", "registry: !foo ", 1).encode(), "the YAML tag '!foo' is not used"),
    "python-tag": (lambda good: good.replace("registry: ", "registry: !!python/object/apply:os.system ", 1).encode(),
                   "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not used"),
    "set": (lambda good: (good + "x: !!set {a, b}\n").encode(), "the YAML tag 'tag:yaml.org,2002:set' is not used"),
    "duplicate-key": (lambda good: good.replace("version: 1\n", "version: 1\nversion: 1\n", 1).encode(),
                      'found duplicate key "version"'),
    "list-as-key": (lambda good: (good + "? [a, b]\n: c\n").encode(), "a key must be a plain word"),
    "null-key": (lambda good: (good + "~: c\n").encode(), "an empty (null) key"),
    "two-documents": (lambda good: (good + "---\na: 1\n").encode(), "but found another document"),
    "wide-list": (lambda good: (good + "x: [" + "1," * 60_000 + "1]\n").encode(), "more than 20000 values"),
    # Within every limit, so the slowest file plano reads to the end: 19,000 values and 128 KiB.
    "widest-allowed": (lambda good: (good + "x: [" + "1," * 19_000 + "1]\n#" + "#" * (128 * 1024 - len(good) - 38_010) + "\n").encode(),
                       "x: unknown key"),
    "too-big": (lambda good: good.encode() + b"#" * (200 * 1024), "larger than 128 KiB"),
}


@dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float  # the process's own peak resident memory (VmHWM at its exit)


# plano's entry point, reporting its own peak memory as it exits. wait4's ru_maxrss
# would not do: a child forked from a large process (a parallel run's worker) starts
# its count from the parent's size; VmHWM restarts at exec.
PEAK_WRAPPER = """
import atexit, os, sys
def peak():
    with open('/proc/self/status') as status:
        kb = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(os.environ['PLANO_TEST_PEAK_FILE'], 'w') as out:
        out.write(kb)
atexit.register(peak)
from plano.cli import main
sys.argv[0] = 'plano'
sys.exit(main())
"""


def measure(args: Sequence[str], prefix: Sequence[str] = (), timeout: float = 30) -> Measured:
    """`plano ARGS` in a process of its own: a hang is a timeout; its time and memory are its own."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak-kb"
        started = time.perf_counter()
        got = subprocess.run([*prefix, sys.executable, "-c", PEAK_WRAPPER, *args], capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, "PLANO_TEST_PEAK_FILE": str(peak)})
        return Measured(got.returncode, got.stdout, got.stderr, time.perf_counter() - started, int(peak.read_text()) / 1024)
