"""Which event loop and HTTP parser uvicorn runs a service with (benchmarks/bench_http.py
measured uvloop + httptools against asyncio + h11): what the settings name, what "auto" picks
with uvicorn[standard] installed, and a refusal of names uvicorn does not know."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi import FastAPI

from system_under_test.config import Settings
from system_under_test.serving import serving_stack, uvicorn_config

pytestmark = pytest.mark.unit


def _stack(loop: str, parser: str) -> dict[str, str]:
    cfg = dataclasses.replace(Settings(), http_loop=loop, http_parser=parser)
    return serving_stack(uvicorn_config(FastAPI(), cfg))


@pytest.mark.parametrize(
    ("loop", "parser"), [("asyncio", "h11"), ("uvloop", "httptools"), ("asyncio", "httptools")]
)
def test_the_settings_choose_the_loop_and_parser(loop: str, parser: str) -> None:
    assert _stack(loop, parser) == {"loop": loop, "http": parser}


def test_auto_runs_uvloop_and_httptools_as_uvicorn_standard_installs_them() -> None:
    assert _stack("auto", "auto") == {"loop": "uvloop", "http": "httptools"}


def test_the_defaults_are_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGAQUAKE_HTTP_LOOP", raising=False)
    monkeypatch.delenv("SAGAQUAKE_HTTP_PARSER", raising=False)
    cfg = Settings()
    assert (cfg.http_loop, cfg.http_parser) == ("auto", "auto")


@pytest.mark.parametrize(
    ("loop", "parser", "message"),
    [
        ("tokio", "auto", "unknown SAGAQUAKE_HTTP_LOOP 'tokio'"),
        ("auto", "h2", "unknown SAGAQUAKE_HTTP_PARSER 'h2'"),
    ],
)
def test_an_unknown_loop_or_parser_is_refused_by_name(loop: str, parser: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        _stack(loop, parser)
