import pytest

from plano.core import fields
from plano.core import manifest as mf
from plano.core.errors import ManifestError
from tests.conftest import manifest_text


def error_of(text: str) -> str:
    with pytest.raises(ManifestError) as caught:
        mf.load_text(text)
    return str(caught.value)


def with_app(name: str, body: str = "    domains: [a.example.com]\n") -> str:
    return manifest_text().replace("apps: {}\n", f"apps:\n  {name}:\n{body}")


def test_defaults_fill_a_minimal_app():
    m = mf.load_text(with_app("app1"))
    app = m.apps["app1"]
    assert (app.backend.port, app.backend.path, app.backend.health) == (3000, "/api", "/api/health")
    assert (app.frontend.port, app.frontend.path, app.frontend.health) == (3000, "/", "/")
    assert app.database and app.redis
    assert app.backend.dev_command == ["npm", "run", "start:dev"]
    assert m.images.nginx == "nginx:1.28.0"


@pytest.mark.parametrize(
    "name, expected",
    [
        ("App1", "apps/App1: app names are lower-case letters, digits and single '-', start with a letter, end with a letter or digit (try 'app1')"),
        ("../x", "apps/'../x': app names are lower-case letters"),
        ("a;b", "apps/'a;b': app names are lower-case letters"),
        ("1app", "apps/1app: app names are lower-case letters"),
        ("-app", "apps/-app: app names are lower-case letters"),
        ("app-", "apps/app-: app names are lower-case letters"),
        ("a" * 31, f"apps/{'a' * 31}: app names are at most 30 characters"),
        ("appé", "apps/'appé': app names are lower-case letters"),
        ("nginx", "apps/nginx: 'nginx' is reserved for the infra's own services"),
        ("database", "apps/database: 'database' is reserved"),
        ("redis", "apps/redis: 'redis' is reserved"),
        ("certbot", "apps/certbot: 'certbot' is reserved"),
        ("postgres", "apps/postgres: 'postgres' is reserved"),
    ],
)
def test_bad_app_names(name, expected):
    assert error_of(with_app(f'"{name}"')).startswith(expected)


@pytest.mark.parametrize(
    "domain, expected",
    [
        ("not_a_domain.com", "apps/app1/domains/0: 'not_a_domain.com' is not a valid domain"),
        ("localhost", "apps/app1/domains/0: 'localhost' is not a valid domain"),
        ("-a.example.com", "apps/app1/domains/0: '-a.example.com' is not a valid domain"),
        ("10.0.0.1", "apps/app1/domains/0: '10.0.0.1' is an IP address"),
        ("exämple.com", "apps/app1/domains/0: 'exämple.com' is not a valid domain: use its ASCII (punycode) form"),
        ("a..example.com", "apps/app1/domains/0: 'a..example.com' is not a valid domain"),
    ],
)
def test_bad_domains(domain, expected):
    assert error_of(with_app("app1", f'    domains: ["{domain}"]\n')).startswith(expected)


def test_domain_used_twice_ignoring_case_and_trailing_dot():
    text = manifest_text().replace(
        "apps: {}\n",
        "apps:\n  app1:\n    domains: [app1.example.com]\n  app2:\n    domains: [b.example.com, APP1.Example.com.]\n",
    )
    assert error_of(text) == (
        "apps/app2/domains/1: app1.example.com is already used by apps/app1/domains/0; each domain belongs to one app"
    )


def test_domain_twice_in_one_app():
    assert error_of(with_app("app1", "    domains: [a.example.com, A.example.com]\n")).startswith(
        "apps/app1/domains/1: a.example.com is already used by apps/app1/domains/0"
    )


def test_the_dashboard_domain_is_a_domain_of_its_own_on_one_server():
    text = with_app("app1").replace("apps:\n", "dashboard:\n  domain: Ops.Example.com.\napps:\n", 1)
    assert mf.load_text(text).dashboard.domain == "ops.example.com"
    assert mf.load_text(with_app("app1")).dashboard.domain is None
    assert error_of(text.replace("Ops.Example.com.", "A.example.com")) == (
        "dashboard/domain: a.example.com is already used by apps/app1/domains/0; give the dashboard a domain of its own")
    assert error_of(text.replace("Ops.Example.com.", "not a domain")).startswith("dashboard/domain: ")
    assert error_of(text.replace("dashboard:\n  domain", "target: swarm\ndashboard:\n  domain", 1)).startswith(
        "dashboard/domain: on a swarm the dashboard is not served behind nginx")


def test_domains_are_normalized():
    assert mf.load_text(with_app("app1", "    domains: [App1.Example.COM.]\n")).apps["app1"].domains == ["app1.example.com"]


