#!/usr/bin/env python3
"""Figures of the code's shape: the CLI's share of src/, function lengths, import cycles.
   .venv/bin/python scripts/code-figures.py [SRC]   (default src/plano)"""

import ast
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(src: Path) -> None:
    import grimp

    from tests.unit.test_layers import import_cycles

    lines = {path: len(path.read_text().splitlines()) for path in src.rglob("*.py")}
    cli = sum(n for path, n in lines.items() if path.relative_to(src).parts[0] == "cli")
    lengths = sorted(
        (node.end_lineno - node.lineno + 1, f"{path.relative_to(src)}:{node.name}")
        for path in lines for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )
    values = [n for n, _ in lengths]
    print(f"python lines in {src}: {sum(lines.values())}; in cli/: {cli} ({cli / sum(lines.values()):.1%})")
    print(f"functions: {len(values)}; length median {statistics.median(values)}, p90 {values[int(len(values) * 0.9)]}, "
          f"max {lengths[-1][0]} ({lengths[-1][1]})")
    print(f"import cycles: {len(import_cycles(grimp.build_graph(src.name)))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "src/plano")
