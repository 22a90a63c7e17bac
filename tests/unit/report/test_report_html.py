"""report.html: verdict first, every invariant, links to Temporal, charts inline, no network."""

from __future__ import annotations

import json
import re

import pytest

from harness.report import render_report

pytestmark = pytest.mark.unit

TEMPORAL_UI = "http://127.0.0.1:18233"


@pytest.fixture
def page(rendered) -> str:
    return rendered[1].html.read_text()


def test_verdict_line_comes_first(page):
    banner = re.search(r'<header class="banner (\w+)">(.*?)</header>', page, re.S)
    assert banner, "no verdict banner"
    assert banner.group(1) == "fail"
    assert page.index("<header") < page.index('id="invariants"')
    text = re.sub(r"<[^>]+>", " ", banner.group(2))
    assert "FAIL" in text
    assert "no_lost_order violated by 3 orders" in text
    assert "max_recovery_time_s = 14.2, needs &lt; 12" in text
    assert "could not check temporal_agrees" in text


def test_every_invariant_and_threshold_is_named(page, rendered):
    verdict = json.loads((rendered[0].run_dir / "verdict.json").read_text())
    gate = json.loads((rendered[0].run_dir / "gate.json").read_text())
    for inv in verdict["invariants"]:
        assert f"<b>{inv['name']}</b>" in page
    for t in gate["thresholds"]:
        assert t["name"] in page


def test_counterexamples_link_to_the_temporal_ui(page, rendered):
    for order_id in rendered[0].lost + rendered[0].stuck:
        href = f'href="{TEMPORAL_UI}/namespaces/default/workflows/{order_id}"'
        assert href in page


def test_faults_are_labelled_and_charts_embedded(page):
    assert "#0 kill-payment-pods" in page
    assert "#1 redis-memory-pressure" in page
    assert page.count('src="data:image/png;base64,') == 3


def test_page_is_self_contained(page):
    urls = re.findall(r"https?://[^\s\"'<>]*", page)
    assert urls, "expected the Temporal UI links"
    assert all(u.startswith(TEMPORAL_UI + "/namespaces/") for u in urls), urls
    assert "<script" not in page
    assert "<link" not in page
    assert not re.search(r'src="(?!data:)', page)


def test_sections_present(page):
    for anchor in (
        "invariants",
        "thresholds",
        "timeline",
        "ttt",
        "outcomes",
        "experiments",
        "environment",
        "files",
    ):
        assert f'<section id="{anchor}">' in page
    assert "DEVIATED" in page  # the redis experiment's steady state did not hold after
    assert "/ 100 resilience" in page
    assert "accepted, never placed" in page
    assert "chaostoolkit-lib" in page and "1.44.0" in page  # versions
    assert "cores <b>8</b>" in page
    assert "9.8 s" in page and "14.2 s" in page  # recovery times from verdict.json
    assert 'href="locust/report.html"' in page
    assert "platform/supervisord.conf" not in page


def test_values_from_the_folder_are_escaped(run_folder):
    path = run_folder.run_dir / "verdict.json"
    verdict = json.loads(path.read_text())
    verdict["invariants"][0]["counterexamples"][0]["why"] = "<script>alert(1)</script>"
    path.write_text(json.dumps(verdict))
    page = render_report(run_folder.run_dir).html.read_text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_temporal_ui_order_ids_are_plain(run_folder):
    path = run_folder.run_dir / "run.json"
    run = json.loads(path.read_text())
    del run["endpoints"]
    path.write_text(json.dumps(run))
    page = render_report(run_folder.run_dir).html.read_text()
    assert f"<code>{run_folder.lost[0]}</code>" in page
    assert "http://" not in page and "https://" not in page


def test_incomplete_run_shows_a_banner(make_run_folder):
    layout = make_run_folder(incomplete=True)
    page = render_report(layout.run_dir).html.read_text()
    assert 'class="interrupted"' in page
    assert "INCOMPLETE" in page
    # a failed invariant still outranks the interruption in the verdict line
    assert '<header class="banner fail">' in page


def test_passing_run_is_green(run_folder):
    path = run_folder.run_dir / "verdict.json"
    verdict = json.loads(path.read_text())
    for inv in verdict["invariants"]:
        inv.update(status="pass", counterexamples=[])
        inv["counts"]["violations"] = 0
    verdict["ok"] = True
    path.write_text(json.dumps(verdict))
    gate_path = run_folder.run_dir / "gate.json"
    gate = json.loads(gate_path.read_text())
    for t in gate["thresholds"]:
        t["ok"] = True
    gate.update(status="pass", exit_code=0, verdict="pass")
    gate_path.write_text(json.dumps(gate))
    paths = render_report(run_folder.run_dir)
    page = paths.html.read_text()
    assert paths.status == "PASS"
    assert '<header class="banner pass">' in page
    assert "all 7 invariants hold · 3 thresholds met · 2 faults injected" in page
