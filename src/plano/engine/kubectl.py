"""The Kubernetes target's engine: argv builders for `kubectl` (pure, `list[str]`, each
for one Scope: a namespace, on a context) and the parsing of the JSON it prints. kubectl
talks to the cluster of the context plano names (kubernetes.context, an environment's
own) or else of its current one (KUBECONFIG, ~/.kube/config); plano never names a server.

Objects plano sends (Secrets, a release Job) go on stdin (`-f -`), never on a command
line: a Secret's values are in no argv, no file and no output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

KUBECTL = "kubectl"
FIELD_MANAGER = "plano"
# How long kubectl waits for a left release Job (and its pods) to be deleted.
DELETE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Scope:
    """Where kubectl works: a namespace, on a kubeconfig context (None: kubectl's current)."""

    namespace: str
    context: str | None = None

    def with_namespace(self, namespace: str) -> Scope:
        return Scope(namespace, self.context)


def context_args(context: str | None) -> list[str]:
    return ["--context", context] if context else []


def kubectl(scope: Scope, *args: str) -> list[str]:
    return [KUBECTL, *context_args(scope.context), "--namespace", scope.namespace, *args]


def apply_argv(scope: Scope) -> list[str]:
    """Objects from stdin (a JSON List or YAML documents)."""
    return kubectl(scope, "apply", "-f", "-")


def apply_secrets_argv(scope: Scope) -> list[str]:
    """Secrets from stdin, server-side: client-side apply would keep a copy of every
    value in the Secret's last-applied-configuration annotation. plano takes over keys
    another manager set (a Secret first made by hand from .env.prod)."""
    return server_side_apply_argv(scope)


def server_side_apply_argv(scope: Scope) -> list[str]:
    """Objects from stdin, applied server-side as plano: it takes over the fields another
    manager set (an image `kubectl set image` changed, a backend a patch switched)."""
    return kubectl(scope, "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-")


def kustomize_argv(folder: str, context: str | None = None) -> list[str]:
    """The overlay built by kubectl's own kustomize: local, no cluster asked (the context,
    named as in every other kubectl command plano runs, is not read)."""
    return [KUBECTL, *context_args(context), "kustomize", folder]


def delete_job_argv(scope: Scope, job: str) -> list[str]:
    """A Job left by an earlier deploy, and its pods (a Job's pod template is immutable:
    a new image needs a new Job); none there is no error."""
    return kubectl(scope, "delete", "job", job, "--ignore-not-found", "--cascade=foreground", "--wait=true",
                   f"--timeout={DELETE_TIMEOUT_SECONDS}s")


def wait_job_argv(scope: Scope, job: str, seconds: int) -> list[str]:
    return kubectl(scope, "wait", "--for=condition=complete", f"--timeout={seconds}s", f"job/{job}")


def get_json_argv(scope: Scope, *objects: str) -> list[str]:
    """`kind/name` objects, or kinds (`deployments,statefulsets,jobs`), as JSON."""
    return kubectl(scope, "get", *objects, "--output=json")


def workloads_argv(scope: Scope) -> list[str]:
    return get_json_argv(scope, "deployments,statefulsets,jobs")


def job_logs_argv(scope: Scope, job: str, lines: int) -> list[str]:
    return kubectl(scope, "logs", f"job/{job}", "--all-containers", f"--tail={lines}")


def set_image_argv(scope: Scope, deployment: str, container: str, image: str) -> list[str]:
    return kubectl(scope, "set", "image", f"deployment/{deployment}", f"{container}={image}")


def rollout_status_argv(scope: Scope, deployment: str, seconds: int) -> list[str]:
    """Until every pod of the new ReplicaSet is ready (non-zero after `seconds`, or when
    the Deployment's progress deadline passed)."""
    return kubectl(scope, "rollout", "status", f"deployment/{deployment}", f"--timeout={seconds}s")


def rollout_undo_argv(scope: Scope, deployment: str) -> list[str]:
    """Back to the Deployment's previous revision (the pods that served before)."""
    return kubectl(scope, "rollout", "undo", f"deployment/{deployment}")


def patch_argv(scope: Scope, kind: str, name: str, patch: list[dict]) -> list[str]:
    """A JSON patch (RFC 6902) of one object; it holds no secret, so it is an argument."""
    return kubectl(scope, "patch", kind, name, "--type=json", f"--patch={json.dumps(patch, separators=(',', ':'))}")


# ---------------------------------------------------------------- what it prints


def items(text: str) -> list[dict]:
    """The objects of `kubectl get ... -o json`: a List's items, or the one object."""
    data = json.loads(text or "{}")
    return data.get("items", []) if data.get("kind", "").endswith("List") else [data] if data else []


def true_conditions(status: dict) -> dict[str, dict]:
    return {c.get("type", ""): c for c in status.get("conditions") or [] if c.get("status") == "True"}


@dataclass(frozen=True)
class JobState:
    state: str  # running, complete, failed
    reason: str = ""


def job_state(text: str) -> JobState:
    """A Job's state from `kubectl get job/NAME -o json` (its Complete or Failed condition)."""
    found = items(text)
    conditions = true_conditions(found[0].get("status") or {}) if found else {}
    if "Complete" in conditions:
        return JobState("complete")
    if "Failed" in conditions:
        failed = conditions["Failed"]
        return JobState("failed", ": ".join(part for part in (failed.get("reason", ""), failed.get("message", "")) if part))
    return JobState("running")


def image_tag(image: str) -> str:
    """registry:5000/acme/app1-backend:1.2.3@sha256:... -> 1.2.3 (none given: latest)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or Job, as `kubectl get -o json` shows it."""

    kind: str
    name: str
    ready: int  # ready pods (a Job: succeeded ones)
    desired: int  # wanted pods (a Job: completions)
    images: dict[str, str] = field(default_factory=dict)  # container -> image
    conditions: list[str] = field(default_factory=list)  # "Available=True", "Failed=True (BackoffLimitExceeded)"
    updated: int = 0  # pods of the current revision (a Deployment, a StatefulSet)

    @property
    def ok(self) -> bool:
        """Runs what it should: every pod ready and up to date, no failed condition."""
        failed = any(c.startswith(("Failed=True", "Progressing=False", "ReplicaFailure=True")) for c in self.conditions)
        if self.kind == "Job":
            return not failed
        return not failed and self.ready >= self.desired and self.updated >= self.desired


def condition_text(condition: dict) -> str:
    reason = condition.get("reason")
    return f"{condition.get('type')}={condition.get('status')}" + (f" ({reason})" if reason else "")


def workload(item: dict) -> Workload:
    kind, spec, status = item.get("kind", ""), item.get("spec") or {}, item.get("status") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    images = {c.get("name", ""): c.get("image", "") for c in pod.get("containers") or []}
    conditions = [condition_text(c) for c in status.get("conditions") or []]
    name = (item.get("metadata") or {}).get("name", "")
    if kind == "Job":
        return Workload(kind, name, status.get("succeeded") or 0, spec.get("completions") or 1, images, conditions)
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    if kind == "StatefulSet" and status.get("currentRevision") == status.get("updateRevision"):
        updated = status.get("currentReplicas") or updated
    return Workload(kind, name, status.get("readyReplicas") or 0, desired, images, conditions, updated)


def workloads(text: str) -> list[Workload]:
    """Every Deployment, StatefulSet and Job of `kubectl get deployments,statefulsets,jobs -o json`."""
    order = {"Deployment": 0, "StatefulSet": 1, "Job": 2}
    found = [workload(item) for item in items(text) if item.get("kind") in order]
    return sorted(found, key=lambda w: (order[w.kind], w.name))
