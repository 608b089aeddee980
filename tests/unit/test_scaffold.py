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


@pytest.mark.parametrize("path", sorted(SCHEMAS))
def test_ci_files_validate_against_the_official_schemas(repo, path):
    result = check_jsonschema(SCHEMAS[path], repo / path)
    assert result.returncode == 0, result.stdout + result.stderr


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
