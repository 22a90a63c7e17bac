"""Fixtures for the report tests: synthetic run folders from runfolder.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.report import runfolder


@pytest.fixture
def run_folder(tmp_path: Path):
    """A complete nightly run: two experiments, one failing invariant, one missed threshold."""
    return runfolder.make_run_folder(tmp_path)


@pytest.fixture
def make_run_folder(tmp_path: Path):
    """The builder itself, for variants (no verdict, no ledger, incomplete...)."""

    def make(root: str = "variant", **kwargs):
        return runfolder.make_run_folder(tmp_path / root, **kwargs)

    return make


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The nightly run folder rendered once, for tests that only read the outputs."""
    from harness.report import render_report

    layout = runfolder.make_run_folder(tmp_path_factory.mktemp("rendered"))
    return layout, render_report(layout.run_dir)
