"""Containers' CPU and memory as `docker stats --no-stream` reports them: the argv is
built here, the parsing is pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
         "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


@dataclass(frozen=True)
class Usage:
    container: str  # its name
    cpu_percent: float  # of one CPU: 200.0 is two CPUs busy
    memory_bytes: int
    memory_limit_bytes: int  # the container's limit, else the host's memory
    memory_percent: float


def stats_argv(*containers: str) -> list[str]:
    """One sample of each container, one JSON object a line."""
    return ["docker", "stats", "--no-stream", "--no-trunc", "--format", "{{json .}}", *containers]


def size(text: str) -> int:
    """`12.3MiB`, `1.9GiB`, `512B`, `0B` -> bytes."""
    found = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", text)
    if not found or found[2].upper() not in UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(found[1]) * UNITS[found[2].upper()])


def percent(text: str) -> float:
    return float(text.strip().rstrip("%") or 0) if text.strip() not in ("--", "") else 0.0


def parse(text: str) -> list[Usage]:
    """`docker stats --format '{{json .}}'` output; lines it cannot read are left out."""
    found = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            used, _, limit = data["MemUsage"].partition("/")
            found.append(Usage(data["Name"], percent(data["CPUPerc"]), size(used), size(limit or "0B"), percent(data["MemPerc"])))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found
