"""The commands as a user runs them, in a temporary workspace."""

import json
import os
import stat
from pathlib import Path

import pytest

from plano.cli import main
from plano.core.files import tree_digest

INIT = ["init", "infra", "--registry", "registry.example.com/acme", "--email", "ops@example.com"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def infra(workspace, capsys) -> Path:
    assert run(capsys, *INIT)[0] == 0
    os.chdir(workspace / "infra")
    return workspace / "infra"


def test_init_creates_the_seed_layout(workspace, capsys):
    code, out, _ = run(capsys, *INIT)
    assert code == 0
    root = workspace / "infra"
    for rel in [
        "plano.yml", "docker-compose.yml", "docker-compose.dev.yml", "docker-compose.prod.yml",
        ".env", ".env.dev", ".env.prod", ".env.prod.example", ".gitignore", "README.md",
        "docker/nginx/Dockerfile", "docker/nginx/nginx.conf", "docker/certbot/Dockerfile",
        "docker/certbot/scripts/renew-loop.sh", "docker/database/Dockerfile",
        "docker/database/initdb/10-plano-apps.sh", "docker/redis/Dockerfile", "docker/redis/redis.conf",
        "docker/shared-scripts/backup.sh",
    ]:
        assert (root / rel).is_file(), rel
    for rel in ["docker/nginx/sites-enabled", "data/database", "data/certs", "data/logs", "data/uploads", ".git"]:
        assert (root / rel).is_dir() or rel == "docker/nginx/sites-enabled", rel
    for secret in (".env", ".env.dev", ".env.prod"):
        assert stat.S_IMODE((root / secret).stat().st_mode) == 0o600
    ignored = (root / ".gitignore").read_text()
    assert "/.env.prod" in ignored and "/data/" in ignored
    assert "name: infra" in (root / "plano.yml").read_text()


def test_init_refuses_an_existing_infra(infra, capsys):
    before = tree_digest(infra)
    code, _, err = run(capsys, *INIT[:1], str(infra), *INIT[2:])
    assert code == 3 and "an infra already exists here" in err
    assert tree_digest(infra) == before


def test_init_force_keeps_secrets(infra, capsys):
    secrets = (infra / ".env.prod").read_text()
    assert run(capsys, "init", str(infra), *INIT[2:], "--force")[0] == 0
    assert (infra / ".env.prod").read_text() == secrets


def test_app_add_list_remove(infra, capsys):
    code, _, _ = run(capsys, "app", "add", "app1", "--domain", "app1.example.com", "--domain", "www.app1.example.com")
    assert code == 0
    site = (infra / "docker/nginx/sites-enabled/app1.conf").read_text()
    assert "server_name app1.example.com www.app1.example.com app1.localhost;" in site
    prod = (infra / ".env.prod").read_text()
    assert "APP1_DB_PASSWORD=" in prod and "APP1_BACKEND_TAG=latest" in prod
    assert (infra / "data/uploads/app1").is_dir()

    code, out, _ = run(capsys, "app", "list", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["app1"]
    assert rows[0]["backend"]["source"] == "../app1/backend"
    assert rows[0]["backend"]["image"] == "registry.example.com/acme/app1-backend"

    code, out, _ = run(capsys, "app", "list")
    assert "app1.example.com" in out

    (infra / "data/uploads/app1/photo.jpg").write_text("data")
    code, out, _ = run(capsys, "app", "remove", "app1")
    assert code == 0 and "removed docker/nginx/sites-enabled/app1.conf" in out
    assert not (infra / "docker/nginx/sites-enabled/app1.conf").exists()
    assert (infra / "data/uploads/app1/photo.jpg").read_text() == "data"
    assert "APP1_DB_PASSWORD=" in (infra / ".env.prod").read_text()  # kept for the data
    assert json.loads(run(capsys, "app", "list", "--json")[1]) == []


def test_app_add_flags_change_the_defaults(infra, capsys):
    code, _, _ = run(
        capsys, "app", "add", "shop", "--domain", "shop.example.com", "--backend-port", "8080", "--api-path", "/v1",
        "--backend-health", "/v1/health", "--no-frontend", "--no-redis", "--backend-source", "../shop-api",
    )
    assert code == 0
    row = json.loads(run(capsys, "app", "list", "--json")[1])[0]
    assert row["backend"]["port"] == 8080 and row["backend"]["path"] == "/v1" and row["frontend"] is None
    assert row["redis"] is False and row["backend"]["source"] == "../shop-api"
    text = (infra / "plano.yml").read_text()
    assert "# plano.yml: the single source of truth" in text  # comments survive the edit
    assert "port: 8080" in text


def test_render_is_idempotent(infra, capsys):
    run(capsys, "app", "add", "app1", "--domain", "app1.example.com")
    before = tree_digest(infra)
    code, out, _ = run(capsys, "render")
    assert code == 0 and "everything up to date" in out
    assert tree_digest(infra) == before
    assert run(capsys, "render", "--check")[0] == 0


def test_hand_edit_is_refused_with_a_diff_then_forced(infra, capsys):
    run(capsys, "app", "add", "app1", "--domain", "app1.example.com")
    conf = infra / "docker/nginx/nginx.conf"
    conf.write_text(conf.read_text().replace("worker_connections 4096;", "worker_connections 10;"))
    (infra / "plano.yml").write_text((infra / "plano.yml").read_text().replace("  nginx: nginx:1.28.0", "  nginx: nginx:1.28.1"))
    before = tree_digest(infra)
    code, _, err = run(capsys, "render")
    assert code == 3
    assert "docker/nginx/nginx.conf: edited by hand" in err
    assert "-    worker_connections 10;" in err and "+    worker_connections 4096;" in err
    assert tree_digest(infra) == before

    code, out, _ = run(capsys, "render", "--check")
    assert code == 1 and "out of date: docker/nginx/nginx.conf (edited by hand)" in out

    assert run(capsys, "render", "--force")[0] == 0
    assert "worker_connections 4096;" in conf.read_text()
    assert "NGINX_IMAGE=nginx:1.28.1" in (infra / "docker/nginx/Dockerfile").read_text()


def test_render_check_reports_a_stale_tree(infra, capsys):
    (infra / "plano.yml").write_text((infra / "plano.yml").read_text().replace("https_port: 443\n\ndev:", "https_port: 8443\n\ndev:"))
    code, out, _ = run(capsys, "render", "--check", "--diff")
    assert code == 1 and "out of date: docker-compose.prod.yml" in out and "0.0.0.0:8443:443" in out


def test_user_files_survive_render(infra, capsys):
    run(capsys, "app", "add", "app1", "--domain", "app1.example.com")
    (infra / "env/app1-backend.env").write_text("LOG_LEVEL=debug\n")
    (infra / "docker/nginx/custom/app1").mkdir(parents=True)
    (infra / "docker/nginx/custom/app1/limits.conf").write_text("client_max_body_size 1g;\n")
    (infra / "docker-compose.custom.yml").write_text("services:\n  extra:\n    image: busybox\n")
    assert run(capsys, "render", "--force")[0] == 0
    assert (infra / "env/app1-backend.env").read_text() == "LOG_LEVEL=debug\n"
    assert (infra / "docker/nginx/custom/app1/limits.conf").exists()
    assert "extra" in (infra / "docker-compose.custom.yml").read_text()


BAD_ADDS = [
    (["App1", "--domain", "a.example.com"], "NAME 'App1': app names are lower-case letters"),
    (["../x", "--domain", "a.example.com"], "NAME '../x': app names are lower-case letters"),
    (["a;b", "--domain", "a.example.com"], "NAME 'a;b': app names are lower-case letters"),
    (["1app", "--domain", "a.example.com"], "NAME '1app': app names are lower-case letters"),
    (["--domain", "a.example.com", "--", "-app"], "NAME '-app': app names are lower-case letters"),
    (["a" * 31, "--domain", "a.example.com"], "app names are at most 30 characters"),
    (["café", "--domain", "a.example.com"], "NAME 'café': app names are lower-case letters"),
    (["nginx", "--domain", "a.example.com"], "NAME: 'nginx' is reserved"),
    (["database", "--domain", "a.example.com"], "NAME: 'database' is reserved"),
    (["redis", "--domain", "a.example.com"], "NAME: 'redis' is reserved"),
    (["certbot", "--domain", "a.example.com"], "NAME: 'certbot' is reserved"),
    (["postgres", "--domain", "a.example.com"], "NAME: 'postgres' is reserved"),
    (["app2", "--domain", "bad_domain"], "--domain: 'bad_domain' is not a valid domain"),
    (["app2", "--domain", "APP1.example.com."], "apps/app2/domains/0: app1.example.com is already used by apps/app1/domains/0"),
    (["app2", "--domain", "b.example.com", "--backend-port", "0"], "--backend-port '0': ports are 1-65535, got 0"),
    (["app2", "--domain", "b.example.com", "--api-path", "api"], "--api-path: 'api' is not a URL path"),
    (["app1", "--domain", "c.example.com"], "apps/app1: already registered"),
]


@pytest.mark.parametrize("args, message", BAD_ADDS, ids=[str(i) for i in range(len(BAD_ADDS))])
def test_bad_app_add_changes_nothing(infra, capsys, args, message):
    run(capsys, "app", "add", "app1", "--domain", "app1.example.com")
    before = tree_digest(infra)
    code, _, err = run(capsys, "app", "add", *args)
    assert code in (2, 3)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert tree_digest(infra) == before


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t + "colour: blue\n", "error: colour: unknown key"),
        (lambda t: t.replace("http_port: 80\n  https_port: 443\n\ndev", "http_port: eighty\n  https_port: 443\n\ndev"), "error: prod/http_port: expected an integer"),
        (lambda t: t.replace("  redis_port: 6379", "  redis_port: 5432"), "error: dev/redis_port: port 5432 is already used by dev/database_port"),
        (lambda t: t.replace("apps:\n", "apps: [\n"), "error: plano.yml:"),
        (lambda t: t.replace("app1.example.com", "app1..example.com"), "error: apps/app1/domains/0: 'app1..example.com' is not a valid domain"),
    ],
    ids=["unknown-key", "wrong-type", "clashing-ports", "yaml-syntax", "bad-domain"],
)
def test_bad_manifest_changes_nothing(infra, capsys, edit, message):
    run(capsys, "app", "add", "app1", "--domain", "app1.example.com")
    manifest = infra / "plano.yml"
    manifest.write_text(edit(manifest.read_text()))
    before = tree_digest(infra)
    for command in (["render"], ["app", "add", "app9", "--domain", "x.example.com"], ["app", "list"]):
        code, _, err = run(capsys, *command)
        assert code == 2, command
        assert err.strip().splitlines() == [err.strip()] and err.startswith(message), err
    assert tree_digest(infra) == before


