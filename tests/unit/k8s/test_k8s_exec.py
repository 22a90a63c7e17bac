"""Exec in a pod, for pause: as whom it really runs (the client's websocket drops impersonation,
so the chaos ServiceAccount authenticates with a token of its own), what the pause and resume
commands do to real processes in a PID namespace like a pod's, and the opt-in exec Role that
`up` applies when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client as k8s
from kubernetes.stream import ws_client

from harness.errors import ConfigError, PlatformError
from harness.platforms.kubernetes.api import (
    CHAOS_USER,
    ExecError,
    api_error,
    bearer_configuration,
    exec_runner,
    service_account_of,
)
from harness.platforms.kubernetes.checks import EXEC_ROLE, check_all
from harness.platforms.kubernetes.fault_specs import (
    PAUSE_COMMAND,
    RESUME_COMMAND,
    process_states,
    stopped_pids,
)
from harness.platforms.kubernetes.platform import KubernetesPlatform, pod_exec_from_env

pytestmark = pytest.mark.unit


def admin_client() -> k8s.ApiClient:
    """An admin client as kind's kubeconfig makes it (a client certificate), impersonating."""
    cfg = k8s.Configuration(host="https://127.0.0.1:6443")
    cfg.cert_file, cfg.key_file = "/tmp/admin.crt", "/tmp/admin.key"
    api = k8s.ApiClient(cfg)
    api.set_default_header("Impersonate-User", CHAOS_USER)
    return api


class Handshake(Exception):
    """What websocket-client raises when the API server refuses the upgrade."""


