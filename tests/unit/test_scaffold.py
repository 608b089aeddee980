"""The CI pipelines plano adds to an app repo, validated against the official schemas
(check-jsonschema's vendored GitHub Actions and GitLab CI schemas)."""

import subprocess
import sys
from pathlib import Path

import pytest

from plano.core import files
from plano.ops import scaffold

SCHEMAS = {".github/workflows/ci.yml": "vendor.github-workflows", ".gitlab-ci.yml": "vendor.gitlab-ci"}


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(tool), "--builtin-schema", schema, str(path)], capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    files.apply(tmp_path, files.plan(tmp_path, scaffold.repo_tree("app1", "registry.example.com/acme", "app1.example.com")))
    return tmp_path


@pytest.fixture
def deploying(tmp_path) -> Path:
    """The pipelines of an app whose CI deploys to staging (apps.app1.ci_deploy: staging)."""
    tree = scaffold.repo_tree("app1", "registry.example.com/acme", "app1.example.com", deploy="staging")
    folder = tmp_path / "deploying"
    files.apply(folder, files.plan(folder, tree))
    return folder


@pytest.mark.parametrize("path", sorted(SCHEMAS))
@pytest.mark.parametrize("kind", ["repo", "deploying"])
def test_ci_files_validate_against_the_official_schemas(request, kind, path):
    result = check_jsonschema(SCHEMAS[path], request.getfixturevalue(kind) / path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_deploy_job_is_there_only_when_asked(repo, deploying):
    import yaml

    for path in SCHEMAS:
        assert "plano -e" not in (repo / path).read_text()
    github = yaml.safe_load((deploying / ".github/workflows/ci.yml").read_text())["jobs"]["deploy"]
    assert github["needs"] == "image" and github["environment"] == "staging"
    assert github["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert github["env"]["PLANO_USER"] == "ci:${{ github.actor }}"  # the lock and the audit log name CI's actor
    steps = github["steps"]
    assert steps[0]["with"] == {"repository": "${{ vars.PLANO_INFRA_REPO }}", "token": "${{ secrets.PLANO_INFRA_TOKEN }}",
                                "path": "infra", "fetch-depth": 0}  # a whole clone: a shallow one cannot push to the server
    assert steps[3]["env"] == {"PLANO_SSH_KEY": "${{ secrets.PLANO_SSH_KEY }}", "PLANO_KNOWN_HOSTS": "${{ secrets.PLANO_KNOWN_HOSTS }}"}
    assert steps[-1]["run"] == 'plano -e staging deploy app1 --tag "$GITHUB_SHA"' and steps[-1]["working-directory"] == "infra"
    gitlab = yaml.safe_load((deploying / ".gitlab-ci.yml").read_text())
    assert gitlab["stages"] == ["test", "publish", "deploy"]
    job = gitlab["deploy"]
    assert job["environment"] == {"name": "staging"} and job["resource_group"] == "plano-deploy-staging-app1"
    assert job["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    script = job["script"][0]
    assert "ssh-add -" in script and "infra/ssh_known_hosts" in script
    assert script.rstrip().endswith('plano -e staging deploy app1 --tag "$CI_COMMIT_SHA"')  # the tag publish pushed


@pytest.mark.parametrize("path", sorted(SCHEMAS))
def test_a_broken_ci_file_is_caught(repo, path):
    target = repo / path
    target.write_text(target.read_text().replace("stages: [test, publish]", "stages: {test: 1}").replace("\njobs:", "\njobz:"))
    assert check_jsonschema(SCHEMAS[path], target).returncode == 1


def test_images_are_pushed_with_the_sha_and_the_version(repo):
    github = (repo / ".github/workflows/ci.yml").read_text()
    assert "images: ${{ env.REGISTRY }}/app1-${{ matrix.service }}" in github
    assert "type=semver,pattern={{version}}" in github and "type=sha,format=long,prefix=" in github
    assert "cache-from: type=gha" in github and "registry: registry.example.com\n" in github
    gitlab = (repo / ".gitlab-ci.yml").read_text()
    assert 'IMAGE="$REGISTRY/app1-$SERVICE"' in gitlab and '"$IMAGE:${CI_COMMIT_TAG#v}"' in gitlab
    assert "--cache-from" in gitlab and "REGISTRY: registry.example.com/acme" in gitlab


def test_existing_ci_files_are_never_overwritten(repo):
    (repo / ".gitlab-ci.yml").write_text("# mine\n")
    assert files.plan(repo, scaffold.repo_tree("app1", "registry.example.com/acme", "app1.example.com")).changed == []


def test_the_readme_covers_dev_tests_and_release(repo):
    readme = (repo / "README.md").read_text()
    for text in ("plano dev up", "plano dev exec app1-backend -- npm test", "npm run test:e2e", "git tag v1.2.3",
                 "APP1_BACKEND_TAG=1.2.3", "https://app1.example.com"):
        assert text in readme


def test_the_deploy_jobs_scripts_pass_shellcheck(deploying, tmp_path):
    import yaml

    github = yaml.safe_load((deploying / ".github/workflows/ci.yml").read_text())["jobs"]["deploy"]["steps"]
    scripts = [step["run"] for step in github if "run" in step]
    scripts += yaml.safe_load((deploying / ".gitlab-ci.yml").read_text())["deploy"]["script"]
    for i, script in enumerate(scripts):
        path = tmp_path / f"job{i}.sh"
        path.write_text("#!/bin/bash\n" + script)
        checked = subprocess.run([str(Path(sys.executable).parent / "shellcheck"), str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
