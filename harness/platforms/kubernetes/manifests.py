"""Render the kustomize overlays in k8s/ with no kubectl: the small subset of kustomize we use.

`kubectl kustomize` would do, but a fresh machine (CI included) has only what `make setup`
installs, and the platform should not need a binary to apply its own manifests. So this module
renders exactly the kustomization keys our files use and refuses any other with a message that
names the file and the key:

- `resources`: YAML files, or folders holding a kustomization.yaml (a base);
- `replicas`: `{name, count}` for a Deployment or StatefulSet;
- `patches`: JSON 6902 operations (add, remove, replace) with a `target` of `kind` and `name`.

The transformations run in kustomize's order (patches, then replicas), and a test compares the
result with `kubectl kustomize` wherever kubectl is installed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.settings import KubernetesSettings

__all__ = [
    "DEFAULT_IMAGE",
    "NAMESPACE",
    "NAME_LABEL",
    "OVERLAYS",
    "PART_OF",
    "PART_OF_LABEL",
    "Workload",
    "k8s_dir",
    "overlay_dir",
    "pod_templates",
    "render",
    "render_overlay",
    "with_image",
    "workloads",
]

DEFAULT_IMAGE = "sagaquake:dev"
NAMESPACE = "sagaquake"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
PART_OF = "sagaquake"
OVERLAYS = ("kind", "minikube")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "replicas", "patches"}
_PATCH_TARGET_KEYS = {"kind", "name"}


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet of the stack, by the service its pods are labelled with."""

    service: str
    kind: str
    name: str
    replicas: int


def k8s_dir() -> Path:
    """The folder with base/, overlays/ and kind/: SAGAQUAKE_K8S_DIR, else the repository's k8s/."""
    configured = KubernetesSettings.field_from_env("k8s_dir")
    return configured or Path(__file__).resolve().parents[3] / "k8s"


def overlay_dir(overlay: str, root: Path | None = None) -> Path:
    path = (root or k8s_dir()) / "overlays" / overlay
    if not _kustomization_file(path):
        raise ConfigError(
            f"no kustomize overlay {overlay!r} at {str(path)!r}: use one of {', '.join(OVERLAYS)}, "
            "or set SAGAQUAKE_K8S_DIR to the repository's k8s folder"
        )
    return path


def render_overlay(overlay: str, image: str | None = None, root: Path | None = None) -> list[dict]:
    return render(overlay_dir(overlay, root), image)


def render(path: Path, image: str | None = None) -> list[dict[str, Any]]:
    """Every document of the kustomization in `path`, transformed; `image` replaces ours."""
    docs = _build(Path(path), seen=())
    return with_image(docs, image) if image and image != DEFAULT_IMAGE else docs


