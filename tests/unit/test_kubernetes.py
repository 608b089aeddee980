"""The Kubernetes export (render/kubernetes.py): golden trees, the invariants the issue
names, and the isolation its NetworkPolicies give compared with the compose networks.

Refresh the golden trees with `pytest tests/unit/test_kubernetes.py --update-golden`.
Validation by the real tools (kubectl kustomize, kubernetes-validate, cert-manager's
schemas) is in test_kubernetes_schemas.py.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from plano.core import files, secrets
from plano.core import manifest as mf
from plano.core import naming as n
from plano.ops import export
from plano.render import compose, kubernetes, render_infra, sql
from plano.render.envfiles import specs
from tests import goldentree
from tests.conftest import fake_secrets, manifest_text

GOLDEN = Path(__file__).parent.parent / "golden"

THREE_APPS = manifest_text(extra="kubernetes:\n  storage_class: fast-ssd\n  replicas: 3\n").replace(
    "apps: {}\n",
    """apps:
  app1:
    domains: [app1.example.com, www.app1.example.com]
  shop:
    domains: [shop.example.com]
    backend:
      port: 8080
      path: /v1
      health: /v1/healthz
      release: [npm, run, migrate]
      replicas: 1
      env: {DB_HOST: database.host, DB_PASSWORD: database.password}
      limits: {memory: 1g, cpus: 2}
    frontend:
      enabled: false
    redis: false
  blog:
    domains: [blog.example.org]
    database: false
    frontend:
      port: 4000
      env: {CACHE_URL: redis.url}
    tls: {certificate: certs/blog.pem, key: certs/blog.key}
""",
) + """environments:
  staging:
    kubernetes: {namespace: acme-stage, context: stage-cluster}
  qa: {host: deploy@qa.example.com, kubernetes: {}}