def test_no_manifest_is_a_clear_error(workspace, capsys):
    code, _, err = run(capsys, "render")
    assert code == 2 and "no plano.yml in" in err


def test_bad_init_writes_nothing(workspace, capsys):
    code, _, err = run(capsys, "init", "infra", "--registry", "https://nope", "--email", "ops@example.com")
    assert code == 2 and err.startswith("error: --registry: 'https://nope' is not a registry path")
    assert not (workspace / "infra").exists()


def test_remove_unknown_app(infra, capsys):
    code, _, err = run(capsys, "app", "remove", "ghost")
    assert code == 2 and err.strip() == "error: apps/ghost: no such app in plano.yml (registered: none); see plano app list"


def test_help_lists_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "Exit codes" in out


def test_demo_without_an_engine_says_what_it_could_not_do(workspace, capsys, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    code, out, err = run(capsys, "demo", "demo-ws", "--image", "nginx=mirror.example.com/nginx:1.28.0")
    assert code == 0, err
    assert "passed   compose config (dev)" in out and "skipped  nginx -t" in out
    assert "not started: no Docker engine answers" in out
    root = workspace / "demo-ws"
    assert (root / "app1/backend/Dockerfile").is_file() and (root / "app1/frontend/.dockerignore").is_file()
    assert "nginx: mirror.example.com/nginx:1.28.0" in (root / "infra/plano.yml").read_text()
    assert "NGINX_IMAGE=mirror.example.com/nginx:1.28.0" in (root / "infra/docker/nginx/Dockerfile").read_text()


def test_demo_refuses_a_used_folder(workspace, capsys):
    (workspace / "used").mkdir()
    (workspace / "used/file").write_text("x")
    code, _, err = run(capsys, "demo", "used")
    assert code == 3 and "not empty" in err


def test_demo_bad_image_writes_nothing(workspace, capsys):
    code, _, err = run(capsys, "demo", "ws", "--image", "nginx=Not An Image")
    assert code == 2 and err.startswith("error: images/nginx: 'Not An Image' is not an image reference")
    assert not (workspace / "ws").exists()


def test_app_new_creates_the_repo_and_registers_it(infra, capsys):
    code, out, err = run(capsys, "app", "new", "shop", "--domain", "shop.example.com")
    assert code == 0, err
    repo = infra.parent / "shop"
    assert json.loads((repo / "frontend/package.json").read_text())["name"] == "shop-frontend"
    assert (repo / ".git").is_dir() and (repo / "backend/.oxlintrc.json").is_file()
    assert "ARG NODE_IMAGE=node:22.20.0-bookworm-slim" in (repo / "backend/Dockerfile").read_text()
    assert not list(repo.rglob("*app1*")) and "app1" not in (repo / "backend/package-lock.json").read_text()
    assert (infra / "docker/nginx/sites-enabled/shop.conf").is_file()


def test_app_new_elsewhere_records_the_source_paths(infra, capsys):
    code, _, err = run(capsys, "app", "new", "shop", "--domain", "shop.example.com", "--path", str(infra.parent / "repos/shop"))
    assert code == 0, err
    row = json.loads(run(capsys, "app", "list", "--json")[1])[0]
    assert row["backend"]["source"] == "../repos/shop/backend" and row["frontend"]["source"] == "../repos/shop/frontend"


@pytest.mark.parametrize(
    "args, message",
    [
        (["Shop", "--domain", "shop.example.com"], "error: NAME 'Shop': app names are lower-case letters"),
        (["shop", "--domain", "not a domain"], "error: --domain: 'not a domain' is not a valid domain"),
        (["used", "--domain", "used.example.com"], "not empty; use 'plano app adopt"),
    ],
)
def test_bad_app_new_writes_nothing(infra, capsys, args, message):
    (infra.parent / "used").mkdir()
    (infra.parent / "used/file").write_text("x")
    before = tree_digest(infra.parent)
    code, _, err = run(capsys, "app", "new", *args)
    assert code in (2, 3) and message in err
    assert tree_digest(infra.parent) == before


def adoptable(repo: Path) -> Path:
    """An app repo as the generators leave it: a NestJS backend and a Next.js frontend."""
    for role, dep, scripts in (("backend", "@nestjs/core", ["build", "start:dev"]), ("frontend", "next", ["build", "dev"])):
        (repo / role).mkdir(parents=True)
        (repo / role / "package.json").write_text(json.dumps({"dependencies": {dep: "1"}, "scripts": dict.fromkeys(scripts, "x")}))
        (repo / role / "package-lock.json").write_text("{}")
    return repo


def test_app_adopt_adds_files_and_registers(infra, capsys):
    repo = adoptable(infra.parent / "shop")
    (repo / "frontend/Dockerfile").write_text("FROM mine\n")
    code, out, err = run(capsys, "app", "adopt", "../shop", "--domain", "shop.example.com")
    assert code == 0, err
    assert "added backend/Dockerfile" in out and "added frontend/.dockerignore" in out
    assert (repo / "frontend/Dockerfile").read_text() == "FROM mine\n"
    assert "to do: backend/src/main.ts:" in out
    row = json.loads(run(capsys, "app", "list", "--json")[1])[0]
    assert row["name"] == "shop" and row["backend"]["source"] == "../shop/backend"
    assert (row["database"], row["redis"]) == (False, False)  # its backend uses neither
    assert "database: none (backend/package.json)" in out
    assert (repo / ".github/workflows/ci.yml").is_file() and not (repo / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["../shop", "--domain", "bad domain"], "error: --domain: 'bad domain' is not a valid domain"),
        (["../shop", "--name", "Shop", "--domain", "shop.example.com"], "error: --name 'Shop': app names are lower-case"),
        (["../nowhere", "--domain", "shop.example.com"], "error: ../nowhere: no such folder"),
        (["../shop", "--domain", "shop.example.com", "--frontend", "web"], "error: --frontend web: no Next.js frontend there"),
        (["../My_Shop", "--domain", "shop.example.com"],
         "error: '../My_Shop': the folder name 'My_Shop' is not an app name; give one with --name my-shop"),
    ],
)
def test_bad_app_adopt_writes_nothing(infra, capsys, args, message):
    adoptable(infra.parent / "shop")
    adoptable(infra.parent / "My_Shop")
    before = tree_digest(infra.parent)
    code, _, err = run(capsys, "app", "adopt", *args)
    assert code in (2, 3) and message in err, err
    assert tree_digest(infra.parent) == before
