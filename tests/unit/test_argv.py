"""Exact command lines: what `plano check` (and later `plano dev/prod`) runs."""


from plano.core import manifest as mf
from plano.core.mode import Mode
from plano.engine import compose
from plano.ops import check
from tests.conftest import manifest_text
from tests.scripted import Answer, ScriptedRunner


def test_dev_compose_argv():
    ctx = compose.ComposeContext(("docker", "compose"), "acme-dev", Mode.DEV.compose_files, Mode.DEV.env_files)
    assert compose.compose_argv(ctx, "config", "--quiet") == [
        "docker", "compose", "-p", "acme-dev", "--env-file", ".env", "--env-file", ".env.dev",
        "-f", "docker-compose.yml", "-f", "docker-compose.dev.yml", "config", "--quiet"]


def test_prod_compose_argv():
    ctx = compose.ComposeContext(("/usr/bin/docker-compose",), "acme", Mode.PROD.compose_files, Mode.PROD.env_files)
    assert compose.compose_argv(ctx, "up", "-d", "--wait") == [
        "/usr/bin/docker-compose", "-p", "acme", "--env-file", ".env", "--env-file", ".env.prod",
        "-f", "docker-compose.yml", "-f", "docker-compose.prod.yml", "up", "-d", "--wait"]


def test_nginx_check_argv(tmp_path):
    (tmp_path / "docker/nginx").mkdir(parents=True)
    (tmp_path / "docker/nginx/Dockerfile").write_text("FROM x\n")
    m = mf.load_text(manifest_text(apps=1))
    tag = check.nginx_tag(tmp_path, m)
    assert tag.startswith("plano-check/acme-nginx:")
    assert check.nginx_build_argv(tmp_path, m) == [
        "docker", "build", "-q", "-t", tag, "--build-arg", "NGINX_IMAGE=nginx:1.28.0", str(tmp_path / "docker/nginx")]
    assert check.nginx_test_argv(tmp_path, m) == [
        "docker", "run", "--rm", "--network", "none", "-v", f"{(tmp_path / 'docker/nginx').resolve()}:/etc/plano/nginx:ro",
        "--tmpfs", "/etc/nginx/certs", "--tmpfs", "/etc/plano/runtime", "--tmpfs", "/var/log/plano", tag, "nginx", "-c",
        "/etc/plano/nginx/nginx.conf", "-t"]


def test_nginx_tag_follows_the_build_inputs(tmp_path):
    (tmp_path / "docker/nginx").mkdir(parents=True)
    (tmp_path / "docker/nginx/Dockerfile").write_text("FROM x\n")
    m = mf.load_text(manifest_text())
    before = check.nginx_tag(tmp_path, m)
    (tmp_path / "docker/nginx/Dockerfile").write_text("FROM y\n")
    assert check.nginx_tag(tmp_path, m) != before


def test_nginx_check_is_skipped_without_an_engine(tmp_path):
    m = mf.load_text(manifest_text())
    runner = ScriptedRunner().query("docker", "info", answers=Answer(1, "", "Cannot connect to the Docker daemon"))
    outcome = check.check_nginx(tmp_path, m, runner)
    assert outcome.status == check.SKIPPED and "no Docker engine" in outcome.detail

