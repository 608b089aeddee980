"""The end of a test run removes what that run made, found by its ledger and its
label, and nothing else: not another run's objects, not the stand-in images."""

import fcntl
import json
import urllib.request

import pytest

from tests import testrun
from tests.integration.stackfixtures import REGISTRY, docker

pytestmark = pytest.mark.expected_seconds(5)  # on a 2-core machine

BASE = "plano-test/debian:sid"


def make_objects(run: str, project: str) -> dict[str, str]:
    """A compose-labelled container, network and volume of `project`, an image built for
    it by compose, a labelled image of `run`, and that image pushed under the project."""
    compose = ["--label", f"com.docker.compose.project={project}"]
    made = {
        "container": docker("create", *compose, BASE, "true").stdout.strip(),
        "network": docker("network", "create", *compose, f"{project}_default").stdout.strip(),
        "volume": docker("volume", "create", *compose, f"{project}_data").stdout.strip(),
    }
    for key, labels, tag in (("compose image", compose, f"{project}-app1-backend"),
                             ("run image", ["--label", f"{testrun.LABEL}={run}"], f"{REGISTRY}/{project}/app1-backend:1.0.0")):
        proc = docker("build", "-q", *labels, "-t", tag, "-", input_text=f"FROM {BASE}\nLABEL made.for={project}\n")
        made[key] = proc.stdout.strip()
    docker("push", f"{REGISTRY}/{project}/app1-backend:1.0.0")
    return made


def exists(kind: str, ident: str) -> bool:
    return docker(*(["inspect"] if kind == "container" else [kind.split()[-1], "inspect"]), ident, check=False).returncode == 0


def registry_tags(project: str) -> list[str]:
    with urllib.request.urlopen(f"http://{REGISTRY}/v2/{project}/app1-backend/tags/list", timeout=10) as resp:
        return json.load(resp).get("tags") or []


def test_a_runs_sweep_removes_its_own_objects_only(tmp_path, engine, test_run):
    ours, theirs = f"sweep-{test_run[-6:]}-a", f"sweep-{test_run[-6:]}-b"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "projects").write_text(f"{ours}\n")
    mine = make_objects("a-finished-run", ours)
    other = make_objects("another-run", theirs)
    try:
        removed = testrun.sweep("a-finished-run", folder)
        assert removed == ["1 containers", "1 networks", "1 volumes", "2 images", "1 registry manifests"], removed
        for kind, ident in mine.items():
            assert not exists(kind, ident), (kind, ident)
        assert registry_tags(ours) == []
        for kind, ident in other.items():
            assert exists(kind, ident), (kind, ident)
        assert registry_tags(theirs) == ["1.0.0"]
        assert exists("image", BASE)
    finally:
        (folder / "projects").write_text(f"{ours}\n{theirs}\n")
        testrun.sweep("another-run", folder)


def test_a_killed_run_is_swept_by_the_next_one_and_a_live_run_is_not(tmp_path, engine):
    runs = tmp_path / "runs"
    folders = {name: runs / name for name in ("killed", "live", "now")}
    for name, folder in folders.items():
        folder.mkdir(parents=True)
        (folder / "lock").touch()
        (folder / "projects").write_text(f"sweep-{tmp_path.name[-6:]}-{name}\n")
    containers = {name: docker("create", "--label", f"com.docker.compose.project=sweep-{tmp_path.name[-6:]}-{name}",
                                BASE, "true").stdout.strip() for name in folders}
    with (folders["live"] / "lock").open("a") as held, (folders["now"] / "lock").open("a") as ours:
        fcntl.flock(held, fcntl.LOCK_EX)  # that run still runs
        fcntl.flock(ours, fcntl.LOCK_EX)
        try:
            removed = testrun.sweep_abandoned(testrun.Run("now", folders["now"], ours))
            assert removed == ["killed: 1 containers"]
            assert not folders["killed"].exists() and not exists("container", containers["killed"])
            assert folders["live"].is_dir() and exists("container", containers["live"])
            assert folders["now"].is_dir() and exists("container", containers["now"])
        finally:
            docker("rm", "-f", containers["live"], containers["now"], check=False)
