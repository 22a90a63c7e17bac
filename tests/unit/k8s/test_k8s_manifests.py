"""The overlays render (without kubectl), match `kubectl kustomize` where kubectl exists, and
every object passes the Kubernetes 1.30 schemas, strictly."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from harness.errors import ConfigError
from harness.platforms.kubernetes.manifests import (
    DEFAULT_IMAGE,
    OVERLAYS,
    k8s_dir,
    pod_templates,
    render,
    render_overlay,
    workloads,
)
from harness.platforms.kubernetes.platform import WORKLOADS

pytestmark = pytest.mark.unit

K8S = k8s_dir()
KUBE_VERSION = "1.30"


def _key(doc: dict) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace", ""), meta["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_document_is_valid_for_kubernetes_1_30(overlay: str) -> None:
    docs = render_overlay(overlay)
    assert len(docs) > 20
    for doc in docs:
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_opt_in_files_beside_the_base_are_valid_too() -> None:
    """Files in k8s/base that the kustomization leaves out (chaos-rbac-exec.yaml: pods/exec for
    pause) are applied only on request, so nothing else would validate them."""
    base = K8S / "base"
    listed = set(yaml.safe_load((base / "kustomization.yaml").read_text())["resources"])
    opt_in = sorted(p for p in base.glob("*.yaml") if p.name not in listed | {"kustomization.yaml"})
    assert [p.name for p in opt_in] == ["chaos-rbac-exec.yaml"]
    for path in opt_in:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] != "Kustomization":
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    docs = render_overlay("kind")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "IfNotPresent"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pure_python_render_equals_kubectl_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl is not installed (`make setup` does not install it): the pure-python "
            "render is checked against `kubectl kustomize` only where kubectl exists"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    theirs = {_key(d): d for d in yaml.safe_load_all(out) if d}
    ours = {_key(d): d for d in render_overlay(overlay)}
    assert ours.keys() == theirs.keys()
    for key, doc in ours.items():
        assert doc == theirs[key], key


def test_overlays_differ_where_they_say() -> None:
    kind = {_key(d): d for d in render_overlay("kind")}
    minikube = {_key(d): d for d in render_overlay("minikube")}
    assert kind.keys() == minikube.keys()
    worker = ("Deployment", "sagaquake", "locust-worker")
    assert (kind[worker]["spec"]["replicas"], minikube[worker]["spec"]["replicas"]) == (2, 1)
    redis = ("StatefulSet", "sagaquake", "redis")
    requests = minikube[redis]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests["memory"] == "512Mi"


def test_image_override_replaces_only_our_image() -> None:
    docs = render_overlay("kind", image="registry.example/sagaquake:abc123")
    images = {c["image"] for _, spec in pod_templates(docs) for c in spec["containers"]}
    assert images == {"registry.example/sagaquake:abc123"}
    # the default render is untouched
    assert {
        c["image"] for _, s in pod_templates(render_overlay("kind")) for c in s["containers"]
    } == {DEFAULT_IMAGE}


def test_platform_workload_table_matches_the_manifests() -> None:
    found = workloads(render_overlay("kind"))
    for service, (kind, name) in WORKLOADS.items():
        assert (found[service].kind, found[service].name) == (kind, name), service
    assert found["payment-service"].replicas >= 2


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


_CM = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: sagaquake}\ndata: {a: '1'}\n"
_DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: sagaquake}
spec:
  replicas: 1
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: d, image: x, ports: [{containerPort: 1}, {containerPort: 2}]}]}
"""


def _base(tmp_path: Path) -> Path:
    _write(tmp_path / "base" / "cm.yaml", _CM)
    _write(tmp_path / "base" / "d.yaml", _DEPLOY)
    _write(tmp_path / "base" / "kustomization.yaml", "resources: [cm.yaml, d.yaml]\n")
    return tmp_path


def test_renderer_applies_json6902_patches_and_replicas(tmp_path: Path) -> None:
    root = _base(tmp_path)
    _write(
        root / "o" / "kustomization.yaml",
        """resources: [../base]
replicas: [{name: d, count: 3}]
patches:
  - target: {kind: Deployment, name: d}
    patch: |-
      - {op: replace, path: /spec/replicas, value: 9}
      - {op: add, path: /spec/template/spec/containers/0/ports/-, value: {containerPort: 3}}
      - {op: remove, path: /spec/template/spec/containers/0/ports/0}
      - {op: add, path: /metadata/labels, value: {x: y}}
  - target: {kind: ConfigMap, name: c}
    patch: |-
      - {op: replace, path: /data/a, value: '2'}
""",
    )
    docs = {d["kind"]: d for d in render(root / "o")}
    deploy = docs["Deployment"]
    assert deploy["spec"]["replicas"] == 3  # replicas runs after patches, as in kustomize
    assert deploy["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 2},
        {"containerPort": 3},
    ]
    assert deploy["metadata"]["labels"] == {"x": "y"}
    assert docs["ConfigMap"]["data"] == {"a": "2"}


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [../base]\nnamespace: other\n", "key 'namespace' is not supported"),
        (
            "resources: [../base]\nconfigMapGenerator: []\n",
            "key 'configMapGenerator' is not supported",
        ),
        ("resources: [../base, missing.yaml]\n", "resource 'missing.yaml' does not exist"),
        ("resources: [../base]\nreplicas: [{name: nope, count: 1}]\n", "replicas names 'nope'"),
        (
            "resources: [../base]\npatches:\n  - target: {kind: Deployment, name: d}\n"
            "    patch: '{spec: {replicas: 2}}'\n",
            "only JSON 6902 patches",
        ),
        (
            "resources: [../base]\npatches:\n  - target: {kind: Deployment, name: d, group: apps}\n"
            "    patch: '[]'\n",
            "must have exactly kind and name",
        ),
        (
            "resources: [../base]\npatches:\n  - target: {kind: Deployment, name: zz}\n"
            "    patch: '[]'\n",
            "patch target Deployment 'zz' not found",
        ),
        (
            "resources: [../base]\npatches:\n  - target: {kind: Deployment, name: d}\n"
            "    patch: '[{op: replace, path: /spec/nope/x, value: 1}]'\n",
            "patch path '/spec/nope/x' does not exist",
        ),
        (
            "resources: [../base]\npatches:\n  - target: {kind: Deployment, name: d}\n"
            "    patch: '[{op: move, from: /a, path: /b}]'\n",
            "patch op 'move' is not supported",
        ),
        ("resources: [../base, ../base/cm.yaml]\n", "ConfigMap 'c' is defined twice"),
    ],
)
def test_renderer_refuses_what_it_does_not_support(
    tmp_path: Path, kustomization: str, message: str
) -> None:
    root = _base(tmp_path)
    _write(root / "o" / "kustomization.yaml", kustomization)
    with pytest.raises(ConfigError, match=message):
        render(root / "o")


def test_unknown_overlay_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no kustomize overlay 'gke'.*use one of kind, minikube"):
        render_overlay("gke")
