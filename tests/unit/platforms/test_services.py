"""The service names the platforms share (harness/platforms/base.py) agree with what each runs."""

from __future__ import annotations

import pytest

from harness.platforms.base import HTTP_SERVICES, SERVICES
from harness.platforms.local_config import PORT_FIELDS

pytestmark = pytest.mark.unit


def test_http_services_are_services() -> None:
    assert set(HTTP_SERVICES) <= set(SERVICES)


def test_the_local_platform_gives_each_http_service_a_port_and_no_other_python_service() -> None:
    assert set(PORT_FIELDS) - {"redis", "temporal"} == set(HTTP_SERVICES)
