"""The system's order ids as the harness knows them: the identifiers of docs/events.md.

An order's id follows from the idempotency key of its request, so a client (the load
generator's ledger) and the verifier can name the order of any request without asking the
system. Written out here by the harness, not imported from `system_under_test` (as
harness/keys.py is for Redis keys): a wrong rule in the system must be caught, not shared.
tests/unit/test_ids.py holds the two equal.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

__all__ = ["order_id_for", "order_ids_for"]

_NAMESPACE = uuid.NAMESPACE_URL.bytes


def order_id_for(idempotency_key: str) -> str:
    """The order id the order-service gives the request carrying this idempotency key:
    `"ord-" + uuid5(NAMESPACE_URL, "sagaquake:" + key).hex[:24]`."""
    return order_ids_for((idempotency_key,))[0]


def order_ids_for(keys: Iterable[str]) -> list[str]:
    """`order_id_for` of many keys: the same uuid5, built from the SHA-1 digest directly
    (~3x faster than `uuid.uuid5`, no UUID objects), for histories of millions of lines."""
    sha1 = hashlib.sha1
    out = []
    for key in keys:
        digest = bytearray(sha1(_NAMESPACE + b"sagaquake:" + key.encode()).digest()[:12])
        digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
        digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
        out.append("ord-" + digest.hex())
    return out