def with_image(docs: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    """The documents with every container that runs DEFAULT_IMAGE running `image` instead."""
    out = copy.deepcopy(docs)
    for _, spec in pod_templates(out):
        for container in _containers(spec):
            if container.get("image") == DEFAULT_IMAGE:
                container["image"] = image
    return out


def pod_templates(docs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment and StatefulSet."""
    return [
        (doc, doc["spec"]["template"]["spec"])
        for doc in docs
        if doc.get("kind") in WORKLOAD_KINDS
        and isinstance(doc.get("spec", {}).get("template", {}).get("spec"), dict)
    ]


def workloads(docs: list[dict[str, Any]]) -> dict[str, Workload]:
    """The workload of each service (by its pods' app.kubernetes.io/name label)."""
    found: dict[str, Workload] = {}
    for doc, _ in pod_templates(docs):
        labels = doc["spec"]["template"].get("metadata", {}).get("labels", {})
        service = labels.get(NAME_LABEL)
        if service:
            found[service] = Workload(
                service, doc["kind"], doc["metadata"]["name"], int(doc["spec"].get("replicas", 1))
            )
    return found


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _kustomization_file(path: Path) -> Path | None:
    for name in _KUSTOMIZATION_FILES:
        if (path / name).is_file():
            return path / name
    return None


def _build(path: Path, seen: tuple[Path, ...]) -> list[dict[str, Any]]:
    kfile = _kustomization_file(path)
    if kfile is None:
        raise ConfigError(f"no kustomization.yaml in {str(path)!r}")
    if path.resolve() in seen:
        raise ConfigError(f"{kfile}: resources form a cycle through {str(path)!r}")
    spec = yaml.safe_load(kfile.read_text()) or {}
    unknown = sorted(set(spec) - _SUPPORTED_KEYS)
    if unknown:
        raise ConfigError(
            f"{kfile}: key {unknown[0]!r} is not supported by sagaquake's renderer; "
            f"use only {', '.join(sorted(_SUPPORTED_KEYS - {'apiVersion', 'kind'}))} "
            "(harness/platforms/kubernetes/manifests.py)"
        )
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources") or []:
        target = path / entry
        if target.is_dir():
            docs += _build(target, (*seen, path.resolve()))
        elif target.is_file():
            docs += [d for d in yaml.safe_load_all(target.read_text()) if d]
        else:
            raise ConfigError(f"{kfile}: resource {entry!r} does not exist")
    _check_unique(docs, kfile)
    for patch in spec.get("patches") or []:
        _apply_patch(docs, patch, path, kfile)
    for entry in spec.get("replicas") or []:
        _apply_replicas(docs, entry, kfile)
    return docs


def _check_unique(docs: list[dict[str, Any]], kfile: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for doc in docs:
        meta = doc.get("metadata") or {}
        key = (str(doc.get("kind")), str(meta.get("namespace", "")), str(meta.get("name")))
        if key in seen:
            raise ConfigError(f"{kfile}: {key[0]} {key[2]!r} is defined twice")
        seen.add(key)


def _apply_replicas(docs: list[dict[str, Any]], entry: dict[str, Any], kfile: Path) -> None:
    name, count = entry.get("name"), entry.get("count")
    if not isinstance(count, int) or count < 0:
        raise ConfigError(f"{kfile}: replicas of {name!r} must be a whole number, got {count!r}")
    matched = [
        d for d in docs if d.get("kind") in WORKLOAD_KINDS and d["metadata"].get("name") == name
    ]
    if not matched:
        raise ConfigError(
            f"{kfile}: replicas names {name!r}, which is no Deployment or StatefulSet"
        )
    for doc in matched:
        doc.setdefault("spec", {})["replicas"] = count


def _apply_patch(
    docs: list[dict[str, Any]], patch: dict[str, Any], path: Path, kfile: Path
) -> None:
    target = patch.get("target") or {}
    if set(target) != _PATCH_TARGET_KEYS:
        raise ConfigError(
            f"{kfile}: a patch target must have exactly kind and name, got {sorted(target)!r}"
        )
    if "patch" in patch:
        ops = yaml.safe_load(patch["patch"])
    elif "path" in patch:
        ops = yaml.safe_load((path / patch["path"]).read_text())
    else:
        raise ConfigError(f"{kfile}: a patch needs `patch` or `path`")
    if not isinstance(ops, list):
        raise ConfigError(
            f"{kfile}: only JSON 6902 patches (a list of operations) are supported, "
            f"for target {target['kind']} {target['name']!r}"
        )
    matched = [
        d
        for d in docs
        if d.get("kind") == target["kind"] and d["metadata"].get("name") == target["name"]
    ]
    if not matched:
        raise ConfigError(f"{kfile}: patch target {target['kind']} {target['name']!r} not found")
    for doc in matched:
        for op in ops:
            _json_patch(doc, op, kfile)


def _json_patch(doc: dict[str, Any], op: dict[str, Any], kfile: Path) -> None:
    kind, pointer = op.get("op"), op.get("path", "")
    if kind not in ("add", "remove", "replace"):
        raise ConfigError(
            f"{kfile}: patch op {kind!r} is not supported; use add, remove or replace"
        )
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        raise ConfigError(f"{kfile}: patch path {pointer!r} must point inside the document")
    parent: Any = doc
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"{kfile}: patch path {pointer!r} does not exist") from None
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if (kind == "add" and last == "-") else int(last)
        if kind == "add":
            parent.insert(index, op["value"])
        elif index >= len(parent):
            raise ConfigError(f"{kfile}: patch path {pointer!r} does not exist")
        elif kind == "remove":
            del parent[index]
        else:
            parent[index] = op["value"]
        return
    if kind != "add" and last not in parent:
        raise ConfigError(f"{kfile}: patch path {pointer!r} does not exist")
    if kind == "remove":
        del parent[last]
    else:
        parent[last] = op["value"]
