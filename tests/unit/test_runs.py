"""The run folder's store: every path, the one JSON-lines reader and its torn-line rule, the
tail, the appender and the atomic writers (docs/run-folder.md)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest

from harness.runs import (
    JsonLines,
    JsonLinesTail,
    RunFolder,
    append_jsonl,
    iter_jsonl,
    read_json,
    read_json_or_empty,
    read_jsonl,
    write_atomic,
    write_json,
    write_jsonl,
)

pytestmark = pytest.mark.unit


def test_every_path_is_where_the_docs_say(tmp_path: Path) -> None:
    f = RunFolder(tmp_path)
    rel = {
        "run_json": "run.json",
        "verdict": "verdict.json",
        "gate": "gate.json",
        "history": "history",
        "ledger_dir": "history/ledger",
        "streams_dir": "history/streams",
        "temporal": "history/temporal.jsonl",
        "workflows": "history/workflows.jsonl.gz",
        "reprocess": "history/reprocess.jsonl",
        "inventory": "history/inventory.json",
        "readmodel": "history/readmodel.jsonl",
        "faults": "history/faults.jsonl",
        "export": "history/export.json",
        "chaos_state": "chaos/state.json",
        "load_plan": "locust/load.json",
        "locust_report": "locust/report.html",
        "logs_dir": "logs",
        "platform_dir": "platform",
    }
    assert {name: getattr(f, name).relative_to(tmp_path).as_posix() for name in rel} == rel
    assert [p.name for p in f.outputs] == ["report.html", "summary.md", "junit.xml"]
    assert f.stream("orders:events") == tmp_path / "history/streams/orders.events.jsonl"
    assert RunFolder.stream_rel("payments:ledger") == "history/streams/payments.ledger.jsonl"
    assert f.client_ledger("c1") == tmp_path / "history/ledger/client-c1.jsonl"
    assert f.cancel_ledger("c1") == tmp_path / "history/ledger/cancel-c1.jsonl"
    assert f.journal("kill-payment-pods") == tmp_path / "chaos/kill-payment-pods.journal.json"
    assert f.arrivals("c2") == tmp_path / "locust/arrivals-c2.json"


def test_the_listings_find_what_was_written_and_keep_ledgers_apart(tmp_path: Path) -> None:
    f = RunFolder(tmp_path)
    for path in (f.client_ledger("c2"), f.client_ledger("c1"), f.cancel_ledger("c1")):
        append_jsonl(path, {"seq": 1})
    write_jsonl(f.stream("orders:events"), [])
    write_json(f.journal("outage"), {"status": "completed"})
    assert [f.ledger_name(p) for p in f.client_ledgers()] == ["c1", "c2"]
    assert [f.ledger_name(p) for p in f.cancel_ledgers()] == ["c1"]
    assert [name for name, _ in f.streams()] == ["orders:events"]
    assert [f.experiment_of(p) for p in f.journals()] == ["outage"]


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2}\n{"seq": 3, "op')
    lines = read_jsonl(path)
    assert [r["seq"] for r in lines.records] == [1, 2]
    assert (lines.torn, lines.corrupt, lines.unreadable) == (1, [], 1)
    assert lines.notes() == ['x.jsonl: dropped a torn last line (b\'{"seq": 3, "op\')']


def test_a_whole_last_line_without_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2}')
    lines = read_jsonl(path)
    assert [r["seq"] for r in lines.records] == [1, 2]
    assert lines.unreadable == 0 and lines.notes() == []


def test_a_corrupt_line_is_skipped_and_named_never_silently(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2, "op\n\n[1, 2]\n{"seq": 4}\n{"bad\n')
    lines = read_jsonl(path)
    assert [r["seq"] for r in lines.records] == [1, 4]
    assert lines.torn == 0  # the last bad line had its newline: it was written whole
    assert lines.corrupt == [2, 4, 6]
    assert lines.notes() == ["x.jsonl: 3 line(s) not a JSON object (line 2, 4, 6)"]


def test_spans_point_at_each_record_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    data = b'{"a": 1}\n\n{"a": 2}\nnot json\n{"a": 3}\n{"a": 4'
    path.write_bytes(data)
    lines = read_jsonl(path, spans=True)
    starts, ends = lines.spans()
    assert [orjson.loads(data[a:b]) for a, b in zip(starts, ends, strict=True)] == lines.records
    assert [r["a"] for r in lines.records] == [1, 2, 3]
    with pytest.raises(ValueError, match="without spans"):
        read_jsonl(path).spans()


def test_a_missing_file_has_no_records(tmp_path: Path) -> None:
    lines = read_jsonl(tmp_path / "nothing.jsonl")
    assert lines.records == [] and lines.unreadable == 0


def test_a_big_file_is_read_one_record_at_a_time_by_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"run": 1}\nnot json\n\n{"run": 3}\n{"run": 4, "hist')
    seen = JsonLines(path)
    assert list(iter_jsonl(path, seen)) == [{"run": 1}, {"run": 3}]
    assert (seen.torn, seen.corrupt) == (1, [2])
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(b'{"a": 1}\n{"a": 2}')
    assert list(iter_jsonl(plain)) == read_jsonl(plain).records


def test_the_tail_waits_for_a_torn_line_until_it_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    tail = JsonLinesTail()
    assert tail.read_new(path) == []  # no file yet
    append_jsonl(path, {"seq": 1}, fsync=False)
    assert tail.read_new(path) == [{"seq": 1}]
    assert tail.read_new(path) == []
    with path.open("ab") as f:
        f.write(b'{"seq": 2, "op')
    assert tail.read_new(path) == []  # half a line waits for its newline
    with path.open("ab") as f:
        f.write(b'_id": "c1-2"}\nnot json\n{"seq": 3}\n')
    assert tail.read_new(path) == [{"seq": 2, "op_id": "c1-2"}, {"seq": 3}]
    assert tail.corrupt == 1


def test_the_appender_writes_one_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "history" / "faults.jsonl"  # the folder is created
    append_jsonl(path, {"at": 1.5, "when": Path("/x")})  # a value JSON lacks is written as text
    append_jsonl(path, {"at": 2.0})
    assert path.read_bytes() == b'{"at":1.5,"when":"/x"}\n{"at":2.0}\n'


def test_whole_files_are_written_atomically(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "verdict.json"
    write_json(path, {"b": 1, "a": {2: "two"}})
    assert path.read_text() == '{\n  "a": {\n    "2": "two"\n  },\n  "b": 1\n}\n'  # sorted
    assert read_json(path) == {"a": {"2": "two"}, "b": 1}

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_json(path, {"half": True})
    monkeypatch.undo()
    assert read_json(path) == {"a": {"2": "two"}, "b": 1}  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["verdict.json"]  # no temporary left
    write_atomic(tmp_path / "a.txt", "é")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "é"
    assert write_jsonl(tmp_path / "b.jsonl", ({"i": i} for i in range(5)), batch=2) == 5
    assert [r["i"] for r in read_jsonl(tmp_path / "b.jsonl").records] == [0, 1, 2, 3, 4]


def test_a_forgiving_read_of_a_bad_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "torn.json").write_text('{"a": ')
    (tmp_path / "list.json").write_text("[1]")
    assert read_json_or_empty(tmp_path / "torn.json") == {}
    assert read_json_or_empty(tmp_path / "list.json") == {}
    assert read_json_or_empty(tmp_path / "missing.json") == {}
    assert read_json(tmp_path / "missing.json") is None
