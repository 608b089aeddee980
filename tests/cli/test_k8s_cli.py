"""`plano k8s ...` as a user runs it, against a scripted kubectl (no cluster can run
here): --dry-run prints the exact kubectl commands and runs none, --json, exit codes,
one-line errors for a bad APP or --tag."""

import json
import os
import shlex

import pytest

from plano.cli.main import main
from plano.core import secrets
from plano.core.files import tree_digest
from plano.engine import kubectl as k
from tests.cli.test_cli import INIT
from tests.scripted import Answer, ScriptedRunner
from tests.unit.test_k8s_ops import DONE_JOB, FAILED_JOB, deployment_json, listing

RUNNING = Answer(0, listing(*(deployment_json(f"app1-{role}", f"registry.example.com/acme/app1-{role}:latest", 2)
                              for role in ("backend", "frontend"))))


def deployments(runner: ScriptedRunner) -> ScriptedRunner:
    """The one query a deploy makes first (a dry run too): app1's Deployments and their images."""
    return runner.query("get", "deployment/app1-backend", answers=RUNNING)

NS = k.Scope("infra")  # the project's name: the namespace; kubectl's current context


@pytest.fixture
def infra(workspace, capsys, monkeypatch):
    monkeypatch.setenv("PLANO_DEV_CA_DIR", str(workspace / "dev-ca"))
    assert main(INIT) == 0
    os.chdir(workspace / "infra")
    assert main(["app", "add", "app1", "--domain", "app1.example.com"]) == 0
    root = workspace / "infra"
    text = (root / "plano.yml").read_text().replace("      - app1.example.com\n",
                                                     "      - app1.example.com\n    backend:\n      release: [npm, run, migrate]\n")
    (root / "plano.yml").write_text(text)
    capsys.readouterr()
    return root


def run(capsys, runner, *args):
    code = main(list(args), runner=runner, sleep=lambda _: None)
    out, err = capsys.readouterr()
    return code, out, err


def test_deploy_dry_run_prints_the_exact_kubectl_commands_and_runs_none(infra, capsys):
    before = tree_digest(infra)
    runner = deployments(ScriptedRunner())
    code, out, err = run(capsys, runner, "k8s", "deploy", "app1", "--tag", "2.0.0", "--dry-run")
    assert code == 0, err
    assert runner.actions == [] and tree_digest(infra) == before
    assert runner.queries == [k.get_json_argv(NS, "deployment/app1-backend", "deployment/app1-frontend")]
    reg = "registry.example.com/acme"
    assert out.splitlines() == [
        *(shlex.join(argv) for argv in (
            k.delete_job_argv(NS, "app1-backend-release"), k.apply_argv(NS), k.wait_job_argv(NS, "app1-backend-release", 10),
            k.set_image_argv(NS, "app1-backend", "backend", f"{reg}/app1-backend:2.0.0"),
            k.set_image_argv(NS, "app1-frontend", "frontend", f"{reg}/app1-frontend:2.0.0"),
            k.rollout_status_argv(NS, "app1-backend", 300), k.rollout_status_argv(NS, "app1-frontend", 300))),
        "# write .env.prod",
        "# append to data/logs/deploys.jsonl: app1-backend latest -> 2.0.0",
        "# append to data/logs/deploys.jsonl: app1-frontend latest -> 2.0.0",
    ]
    assert out.splitlines()[0] == ("kubectl --namespace infra delete job app1-backend-release --ignore-not-found "
                                   "--cascade=foreground --wait=true --timeout=120s")


def test_the_same_deploy_for_real_runs_what_the_dry_run_printed(infra, capsys):
    runner = deployments(ScriptedRunner())
    _, dry, _ = run(capsys, runner, "k8s", "deploy", "app1", "--tag", "2.0.0", "--dry-run")
    runner.query("get", answers=Answer(0, json.dumps(DONE_JOB))).on("kubectl")
    code, out, err = run(capsys, runner, "k8s", "deploy", "app1", "--tag", "2.0.0")
    assert code == 0, err
    assert [shlex.join(a) for a in runner.actions] == [line for line in dry.splitlines() if not line.startswith("#")]
    assert out.splitlines() == [f"app1-{role}: latest -> 2.0.0, done; recorded in .env.prod and data/logs/deploys.jsonl"
                                for role in ("backend", "frontend")]
    assert secrets.read_env(infra / ".env.prod")["APP1_BACKEND_TAG"] == "2.0.0"


