"""Rendering is pure and deterministic: compared byte for byte with tests/golden/.

Refresh the reference trees with `pytest tests/unit/test_render.py --update-golden`
and review the diff like any other change.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from plano.core import files, secrets
from plano.core import manifest as mf
from plano.core import naming as n
from plano.render import render_infra
from plano.render.envfiles import specs
from tests import goldentree
from tests.conftest import fake_secrets, manifest_text

GOLDEN = Path(__file__).parent.parent / "golden"

CUSTOM_APPS = manifest_text().replace(
        "apps: {}\n",
        """apps:
  shop:
    domains: [shop.example.com, www.shop.example.com]
    backend:
      port: 8080
      path: /v1
      health: /v1/healthz
      source: ../shop-api
      image: ghcr.io/acme/shop-api
      env: {DB_HOST: database.host, DB_PORT: database.port, DB_USERNAME: database.user, DB_PASSWORD: database.password}
    frontend:
      enabled: false
    redis: false
  blog:
    domains: [blog.example.org]
    database: false
    frontend:
      port: 4000
""",
)
CASES = {
    "one-app": manifest_text(apps=1),
    # with the dashboard behind nginx (docker/nginx/sites-enabled/plano.conf)
    "custom-apps": CUSTOM_APPS.replace("apps:\n", "dashboard: {domain: ops.example.com}\napps:\n", 1),
}


# An app whose two services are packages of one workspace (npm, pnpm, yarn): built from its root.
WORKSPACE_APP = manifest_text().replace(
    "apps: {}\n",
    """apps:
  shop:
    domains: [shop.example.com]
    backend:
      source: ../shop/apps/api
      workspace: ../shop
      health: /api
    frontend:
      source: ../shop/apps/web
      workspace: ../shop
      dev_command: [pnpm, run, dev]
    redis: false