"""
CASES = {"k8s-one-app": manifest_text(apps=1), "k8s-three-apps": THREE_APPS}
EXTERNAL = manifest_text(apps=2, extra="kubernetes:\n  database: external\n  database_host: db.example.net\n  issuer: dns01\n"
                         "  app_egress: none\n")
# Namespaces no other name of the tree contains: a leak of one into another overlay shows.
ENVIRONMENTS = manifest_text(apps=2, extra="kubernetes:\n  namespace: platform\n  context: prod-cluster\nenvironments:\n"
                             "  staging:\n    kubernetes: {namespace: platform-stage, context: stage-cluster}\n"
                             "  qa: {host: deploy@qa.example.com, kubernetes: {}}\n  edge: {host: deploy@edge.example.com}\n")
VARIANTS = {**CASES, "external": EXTERNAL, "environments": ENVIRONMENTS}


@cache
def objects(text: str) -> list[dict]:
    """Every object of the base (release Jobs included), as data (shared: never change it)."""
    tree = kubernetes.tree(mf.load_text(text))
    return [doc for rel, content in sorted(tree.items()) if rel.startswith("k8s/base/") and "kustomization" not in rel
            for doc in yaml.safe_load_all(content) if doc]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_templates(docs: list[dict]) -> list[tuple[str, dict]]:
    """(workload name, pod template) of every Deployment, StatefulSet, Job and CronJob."""
    out = []
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "CronJob":
            out.append((doc["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]))
        elif doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            out.append((doc["metadata"]["name"], spec["template"]))
    return out


# ---------------------------------------------------------------- golden trees


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_exported_tree_matches_golden(case, update_golden):
    tree = kubernetes.render(mf.load_text(CASES[case]))
    goldentree.assert_matches(tree, GOLDEN / case, update_golden)
    assert not any(files.is_hand_edited(file.content) for file in tree.values())


def test_the_tree_is_a_base_and_an_overlay_per_environment_with_the_release_jobs_beside():
    tree = kubernetes.tree(mf.load_text(THREE_APPS))
    assert sorted(rel for rel in tree if rel.endswith("kustomization.yaml")) == [
        "k8s/base/kustomization.yaml", "k8s/base/release/kustomization.yaml",
        "k8s/overlays/prod/kustomization.yaml", "k8s/overlays/prod/release/kustomization.yaml",
        "k8s/overlays/qa/kustomization.yaml", "k8s/overlays/qa/release/kustomization.yaml",
        "k8s/overlays/staging/kustomization.yaml", "k8s/overlays/staging/release/kustomization.yaml"]
    prod = yaml.safe_load(tree["k8s/overlays/prod/kustomization.yaml"])
    assert prod["resources"] == ["../../base"]
    assert {"name": "shop-backend", "newName": "registry.example.com/acme/shop-backend", "newTag": "latest"} in prod["images"]
    assert {"name": "acme-backup", "newName": "registry.example.com/acme/acme-backup", "newTag": "latest"} in prod["images"]
    assert {r["name"]: r["count"] for r in prod["replicas"]} == {
        "app1-backend": 3, "app1-frontend": 3, "blog-backend": 3, "blog-frontend": 3, "shop-backend": 1}
    assert "namespace" not in prod and "patches" not in prod
    staging = yaml.safe_load(tree["k8s/overlays/staging/kustomization.yaml"])
    assert (staging["namespace"], staging["images"], staging["replicas"]) == ("acme-stage", prod["images"], prod["replicas"])
    assert staging["patches"] == [
        {"target": {"kind": "Namespace"},
         "patch": '[{"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "acme-stage"}]'},
        {"target": {"kind": "Ingress"}, "patch": '[{"op": "replace", "path": '
         '"/metadata/annotations/nginx.ingress.kubernetes.io~1custom-headers", "value": "acme-stage/security-headers"}]'}]
    assert staging["transformers"] == ["cluster-scoped.yaml"]
    assert list(yaml.safe_load_all(tree["k8s/overlays/staging/cluster-scoped.yaml"])) == [
        {"apiVersion": "builtin", "kind": "PatchTransformer", "metadata": {"name": "cluster-scoped-clusterissuer"},
         "target": {"kind": "ClusterIssuer"}, "patch": '[{"op": "remove", "path": "/metadata/namespace"}]'}]
    assert "k8s/overlays/prod/cluster-scoped.yaml" not in tree
    assert yaml.safe_load(tree["k8s/overlays/qa/release/kustomization.yaml"])["namespace"] == "acme-qa"
    # No release command in one-app: no release folders.
    assert not [rel for rel in kubernetes.tree(mf.load_text(manifest_text(apps=1))) if "/release/" in rel]


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_http_container_is_ready_only_on_its_health_route(case):
    manifest = mf.load_text(VARIANTS[case])
    health = {n.service(name, role): (svc.health, svc.port) for name, app in manifest.apps.items() for role, svc in app.services().items()}
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects(VARIANTS[case]), "Deployment")}
    assert set(health) <= set(deployments)
    for name, (path, port) in health.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)
        # Laxer liveness than readiness; a start may take minutes.
        ready, live, start = container["readinessProbe"], container["livenessProbe"], container["startupProbe"]
        assert live["periodSeconds"] * live["failureThreshold"] > ready["periodSeconds"] * ready["failureThreshold"]
        assert start["periodSeconds"] * start["failureThreshold"] >= 300
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        grace = deployments[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > int(container["lifecycle"]["preStop"]["exec"]["command"][1]) + 10
    for doc in of_kind(objects(VARIANTS[case]), "Deployment"):  # infra and maintenance too
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container, doc["metadata"]["name"]


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_deployment_rolls_one_new_pod_in_before_one_goes(case):
    for doc in of_kind(objects(VARIANTS[case]), "Deployment"):
        assert doc["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_pod_is_non_root_with_a_read_only_root_and_no_capability(case):
    templates = pod_templates(objects(VARIANTS[case]))
    assert len(templates) >= 6
    for name, template in templates:
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert "/tmp" in [m["mountPath"] for m in container["volumeMounts"]], name
            assert container["resources"]["limits"]["memory"] == container["resources"]["requests"]["memory"], name


def test_the_namespace_enforces_the_restricted_pod_security_standard():
    (namespace,) = of_kind(objects(THREE_APPS), "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_namespace_denies_by_default_and_allows_dns(case):
    docs = objects(VARIANTS[case])
    policies = of_kind(docs, "NetworkPolicy")
    for namespace in of_kind(docs, "Namespace"):
        mine = [p for p in policies if p["metadata"]["namespace"] == namespace["metadata"]["name"]]
        assert {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []} in [p["spec"] for p in mine]
        dns = [p for p in mine if p["spec"]["podSelector"] == {} and p["spec"].get("egress")]
        assert dns and dns[0]["spec"]["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    namespaced = [d for d in docs if d["kind"] not in ("Namespace", "ClusterIssuer")]
    assert {d["metadata"]["namespace"] for d in namespaced} == {n.k8s_namespace(mf.load_text(VARIANTS[case]))}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_no_secret_value_is_written_and_every_reference_is_a_known_secret_key(case):
    manifest = mf.load_text(VARIANTS[case])
    values = {path: secrets.complete({}, spec.secrets, spec.defaults, fake_secrets()) for path, spec in specs(manifest).items()}
    tree = render_infra(manifest, values, with_kubernetes=True)
    k8s = {rel: f.content for rel, f in tree.items() if rel.startswith(f"{n.K8S_DIR}/")}
    assert k8s and not any("test-secret-" in text for text in k8s.values())
    assert "test-secret-" in tree[".env.prod"].content
    docs = objects(VARIANTS[case])
    assert not of_kind(docs, "Secret")
    known = n.k8s_secrets(manifest)
    every_key = {key for keys in known.values() for key in keys}
    for name, template in pod_templates(docs):
        for volume in template["spec"]["volumes"]:
            if "secret" in volume:
                assert {i["key"] for i in volume["secret"]["items"]} <= set(known[volume["secret"]["secretName"]]), name
        for container in template["spec"]["containers"]:
            for entry in container.get("env", []):
                if "valueFrom" in entry:
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["key"] in known[ref["name"]], name
                else:
                    # A password is a reference to a Secret's entry before it, or a file's path.
                    if "PASSWORD" in entry["name"] and not entry["name"].endswith("_FILE"):
                        assert entry["value"][:2] == "$(" and entry["value"][2:-1] in every_key, (name, entry)
                    assert "${" not in entry["value"], (name, entry)
    for config in of_kind(docs, "ConfigMap"):  # scripts read the secrets from files, at run time
        for key, text in config["data"].items():
            assert not any(f"$({var})" in text or f"${{{var}" in text for var in every_key), key


def test_app_urls_take_their_passwords_from_the_apps_own_secret():
    (backend,) = [d for d in of_kind(objects(THREE_APPS), "Deployment") if d["metadata"]["name"] == "shop-backend"]
    env = backend["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "SHOP_DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-secrets", "key": "SHOP_DB_PASSWORD"}}}
    plain = {e["name"]: e["value"] for e in env[1:]}
    assert plain["DATABASE_URL"] == "postgres://shop:$(SHOP_DB_PASSWORD)@database:5432/shop"
    assert plain["DB_PASSWORD"] == "$(SHOP_DB_PASSWORD)" and plain["DB_HOST"] == "database"
    assert plain["NODE_OPTIONS"] == "--max-old-space-size=768"
    # compose's env_file, under plano's env as there: an optional ConfigMap made from env/shop-backend.env
    assert backend["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "shop-backend-env", "optional": True}}]
    assert backend["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"memory": "1Gi", "cpu": "2000m"}}


def test_a_disruption_budget_exactly_for_services_with_several_replicas():
    docs = objects(THREE_APPS)
    budgets = {d["metadata"]["name"] for d in of_kind(docs, "PodDisruptionBudget")}
    assert budgets == {"app1-backend", "app1-frontend", "blog-backend", "blog-frontend"}  # shop-backend: 1 replica


def test_the_release_job_runs_the_release_command_in_the_service_image_once():
    (job,) = [d for d in of_kind(objects(THREE_APPS), "Job") if d["metadata"]["name"] == "shop-backend-release"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "shop-backend" and container["args"] == ["npm", "run", "migrate"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["metadata"]["labels"][n.K8S_APP_LABEL] == "shop"
    assert n.K8S_NAME_LABEL not in job["spec"]["template"]["metadata"]["labels"] or \
        job["spec"]["template"]["metadata"]["labels"][n.K8S_NAME_LABEL] != "shop-backend"  # never behind the Service


def test_the_ingress_redirects_to_https_and_sends_the_nginx_security_headers():
    manifest = mf.load_text(THREE_APPS)
    ingresses = {d["metadata"]["name"]: d for d in of_kind(objects(THREE_APPS), "Ingress")}
    assert set(ingresses) == set(manifest.apps)
    app1 = ingresses["app1"]
    assert app1["spec"]["ingressClassName"] == "nginx"
    assert app1["spec"]["tls"] == [{"hosts": ["app1.example.com", "www.app1.example.com"], "secretName": "app1-tls"}]
    paths = app1["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/api", "app1-backend"), ("/", "app1-frontend")]
    notes = app1["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    conf = (Path(kubernetes.__file__).parent.parent / "templates" / kubernetes.SECURITY_HEADERS).read_text()
    headers = {line.split(" ", 2)[1]: line.split('"')[1] for line in conf.splitlines() if line.startswith("add_header ")}
    assert len(headers) == 5
    assert notes["nginx.ingress.kubernetes.io/custom-headers"] == "acme/security-headers"
    assert not [key for key in notes if key.endswith("-snippet")]  # refused by ingress-nginx unless allowed
    (config,) = [c for c in of_kind(objects(THREE_APPS), "ConfigMap") if c["metadata"]["name"] == "security-headers"]
    assert config["data"] == headers


def test_certificates_come_from_the_acme_server_and_email_of_plano_yml():
    manifest = mf.load_text(THREE_APPS)
    docs = objects(THREE_APPS)
    (issuer,) = of_kind(docs, "ClusterIssuer")
    assert issuer["spec"]["acme"]["server"] == manifest.acme.server and issuer["spec"]["acme"]["email"] == manifest.email
    assert issuer["spec"]["acme"]["solvers"] == [{"http01": {"ingress": {"ingressClassName": "nginx"}}}]
    assert "namespace" not in issuer["metadata"]
    # blog brings its own certificate: no Certificate, the same TLS Secret name.
    assert {c["metadata"]["name"] for c in of_kind(docs, "Certificate")} == {"app1", "shop"}
    (external,) = of_kind(objects(EXTERNAL), "ClusterIssuer")
    assert external["spec"]["acme"]["solvers"] == [
        {"dns01": {"cloudflare": {"apiTokenSecretRef": {"name": "acme-dns01", "key": "api-token"}}}}]


def test_postgres_keeps_its_data_on_a_claim_of_the_configured_class_and_size():
    (database,) = of_kind(objects(THREE_APPS), "StatefulSet")
    (claim,) = database["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast-ssd" and claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    external = objects(EXTERNAL)
    assert not of_kind(external, "StatefulSet")
    (service,) = [d for d in of_kind(external, "Service") if d["metadata"]["name"] == "database"]
    assert service["spec"]["type"] == "ExternalName" and service["spec"]["externalName"] == "db.example.net"


def test_provisioning_runs_exactly_the_sql_of_the_compose_init_script():
    docs = objects(THREE_APPS)
    (config,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "database-provision"]
    assert sorted(config["data"]) == ["app1.sh", "shop.sh"]  # blog has no database
    for script in config["data"].values():
        assert sql.HARDEN_SQL in script and sql.CREATE_SQL in script and sql.SCHEMA_SQL in script
    assert "create_app shop /run/secrets/SHOP_DB_PASSWORD" in config["data"]["shop.sh"]
    jobs = {d["metadata"]["name"] for d in of_kind(docs, "Job")}
    assert {"app1-provision", "shop-provision"} <= jobs and "blog-provision" not in jobs


def test_redis_builds_the_per_app_acl_users_from_its_secret():
    docs = objects(THREE_APPS)
    (config,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "redis"]
    script = config["data"]["plano-entrypoint.sh"]
    assert "password=$(secret /run/secrets/APP1_REDIS_PASSWORD)" in script and "~app1:*" in script
    assert "SHOP_REDIS_PASSWORD" not in script  # shop has no Redis
    assert n.k8s_secrets(mf.load_text(THREE_APPS))["redis-secrets"] == ["REDIS_ADMIN_PASSWORD", "APP1_REDIS_PASSWORD", "BLOG_REDIS_PASSWORD"]


def test_backups_run_the_backup_script_daily_then_verify_it():
    docs = objects(THREE_APPS)
    (cron,) = of_kind(docs, "CronJob")
    assert cron["spec"]["schedule"] == "30 3 * * *" and cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c", "plano-backup.sh run && plano-backup.sh verify"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BACKUP_APPS"] == "app1 blog shop" and env["BACKUP_DB_APPS"] == "app1 shop"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/backups", "/uploads/app1", "/uploads/blog", "/uploads/shop"} <= mounts


# ---------------------------------------------------------------- isolation


CONTROLLER = "ingress-controller"
DNS = "kube-dns"


def pods(manifest: mf.Manifest, docs: list[dict]) -> dict[str, tuple[str, dict]]:
    """Every kind of pod: name -> (namespace, labels); the ingress controller and the
    cluster DNS as the clusters have them."""
    out = {name: (n.k8s_namespace(manifest), template["metadata"]["labels"]) for name, template in pod_templates(docs)}
    out[CONTROLLER] = (manifest.kubernetes.ingress_namespace, {"app.kubernetes.io/name": "ingress-nginx"})
    out[DNS] = (n.K8S_DNS_NAMESPACE, dict(n.K8S_DNS_LABELS))
    return out


def selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def peer_matches(peer: dict, policy_namespace: str, pod: tuple[str, dict]) -> bool:
    """A NetworkPolicy peer against a pod (ipBlocks here never hold a pod's address:
    they leave out the private ranges)."""
    namespace, labels = pod
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {n.K8S_NAMESPACE_LABEL: namespace}):
            return False
    elif namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), labels)


def port_allowed(rule: dict, port: int) -> bool:
    return "ports" not in rule or any(p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"])


def side_allows(policies: list[dict], pod: tuple[str, dict], other: tuple[str, dict], port: int, kind: str) -> bool:
    """Whether `pod`'s policies let `other` in (Ingress) or `pod` out to `other` (Egress)."""
    namespace, labels = pod
    mine = [p for p in policies if p["metadata"]["namespace"] == namespace and selects(p["spec"]["podSelector"], labels)
            and kind in p["spec"]["policyTypes"]]
    if not mine:
        return True  # not isolated
    key, peers = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    return any(port_allowed(rule, port) and ("peers" not in rule and peers not in rule or
                                              any(peer_matches(peer, namespace, other) for peer in rule[peers]))
               for policy in mine for rule in policy["spec"].get(key, []))


