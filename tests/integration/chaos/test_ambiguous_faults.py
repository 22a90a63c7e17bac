"""The ambiguous faults on the real stack: each primitive lands as callers see it (no answer, a
time-out, a lost reply with the work done), is undone when its action ends, and what a crashed
action left behind (a frozen process, an nftables rule) is found and removed by the next
rollback. The chaos_run fixture checks afterwards that nothing is left frozen or in place."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.chaos import ambiguous, midrequest, rollbacks
from harness.chaos.faults import FaultNotLanded, read_faults
from harness.chaos.runner import EXPERIMENTS_DIR
from harness.chaos.state import read_state
from harness.platforms.local_faults import frozen, nft_unsupported
from harness.platforms.stackstate import marked_processes
from tests.integration.chaos.load import BackgroundLoad, check_orders
from tests.integration.orders import order_body
from tests.integration.subprocesses import interruptible

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.skipif(nft_unsupported() is not None, reason=f"{nft_unsupported()}"),
]

CHAOS = Path(sys.executable).parent / "chaos"


def test_lost_payment_replies_leave_charges_done_and_unheard_and_nobody_charged_twice(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    load = BackgroundLoad(stack.endpoints, run_dir, rate=4)
    load.start()
    try:
        time.sleep(2)
        window = ambiguous.lose_replies(
            "payment-service", duration_s=6, require_unheard=True, configuration=chaos_run
        )
    finally:
        load.stop()
    evidence = window["evidence"]
    assert window["landed"] is True
    assert evidence["request"]["outcome"] == "no answer"  # connected, the answer never came
    unheard = evidence["unheard"]
    assert unheard["ledger"] == "payments:ledger" and unheard["count"] >= 1, unheard
    example = unheard["examples"][0]
    assert example["kind"] in ("capture", "decline") and example["order_id"].startswith("ord-")
    assert evidence["dropped_packets"] > 0 and evidence["healed"][0]["kind"] == "reply_loss"
    assert evidence["during"]["accepted"] >= 1
    assert evidence["during"]["events"].get("OrderPlaced", 0) >= 1
    counts = check_orders(stack.endpoints, run_dir)  # terminal, legal, captured at most once
    assert counts["orders"] >= 10


def test_without_work_to_lose_a_lost_reply_fault_did_not_land_and_is_still_removed(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FaultNotLanded, match="never reached the ambiguous window"):
        ambiguous.lose_replies(
            "notification-service", duration_s=0.5, require_unheard=True, configuration=chaos_run
        )
    (window,) = read_faults(chaos_run["sagaquake_run_dir"])
    assert window["landed"] is False and window["evidence"]["unheard"]["count"] == 0
    assert stack.platform.net_faults() == []


def test_a_hung_service_accepts_connections_and_answers_nothing(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    window = ambiguous.pause_service("payment-service", duration_s=2, configuration=chaos_run)
    evidence = window["evidence"]
    assert window["landed"] is True and evidence["mode"] == "hang"
    names = sorted(p["name"] for p in evidence["paused"])
    assert names == [f"payment-service_{n:02d}" for n in range(len(names))] and names
    assert all(p["paused"] for p in evidence["paused"])
    assert evidence["request"]["outcome"] == "no answer"
    assert sorted(evidence["resumed"]) == names
    assert httpx.get(f"{stack.endpoints.payment_api}/healthz", timeout=5).status_code == 200


def test_a_flapping_redis_is_slow_not_down(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    window = ambiguous.pause_service(
        "redis", duration_s=4, flap_paused_ms=250, flap_every_ms=500, configuration=chaos_run
    )
    evidence = window["evidence"]
    assert window["landed"] is True and evidence["mode"] == "flap 250 ms of every 500 ms"
    assert 6 <= evidence["cycles"] <= 9
    trips = evidence["round_trips"]
    assert trips["answered"] >= 5, trips  # slow, and still answering
    assert trips["p99_ms"] >= 100 and trips["p50_ms"] < trips["p99_ms"], trips
    assert stack.platform.redis("PING") is True


def test_a_partition_times_out_instead_of_refusing_and_heals(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    window = ambiguous.partition_service("inventory-service", duration_s=1, configuration=chaos_run)
    evidence = window["evidence"]
    assert window["landed"] is True
    assert evidence["request"]["outcome"] == "connect timed out"
    assert evidence["fault"]["ports"] == [stack.platform.ports.inventory]
    assert evidence["dropped_packets"] >= 1  # at least the probe's own SYN
    assert httpx.get(f"{stack.endpoints.inventory_api}/healthz", timeout=5).status_code == 200


def test_a_kill_mid_request_freezes_the_api_and_kills_it_with_a_request_in_hand(
    stack, chaos_run
) -> None:  # type: ignore[no-untyped-def]
    answers: list[str] = []

    def customer() -> None:  # arrives while the API is frozen
        time.sleep(0.5)
        try:
            httpx.post(
                f"{stack.endpoints.order_api}/orders", json=order_body(),
                headers={"Idempotency-Key": f"test-mid-{time.time_ns()}"}, timeout=20,
            )  # fmt: skip
            answers.append("answered")
        except httpx.HTTPError as exc:
            answers.append(type(exc).__name__)

    thread = threading.Thread(target=customer)
    thread.start()
    window = midrequest.kill_mid_request(  # run_ms=0: killed before it reads the request
        "order-service", wait_inflight_s=10, wait_s=60, run_ms=0, configuration=chaos_run
    )
    thread.join(timeout=30)
    (kill,) = window["evidence"]["kills"]
    assert window["landed"] is True and kill["landed"] is True
    held = kill["in_flight"]
    assert held["accept_queue"] + held["unread_bytes"] >= 1, held
    assert kill["new_uid"] != kill["old_uid"]
    assert answers and answers[0] != "answered", answers  # the request died with the process


def test_a_kill_mid_request_of_the_projection_leaves_entries_to_reclaim(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    load = BackgroundLoad(stack.endpoints, run_dir, rate=4)
    load.start()
    # three kills, one of each mode (production seconds at the fixture's compression): the
    # window ends after the third, and 15 s apart leaves room for a slow catch (a lingering
    # consumer took 11 s to be caught holding entries on a loaded CI machine) and restart
    every = 15 * float(chaos_run["sagaquake_compress"])
    try:
        window = midrequest.kill_mid_request(
            "projection", every_s=every, for_s=3 * every, wait_inflight_s=20, wait_s=60,
            configuration=chaos_run,
        )  # fmt: skip
    finally:
        load.stop()
    kills = window["evidence"]["kills"]
    assert [k["mode"] for k in kills] == ["held", "taken", "slice"], kills
    for kill in kills:
        assert kill["in_flight"]["pending_entries"] >= 1 and kill["in_flight"]["entries"], kill
        assert kill["landed"] and kill["new_uid"] != kill["old_uid"], kill
    assert kills[1]["steps"] >= 1 and kills[1]["ran_for_ms"] > 0, kills[1]
    assert kills[2]["ran_for_ms"] >= kills[2]["ran_ms"] > 0, kills[2]
    check_orders(stack.endpoints, run_dir)


def test_faults_a_crashed_action_left_are_removed_by_the_next_rollback(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    platform = stack.platform
    platform.pause("notification-service")
    platform.partition("payment-service")
    platform.lose_replies("inventory-service")
    assert frozen(marked_processes(platform.stack_id))
    assert {f.service for f in platform.net_faults()} == {"payment-service", "inventory-service"}
    result = rollbacks.ensure_stack_ready(configuration=chaos_run)  # as the next run's rollback
    assert result["resumed"] == ["notification-service_00"]
    assert {f["service"] for f in result["healed"]} == {"payment-service", "inventory-service"}
    assert rollbacks.heal_network(configuration=chaos_run)["healed"] == []  # twice is fine
    assert rollbacks.resume_services(configuration=chaos_run)["resumed"] == []


def test_ctrl_c_during_a_partition_heals_it(stack, chaos_run) -> None:  # type: ignore[no-untyped-def]
    run_dir = Path(chaos_run["sagaquake_run_dir"])
    journal_path = run_dir / "journal.json"
    env = {
        **os.environ,
        "SAGAQUAKE_RUN_DIR": str(run_dir),
        "SAGAQUAKE_CHAOS_PARTITION_S": "300",  # far longer than the test waits
        "SAGAQUAKE_COMPRESS": "1",
        "HOME": str(run_dir),
    }
    proc = subprocess.Popen(
        [str(CHAOS), "--no-version-check", "--no-log-file", "run", "--journal-path",
         str(journal_path), str(EXPERIMENTS_DIR / "temporal-partition.yaml")],
        cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=interruptible,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not any(
            w.get("landed") for w in read_state(run_dir).get("open_windows", {}).values()
        ):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the partition never landed"
            time.sleep(0.2)
        assert [f.service for f in stack.platform.net_faults()] == ["temporal"]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted", out
    names = [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]]
    assert names == [("temporal-is-reachable-again", "succeeded"),
                     ("every-service-is-up", "succeeded")]  # fmt: skip
    assert stack.platform.net_faults() == []
    (window,) = read_faults(run_dir)
    assert window["landed"] is True and window["evidence"]["interrupted"] == "KeyboardInterrupt"
    assert window["evidence"]["request"]["outcome"] == "connect timed out"