def test_unknown_key():
    assert error_of(with_app("app1", "    domains: [a.example.com]\n    databse: true\n")) == (
        "apps/app1/databse: unknown key; remove it or check its spelling (see README, 'plano.yml')"
    )


def test_unknown_top_level_key():
    assert error_of(manifest_text(extra="colour: blue\n")).startswith("colour: unknown key")


def test_wrong_type():
    text = with_app("app1", "    domains: [a.example.com]\n    backend:\n      port: '3000'\n")
    assert error_of(text) == "apps/app1/backend/port: expected an integer, got '3000'"


def test_wrong_type_bool():
    assert error_of(with_app("app1", "    domains: [a.example.com]\n    redis: yes please\n")) == (
        "apps/app1/redis: expected true or false, got 'yes please'"
    )


def test_port_out_of_range():
    text = with_app("app1", "    domains: [a.example.com]\n    backend:\n      port: 70000\n")
    assert error_of(text) == "apps/app1/backend/port: ports are 1-65535, got 70000"


def test_clashing_host_ports():
    text = manifest_text().replace("  database_port: 5432", "  database_port: 443")
    assert error_of(text) == "dev/database_port: port 443 is already used by dev/https_port; pick another port"


def test_clashing_prod_ports():
    text = manifest_text().replace("  https_port: 443\n\ndev:", "  https_port: 80\n\ndev:")
    assert error_of(text) == "prod/https_port: port 80 is already used by prod/http_port; pick another port"


def test_backend_and_frontend_on_the_same_path():
    text = with_app("app1", "    domains: [a.example.com]\n    backend:\n      path: /\n")
    assert error_of(text).startswith("apps/app1: backend and frontend are both served at '/'")


def test_missing_domains():
    assert error_of(with_app("app1", "    redis: false\n")) == "apps/app1/domains: required; add it"


def test_empty_domains():
    assert error_of(with_app("app1", "    domains: []\n")) == "apps/app1/domains: needs at least one entry"


def test_yaml_syntax_error_names_the_line():
    assert error_of("version: 1\nname: [acme\n").startswith("plano.yml:3:1: YAML syntax error")


def test_not_a_mapping():
    assert error_of("- a\n- b\n") == "plano.yml must be a mapping of keys (name, registry, email, apps...)"


def test_bad_registry_and_email():
    assert error_of(manifest_text().replace("registry: registry.example.com/acme", "registry: 'https://x'")).startswith(
        "registry: 'https://x' is not a registry path"
    )
    assert error_of(manifest_text().replace("email: ops@example.com", "email: nobody")).startswith(
        "email: 'nobody' is not an email address"
    )


def test_bad_version():
    assert error_of(manifest_text().replace("version: 1", "version: 2")) == "version: must be 1, got 2"


def test_suggested_names():
    assert fields.suggest_app_name("My App!") == "my-app"
    assert fields.suggest_app_name("1st") == "st"


@pytest.mark.parametrize("env, message", [
    ("{db_host: database.host}", "apps/app1/backend/env: 'db_host' is not an env name; write it in capitals"),
    ("{PORT: database.port}", "apps/app1/backend/env: PORT is set by plano for every app; remove it from env"),
    ("{DB_HOST: localhost}", "apps/app1/backend/env: DB_HOST: 'localhost' is not something plano provides; give one of database.host"),
])
def test_bad_env_mappings(env, message):
    assert error_of(with_app("app1", f"    domains: [a.example.com]\n    backend:\n      env: {env}\n")).startswith(message)


def test_an_env_mapping_needs_what_it_points_at():
    text = with_app("app1", "    domains: [a.example.com]\n    redis: false\n    backend:\n      env: {REDIS_HOST: redis.host}\n")
    assert error_of(text) == "apps/app1: backend/env/REDIS_HOST: redis.host points at the app's redis, which is off (redis: false)"


@pytest.mark.parametrize("fields, message", [
    ("source: ../shop/apps/api\n      workspace: ../other", "apps/app1/backend: source '../shop/apps/api' is not inside workspace '../other'"),
    ("source: ../shop-api\n      workspace: ../shop", "apps/app1/backend: source '../shop-api' is not inside workspace '../shop'"),
    ("source: ${HOME}", "apps/app1/backend/source: '${HOME}' is not a path plano can use"),
    ("workspace: ''", "apps/app1/backend/workspace: '' is not a path plano can use"),
])
def test_a_workspace_holds_its_service(fields, message):
    assert error_of(with_app("app1", f"    domains: [a.example.com]\n    backend:\n      {fields}\n")).startswith(message)