def may_connect(policies: list[dict], everyone: dict, client: str, server: str, port: int) -> bool:
    return (side_allows(policies, everyone[client], everyone[server], port, "Egress")
            and side_allows(policies, everyone[server], everyone[client], port, "Ingress"))


def kubernetes_pairs(text: str) -> set[tuple[str, str]]:
    """Who may open a connection to whom, on the server's port, by the NetworkPolicies."""
    manifest = mf.load_text(text)
    docs = objects(text)
    policies, everyone = of_kind(docs, "NetworkPolicy"), pods(manifest, docs)
    ports = {n.service(name, role): svc.port for name, app in manifest.apps.items() for role, svc in app.services().items()}
    ports |= {n.K8S_DATABASE: 5432, n.K8S_REDIS: 6379, n.K8S_MAINTENANCE: 8080}
    return {(client, server) for client in everyone for server, port in ports.items()
            if client != server and may_connect(policies, everyone, client, server, port)}


def compose_pairs(text: str) -> set[tuple[str, str]]:
    """The same from the compose networks: clients and servers sharing a network, with
    the Kubernetes names: nginx is the ingress controller, a release Job is its
    service, a provisioning Job is the database's own init script (the admin's)."""
    manifest = mf.load_text(text)
    services = compose.base(manifest)["services"]
    servers = {*n.app_services(manifest), "database", "redis"}
    clients = {name: [name] for name in n.app_services(manifest)} | {"nginx": [CONTROLLER], "backup": ["backup"]}
    for name, role in n.app_services(manifest).values():
        if manifest.apps[name].services()[role].release:
            clients[n.service(name, role)].append(n.k8s_release_job(name, role))
    # A release Job is another container of its service: it reaches the service itself too.
    pairs = {(k8s, server) for client, names in clients.items() for server in servers for k8s in names
             if (client != server or k8s != client) and set(services[client]["networks"]) & set(services[server]["networks"])}
    pairs |= {(n.k8s_provision_job(name), "database") for name, app in manifest.apps.items() if app.database}
    return pairs


