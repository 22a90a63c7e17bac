"""Fault state never outlives its stack: `down` lets frozen processes go and deletes the stack's
nftables table, and after a crash of the whole harness (supervisord included) the next `up` or
`down` finds the frozen orphans and the table and removes them."""

from __future__ import annotations

import os
import signal
import subprocess

import psutil
import pytest

from harness.platforms.local import LocalPlatform, clean_stale_stack
from harness.platforms.local_faults import TABLE_PREFIX, frozen, nft_unsupported
from harness.platforms.stackstate import marked_processes
from harness.settings import LocalOptions, LocalPorts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(nft_unsupported() is not None, reason=f"{nft_unsupported()}"),
]


def _tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def _faulty_stack(tmp_path, monkeypatch) -> LocalPlatform:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SAGAQUAKE_STATE_DIR", str(tmp_path / "state"))
    platform = LocalPlatform(tmp_path, LocalPorts.free(), LocalOptions())
    platform.up(timeout_s=180)
    platform.pause("notification-service")
    platform.partition("payment-service")
    platform.lose_replies("redis")
    assert frozen(marked_processes(platform.stack_id))
    assert f"{TABLE_PREFIX}{platform.stack_id}" in _tables()
    return platform


def test_down_lets_frozen_processes_go_and_deletes_the_table(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    platform = _faulty_stack(tmp_path, monkeypatch)
    platform.down()
    assert f"{TABLE_PREFIX}{platform.stack_id}" not in _tables()
    assert [p for p in marked_processes(platform.stack_id) if p.status() != "zombie"] == []


def test_after_a_crash_the_next_up_or_down_removes_what_faults_left(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    platform = _faulty_stack(tmp_path, monkeypatch)
    supervisord = psutil.Process(platform._supervisord_pid)
    try:
        os.kill(supervisord.pid, signal.SIGKILL)  # the harness's whole tree dies, undoing nothing
        supervisord.wait(timeout=10)
        # (the kernel may wake a newly orphaned process group's stopped members itself)
        note = clean_stale_stack()  # what `up` and `down` call first
        assert note is not None and "1 nftables table(s)" in note, note
        assert f"{TABLE_PREFIX}{platform.stack_id}" not in _tables()
        assert [p for p in marked_processes(platform.stack_id) if p.status() != "zombie"] == []
    finally:
        platform.down()