@pytest.mark.parametrize("workspace, source, inner", [
    ("../shop", "../shop/apps/api", "apps/api"), ("../shop/", "../shop", "."), (".", "apps/api", "apps/api"),
    ("/srv/shop", "/srv/shop/api", "api"), ("../shop", "../shop-api", None), ("../shop", "../shop/../x", None),
])
def test_workspace_path(workspace, source, inner):
    assert mf.workspace_path(workspace, source) == inner


def test_limits_default_per_service_and_fit_a_2_gb_server_with_two_apps():
    m = mf.load_text(with_app("app1"))
    app = m.apps["app1"]
    assert app.backend.limits == app.frontend.limits == mf.Limits(memory="256m", cpus=1.0, pids=256)
    infra = {name: (lim.memory, lim.cpus, lim.pids) for name, lim in m.limits}
    # No CPU cap on the shared services (it would throttle every app at once) nor on backup (the dump's speed).
    assert infra == {"nginx": ("128m", None, 128), "database": ("320m", None, 256), "redis": ("64m", None, 64),
                     "certbot": ("64m", 0.5, 64), "backup": ("128m", None, 128)}
    two_apps = 4 * fields.memory_bytes(app.backend.limits.memory) + sum(fields.memory_bytes(lim.memory) for _, lim in m.limits)
    assert two_apps == 1728 * 2**20  # 320 MiB of 2 GiB left to the kernel, dockerd and the page cache
    assert max(lim.cpus or 0 for _, lim in m.limits) <= 1  # the engine refuses more CPUs than the server has


def test_limits_are_set_per_service_and_keep_the_other_defaults():
    text = with_app("app1", "    domains: [a.example.com]\n    backend:\n      limits: {memory: 1G, cpus: 2}\n").replace(
        "apps:\n", "limits:\n  database: {memory: 1g}\n  redis: {pids: 32}\napps:\n", 1)
    m = mf.load_text(text)
    assert m.apps["app1"].backend.limits == mf.Limits(memory="1g", cpus=2.0, pids=256)
    assert m.apps["app1"].frontend.limits == mf.Limits()
    assert (m.limits.database.memory, m.limits.database.cpus, m.limits.database.pids) == ("1g", None, 256)
    assert (m.limits.redis.memory, m.limits.redis.cpus, m.limits.redis.pids) == ("64m", None, 32)
    uncapped = mf.load_text(with_app("app1", "    domains: [a.example.com]\n    frontend:\n      limits: {cpus: null}\n"))
    assert uncapped.apps["app1"].frontend.limits == mf.Limits(memory="256m", cpus=None, pids=256)


@pytest.mark.parametrize("limits, message", [
    ("{memory: 512}", "apps/app1/backend/limits/memory: 512 has no unit; write 512m for megabytes or 512g for gigabytes"),
    ("{memory: 1.5g}", ("apps/app1/backend/limits/memory: '1.5g' is not a memory size; write a whole number of megabytes or "
                        "gigabytes, e.g. 512m or 1g (1536m for 1.5 GB)")),
    ("{cpus: '0.5'}", "apps/app1/backend/limits/cpus: a CPU limit is a number such as 0.5 or 2 (null: no cap), got a string"),
    ("{pids: 0}", "apps/app1/backend/limits/pids: 0 is not a process limit; give 8 to 4194304, e.g. 256"),
    ("{swap: 1g}", "apps/app1/backend/limits/swap: unknown key; remove it or check its spelling (see README, 'plano.yml')"),
    ("512m", "apps/app1/backend/limits: expected a mapping (key: value), got '512m'"),
])
def test_bad_limits_name_their_path(limits, message):
    assert error_of(with_app("app1", f"    domains: [a.example.com]\n    backend:\n      limits: {limits}\n")) == message


def test_bad_infra_limits_name_their_path():
    text = with_app("app1")
    assert error_of(text.replace("apps:\n", "limits:\n  database: {cpus: 0}\napps:\n", 1)) == \
        "limits/database/cpus: 0 is not a CPU limit; give 0.01 to 1024 with at most two decimals, e.g. 0.5 or 2"
    assert error_of(text.replace("apps:\n", "limits:\n  app1: {memory: 1g}\napps:\n", 1)) == \
        "limits/app1: unknown key; remove it or check its spelling (see README, 'plano.yml')"


def test_node_options_is_plano_s():
    assert error_of(with_app("app1", "    domains: [a.example.com]\n    backend:\n      env: {NODE_OPTIONS: database.url}\n")) == \
        "apps/app1/backend/env: NODE_OPTIONS is set by plano for every app; remove it from env"
