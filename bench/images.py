"""Image builds of a `plano app new` app: build times and production image sizes, in one run.

    python bench/images.py [--keep-workspace] [--layout app|turbo|pnpm|berry|npm|classic|nx]

--layout turbo|pnpm|berry|npm|classic|nx measures an adopted workspace instead (bench/layouts.py):
the generators' NestJS and Next.js apps in an npm workspace with Turborepo, a pnpm
workspace or a yarn 4 one, each service built from the root with plano's Dockerfile and with a
baseline Dockerfile of the official examples' shape, and prints plano/baseline ratios.

Creates a temporary workspace (`plano init infra`, then `plano app new app1`) and, for
the app's backend (NestJS) and frontend (Next.js), builds the production image (the
Dockerfile's last stage) three times with the legacy builder and the offline stand-in
base (DOCKER_BUILDKIT=0, --build-arg NODE_IMAGE=plano-test/node:sid):

    cold    --no-cache, a fresh tag
    warm    the same context again, nothing changed
    change  after a one-line source change (backend: src/app.controller.ts,
            frontend: app/page.tsx)

Sizes are of the production image: its total, and the app's own layers: the sum of the
`docker history` sizes of the entries above the base image's history (the image's
history begins with the base's, checked), cross-checked against total minus base.
MB are 10^6 bytes, as docker prints them. Goals: Next.js layers < 60 MB, NestJS layers
< 60 MB, a warm rebuild after a one-line change < 20 s (each role).

The table also gives each build's cache hits and, below it, the first step that ran.
Expect the warm rebuild right after a --no-cache build to miss: the deps and prod
stages both begin `FROM ${NODE_IMAGE}` + `WORKDIR /usr/src/app`, --no-cache commits
that WORKDIR twice, and the legacy builder's cache takes the newest matching child of
the base, the prod stage's, under which there is no `COPY package.json`; so npm ci runs
again once. The change build after it finds the deps chain again.

Every image is tagged bench-img-<run>-<role>:<kind>. At the end the bench removes its
tags and then, newest first, the images its own builds created (the step IDs in its
build output that did not exist before the build; never a cache hit), each with
`docker rmi --no-prune`, so no image it did not create is touched.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NODE_IMAGE = "plano-test/node:sid"
ROLES = ("backend", "frontend")
LABEL = {"backend": "NestJS", "frontend": "Next.js"}
# One line changed in each role: (file, old line's text, new line's text).
EDITS = {
    "backend": ("src/app.controller.ts", "return this.appService.getHello();", "return this.appService.getHello().trim();"),
    "frontend": ("app/page.tsx", "<h1>app1</h1>", "<h1>app1 (bench edit)</h1>"),
}
MB = 1_000_000
GOAL_LAYERS_MB = 60
GOAL_CHANGE_S = 20
BUILD_TIMEOUT = 1800

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
RESULT = re.compile(r"^ ---> ([0-9a-f]{12})$")


@dataclass
class Build:
    kind: str
    tag: str
    seconds: float
    steps: int = 0  # steps that commit an image (not FROM, not the leading ARG)
    cached: int = 0  # of those, cache hits
    first_run: str = ""  # the first of those that ran (no cache hit)
    created: list[str] = field(default_factory=list)  # short IDs, in creation order


@dataclass
class Sizes:
    total: int
    layers: int  # sum of history sizes above the base's history
    minus_base: int  # total - base size (cross-check)


# ---------------------------------------------------------------- helpers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-workspace", action="store_true", help="leave the temporary workspace in place (images are still removed)")
    parser.add_argument("--log-dir", type=Path, help="write each build's output to DIR/<role>-<kind>.log")
    parser.add_argument("--layout", choices=("app", "turbo", "pnpm", "berry", "npm", "classic", "nx"), default="app",
                        help="app: `plano app new`'s repo (default); turbo, pnpm: an adopted workspace against a baseline")
    return parser.parse_args(argv)


def run(argv: list[str], timeout: float = 900, cwd: Path | None = None, env: dict | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def quiet(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """For the teardown: run, never raise."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(argv, 1, "", str(err))


