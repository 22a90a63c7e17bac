"""Loading a run folder's snapshot into a History, and the frames it holds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.errors import ConfigError
from harness.runs import read_jsonl
from harness.verify import reader, verify_history, verify_run
from harness.verify.facts import sku_totals
from harness.verify.frames import records_frame, stream_frame
from harness.verify.reader import LineMaps, load_snapshot
from harness.verify.snapshot import _redact
from tests.unit.verify.builders import HistoryBuilder

pytestmark = pytest.mark.unit


def _run() -> HistoryBuilder:
    b = HistoryBuilder()
    b.completed(items=[{"sku": "SKU-0001", "qty": 2}])
    b.declined()
    b.refunded()
    b.out_of_stock(items=[{"sku": "SKU-0003", "qty": 5}])
    b.refused(status=422)
    b.completed(key="key-ünïcødé ✓")
    b.fault(b.t0 + 0.05, b.t0 + 0.1)
    return b


def test_a_written_run_folder_loads_into_the_same_history(tmp_path: Path) -> None:
    b = _run()
    run_dir = b.write(tmp_path / "run")
    h = load_snapshot(run_dir)
    assert h.source == "snapshot"
    assert h.missing == {}
    assert h.run_dir == run_dir
    assert len(h.events) == sum(1 for _ in b.streams["orders:events"])
    # the stream ids and event ids are held as bytes (History.texts), read as texts
    assert list(h.events.columns) == ["type", "order_id", "_ts"]
    assert set(h.texts["events"]) == {"id", "event_id"}
    written = list(b.streams["orders:events"])
    assert h.text("events", "id").tolist() == [e[0] for e in written]
    assert h.text("events", "event_id", [1]).tolist() == [written[1][1]["event_id"]]
    assert h.events["_ts"].dtype.kind == "i"
    assert {r["client"] for r in h.raw["ledger"]} == {"c1"}
    assert h.inventory.loc["SKU-0001", "sold"] == 3  # 2 + the default item of the last order
    assert set(h.temporal.columns) >= {"workflow_id", "status", "_start_time", "_close_time"}
    assert h.raw["temporal"][0]["run_id"]  # every field as read stays in `raw`
    placed = h.typed("OrderPlaced")
    assert set(placed.columns) >= {"amount_cents", "items", "idempotency_key"}
    assert placed.index.tolist() == h.events.index[h.events["type"] == "OrderPlaced"].tolist()
    wide = h.wide("events")
    assert "payment_id" in wide.columns
    assert wide["payment_id"].notna().sum() == 4  # three captures and a refund
    from_files = verify_history(h)
    in_memory = verify_history(b.history())
    assert from_files.ok is True
    assert [r.to_dict() for r in from_files.invariants] == [
        r.to_dict() for r in in_memory.invariants
    ]


def test_verify_run_reads_the_folder(tmp_path: Path) -> None:
    verdict = verify_run(_run().write(tmp_path / "run"))
    assert verdict.ok is True
    assert verdict.source == "snapshot"
    assert verdict.counts["orders_accepted"] == 5
    assert verdict.counts["events"] > 0
    assert verdict.metrics["recovery"][0]["fault"] == 0


def test_a_run_without_a_ledger_cannot_rule_out_phantoms(tmp_path: Path) -> None:
    run_dir = _run().write(tmp_path / "run", omit=("ledger",))
    verdict = verify_run(run_dir)
    phantom = verdict.result("no_phantom_order")
    assert phantom.status == "unknown"
    assert phantom.error == (
        "no client ledger (history/ledger/client-*.jsonl): what clients were told is unknown"
    )
    assert verdict.result("no_lost_order").status == "unknown"
    assert verdict.ok == "unknown"
    assert verdict.missing["ledger"] == phantom.error


def test_a_failed_temporal_export_says_why(tmp_path: Path) -> None:
    run_dir = _run().write(tmp_path / "run", omit=("temporal",))
    (run_dir / "history" / "export.json").write_bytes(
        orjson.dumps({"errors": {"temporal": "connection refused"}})
    )
    result = verify_run(run_dir).result("temporal_agrees")
    assert result.status == "unknown"
    assert result.error == (
        "history/temporal.jsonl is missing: the export failed (connection refused)"
    )


def test_a_torn_last_ledger_line_is_dropped_with_a_note(tmp_path: Path) -> None:
    run_dir = _run().write(tmp_path / "run")
    ledger = run_dir / "history" / "ledger" / "client-c1.jsonl"
    ledger.write_bytes(ledger.read_bytes() + b'{"seq": 99, "idempotency_key": "k')
    h = load_snapshot(run_dir)
    assert len(h.ledger) == len(_run().ledger["c1"])
    assert any("dropped a torn last line" in note for note in h.notes)


def test_a_corrupt_line_makes_its_part_unreadable_never_silently_shorter(tmp_path: Path) -> None:
    run_dir = _run().write(tmp_path / "run")
    ledger = run_dir / "history" / "ledger" / "client-c1.jsonl"
    first, rest = ledger.read_bytes().split(b"\n", 1)
    ledger.write_bytes(first + b"\n" + b'{"seq": 99, "idempo\n' + rest)
    h = load_snapshot(run_dir, workers=1)
    assert h.ledger is None
    assert h.missing["ledger"] == (
        "history/ledger/client-*.jsonl could not be read: "
        "client-c1.jsonl: 1 line(s) not a JSON object (line 2)"
    )


def test_no_faults_file_means_no_faults_unless_chaos_ran(tmp_path: Path) -> None:
    quiet = _run()
    quiet.faults.clear()
    run_dir = quiet.write(tmp_path / "quiet", omit=("faults",))
    assert load_snapshot(run_dir).faults is not None
    (run_dir / "chaos").mkdir()
    (run_dir / "chaos" / "kill.journal.json").write_text("{}")
    h = load_snapshot(run_dir)
    assert h.faults is None
    assert h.missing["faults"] == "history/faults.jsonl is missing although chaos experiments ran"


def test_an_empty_history_folder_is_unknown_everywhere(tmp_path: Path) -> None:
    (tmp_path / "run" / "history").mkdir(parents=True)
    verdict = verify_run(tmp_path / "run")
    assert verdict.ok == "unknown"
    assert {r.status for r in verdict.invariants} == {"unknown"}


def test_frames_of_mixed_shapes_keep_every_field() -> None:
    fields = [
        {"kind": "capture", "order_id": "o1", "amount_cents": "5", "ts": "1"},
        {"kind": "refund", "order_id": "o1", "refund_id": "r1", "amount_cents": "5", "ts": "2"},
        {"kind": "capture", "order_id": "o2", "ts": "3"},
    ]
    frame = stream_frame(["1-0", "2-0", "3-0"], fields, group="kind")
    assert frame["refund_id"].tolist() == [None, "r1", None]
    assert frame["amount_cents"].tolist() == ["5", "5", None]
    assert frame["_ts"].tolist() == [1, 2, 3]
    records = records_frame([{"a": 1, "b": None}, {"a": 2, "c": "x"}, {"c": "y", "a": 3}])
    assert records["a"].tolist() == [1, 2, 3]
    assert records["c"].tolist() == [None, "x", "y"]


def test_sku_totals_weigh_each_line_and_count_unreadable_items() -> None:
    h = HistoryBuilder().history()
    texts = [
        '[{"sku":"A","qty":2},{"sku":"B","qty":1}]',
        '[{"sku":"A","qty":2},{"sku":"B","qty":1}]',
        '[{"sku":"B","qty":4}]',
        "not json",
        None,
    ]
    weights = {"w": __import__("numpy").array([1.0, -1.0, 2.0, 1.0, 1.0])}
    totals, bad = sku_totals(h, texts, weights)
    assert totals.loc["A", "w"] == 0
    assert totals.loc["B", "w"] == 8
    assert bad == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_counterexamples_quote_the_files_exactly(tmp_path: Path, workers: int) -> None:
    b = _run()
    order = b.completed()
    b._pay(order, "capture")  # a double charge
    b.readmodel_edit = lambda rows: [r for r in rows if r["order_id"] != order.order_id]
    run_dir = b.write(tmp_path / "run")
    from_files = verify_history(load_snapshot(run_dir, workers=workers))
    in_memory = verify_history(b.history())
    assert from_files.ok is False
    assert [r.to_dict() for r in from_files.invariants] == [
        r.to_dict() for r in in_memory.invariants
    ]
    money = from_files.result("exactly_once_money")
    [item] = money.counterexamples
    assert [p["fields"]["kind"] for p in item["payments"]] == ["capture", "capture"]
    assert item["client"]["client"] == "c1"


def test_line_maps_read_lines_again_on_demand(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        b'{"id": "1-0", "fields": {"a": "1"}}\n\n{"id": "2-0", "fields": {"a": "2"}}\n'
    )
    lines = read_jsonl(path, spans=True)
    assert [r["id"] for r in lines.records] == ["1-0", "2-0"]
    maps = LineMaps([(path, *lines.spans(), {"client": "c9"})], key="fields")
    assert len(maps) == 2
    assert maps[1] == {"client": "c9", "a": "2"}
    assert maps[-2] == {"client": "c9", "a": "1"}
    assert list(maps) == [{"client": "c9", "a": "1"}, {"client": "c9", "a": "2"}]
    with pytest.raises(IndexError):
        maps[2]


def test_a_redis_password_never_reaches_the_run_folder() -> None:
    assert _redact("redis://:s3cret@127.0.0.1:16379/0") == "redis://:***@127.0.0.1:16379/0"
    assert _redact("redis://127.0.0.1:16379/0") == "redis://127.0.0.1:16379/0"


def test_the_number_of_reader_processes_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = _run().write(tmp_path / "run")
    monkeypatch.setenv("SAGAQUAKE_VERIFY_WORKERS", "1")

    def no_worker(*_: object) -> None:
        raise AssertionError("a reader process was started")

    monkeypatch.setattr(reader, "_in_worker", no_worker)
    assert load_snapshot(run_dir).payments is not None  # read here
    monkeypatch.setenv("SAGAQUAKE_VERIFY_WORKERS", "many")
    with pytest.raises(ConfigError) as err:
        load_snapshot(run_dir)
    assert str(err.value) == (
        "environment variable SAGAQUAKE_VERIFY_WORKERS='many' is not a whole number of 1 or more"
    )