""",
)


def render_case(text: str) -> files.Tree:
    manifest = mf.load_text(text)
    make = fake_secrets()
    values = {path: secrets.complete({}, spec.secrets, spec.defaults, make) for path, spec in specs(manifest).items()}
    return render_infra(manifest, values)


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_tree_matches_golden(case, update_golden):
    tree = render_case(CASES[case])
    goldentree.assert_matches(tree, GOLDEN / case, update_golden)


def test_a_host_the_sni_did_not_name_is_misdirected():
    """Each HTTPS site answers 421 when the TLS SNI names none of its names (no SNI: no check)."""
    site = render_case(CASES["custom-apps"])["docker/nginx/sites-enabled/shop.conf"].content
    assert ("map $ssl_server_name $plano_misdirected_shop {\n    default 1;\n    \"\" 0;\n"
            "    shop.example.com 0;\n    www.shop.example.com 0;\n    shop.localhost 0;\n}\n") in site
    https = site[site.index("listen 443 ssl;"):]
    assert "    if ($plano_misdirected_shop) {\n        return 421;\n    }\n" in https
    assert "plano_misdirected" not in site[:site.index("listen 443 ssl;")].split("server {", 1)[1]  # not on port 80


def test_the_dashboard_site_proxies_its_domain_to_the_dashboard_socket():
    """dashboard.domain: an HTTPS site of its own (certificate lineage `plano`, as no app
    may be named), proxied to the unix socket plano dashboard listens on in data/nginx/."""
    tree = render_case(CASES["custom-apps"])
    site = tree["docker/nginx/sites-enabled/plano.conf"].content
    https = site[site.index("listen 443 ssl;"):]
    assert "    server_name ops.example.com;\n    set $plano_app plano;" in https
    assert "map $ssl_server_name $plano_cert_dir_plano { default /etc/nginx/certs/plano/plano; }" in site
    assert "proxy_pass http://unix:/etc/plano/runtime/dashboard.sock:;" in https
    assert "proxy_set_header X-Real-IP $remote_addr;" in https and "proxy_buffering off;" in https
    assert "location ^~ /.well-known/acme-challenge/" in site[:site.index("listen 443 ssl;")]
    assert "docker/nginx/sites-enabled/plano.conf" not in render_case(CUSTOM_APPS)


def test_rendering_is_deterministic():
    assert render_case(CASES["custom-apps"]) == render_case(CASES["custom-apps"])


def test_secret_files_are_private_and_scripts_executable():
    tree = render_case(CASES["one-app"])
    assert {rel for rel, f in tree.items() if f.mode == 0o600} == {".env", ".env.dev", ".env.prod"}
    assert all(f.mode == 0o755 for rel, f in tree.items() if rel.endswith(".sh"))


def test_no_secret_value_in_a_committed_file():
    tree = render_case(CASES["one-app"])
    committed = [f.content for rel, f in tree.items() if not rel.startswith(".env") or rel.endswith(".example")]
    assert not any("test-secret-" in text for text in committed)
    assert "test-secret-" in tree[".env.prod"].content


def test_every_generated_file_carries_a_valid_header():
    for rel, file in render_case(CASES["one-app"]).items():
        if file.kind is files.Kind.GENERATED:
            assert not files.is_hand_edited(file.content), rel


def test_removed_keys_are_kept_in_env_files():
    manifest = mf.load_text(CASES["one-app"])
    values = {".env": {"TZ": "Etc/UTC"}, ".env.dev": {"OLD_APP_DB_PASSWORD": "keep-me"}, ".env.prod": {}}
    values = {p: secrets.complete(values[p], s.secrets, s.defaults, fake_secrets()) for p, s in specs(manifest).items()}
    assert "OLD_APP_DB_PASSWORD=keep-me" in render_infra(manifest, values)[".env.dev"].content


def test_secrets_are_never_rotated():
    existing = {"POSTGRES_PASSWORD": "kept"}
    assert secrets.complete(existing, ["POSTGRES_PASSWORD", "APP1_DB_PASSWORD"], {}, lambda: "new") == {
        "POSTGRES_PASSWORD": "kept", "APP1_DB_PASSWORD": "new"}


def test_real_secrets_are_long_and_unique():
    values = [secrets.new_secret() for _ in range(50)]
    assert len(set(values)) == 50 and min(map(len, values)) >= 32


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_golden_compose_files_are_valid_for_real_compose(case, tmp_path):
    """compose itself reads each golden case (both modes), the env mapping's values included."""
    from plano.core.mode import Mode
    from plano.core.runner import SubprocessRunner
    from plano.engine import compose
    from plano.ops import check

    files.apply(tmp_path, files.plan(tmp_path, render_case(CASES[case])))
    outcomes = check.check_compose(tmp_path, mf.load_text(CASES[case]), SubprocessRunner())
    assert [(o.name, o.status) for o in outcomes] == [("compose config (dev)", "passed"), ("compose config (prod)", "passed")], outcomes
    ctx = compose.ComposeContext(compose.find_binary(SubprocessRunner()), "golden", Mode.PROD.compose_files, Mode.PROD.env_files)
    resolved = SubprocessRunner().run(compose.compose_argv(ctx, "config", "--format", "json"), cwd=tmp_path, timeout=120)
    assert resolved.ok, resolved.err
    if case == "custom-apps":
        env = json.loads(resolved.out)["services"]["shop-backend"]["environment"]
        assert env["DB_HOST"] == "database" and env["DB_USERNAME"] == "shop" and env["DB_PASSWORD"].startswith("test-secret-")



def test_workspace_services_build_from_the_root_and_mount_it_in_dev(update_golden):
    """Only the compose files differ for a workspace app: tests/golden/workspace-app/."""
    tree = render_case(WORKSPACE_APP)
    folder = GOLDEN / "workspace-app"
    for rel in ("docker-compose.yml", "docker-compose.dev.yml"):
        if update_golden:
            (folder / rel).write_text(tree[rel].content)
        assert tree[rel].content == (folder / rel).read_text(), f"{rel} differs from tests/golden/workspace-app/{rel}"


LIMITED = CASES["one-app"].replace("apps:\n", "limits:\n  database: {memory: 1g, cpus: 2}\n  redis: {memory: 200m}\napps:\n", 1).replace(
    "    domains:", "    backend:\n      limits: {memory: 1g, cpus: 1.5, pids: 64}\n    domains:", 1)