def note(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def plano(*args: str, cwd: Path) -> str:
    return run([sys.executable, "-m", "plano.cli", *args], cwd=cwd)


def all_image_ids() -> set[str]:
    """Every image ID the engine holds, intermediate ones too, as 12-hex short IDs."""
    out = run(["docker", "image", "ls", "-aq", "--no-trunc"])
    return {line.split(":", 1)[-1][:12] for line in out.split()}


def mb(n: int) -> str:
    return f"{n / MB:.1f}"


# ---------------------------------------------------------------- workspace


def make_workspace(root: Path) -> Path:
    """`plano init infra` + `plano app new app1`; returns the app repo."""
    plano("init", "infra", "--registry", "127.0.0.1:5000/bench", "--email", "ops@example.com", cwd=root)
    plano("app", "new", "app1", "--domain", "app1.example.com", cwd=root / "infra")
    app = root / "app1"
    for role in ROLES:
        assert (app / role / "Dockerfile").is_file(), f"{role}/Dockerfile missing"
    return app


def edit_one_line(context: Path, role: str) -> str:
    """Change exactly one line of the role's source; returns what changed."""
    rel, old, new = EDITS[role]
    path = context / rel
    before = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(before) if old in line]
    if len(hits) != 1:
        raise RuntimeError(f"{rel}: expected one line with {old!r}, found {len(hits)}")
    after = list(before)
    after[hits[0]] = before[hits[0]].replace(old, new)
    path.write_text("".join(after))
    return f"{rel}:{hits[0] + 1}: {old} -> {new}"


# ---------------------------------------------------------------- builds