def test_a_failed_release_job_exits_1_with_its_last_lines(infra, capsys):
    runner = (deployments(ScriptedRunner()).on("wait", answers=Answer(1, "", "error: timed out waiting for the condition"))
              .query("get", answers=Answer(0, json.dumps(FAILED_JOB)))
              .query("logs", answers=Answer(0, "Error: migration 0042 failed\n")).on("kubectl"))
    code, _, err = run(capsys, runner, "k8s", "deploy", "app1", "--tag", "2.0.0")
    assert code == 1
    assert err.splitlines()[-2:] == [("error: the release Job app1-backend-release failed (BackoffLimitExceeded: Job has reached "
                                     "the specified backoff limit); nothing was rolled out; its last lines:"),
                                     "  Error: migration 0042 failed"]
    assert not any(a[3:5] == ["set", "image"] for a in runner.actions)


@pytest.mark.parametrize(("args", "message"), [
    (["k8s", "deploy", "nope", "--tag", "1.0"], "error: apps/nope: no such app in plano.yml (registered: app1); see plano app list"),
    (["k8s", "deploy", "app1", "--tag", "a b"], "error: --tag 'a b': not an image tag; give e.g. 1.2.3 or a commit SHA"),
    (["k8s", "deploy", "App1", "--tag", "1.0"], "error: APP 'App1': "),
    (["k8s", "deploy", "app1", "--tag", "1.0", "--service", "db"], "error: --service: 'db' is not one of 'backend', 'frontend'."),
    (["k8s", "maintenance", "nope", "on"], "error: apps/nope: no such app in plano.yml"),
    (["k8s", "maintenance", "app1", "maybe"], "error: 'maybe': give on or off (plano k8s maintenance APP on|off)"),
])
def test_bad_input_is_one_line_and_exit_2_with_no_command_run(infra, capsys, args, message):
    runner = ScriptedRunner()
    code, out, err = run(capsys, runner, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert runner.calls == []


def test_secrets_apply_prints_names_and_keys_never_values(infra, capsys):
    runner = ScriptedRunner().on("kubectl")
    code, out, err = run(capsys, runner, "k8s", "secrets", "apply")
    assert code == 0, err
    assert out.splitlines()[0] == "secret app1-secrets (namespace infra): APP1_DB_PASSWORD, APP1_REDIS_PASSWORD"
    values = [v for key, v in secrets.read_env(infra / ".env.prod").items() if "PASSWORD" in key]
    assert values and not any(v in out + err + " ".join(runner.calls[0].argv) for v in values)
    code, dry, _ = run(capsys, ScriptedRunner(), "k8s", "secrets", "apply", "--dry-run")
    assert code == 0 and dry.startswith(shlex.join(k.apply_secrets_argv(NS)) + "  # stdin: the Secrets app1-secrets")


def test_maintenance_on_and_off_in_either_order(infra, capsys):
    runner = ScriptedRunner().on("kubectl")
    assert run(capsys, runner, "k8s", "maintenance", "app1", "on")[1] == "app1: maintenance on (Ingress app1: maintenance, maintenance)\n"
    assert run(capsys, runner, "k8s", "maintenance", "off", "app1")[1] == "app1: maintenance off (Ingress app1: app1-backend, app1-frontend)\n"
    assert [a[3:6] for a in runner.actions] == [["patch", "ingress", "app1"]] * 2
    code, dry, _ = run(capsys, ScriptedRunner(), "k8s", "maintenance", "app1", "on", "--dry-run")
    assert code == 0 and dry == shlex.join(runner.actions[0]) + "\n"


def test_status_json_and_its_exit_code(infra, capsys):
    ready = listing(deployment_json("app1-backend", "registry.example.com/acme/app1-backend:latest", 2),
                    deployment_json("app1-frontend", "registry.example.com/acme/app1-frontend:latest", 2), DONE_JOB)
    code, out, _ = run(capsys, ScriptedRunner().query("kubectl", answers=Answer(0, ready)), "k8s", "status", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["name"], r["ready"], r["desired"], r["tag"], r["expected_tag"], r["ok"]) for r in rows] == [
        ("app1-backend", 2, 2, "latest", "latest", True), ("app1-frontend", 2, 2, "latest", "latest", True),
        ("app1-provision", 1, 1, "17", "", True)]
    short = listing(deployment_json("app1-backend", "registry.example.com/acme/app1-backend:latest", 1))
    code, out, _ = run(capsys, ScriptedRunner().query("kubectl", answers=Answer(0, short)), "k8s", "status")
    assert code == 1 and "app1-backend" in out and "1/2" in out and "NO" in out
    code, _, err = run(capsys, ScriptedRunner().query("kubectl", answers=Answer(127, "", "kubectl: command not found")), "k8s", "status")
    assert code == 4 and err.startswith("error: kubectl: not found; install kubectl")


# ---------------------------------------------------------------- -e NAME: an environment's overlay, run here

ENVIRONMENTS = ("kubernetes:\n  context: prod-ctx\nenvironments:\n  staging:\n    kubernetes: {namespace: infra-stage, context: stage-ctx}\n"
                "  production: {host: deploy@srv1.example.com}\n")
