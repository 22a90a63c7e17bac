"""`sagaquake <verb> --platform k8s` (harness/stack_cli.py) against the fake cluster: what each
verb does and prints; the flags reach the platform."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import pytest
from k8s_fakes import STACK, FakeCluster, fake_clients

from harness import cli, stack_cli
from harness.platforms.kubernetes.platform import KubernetesPlatform

pytestmark = pytest.mark.unit


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    """The stack on a fake cluster; the flags each verb built its platform from are in
    `cluster.flags`."""
    fake = FakeCluster(dict(STACK))
    fake.flags = []  # type: ignore[attr-defined]

    def platform(args: argparse.Namespace | None = None) -> KubernetesPlatform:
        if args is not None:
            fake.flags.append(args)  # type: ignore[attr-defined]
        return KubernetesPlatform(
            tmp_path,
            overlay=getattr(args, "overlay", None) or "kind",
            image=getattr(args, "image", None),
            clients=fake_clients(fake),
            rng=random.Random(7),
            clock=fake.clock,
            sleep=fake.sleep,
            reachable=lambda host, port: True,
        )

    monkeypatch.setattr(stack_cli, "_kubernetes", platform)
    monkeypatch.setattr(stack_cli, "attach", lambda kind: platform())
    for name in ("SAGAQUAKE_PLATFORM", "SAGAQUAKE_K8S_CONTEXT"):
        monkeypatch.setenv(name, "")  # so that what main sets is undone after the test
        monkeypatch.delenv(name)
    return fake


def test_up_applies_and_says_where_the_stack_answers(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["up", "--platform", "k8s", "--overlay", "kind", "--image", "img:1", "--timeout", "60"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "stack is up in namespace 'sagaquake'" in out and "(overlay kind, image img:1)" in out
    assert "order API" in out and ":30080" in out
    assert "stop it with sagaquake down --platform k8s" in out
    [flags] = cluster.flags  # type: ignore[attr-defined]
    assert (flags.overlay, flags.image, flags.timeout) == ("kind", "img:1", 60.0)
    assert {d["kind"] for d in cluster.applied} >= {"Namespace", "Deployment", "StatefulSet"}


def test_down_deletes_the_namespace(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["down", "--platform", "k8s", "--context", "kind-x"]) == 0
    assert cluster.namespace_phase is None
    assert "stack deleted: namespace 'sagaquake'" in capsys.readouterr().out
    assert cluster.flags[0].context == "kind-x"  # type: ignore[attr-defined]


def test_status_endpoints_and_heal_print_for_scripts(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["status", "--platform", "k8s", "--json"]) == 0
    status: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status["platform"] == "k8s" and status["ready"] is True
    assert cli.main(["endpoints", "--platform", "k8s"]) == 0
    assert json.loads(capsys.readouterr().out) == status["endpoints"]
    assert cli.main(["heal", "--platform", "k8s"]) == 0
    healed = json.loads(capsys.readouterr().out)
    assert healed == {"healed": [], "resumed": [], "errors": []}
