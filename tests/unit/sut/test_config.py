"""The system's settings come from the environment, read when asked for."""

from __future__ import annotations

import pytest

from system_under_test.config import settings
from system_under_test.projection.consumer import LINGER_S

pytestmark = pytest.mark.unit


def test_the_projection_linger_defaults_to_the_consumers_and_follows_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAGAQUAKE_PROJECTION_LINGER_S", raising=False)
    assert settings().projection_linger_s == LINGER_S
    monkeypatch.setenv("SAGAQUAKE_PROJECTION_LINGER_S", "0.25")
    assert settings().projection_linger_s == 0.25