def test_limits_go_into_the_prod_file_only_with_no_swap_and_the_node_heap_under_them():
    from plano.render import compose, services

    manifest = mf.load_text(LIMITED)
    prod = compose.prod(manifest)["services"]
    assert prod["app1-backend"] == {
        "image": "registry.example.com/acme/app1-backend:${APP1_BACKEND_TAG:-latest}",
        "environment": {"NODE_OPTIONS": "--max-old-space-size=768"},
        "mem_limit": "1g", "memswap_limit": "1g", "cpus": 1.5, "pids_limit": 64}
    assert {key: prod["app1-frontend"][key] for key in ("environment", "mem_limit", "memswap_limit", "cpus", "pids_limit")} == {
        "environment": {"NODE_OPTIONS": "--max-old-space-size=192"},
        "mem_limit": "256m", "memswap_limit": "256m", "cpus": 1.0, "pids_limit": 256}
    assert prod["database"] == {"mem_limit": "1g", "memswap_limit": "1g", "cpus": 2.0, "pids_limit": 256}
    assert prod["redis"] == {"mem_limit": "200m", "memswap_limit": "200m", "pids_limit": 64}  # no cpus: no cap
    assert prod["nginx"]["mem_limit"] == "128m" and prod["certbot"]["cpus"] == 0.5 and prod["backup"]["pids_limit"] == 128
    # Dev servers compile and watch: no limit there, and no NODE_OPTIONS of plano's.
    for data in (compose.base(manifest), compose.dev(manifest)):
        for spec in data["services"].values():
            assert not {"mem_limit", "memswap_limit", "cpus", "pids_limit"} & set(spec)
            assert "NODE_OPTIONS" not in spec.get("environment", {})
    assert services.redis_maxmemory(manifest) == 150 * 2**20  # 200m less a quarter
    assert services.redis_maxmemory(mf.load_text(CASES["one-app"])) == 32 * 2**20  # 64m less 32m
    tiny = mf.load_text(CASES["one-app"].replace("apps:\n", "limits:\n  redis: {memory: 16m}\napps:\n", 1))
    assert services.redis_maxmemory(tiny) == 4 * 2**20
    tree = render_case(LIMITED)
    assert "\nmaxmemory 157286400\n" in tree["docker/redis/redis.conf"].content


# The custom apps on a swarm: shop's backend with 3 replicas, the others swarm's default.
SWARM = CUSTOM_APPS.replace("apps:\n", "target: swarm\nswarm: {replicas: 2}\napps:\n", 1).replace(
    "      port: 8080\n", "      port: 8080\n      replicas: 3\n", 1)


def test_the_swarm_target_adds_the_stack_file_and_changes_only_the_nginx_sites(update_golden):
    """tests/golden/swarm/: docker-stack.yml and the sites (upstreams without kept
    connections); every other file is the compose target's."""
    tree, compose_tree = render_case(SWARM), render_case(CUSTOM_APPS)
    assert sorted(set(tree) - set(compose_tree)) == ["docker-stack.yml"] and "docker-stack.yml" not in compose_tree
    changed = sorted(rel for rel, f in compose_tree.items() if tree[rel] != f)
    assert changed == sorted(n.site_file(app) for app in ("blog", "shop")), changed
    for rel in ["docker-stack.yml", *changed]:
        golden = GOLDEN / "swarm" / rel
        if update_golden:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(tree[rel].content)
        assert tree[rel].content == golden.read_text(), f"{rel} differs from tests/golden/swarm/"
    assert upstream_directives(tree[n.site_file("shop")].content) == ["server", "zone"]
    assert upstream_directives(compose_tree[n.site_file("shop")].content) == [
        "keepalive", "keepalive_requests", "keepalive_timeout", "server", "zone"]


def upstream_directives(site: str) -> list[str]:
    """The directives used in a site's upstream blocks, comments left out."""
    blocks = re.findall(r"^upstream \S+ \{\n(.*?)^\}", site, re.DOTALL | re.MULTILINE)
    lines = (line.split()[0] for block in blocks for line in block.splitlines() if line.strip())
    return sorted({word for word in lines if not word.startswith("#")})


def stack_of(text: str) -> dict:
    return yaml.safe_load(files.split_header(render_case(text)["docker-stack.yml"].content)[1])


