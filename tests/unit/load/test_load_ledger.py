"""The client ledger: the contract's line format, durability, torn lines, outcome classification."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.load.ledger import (
    FIELDS,
    ClientLedger,
    LedgerTail,
    classify,
)
from harness.runs import RunFolder, read_jsonl
from system_under_test.ids import order_id_for

pytestmark = pytest.mark.unit


def _attempt(**overrides):
    line = {
        "op_id": "c1-1",
        "idempotency_key": "sqabc-00000001",
        "customer_id": "cus-00421",
        "amount_cents": 4599,
        "currency": "EUR",
        "items": 2,
        "attempt": 1,
        "sent_at": 1763769000.123,
        "answered_at": 1763769000.161,
        "status": 202,
        "outcome": "ok",
    }
    line.update(overrides)
    return line


def test_a_line_has_exactly_the_fields_of_docs_run_folder(tmp_path: Path) -> None:
    with ClientLedger.create(tmp_path, "c1") as ledger:
        ledger.record(**_attempt(), order_id="ord-from-the-answer")
        ledger.record(**_attempt(attempt=2, status=None, outcome="unknown", error="timed out"))
    path = tmp_path / "history" / "ledger" / "client-c1.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [list(line) for line in lines] == [list(FIELDS)] * 2
    assert lines[0] == {**_attempt(), "seq": 1, "order_id": "ord-from-the-answer", "error": None}
    # no answer named the order: it is derived from the idempotency key
    assert lines[1]["order_id"] == order_id_for("sqabc-00000001")
    assert lines[1]["status"] is None
    assert lines[1]["seq"] == 2


def test_every_line_is_on_disk_as_soon_as_it_is_recorded(tmp_path: Path) -> None:
    ledger = ClientLedger.create(tmp_path, "c1")
    reader = open(ledger.path, "rb")  # noqa: SIM115  another handle, as a crash would leave it
    for n in range(1, 4):
        ledger.record(**_attempt(op_id=f"c1-{n}"))
        reader.seek(0)
        assert len(reader.read().splitlines()) == n
    reader.close()
    # even without close (the generator crashed), the lines are in the file
    assert len(read_jsonl(ledger.path).records) == 3
    ledger.close()


def test_fsync_every_n_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    ledger = ClientLedger.create(tmp_path, "c1", fsync_every=2)
    for _ in range(5):
        ledger.record(**_attempt())
    assert len(synced) == 2
    ledger.close()
    assert len(synced) == 3  # and at close


def test_one_file_per_process_and_a_taken_name_gets_the_pid(tmp_path: Path) -> None:
    first = ClientLedger.create(tmp_path, "c1")
    second = ClientLedger.create(tmp_path, "c1")
    third = ClientLedger.create(tmp_path, "c2")
    assert first.path.name == "client-c1.jsonl"
    assert second.path.name == f"client-c1-{os.getpid()}.jsonl"
    assert third.name == "c2"
    assert RunFolder(tmp_path).client_ledgers() == sorted([first.path, second.path, third.path])
    for ledger in (first, second, third):
        ledger.close()


def test_a_reopened_ledger_continues_its_seq(tmp_path: Path) -> None:
    with ClientLedger.create(tmp_path, "c1") as ledger:
        ledger.record(**_attempt())
        path = ledger.path
    with ClientLedger(path) as again:
        assert again.record(**_attempt())["seq"] == 2


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    with ClientLedger.create(tmp_path, "c1") as ledger:
        ledger.record(**_attempt())
        path = ledger.path
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "op_id": "c1-2", "idempo')  # the generator died mid-write
    read = read_jsonl(path)
    assert len(read.records) == 1
    assert read.torn == 1


def test_the_tail_only_returns_whole_new_lines(tmp_path: Path) -> None:
    tail = LedgerTail(tmp_path)
    assert list(tail.read_new()) == []  # no file yet
    ledger = ClientLedger.create(tmp_path, "c1")
    ledger.record(**_attempt())
    assert len(list(tail.read_new())) == 1
    assert list(tail.read_new()) == []
    with open(ledger.path, "ab") as f:
        f.write(b'{"seq": 2')
    assert list(tail.read_new()) == []  # half a line waits
    with open(ledger.path, "ab") as f:
        f.write(b"}\n")
    assert [x["seq"] for x in tail.read_new()] == [2]
    ledger.close()


def test_an_unknown_outcome_is_refused(tmp_path: Path) -> None:
    with ClientLedger.create(tmp_path, "c1") as ledger, pytest.raises(ValueError, match="outcome"):
        ledger.record(**_attempt(outcome="maybe"))


@pytest.mark.parametrize(
    "status,body,outcome",
    [
        (202, {"order_id": "ord-1", "status": "accepted"}, "ok"),
        (200, None, "ok"),
        (409, {"detail": "key reused"}, "failed"),
        (422, {"detail": [{"loc": ["body"], "msg": "x"}]}, "failed"),
        (404, None, "failed"),
        (503, {"detail": "temporal is not reachable; nothing was accepted"}, "failed"),
        # the service does not know:
        (504, {"detail": "the order may or may not be accepted"}, "unknown"),
        (500, None, "unknown"),  # a crash's plain-text 500: the order may have been taken
        (502, {"error": "bad gateway"}, "unknown"),  # a proxy's answer, not the service's
        (None, None, "unknown"),  # time-out, connection reset or refused
        (0, None, "unknown"),
        (302, None, "unknown"),
    ],
)
def test_outcome_classification(status, body, outcome) -> None:
    assert classify(status, body) == outcome


def test_the_cancel_ledger_sits_beside_the_client_ledger_and_numbers_its_lines(
    tmp_path: Path,
) -> None:
    from harness.load.ledger import CancelLedger

    with CancelLedger.create(tmp_path, "c1") as cancels:
        first = cancels.record(
            order_id="ord-1", seen_status="reserved", sent_at=1.0, answered_at=1.1,
            status=202, outcome="ok",
        )  # fmt: skip
        cancels.record(
            order_id="ord-2", seen_status=None, sent_at=2.0, answered_at=7.0,
            status=None, outcome="unknown", error="timed out",
        )  # fmt: skip
    assert first["seq"] == 1 and cancels.name == "c1"
    assert [p.name for p in RunFolder(tmp_path).cancel_ledgers()] == ["cancel-c1.jsonl"]
    assert (
        RunFolder(tmp_path).client_ledgers() == []
    )  # the verifier's client ledger is not mixed with it
    lines = read_jsonl(RunFolder(tmp_path).cancel_ledgers()[0]).records
    assert [(r["seq"], r["order_id"], r["outcome"]) for r in lines] == [
        (1, "ord-1", "ok"),
        (2, "ord-2", "unknown"),
    ]
    with pytest.raises(ValueError, match="outcome"):
        CancelLedger(RunFolder(tmp_path).cancel_ledgers()[0]).record(
            order_id="o", seen_status=None, sent_at=0, answered_at=0, status=None, outcome="maybe"
        )
