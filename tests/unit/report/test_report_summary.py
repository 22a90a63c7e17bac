"""summary.md: what a CI job summary shows."""

from __future__ import annotations

import pytest

from harness.report import render_report

pytestmark = pytest.mark.unit


def test_summary_contents(rendered):
    run_folder, paths = rendered
    text = paths.summary.read_text()
    first = text.splitlines()[0]
    assert first.startswith("## ❌ FAIL: no_lost_order violated by 3 orders")
    assert "| ❌ | **no_lost_order** | 552 | 3 |" in text
    assert "| ⚠️ | **temporal_agrees** |" in text
    assert "| ❌ | `max_recovery_time_s` | 14.2 | < 12 |" in text
    link = f"[`{run_folder.lost[0]}`](http://127.0.0.1:18233/namespaces/default/workflows/"
    assert link in text
    assert "### Key metrics" in text
    assert "| 552 | 552 | 506 | 43 | 3 |" in text
    assert (
        "| #0 kill-payment-pods | kill_replicas → payment-service | t+1:00 | 0.4 s | yes | 9.8 s |"
        in text
    )


def test_summary_of_an_interrupted_unverified_run(make_run_folder):
    layout = make_run_folder(verdict=False, ledger=False, incomplete=True)
    text = render_report(layout.run_dir).summary.read_text()
    assert text.startswith(
        "## ⏸️ INCOMPLETE: no verdict.json: the run was interrupted, so nothing was checked"
    )
    assert "> [!WARNING]" in text
    assert "_No verdict.json: run `sagaquake verify <run-folder>`._" in text