STAGING = k.Scope("infra-stage", "stage-ctx")


@pytest.fixture
def environments(infra):
    (infra / "plano.yml").write_text((infra / "plano.yml").read_text() + ENVIRONMENTS)
    return infra


def test_deploy_to_an_environment_dry_run_prints_its_kubectl_commands_run_here(environments, capsys):
    before = tree_digest(environments)
    runner = ScriptedRunner().query("get", "deployment/app1-backend", answers=RUNNING)
    code, out, err = run(capsys, runner, "-e", "staging", "k8s", "deploy", "app1", "--tag", "2.0.0", "--dry-run")
    assert code == 0, err
    assert runner.actions == [] and tree_digest(environments) == before  # no ssh: kubectl runs from here
    assert runner.queries == [["kubectl", "--context", "stage-ctx", "--namespace", "infra-stage", "get", "deployment/app1-backend",
                               "deployment/app1-frontend", "--output=json"]]
    reg = "registry.example.com/acme"
    assert out.splitlines() == [
        ("kubectl --context stage-ctx --namespace infra-stage delete job app1-backend-release --ignore-not-found "
        "--cascade=foreground --wait=true --timeout=120s"),
        "kubectl --context stage-ctx --namespace infra-stage apply -f -",
        "kubectl --context stage-ctx --namespace infra-stage wait --for=condition=complete --timeout=10s job/app1-backend-release",
        f"kubectl --context stage-ctx --namespace infra-stage set image deployment/app1-backend backend={reg}/app1-backend:2.0.0",
        f"kubectl --context stage-ctx --namespace infra-stage set image deployment/app1-frontend frontend={reg}/app1-frontend:2.0.0",
        "kubectl --context stage-ctx --namespace infra-stage rollout status deployment/app1-backend --timeout=300s",
        "kubectl --context stage-ctx --namespace infra-stage rollout status deployment/app1-frontend --timeout=300s",
        "# write .env.staging",
        "# append to data/logs/deploys.staging.jsonl: app1-backend latest -> 2.0.0",
        "# append to data/logs/deploys.staging.jsonl: app1-frontend latest -> 2.0.0",
    ]


def test_without_e_the_prod_context_is_named_in_every_command(environments, capsys):
    code, out, _ = run(capsys, ScriptedRunner(), "k8s", "maintenance", "app1", "off", "--dry-run")
    assert code == 0 and out.startswith("kubectl --context prod-ctx --namespace infra patch ingress app1 --type=json ")


def test_an_environment_deploy_for_real_records_in_its_files_and_the_audit_log_names_it(environments, capsys):
    from plano.ops import audit

    prod = (environments / ".env.prod").read_text()
    runner = ScriptedRunner().query("get", "deployment/app1-backend", answers=RUNNING).query(
        "get", answers=Answer(0, json.dumps(DONE_JOB))).on("kubectl")
    code, out, err = run(capsys, runner, "-e", "staging", "k8s", "deploy", "app1", "--tag", "2.0.0")
    assert code == 0, err
    assert out.splitlines() == [f"app1-{role}: latest -> 2.0.0, done; recorded in .env.staging and data/logs/deploys.staging.jsonl"
                                for role in ("backend", "frontend")]
    assert secrets.read_env(environments / ".env.staging")["APP1_BACKEND_TAG"] == "2.0.0"
    assert (environments / ".env.prod").read_text() == prod
    (line,) = audit.read(environments, 5)
    assert (line.command, line.result) == (["plano", "-e", "staging", "k8s", "deploy", "app1", "--tag", "2.0.0"], "ok")


@pytest.mark.parametrize(("args", "message"), [
    (["-e", "nope", "k8s", "status"], "error: -e nope: no such environment in plano.yml (declared: production, staging)"),
    (["-e", "production", "k8s", "apply", "--dry-run"],
     ("error: -e production: environments/production/kubernetes: not set, so plano k8s does not run there; add kubernetes: {} "
     "to it (namespace infra-production, context prod-ctx) or set its namespace and context")),
    (["-e", "staging", "status"],
     ("error: -e staging: environments/staging/host: not set; staging is a Kubernetes namespace only (plano -e staging k8s ...); "
     "give it a host to run other commands on a server")),
    (["-e", "staging", "deploy", "app1", "--tag", "1.0"], "error: -e staging: environments/staging/host: not set;"),
    (["-e", "staging", "server", "trust"], "error: -e staging: environments/staging/host: not set;"),
])
def test_a_wrong_environment_is_one_line_exit_2_and_nothing_run(environments, capsys, args, message):
    runner = ScriptedRunner()
    code, out, err = run(capsys, runner, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert runner.calls == []