def test_exec_authenticates_as_the_service_account_by_its_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real `kubernetes.stream.stream` path, stopped where the websocket would connect."""
    tokens: list[tuple[str, str, Any]] = []
    seen: dict[str, Any] = {}

    def token(self: Any, name: str, namespace: str, body: Any, **_: Any) -> Any:
        tokens.append((name, namespace, body.spec))
        return k8s.AuthenticationV1TokenRequest(
            spec=body.spec,
            status=k8s.V1TokenRequestStatus(token="tok-123", expiration_timestamp=None),
        )

    def create_websocket(configuration: Any, url: str, headers: Any = None) -> Any:
        seen.update(configuration=configuration, url=url, headers=dict(headers or {}))
        raise Handshake("Handshake status 403 Forbidden -+-+- {'audit-id': 'x'} -+-+- b'{}'")

    monkeypatch.setattr(k8s.CoreV1Api, "create_namespaced_service_account_token", token)
    monkeypatch.setattr(ws_client, "create_websocket", create_websocket)
    run = exec_runner(admin_client(), ("sagaquake", "sagaquake-chaos"))
    with pytest.raises(ExecError) as err:
        run("payment-service-abc", PAUSE_COMMAND)
    assert (err.value.status, err.value.reason) == (403, "Handshake status 403 Forbidden")
    assert "forbidden" in str(api_error(err.value, "exec")) and "chaos-rbac.yaml" in str(
        api_error(err.value, "exec")
    )
    # the websocket carries the ServiceAccount's own token, no client certificate, and no
    # impersonation header (create_websocket would drop it anyway)
    assert seen["headers"].get("authorization") == "Bearer tok-123"
    assert "Impersonate-User" not in seen["headers"]
    assert seen["configuration"].cert_file is None and seen["configuration"].key_file is None
    assert "/api/v1/namespaces/sagaquake/pods/payment-service-abc/exec" in seen["url"]
    assert "?command=sh&command=-c&command=kill%20-STOP%20-1" in seen["url"]
    [(name, namespace, spec)] = tokens
    assert (name, namespace, spec.audiences, spec.expiration_seconds) == (
        "sagaquake-chaos", "sagaquake", [], 3600,
    )  # fmt: skip
    with pytest.raises(ExecError):
        run("payment-service-abc", RESUME_COMMAND)
    assert len(tokens) == 1  # the token is reused until it nears its end


def test_bearer_configuration_keeps_the_server_and_drops_every_other_credential() -> None:
    base = admin_client().configuration
    base.api_key = {"authorization": "Bearer admin-token"}
    cfg = bearer_configuration(base, "sa-token")
    assert cfg.host == base.host and cfg.cert_file is None and cfg.key_file is None
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer sa-token"
    assert base.cert_file == "/tmp/admin.crt"  # the admin's own is untouched


@pytest.mark.parametrize(
    ("user", "account"),
    [
        ("system:serviceaccount:sagaquake:sagaquake-chaos", ("sagaquake", "sagaquake-chaos")),
        ("jane", None),
        ("system:serviceaccount:sagaquake", None),
    ],
)
def test_service_account_of(user: str, account: tuple[str, str] | None) -> None:
    assert service_account_of(user) == account


def test_process_states_read_grep_output() -> None:
    out = "/proc/1/status:State:\tS (sleeping)\n/proc/7/status:State:\tT (stopped)\n" \
          "/proc/23/status:State:\tR (running)\n"  # fmt: skip
    assert process_states(out) == {1: "S", 7: "T", 23: "R"}
    assert stopped_pids(process_states(out)) == [7]
    assert stopped_pids({1: "T"}) == []  # PID 1 is never counted as the app


# -- the commands, for real, in a PID namespace ---------------------------------------------


def _unshare() -> list[str]:
    if not shutil.which("unshare") or not Path("/proc/self/status").exists():
        pytest.skip("needs Linux with util-linux's unshare")
    base = ["unshare", "--pid", "--fork", "--mount-proc"]
    return base if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", *base[1:]]


def test_pause_and_resume_commands_stop_the_app_but_not_pid_1(tmp_path: Path) -> None:
    """As in a pod that shares its process namespace: PID 1 stands for the pause process, a
    sleep for the app, and each command runs in its own shell, as an exec does."""
    script = (
        '[ "$$" = 1 ] || exit 97\n'  # never signal -1 outside a namespace of our own
        "sleep 60 & app=$!\n"
        'sh -c "$PAUSE" > pause.out\n'
        'grep "^State:" /proc/$app/status > app.after-pause\n'
        'sh -c "$RESUME" > resume.out\n'
        'sh -c "$RESUME" > resume-again.out\n'
        'grep "^State:" /proc/$app/status > app.after-resume\n'
        'echo "$app" > app.pid; kill $app\n'
    )
    env = {**os.environ, "PAUSE": PAUSE_COMMAND[2], "RESUME": RESUME_COMMAND[2]}
    done = subprocess.run(
        [*_unshare(), "sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=30
    )
    if done.returncode == 97 or not (tmp_path / "app.pid").exists():
        pytest.skip(f"cannot make a PID namespace here: {done.stderr.decode()[-200:]!r}")
    app = int((tmp_path / "app.pid").read_text())
    paused = process_states((tmp_path / "pause.out").read_text())
    assert stopped_pids(paused) == [app] and paused[1] == "S"  # PID 1 untouched
    assert "T (stopped)" in (tmp_path / "app.after-pause").read_text()
    assert stopped_pids(process_states((tmp_path / "resume.out").read_text())) == [app]
    assert stopped_pids(process_states((tmp_path / "resume-again.out").read_text())) == []
    assert "T (stopped)" not in (tmp_path / "app.after-resume").read_text()


# -- the opt-in exec Role ------------------------------------------------------------------


def test_up_applies_the_exec_role_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGAQUAKE_K8S_POD_EXEC", raising=False)
    plain = KubernetesPlatform(tmp_path, overlay="kind").manifests()
    assert EXEC_ROLE not in {d["metadata"]["name"] for d in plain}
    monkeypatch.setenv("SAGAQUAKE_K8S_POD_EXEC", "1")
    docs = KubernetesPlatform(tmp_path, overlay="minikube").manifests()
    extra = [d for d in docs if d["metadata"]["name"] == EXEC_ROLE]
    assert {d["kind"] for d in extra} == {"Role", "RoleBinding"}
    assert check_all(docs) == []
    for doc in extra:
        kubernetes_validate.validate(doc, "1.30", strict=True)


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_pod_exec_setting(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv("SAGAQUAKE_K8S_POD_EXEC", value)
    assert pod_exec_from_env() is on


def test_a_bad_pod_exec_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGAQUAKE_K8S_POD_EXEC", "maybe")
    with pytest.raises(ConfigError, match="SAGAQUAKE_K8S_POD_EXEC='maybe' is not a yes or no"):
        pod_exec_from_env()


def test_exec_as_a_user_is_refused_with_what_to_set() -> None:
    from harness.platforms.kubernetes import api as k8s_api

    run = k8s_api._refuse_exec("jane")
    with pytest.raises(PlatformError, match=r"cannot exec into pod 'p' as 'jane'.*IMPERSONATE"):
        run("p", ["true"])


def test_cli_renders_the_exec_role_with_pod_exec(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from harness.cli import main

    monkeypatch.delenv("SAGAQUAKE_K8S_POD_EXEC", raising=False)
    assert main(["render", "--overlay", "kind", "--pod-exec"]) == 0
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out) if d}
    assert EXEC_ROLE in names
    assert main(["render", "--overlay", "kind"]) == 0
    names = {d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out) if d}
    assert EXEC_ROLE not in names
