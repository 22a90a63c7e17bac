"""render_report: degrades instead of crashing, and gives the same bytes every time."""

from __future__ import annotations

import shutil

import pytest

from harness.report import ReportError, render_report
from harness.report.__main__ import main

pytestmark = pytest.mark.unit


def _outputs(paths):
    return [paths.html.read_bytes(), paths.summary.read_bytes(), paths.junit.read_bytes()]


def test_rendering_twice_gives_identical_files(run_folder):
    first = _outputs(render_report(run_folder.run_dir))
    second = _outputs(render_report(run_folder.run_dir))
    assert first == second


def test_same_run_elsewhere_gives_identical_files(run_folder, make_run_folder):
    other = make_run_folder(root="elsewhere")
    assert _outputs(render_report(run_folder.run_dir)) == _outputs(render_report(other.run_dir))


def test_interrupted_run_without_verdict_or_ledger(make_run_folder):
    layout = make_run_folder(verdict=False, ledger=False, journals=False, incomplete=True)
    paths = render_report(layout.run_dir)
    page = paths.html.read_text()
    assert paths.status == "INCOMPLETE"
    assert '<header class="banner incomplete">' in page
    assert 'class="interrupted"' in page
    assert "no verdict.json in the run folder: run <code>sagaquake verify 2025" in page
    assert "no client ledger (history/ledger/client-*.jsonl): load never ran" in page
    assert "no Chaos Toolkit journal (chaos/*.journal.json)" in page
    assert "no journal chaos/kill-payment-pods.journal.json" in page
    assert page.count("data:image/png;base64,") == 2  # throughput and time to terminal remain


def test_a_folder_that_is_no_run_folder_is_refused_and_left_as_it_was(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ReportError, match="is not a run folder"):
        render_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_run_folder_with_nothing_in_its_history_renders(tmp_path):
    (tmp_path / "history").mkdir()
    paths = render_report(tmp_path)
    page = paths.html.read_text()
    assert paths.status == "INCOMPLETE"
    assert "no run.json in the run folder" in page
    assert "nothing to plot" in page


def test_torn_lines_are_skipped_and_said(run_folder):
    stream = run_folder.run_dir / "history" / "streams" / "orders.events.jsonl"
    with stream.open("a") as f:
        f.write('{"id": "1763769999999-0", "fields": {"ty')
    page = render_report(run_folder.run_dir).html.read_text()
    assert "1 unreadable stream line(s) skipped" in page


def test_missing_folder_is_a_harness_error(tmp_path):
    with pytest.raises(ReportError, match=r"^no run folder at '.*nope': pass a folder under"):
        render_report(tmp_path / "nope")


def test_main(run_folder, capsys, tmp_path):
    assert main([str(run_folder.run_dir)]) == 0
    assert capsys.readouterr().out.startswith("FAIL: no_lost_order violated by 3 orders")
    assert main([str(run_folder.run_dir), "--strict"]) == 1
    assert main([str(tmp_path / "nope")]) == 3
    shutil.rmtree(tmp_path / "nope", ignore_errors=True)


@pytest.mark.parametrize(
    "damage",
    [
        "history/streams/orders.events.jsonl",
        "history/faults.jsonl",
        "run.json",
        "chaos",
        "history/ledger",
    ],
)
def test_any_missing_piece_degrades(run_folder, damage):
    target = run_folder.run_dir / damage
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    paths = render_report(run_folder.run_dir)
    assert paths.status == "FAIL"  # the verdict still stands
    assert '<p class="note">' in paths.html.read_text()


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("verdict.json", "{not json"),
        ("verdict.json", "[1, 2]"),
        ("run.json", '"a string"'),
        ("chaos/kill-payment-pods.journal.json", "{torn"),
        ("history/ledger/client-c1.jsonl", ""),
        ("history/ledger/client-c2.jsonl", '{"sent_at": "x"}\n[1]\n'),
        ("history/faults.jsonl", '{"experiment": "x"}\n'),
    ],
)
def test_malformed_files_do_not_crash(run_folder, path, content):
    (run_folder.run_dir / path).write_text(content)
    paths = render_report(run_folder.run_dir)
    assert paths.html.read_text().startswith("<!DOCTYPE html>")