def narrowed(text: str) -> set[tuple[str, str]]:
    """What compose's networks allow and the policies deliberately do not: nginx shares
    each app's network, so it could reach the database and Redis there; the ingress
    controller reaches only the apps (and the maintenance page, nginx's own in compose)."""
    return {(CONTROLLER, "database"), (CONTROLLER, "redis")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_network_policies_allow_exactly_what_the_compose_networks_do(case):
    text = CASES[case]
    k8s, expected = kubernetes_pairs(text), compose_pairs(text) - narrowed(text)
    assert k8s - {(CONTROLLER, n.K8S_MAINTENANCE)} == expected
    assert (CONTROLLER, n.K8S_MAINTENANCE) in k8s


def test_no_app_reaches_another_apps_pods_or_a_service_it_does_not_use():
    pairs = kubernetes_pairs(THREE_APPS)
    assert ("app1-frontend", "app1-backend") in pairs and ("shop-backend-release", "database") in pairs
    assert ("app1-backend", "blog-backend") not in pairs and ("blog-frontend", "app1-frontend") not in pairs
    assert ("shop-backend", "redis") not in pairs and ("blog-backend", "database") not in pairs
    assert ("backup", "redis") not in pairs and ("app1-provision", "redis") not in pairs
    assert not [pair for pair in pairs if pair[0] in ("database", "redis", "maintenance")]


# ---------------------------------------------------------------- plano.yml, export


def test_kubernetes_settings_default_so_existing_manifests_are_unchanged():
    settings = mf.load_text(manifest_text(apps=1)).kubernetes
    assert (settings.ingress_class, settings.issuer, settings.database, settings.replicas) == ("nginx", "http01", "statefulset", 2)


@pytest.mark.parametrize(("extra", "error"), [
    ("kubernetes: {database: external}\n", "kubernetes: database: external needs database_host"),
    ("kubernetes: {context: -x}\n", "kubernetes/context: '-x' is not a kubectl context name"),
    ("environments:\n  staging: {port: 22}\n", "environments/staging: give host (a server plano reaches over SSH) or kubernetes"),
    ("environments:\n  staging: {kubernetes: {namespace: acme}}\n",
     ("environments/staging/kubernetes/namespace: acme is already the namespace of prod (kubernetes/namespace); each environment "
      "needs its own")),
    ("environments:\n  staging: {kubernetes: {}}\n  qa: {kubernetes: {namespace: acme-staging}}\n",
     "environments/staging/kubernetes/namespace: acme-staging is already the namespace of environments/qa"),
    (f"kubernetes: {{namespace: {'n' * 60}}}\nenvironments:\n  staging: {{kubernetes: {{}}}}\n",
     (f"environments/staging: its default Kubernetes namespace '{'n' * 60}-staging' is longer than 63 characters; "
      "set environments/staging/kubernetes/namespace")),
    ("environments:\n  staging: {kubernetes: {context: 'a b'}}\n", "environments/staging/kubernetes/context: 'a b' is not"),
    ("kubernetes: {database_size: 10G}\n", "kubernetes/database_size: '10G' is not a storage size"),
    ("kubernetes: {ingress_class: Nginx_Public}\n", "kubernetes/ingress_class: 'Nginx_Public' is not a Kubernetes name"),
    ("kubernetes: {issuer: tls-alpn}\n", "kubernetes/issuer: must be 'http01' or 'dns01'"),
    ("kubernetes: {replica: 2}\n", "kubernetes/replica: unknown key"),
])
def test_kubernetes_settings_are_validated_with_their_path(extra, error):
    with pytest.raises(mf.ManifestError) as caught:
        mf.load_text(manifest_text(apps=1, extra=extra))
    assert str(caught.value).startswith(error), str(caught.value)


def test_each_environment_has_its_namespace_and_context_defaulting_to_prods():
    manifest = mf.load_text(ENVIRONMENTS)
    assert n.k8s_namespaces(manifest) == {"prod": "platform", "edge": "platform-edge", "qa": "platform-qa", "staging": "platform-stage"}
    assert [n.k8s_context(manifest, env) for env in ("prod", "edge", "qa", "staging")] == [
        "prod-cluster", "prod-cluster", "prod-cluster", "stage-cluster"]
    assert n.k8s_context(mf.load_text(THREE_APPS), "qa") is None


def test_a_ci_deploy_needs_an_environment_with_a_host():
    text = THREE_APPS.replace("    domains: [shop.example.com]\n", "    domains: [shop.example.com]\n    ci_deploy: staging\n")
    with pytest.raises(mf.ManifestError) as caught:
        mf.load_text(text)
    assert str(caught.value).startswith("apps/shop/ci_deploy: environments/staging has no host (it is Kubernetes-only)")


def test_render_writes_k8s_only_once_the_export_made_it(tmp_path):
    from plano.ops import infra

    manifest = mf.load_text(THREE_APPS)
    assert not [rel for rel in infra.build_tree(tmp_path, manifest) if rel.startswith("k8s/")]
    (tmp_path / "k8s").mkdir()
    tree = infra.build_tree(tmp_path, manifest)
    assert {rel for rel in tree if rel.startswith("k8s/")} == set(kubernetes.render(manifest))


def test_export_writes_drift_checks_and_prunes(tmp_path):
    from plano.core.errors import DriftError

    made = session_at(tmp_path, THREE_APPS)
    out = tmp_path / "k8s"
    first = export.kubernetes(made)
    assert "base/apps/blog.yaml" in first.writes and (out / "base/apps/blog.yaml").is_file()
    assert not export.kubernetes(made).changed
    (out / "base/redis.yaml").write_text((out / "base/redis.yaml").read_text() + "# mine\n")
    with pytest.raises(DriftError):
        export.kubernetes(made)
    assert export.kubernetes(made, force=True).writes.keys() == {"base/redis.yaml"}
    (tmp_path / "plano.yml").write_text(THREE_APPS.replace("  blog:\n", "  journal:\n"))
    made.reload()
    result = export.kubernetes(made)
    assert "base/apps/blog.yaml" in result.removes and not (out / "base/apps/blog.yaml").exists()
    assert (out / "base/apps/journal.yaml").is_file()
    (tmp_path / "plano.yml").write_text(THREE_APPS.replace("  blog:\n", "  journal:\n").replace("  qa: {host: deploy@qa.example.com, kubernetes: {}}\n", ""))
    made.reload()
    assert set(export.kubernetes(made).removes) == {"overlays/qa/kustomization.yaml", "overlays/qa/cluster-scoped.yaml",
                                                    "overlays/qa/release/kustomization.yaml"}
    assert not (out / "overlays/qa").exists() or not any((out / "overlays/qa").rglob("*.yaml"))
    (out / "notes.md").write_text("my own notes\n")
    (out / "base/mine.yaml").write_text("kind: ConfigMap\n")
    assert not export.kubernetes(made).changed


def test_export_under_dry_run_writes_nothing(tmp_path):
    made = session_at(tmp_path, THREE_APPS, dry_run=True)
    result = export.kubernetes(made, tmp_path / "elsewhere")
    assert result.writes and not (tmp_path / "elsewhere").exists()
    assert "# write elsewhere/base/kustomization.yaml" in made.out.plans


def session_at(root: Path, text: str, dry_run: bool = False):
    from tests.scripted import ScriptedRunner, session

    (root / "plano.yml").write_text(text)
    return session(root, ScriptedRunner(), dry_run=dry_run)