def test_the_stack_places_updates_and_limits_each_service():
    stack = stack_of(SWARM)
    assert stack["version"] == "3.9"  # Debian bookworm's docker 20.10 CLI refuses a file without one
    services = stack["services"]
    assert list(services) == ["nginx", "certbot", "database", "redis", "backup", "blog-backend", "blog-frontend", "shop-backend"]
    where = {name: s["deploy"]["placement"]["constraints"] for name, s in services.items()}
    roles = {"nginx": "edge", "certbot": "edge", "database": "data", "redis": "data", "backup": "data",
             "blog-backend": "apps", "blog-frontend": "apps", "shop-backend": "apps"}
    assert where == {name: [f"node.labels.plano.{role} == true"] for name, role in roles.items()}
    assert {name: s["deploy"]["replicas"] for name, s in services.items()} == {
        "nginx": 1, "certbot": 1, "database": 1, "redis": 1, "backup": 1, "blog-backend": 2, "blog-frontend": 2, "shop-backend": 3}
    for name, s in services.items():
        order = "start-first" if "-" in name else "stop-first"  # two tasks cannot share a data folder or host ports
        assert s["deploy"]["update_config"] == {"parallelism": 1, "delay": "0s", "order": order, "failure_action": "rollback", "monitor": "20s"}
        assert s["deploy"]["rollback_config"]["order"] == order and s["deploy"]["endpoint_mode"] == "dnsrr"
        assert s["deploy"]["restart_policy"]["condition"] == "any"
        assert not {"build", "restart", "depends_on", "security_opt", "shm_size", "tmpfs"} & set(s)  # tmpfs: as mounts
    health = services["shop-backend"]["healthcheck"]  # it gates traffic on a swarm: often
    assert (health["interval"], health["retries"], health["start_period"]) == ("5s", 3, "30s") and health["test"][:3] == ["CMD", "node", "-e"]
    assert services["shop-backend"]["deploy"]["resources"] == {"limits": {"memory": "256m", "cpus": "1", "pids": 256}}
    assert services["shop-backend"]["image"] == "ghcr.io/acme/shop-api:${SHOP_BACKEND_TAG:-latest}"
    assert services["nginx"]["ports"] == [{"target": 80, "published": 80, "protocol": "tcp", "mode": "host"},
                                          {"target": 443, "published": 443, "protocol": "tcp", "mode": "host"}]
    assert services["nginx"]["image"].startswith("registry.example.com/acme/acme-nginx:${PLANO_NGINX_IMAGE_TAG:?")
    assert {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 134217728}} in services["database"]["volumes"]


def test_the_stack_keeps_secrets_out_and_versions_them():
    tree = render_case(SWARM)
    text = tree["docker-stack.yml"].content
    for path, file in tree.items():
        if path.startswith(("data/secrets/", ".env.prod")) and not path.endswith(".example"):
            for line in file.content.splitlines():
                value = line.split("=", 1)[-1]
                assert len(value) < 16 or value not in text, f"a secret of {path} is in docker-stack.yml"
    found = stack_of(SWARM)["secrets"]["database-shop-db-password"]
    assert found == {"name": "acme-database-shop-db-password-${PLANO_SECRET_DATABASE_SHOP_DB_PASSWORD:?PLANO_SECRET_DATABASE_SHOP_DB_PASSWORD "
                             "is missing: run plano swarm up}", "file": "./data/secrets/database/SHOP_DB_PASSWORD"}
    assert stack_of(SWARM)["networks"]["shop-net"] == {"driver": "overlay", "driver_opts": {"encrypted": ""}}
    clear = stack_of(SWARM.replace("swarm: {replicas: 2}", "swarm: {replicas: 2, encrypted: false}"))
    assert set(clear["networks"]) == {"edge", "backup", "shop-net", "blog-net"}
    assert all(net == {"driver": "overlay"} for net in clear["networks"].values())


def test_the_golden_stack_file_is_valid_for_the_real_docker_stack_config(tmp_path):
    """The docker CLI's own loader (`docker stack config`, no engine needed) reads it with
    every variable given, and refuses it with one missing, naming it."""
    files.apply(tmp_path, files.plan(tmp_path, render_case(SWARM)))  # the env files it names must exist
    stack = tmp_path / "docker-stack.yml"
    assert stack.read_text() == (GOLDEN / "swarm/docker-stack.yml").read_text()
    names = sorted(set(re.findall(r"\$\{([A-Z0-9_]+)", stack.read_text())))
    env = {**os.environ, **dict.fromkeys(names, "v1")}
    done = subprocess.run(["docker", "stack", "config", "-c", str(stack)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert resolved["services"]["shop-backend"]["environment"]["DB_PASSWORD"] == "v1"
    assert resolved["secrets"]["database-postgres-password"]["name"] == "acme-database-postgres-password-v1"
    del env["PLANO_NGINX_IMAGE_TAG"]
    refused = subprocess.run(["docker", "stack", "config", "-c", str(stack)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0 and "PLANO_NGINX_IMAGE_TAG is missing: run plano swarm up" in refused.stderr
