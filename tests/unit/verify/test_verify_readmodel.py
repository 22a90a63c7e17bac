"""read_model_consistent, and the vectorised replay held equal to the projection's rebuild()."""

from __future__ import annotations

import random

import pytest

from harness.verify.facts import TYPES, universe
from harness.verify.fields import CORE_FIELDS
from harness.verify.history import build_history
from harness.verify.readmodel import (
    COMPARED,
    STATUS_AFTER,
    TERMINAL_STATUSES,
    expected_read_model,
    read_model_consistent,
)
from system_under_test.projection import model
from system_under_test.projection.model import rebuild
from tests.unit.verify.builders import HistoryBuilder, example

pytestmark = pytest.mark.unit


def _run() -> HistoryBuilder:
    b = HistoryBuilder()
    b.completed()
    b.declined()
    b.refunded()
    b.in_flight(upto="PaymentCaptured")
    return b


def test_the_live_read_model_matches_the_replay() -> None:
    result = read_model_consistent(_run().history())
    assert result.status == "pass", result.counterexamples
    assert result.counts["orders"] == 4
    assert result.counts["read_model_rows"] == 4


def test_a_stale_status_is_flagged() -> None:
    b = _run()
    target = b.streams["orders:events"][0][1]["order_id"]

    def stale(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for row in rows:
            if row["order_id"] == target:
                row["status"] = "paid"
        return rows

    b.readmodel_edit = stale
    result = read_model_consistent(b.history())
    assert result.status == "fail"
    item = example(result, target)
    assert item["why"] == "status 'paid' in the read model, 'completed' replayed from orders:events"
    assert item["expected"]["status"] == "completed"
    assert item["read_model"]["status"] == "paid"


def test_a_missing_notified_flag_is_flagged() -> None:
    b = _run()
    target = b.streams["orders:events"][0][1]["order_id"]

    def unnotified(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for row in rows:
            if row["order_id"] == target:
                row["notified"] = "0"
        return rows

    b.readmodel_edit = unnotified
    result = read_model_consistent(b.history())
    assert example(result, target)["why"] == (
        "notified '0' in the read model, '1' replayed from orders:events"
    )


def test_a_missing_and_an_extra_row_are_flagged() -> None:
    b = _run()
    target = b.streams["orders:events"][0][1]["order_id"]
    ghost = "ord-0123456789abcdef01234567"
    b.readmodel_edit = lambda rows: (
        [r for r in rows if r["order_id"] != target] + [{"order_id": ghost, "status": "placed"}]
    )
    result = read_model_consistent(b.history())
    assert result.status == "fail"
    assert example(result, target)["why"] == "the read model has no entry for this order"
    assert example(result, ghost)["why"] == (
        "the read model has an order that is not in orders:events"
    )


@pytest.mark.parametrize(
    ("field", "shown", "builder"),
    [
        ("amount_cents", "105900", "completed"),  # the total in the wrong unit
        ("currency", "USD", "completed"),
        ("customer_id", "cus-someone-else", "completed"),
        ("reason", "payment_declined", "refunded"),  # a customer's cancel shown as a decline
    ],
)
def test_the_order_as_placed_and_its_cancel_reason_are_compared(field, shown, builder) -> None:
    b = HistoryBuilder()
    getattr(b, builder)()
    target = b.streams["orders:events"][0][1]["order_id"]
    placed = b.streams["orders:events"][0][1]
    wanted = placed.get(field) if field != "reason" else None

    def wrong(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        nonlocal wanted
        for row in rows:
            if row["order_id"] == target:
                wanted = wanted or row.get(field)
                row[field] = shown
        return rows

    b.readmodel_edit = wrong
    result = read_model_consistent(b.history())
    assert result.status == "fail"
    assert example(result, target)["why"] == (
        f"{field} {shown!r} in the read model, {wanted!r} replayed from orders:events"
    )


def test_the_snapshot_loader_reads_every_compared_field() -> None:
    assert set(COMPARED) <= set(CORE_FIELDS["readmodel"])


def test_without_readmodel_jsonl_it_is_unknown() -> None:
    result = read_model_consistent(_run().history(omit=("readmodel",)))
    assert result.status == "unknown"
    assert result.error == "history/readmodel.jsonl is missing"


MAYBE_FIELDS = {
    "customer_id": ["cus-1", "cus-2", ""],
    "amount_cents": ["1059", "1200"],
    "currency": ["EUR", "GBP"],
    "reason": ["payment_declined", "customer_cancelled", ""],
}


def test_the_verifier_s_read_model_contract_equals_the_system_s() -> None:
    """The verifier writes the rules out itself (never imported: a wrong rule in the system
    must be caught, not shared); here, and only here, they are held equal to the system's, so
    a deliberate change of the contract fails this test instead of every run's verdict."""
    assert STATUS_AFTER == model.STATUS_AFTER
    assert TERMINAL_STATUSES == model.TERMINAL_STATUSES
    assert set(STATUS_AFTER) <= set(TYPES)  # every status-changing event is a known type


@pytest.mark.parametrize("seed", range(8))
def test_the_vectorised_replay_equals_rebuild(seed: int) -> None:
    """Random sequences, legal or not (duplicates, events after terminal, unknown types, a
    NotificationSent before OrderPlaced): the verifier's replay gives what rebuild() gives."""
    rng = random.Random(seed)
    kinds = [*TYPES, "SomethingElse"]
    orders = [f"ord-{i:024x}" for i in range(40)]
    entries = []
    for i in range(600):
        oid = rng.choice(orders)
        kind = rng.choice(kinds)
        fields = {"type": kind, "order_id": oid, "event_id": f"{oid}:{kind}:{i}", "ts": str(i)}
        for name, values in MAYBE_FIELDS.items():  # present or not, differing between duplicates
            if rng.random() < 0.7:
                fields[name] = rng.choice(values)
        entries.append((f"{1763769000000 + i}-0", fields))
    h = build_history(
        source="snapshot",
        run={},
        streams={"orders:events": ([e[0] for e in entries], [e[1] for e in entries])},
        ledger=None,
        temporal=None,
        inventory=None,
        readmodel=None,
        faults=None,
    )
    want = rebuild(entries)
    got = expected_read_model(h)
    ids = universe(h).ids
    assert {ids[i] for i in range(len(ids))} == set(want)
    for code, oid in enumerate(ids):
        for col in COMPARED:
            assert got[col].iat[code] == (want[oid].get(col) or None), (oid, col)