def build(context: Path, tag: str, kind: str, no_cache: bool = False, log: Path | None = None, dockerfile: str | None = None) -> Build:
    """One legacy-builder build of the production image; seconds from start to tagged."""
    known = all_image_ids()
    argv = ["docker", "build", "--force-rm", "--build-arg", f"NODE_IMAGE={NODE_IMAGE}", "-t", tag,
            *(["-f", str(context / dockerfile)] if dockerfile else [])]
    if no_cache:
        argv.append("--no-cache")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    start = time.perf_counter()
    proc = subprocess.run([*argv, str(context)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env,
                          stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if log:
        log.write_text(proc.stdout + proc.stderr)
    result = parse_build(proc.stdout, known, Build(kind, tag, seconds))
    if proc.returncode:
        # Still hand back what it created, so the teardown can remove it.
        raise BuildFailed(result, f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return result


class BuildFailed(RuntimeError):
    def __init__(self, partial: Build, message: str):
        super().__init__(message)
        self.partial = partial


def parse_build(output: str, known: set[str], result: Build) -> Build:
    """Count the steps that commit an image and their cache hits; collect each step's
    result image that did not exist before the build (a FROM names an existing image,
    a cache hit an existing one too, maybe made meanwhile by another build: both skipped)."""
    instruction, hit = "", False
    for line in output.splitlines():
        step = STEP.match(line)
        if step:
            instruction, hit = step.group(3), False
        elif line.strip() == "---> Using cache":
            hit = True
        else:
            found = RESULT.match(line)
            if not found or instruction.upper().startswith("FROM "):
                continue
            result.steps += 1
            if hit:
                result.cached += 1
                continue
            result.first_run = result.first_run or instruction
            if found.group(1) not in known and found.group(1) not in result.created:
                result.created.append(found.group(1))
    return result


def measure_role(app: Path, role: str, run_id: str, builds: list[Build], log_dir: Path | None) -> dict[str, Build]:
    """`plano app new`'s service: its own folder is the context."""
    return measure(app / role, None, role, run_id, builds, log_dir, lambda: edit_one_line(app / role, role))


def measure(context: Path, dockerfile: str | None, name: str, run_id: str, builds: list[Build], log_dir: Path | None,
            edit) -> dict[str, Build]:
    """cold (--no-cache), warm (no change), change (one line, made by edit()); each
    appended to `builds` as soon as it exists so the teardown sees it even if a later step fails."""
    repo = f"bench-img-{run_id}-{name}"
    out: dict[str, Build] = {}
    for kind in ("cold", "warm", "change"):
        if kind == "change":
            note(f"{name}: one-line edit {edit()}")
        note(f"{name}: {kind} build")
        try:
            log = log_dir / f"{name}-{kind}.log" if log_dir else None
            b = build(context, f"{repo}:{kind}", kind, no_cache=kind == "cold", log=log, dockerfile=dockerfile)
        except BuildFailed as err:
            builds.append(err.partial)
            raise
        builds.append(b)
        out[kind] = b
        note(f"{name}: {kind} build {b.seconds:.1f} s ({b.cached}/{b.steps} steps cached, {len(b.created)} images created)")
    return out


# ---------------------------------------------------------------- sizes


def history(image: str) -> list[tuple[int, str]]:
    """(size in bytes, created-by) per history entry, oldest first."""
    out = run(["docker", "history", "--no-trunc", "-H=false", "--format", "{{.Size}}\t{{.CreatedBy}}", image])
    rows = [line.split("\t", 1) for line in out.splitlines() if line]
    return [(int(size), created_by) for size, created_by in reversed(rows)]


def image_size(image: str) -> int:
    return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", image]).strip())


def sizes(image: str) -> Sizes:
    base = history(NODE_IMAGE)
    mine = history(image)
    if [c for _, c in mine[: len(base)]] != [c for _, c in base]:
        raise RuntimeError(f"{image}: its history does not begin with {NODE_IMAGE}'s: is the last stage FROM another image?")
    total = image_size(image)
    return Sizes(total=total, layers=sum(s for s, _ in mine[len(base):]), minus_base=total - image_size(NODE_IMAGE))


# ---------------------------------------------------------------- report


def report(results: dict[str, dict[str, Build]], measured: dict[str, Sizes], edits: dict[str, str]) -> None:
    print(f"\nDOCKER_BUILDKIT=0 docker build --build-arg NODE_IMAGE={NODE_IMAGE} (base {mb(image_size(NODE_IMAGE))} MB); "
          f"{os.cpu_count()} CPUs, load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("seconds are wall time of `docker build` (context upload included); steps = cache hits/steps that commit an image, "
          "over every stage the legacy builder runs (it builds the dev stage too)")
    header = f"{'role':<17} {'cold s':>7} {'warm s':>7} {'change s':>9}  {'steps cold/warm/change':<24} {'image MB':>9} {'app layers MB':>14} {'total-base MB':>14}"
    print(header)
    for role in ROLES:
        b, s = results[role], measured[role]
        steps = " ".join(f"{b[k].cached}/{b[k].steps}" for k in ("cold", "warm", "change"))
        print(f"{LABEL[role] + ' ' + role:<17} {b['cold'].seconds:>7.1f} {b['warm'].seconds:>7.1f} {b['change'].seconds:>9.1f}  "
              f"{steps:<24} {mb(s.total):>9} {mb(s.layers):>14} {mb(s.minus_base):>14}")
    print("sizes are of the last (change) image; app layers = sum of `docker history` sizes of the entries above the base image's history "
          "(the production stage is FROM the base); total-base is the cross-check")
    for role in ROLES:
        print(f"one-line change, {role}: {edits[role]}")
    for role in ROLES:
        for kind in ("warm", "change"):
            b = results[role][kind]
            if b.first_run:
                print(f"{kind} {role}: first step that ran instead of a cache hit: {b.first_run[:90]}")
    print()
    goals = [
        (f"Next.js layers < {GOAL_LAYERS_MB} MB", measured["frontend"].layers / MB, GOAL_LAYERS_MB, "MB"),
        (f"NestJS layers < {GOAL_LAYERS_MB} MB", measured["backend"].layers / MB, GOAL_LAYERS_MB, "MB"),
        *[(f"warm rebuild after a one-line change < {GOAL_CHANGE_S} s ({LABEL[r]})", results[r]["change"].seconds, GOAL_CHANGE_S, "s")
          for r in ROLES],
    ]
    for name, value, goal, unit in goals:
        print(f"{name:<52} {value:8.1f} {unit:<2}  {'met' if value < goal else 'NOT met'}")


# ---------------------------------------------------------------- workspace layouts


def measure_layout(layout: str, tmp: Path, run_id: str, builds: list[Build], log_dir: Path | None) -> None:
    """Each service of the layout's adopted workspace, with plano's Dockerfile and the baseline's."""
    import layouts

    repo = layouts.make_repo(layout, tmp, plano)
    edits = layouts.Edits(repo)
    rows: dict[str, tuple[dict[str, Build], Sizes]] = {}
    for role, inner in layouts.INNER.items():
        for variant, dockerfile in (("plano", f"{inner}/Dockerfile"), ("baseline", f"{inner}/Dockerfile.baseline")):
            name = f"{role}-{variant}"
            result = measure(repo, dockerfile, name, run_id, builds, log_dir, lambda role=role: edits(role))
            rows[name] = (result, sizes(result["change"].tag))
    report_layout(layout, rows)


def report_layout(layout: str, rows: dict[str, tuple[dict[str, Build], Sizes]]) -> None:
    print(f"\n{layout} workspace, DOCKER_BUILDKIT=0 docker build -f <service>/Dockerfile <root> --build-arg NODE_IMAGE={NODE_IMAGE} "
          f"(base {mb(image_size(NODE_IMAGE))} MB); {os.cpu_count()} CPUs, load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'service':<20} {'cold s':>7} {'warm s':>7} {'change s':>9}  {'steps cold/warm/change':<24} {'image MB':>9} {'app layers MB':>14}")
    for name, (b, s) in rows.items():
        steps = " ".join(f"{b[k].cached}/{b[k].steps}" for k in ("cold", "warm", "change"))
        print(f"{name:<20} {b['cold'].seconds:>7.1f} {b['warm'].seconds:>7.1f} {b['change'].seconds:>9.1f}  {steps:<24} "
              f"{mb(s.total):>9} {mb(s.layers):>14}")
    print("\nratio plano/baseline (below 1: plano's is smaller or faster)")
    for role in ("backend", "frontend"):
        (mine, mine_size), (base, base_size) = rows[f"{role}-plano"], rows[f"{role}-baseline"]
        print(f"{role:<9} app layers {mine_size.layers / base_size.layers:5.2f}  cold build {mine['cold'].seconds / base['cold'].seconds:5.2f}  "
              f"one-line change {mine['change'].seconds / base['change'].seconds:5.2f}")


# ---------------------------------------------------------------- teardown


def teardown(builds: list[Build]) -> None:
    """Untag, then remove this run's own images newest first, never pruning parents, so an
    image another build (or a cache hit of someone else's) still needs is left alone."""
    tags = [t for t in sorted({b.tag for b in builds}) if quiet(["docker", "image", "inspect", t]).returncode == 0]
    if tags:
        quiet(["docker", "rmi", "--no-prune", *tags])
    created = [i for b in builds for i in b.created]
    left = []
    for image in reversed(created):
        if quiet(["docker", "image", "inspect", image]).returncode:
            continue  # gone already
        gone = quiet(["docker", "rmi", "--no-prune", image])
        if gone.returncode:
            left.append(f"{image} ({gone.stderr.strip().splitlines()[-1] if gone.stderr.strip() else 'rmi failed'})")
    note(f"removed {len(tags)} tags and {len(created) - len(left)} of the {len(created)} images this run created")
    for line in left:
        note(f"  left in place: {line}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    run(["docker", "image", "inspect", NODE_IMAGE])  # the stand-in base must exist (scripts/harness/images.sh)
    run_id = uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="plano-bench-images-"))
    builds: list[Build] = []
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        note(f"workspace {tmp}, image tags bench-img-{run_id}-<role>:<kind>")
        if args.layout != "app":
            measure_layout(args.layout, tmp, run_id, builds, args.log_dir)
            return
        app = make_workspace(tmp)
        results: dict[str, dict[str, Build]] = {}
        measured: dict[str, Sizes] = {}
        for role in ROLES:
            results[role] = measure_role(app, role, run_id, builds, args.log_dir)
            measured[role] = sizes(results[role]["change"].tag)
        edits = {r: f"{EDITS[r][0]}: {EDITS[r][1]!r} -> {EDITS[r][2]!r}" for r in ROLES}
        report(results, measured, edits)
    finally:
        teardown(builds)
        if args.keep_workspace:
            note(f"workspace kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"total run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
