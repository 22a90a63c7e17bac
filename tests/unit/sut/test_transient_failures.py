"""What the saga's activities count as an outage of a service (retried, logged in one line):
aiohttp's transport errors and every kind of time-out, since a time-out is ambiguous and its
retry carries the same Idempotency-Key; business answers and programming errors are not."""

from __future__ import annotations

import pytest
from aiohttp import (
    ClientConnectionResetError,
    ClientOSError,
    ClientPayloadError,
    ConnectionTimeoutError,
    InvalidURL,
    ServerDisconnectedError,
    SocketTimeoutError,
)
from temporalio.exceptions import ApplicationError

from system_under_test.saga.activities import TRANSIENT_FAILURES, Answer, ServiceUnavailable

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "error",
    [
        ServiceUnavailable("payment answered 503"),
        ClientOSError(111, "Connect call failed"),  # refused
        ClientConnectionResetError("reset by peer"),
        ServerDisconnectedError(),  # killed mid-request
        ClientPayloadError("response payload is not completed"),
        ConnectionTimeoutError("connection timeout"),
        SocketTimeoutError("timeout on reading data from socket"),  # a hung service
        TimeoutError(),  # waiting for a free connection of the pool
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_and_time_outs_are_transient(error: BaseException) -> None:
    assert isinstance(error, TRANSIENT_FAILURES)


@pytest.mark.parametrize(
    "error",
    [ApplicationError("declined", non_retryable=True), KeyError("payment_id"), InvalidURL("x")],
    ids=lambda e: type(e).__name__,
)
def test_business_answers_and_bugs_are_not(error: BaseException) -> None:
    assert not isinstance(error, TRANSIENT_FAILURES)


def test_an_answer_reads_its_json_body() -> None:
    answer = Answer("http://payment/charges", 402, '{"status":"declined","reason":"card"}')
    assert answer.json() == {"status": "declined", "reason": "card"}
