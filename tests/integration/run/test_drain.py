"""group_backlog against a real redis-server: what the drain waits for must not trust XINFO's
`lag`, which Redis can get wrong (a nightly-size run drained to its deadline on lag 6,643 with
every entry delivered)."""

from __future__ import annotations

import uuid

import pytest
import redis

from harness.chaos.observe import group_backlog

pytestmark = pytest.mark.integration


@pytest.fixture
def r(stack) -> redis.Redis:
    return redis.Redis.from_url(stack.endpoints.redis_url, decode_responses=True)


@pytest.fixture
def stream(r: redis.Redis):
    name = f"test:drain:{uuid.uuid4().hex}"
    yield name
    r.delete(name)


def test_counts_undelivered_and_pending(r: redis.Redis, stream: str) -> None:
    assert group_backlog(r, stream, "g") == -1  # no stream at all: unknown, never "caught up"
    for i in range(5):
        r.xadd(stream, {"n": i})
    assert group_backlog(r, stream, "g") == 5  # no group yet: nobody has read anything
    r.xgroup_create(stream, "g", id="0")
    assert group_backlog(r, stream, "g") == 5
    read = r.xreadgroup("g", "c", {stream: ">"}, count=3)
    assert group_backlog(r, stream, "g") == 5  # 2 undelivered + 3 pending
    r.xack(stream, "g", *(entry_id for entry_id, _ in read[0][1]))
    assert group_backlog(r, stream, "g") == 2
    assert group_backlog(r, stream, "g", cap=1) == 1
    r.xreadgroup("g", "c", {stream: ">"})
    r.xack(stream, "g", *(e for e, _ in r.xrange(stream)))
    assert group_backlog(r, stream, "g") == 0


def test_a_wrong_lag_from_redis_does_not_hold_the_drain(r: redis.Redis, stream: str) -> None:
    for i in range(4):
        r.xadd(stream, {"n": i})
    r.xgroup_create(stream, "g", id="$")
    r.execute_command("XGROUP", "SETID", stream, "g", "$", "ENTRIESREAD", "0")
    lag = next(g for g in r.xinfo_groups(stream) if g["name"] == "g")["lag"]
    assert lag == 4  # what Redis says: the read counter is off, every entry is delivered
    assert group_backlog(r, stream, "g") == 0
