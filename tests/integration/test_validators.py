"""`plano check` runs the real validators on rendered trees of 1, 2 and 10 apps,
and each validator really fails on a broken tree."""

import json
import os
from pathlib import Path

import pytest

from plano.cli import main

pytestmark = pytest.mark.expected_seconds(15)  # on a 2-core machine

VALIDATORS = ["compose config (dev)", "compose config (prod)", "nginx -t", "gixy", "shellcheck", "hadolint"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def make_infra(workspace: Path, capsys, apps: int, nginx_image: str) -> Path:
    code, _, err = run(capsys, "init", "infra", "--registry", "127.0.0.1:5000/acme", "--email", "ops@example.com")
    assert code == 0, err
    root = workspace / "infra"
    manifest = root / "plano.yml"
    manifest.write_text(manifest.read_text().replace("  nginx: nginx:1.28.0", f"  nginx: {nginx_image}"))
    os.chdir(root)
    for i in range(1, apps + 1):
        domains = ["--domain", f"app{i}.example.com", "--domain", f"www.app{i}.example.com"]
        code, _, err = run(capsys, "app", "add", f"app{i}", *domains)
        assert code == 0, err
    return root


def outcomes(capsys) -> tuple[int, dict[str, dict]]:
    code, out, _ = run(capsys, "check", "--json")
    return code, {o["name"]: o for o in json.loads(out)}


@pytest.mark.parametrize("apps", [1, 2, 10])
def test_every_validator_passes(workspace, capsys, engine, apps):
    root = make_infra(workspace, capsys, apps, engine)
    if apps == 2:  # and the dashboard's site (dashboard.domain)
        manifest = root / "plano.yml"
        manifest.write_text(manifest.read_text().replace("\napps:\n", "\ndashboard: {domain: ops.example.com}\napps:\n", 1))
        code, _, err = run(capsys, "render")
        assert code == 0 and (root / "docker/nginx/sites-enabled/plano.conf").is_file(), err
    code, results = outcomes(capsys)
    assert list(results) == VALIDATORS
    assert {name: r["status"] for name, r in results.items()} == {name: "passed" for name in VALIDATORS}, results
    assert code == 0


def test_nginx_t_fails_on_a_broken_snippet(workspace, capsys, engine):
    root = make_infra(workspace, capsys, 1, engine)
    (root / "docker/nginx/custom/app1").mkdir(parents=True)
    (root / "docker/nginx/custom/app1/broken.conf").write_text("no_such_directive on;\n")
    code, results = outcomes(capsys)
    assert code == 1
    assert results["nginx -t"]["status"] == "failed"
    assert 'unknown directive "no_such_directive"' in results["nginx -t"]["detail"]


def test_compose_config_fails_without_the_prod_secrets(workspace, capsys, engine):
    root = make_infra(workspace, capsys, 1, engine)
    (root / ".env.prod").unlink()
    code, results = outcomes(capsys)
    assert code == 1
    assert results["compose config (prod)"]["status"] == "failed"
    assert results["compose config (dev)"]["status"] == "passed"


def test_gixy_and_hadolint_and_shellcheck_fail_on_broken_files(workspace, capsys, engine):
    root = make_infra(workspace, capsys, 1, engine)
    (root / "docker/nginx/custom/http").mkdir(parents=True)
    (root / "docker/nginx/custom/http/bad.conf").write_text(
        "server { listen 8082; location / { add_header X-A a; proxy_pass http://$http_host; } }\n"
    )
    dockerfile = root / "docker/redis/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN cd /tmp && echo hi\n")
    script = root / "docker/shared-scripts/backup.sh"
    script.write_text(script.read_text() + 'echo $undefined_var_here\n')
    code, results = outcomes(capsys)
    assert code == 1
    assert results["gixy"]["status"] == "failed" and "ssrf" in results["gixy"]["detail"].lower()
    assert results["hadolint"]["status"] == "failed" and "DL3003" in results["hadolint"]["detail"]
    assert results["shellcheck"]["status"] == "failed" and "SC2154" in results["shellcheck"]["detail"]
