"""`plano clone` with app repos served from local bare git repositories: a missing
one is cloned, an unreachable one fails alone, present ones are reported."""

import json
import subprocess

import pytest

from plano.ops.demo import copy_demo_app
from tests.integration.stackfixtures import plano

pytestmark = pytest.mark.expected_seconds(6)  # on a 2-core machine

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]


def git(*args: str, cwd) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def bare_repo(tmp_path, name: str):
    """A bare repository holding the stand-in app (backend/ and frontend/)."""
    work = tmp_path / "src" / name
    copy_demo_app(work)
    git("init", "-q", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "first", cwd=work)
    bare = tmp_path / "git" / f"{name}.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


def test_clone_missing_report_present_and_fail_alone(tmp_path):
    ws = tmp_path / "workspace"
    ws.mkdir()
    plano("init", "infra", "--registry", "registry.example.com/acme", "--email", "ops@example.com", cwd=ws)
    infra = ws / "infra"
    shop, blog = bare_repo(tmp_path, "shop"), bare_repo(tmp_path, "blog")
    plano("app", "add", "shop", "--domain", "shop.example.com", "--repo", f"file://{shop}", cwd=infra)
    plano("app", "add", "blog", "--domain", "blog.example.com", "--repo", f"file://{blog}", cwd=infra)
    plano("app", "add", "gone", "--domain", "gone.example.com", "--repo", f"file://{tmp_path}/git/nowhere.git", cwd=infra)
    plano("app", "add", "local", "--domain", "local.example.com", cwd=infra)  # no repo in plano.yml
    # blog is already there: one local commit ahead, and an uncommitted change.
    git("clone", "-q", f"file://{blog}", str(ws / "blog"), cwd=ws)
    (ws / "blog/backend/server.js").write_text("// changed\n")
    (ws / "blog/NOTES.md").write_text("notes\n")
    git("add", "NOTES.md", cwd=ws / "blog")
    git("commit", "-qm", "notes", cwd=ws / "blog")

    proc = plano("clone", "--json", cwd=infra, check=False)
    assert proc.returncode == 1 and "error: could not clone gone (see above); the others are in place" in proc.stderr
    states = {s["app"]: s for s in json.loads(proc.stdout)}
    assert states["shop"]["state"] == "cloned" and states["shop"]["path"] == "../shop"
    assert (ws / "shop/backend/server.js").is_file() and states["shop"]["branch"] == "main"
    assert states["blog"]["state"] == "present"
    assert (states["blog"]["branch"], states["blog"]["dirty"], states["blog"]["ahead"], states["blog"]["behind"]) == ("main", True, 1, 0)
    assert states["gone"]["state"] == "failed" and "does not appear to be a git repository" in states["gone"]["detail"]
    assert not (ws / "gone").exists()
    assert states["local"]["state"] == "no repo" and "set apps/local/repo in plano.yml" in states["local"]["detail"]

    # Run again, one app: nothing is cloned twice.
    again = json.loads(plano("clone", "--app", "shop", "--json", cwd=infra).stdout)
    assert [(s["app"], s["state"], s["dirty"]) for s in again] == [("shop", "present", False)]
    bad = plano("clone", "--app", "nope", cwd=infra, check=False)
    assert bad.returncode == 2 and "--app nope: no such app" in bad.stderr
