"""HTTP API of the order-service (see docs/api.md).

An order is accepted (202) only once Temporal has durably started its saga. The order id is
derived from the Idempotency-Key, and the workflow id is the order id with REJECT_DUPLICATE
reuse, so a retried request can never start a second saga; the request's fingerprint rides
in the workflow memo to tell a retry (same body: 202 again) from a misuse of the key (409).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import FastAPI, Header, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from system_under_test.config import Settings
from system_under_test.ids import order_id_for
from system_under_test.projection.readmodel import ReadModel
from system_under_test.saga.models import (
    CANCEL_SIGNAL,
    CUSTOMER_CANCELLED,
    WORKFLOW_TYPE,
    LineItem,
    OrderInput,
)
from system_under_test.serving import add_health_routes, add_redis_error_handlers, redis_ready
from system_under_test.streams import connect, now_ms

__all__ = ["OrderRequest", "create_app", "fingerprint"]

log = logging.getLogger("order-service")

STARTUP_CONNECT_S = 5.0

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]


class Item(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=100)


class OrderRequest(BaseModel):
    model_config = {"extra": "forbid"}

    customer_id: str = Field(min_length=1, max_length=64)
    items: list[Item] = Field(min_length=1, max_length=20)
    amount_cents: int = Field(ge=1, le=100_000_000)
    currency: str = Field(pattern="^(EUR|USD|GBP)$")


def fingerprint(body: OrderRequest) -> str:
    return hashlib.sha256(orjson.dumps(body.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Temporal:
    """A client connected on first use, so the service starts (not ready) while Temporal is down."""

    def __init__(self, cfg: Settings) -> None:
        self._cfg = cfg
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await Client.connect(
                        self._cfg.temporal_address, namespace=self._cfg.temporal_namespace
                    )
        return self._client

    async def ready(self) -> list[str]:
        try:
            client = await asyncio.wait_for(self.get(), timeout=2)
            await client.service_client.check_health(timeout=timedelta(seconds=2))
        except Exception as exc:
            return [f"temporal: {exc or type(exc).__name__}"]
        return []


def create_app(cfg: Settings) -> FastAPI:
    redis = connect(cfg.redis_url)
    temporal = _Temporal(cfg)
    read_model = ReadModel(redis)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Connected before the port listens (serving.bind_socket), so a restarted replica's
        # first requests do not wait on the connection; Temporal down: it starts not ready.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(temporal.get(), timeout=STARTUP_CONNECT_S)
        yield
        await redis.aclose()

    app = FastAPI(title="order-service", lifespan=lifespan)

    async def ready() -> list[str]:
        return [*await redis_ready(redis), *await temporal.ready()]

    add_health_routes(app, ready)
    add_redis_error_handlers(app)

    @app.post("/orders", status_code=202)
    async def place_order(body: OrderRequest, key: IdempotencyKey) -> JSONResponse:
        order_id = order_id_for(key)
        print_ = fingerprint(body)
        order = OrderInput(
            order_id=order_id,
            customer_id=body.customer_id,
            items=[LineItem(i.sku, i.qty) for i in body.items],
            amount_cents=body.amount_cents,
            currency=body.currency,
            idempotency_key=key,
            accepted_at_ms=now_ms(),
        )
        try:
            client = await temporal.get()
        except Exception as exc:  # nothing was sent: a definite refusal
            raise HTTPException(
                503, f"temporal is not reachable; nothing was accepted (retry later): {exc}"
            ) from exc
        try:
            await client.start_workflow(
                WORKFLOW_TYPE,
                order,
                id=order_id,
                task_queue=cfg.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                memo={"fingerprint": print_},
            )
        except WorkflowAlreadyStartedError:
            return await _duplicate(client, order_id, print_)
        except Exception as exc:
            # The start may have landed before the error (a deadline, a dropped connection):
            # we cannot say no, so we say we do not know; a retry with the same key will tell.
            log.warning(
                "temporal start failed; outcome unknown",
                extra={"fields": {"order_id": order_id, "error": str(exc)}},
            )
            raise HTTPException(
                504,
                f"the order may or may not be accepted (retry with the same Idempotency-Key): {exc}",
            ) from exc
        return JSONResponse(
            {"order_id": order_id, "status": "accepted", "duplicate": False}, status_code=202
        )

    async def _duplicate(client: Client, order_id: str, print_: str) -> JSONResponse:
        try:
            described = await client.get_workflow_handle(order_id).describe()
            earlier = await described.memo_value("fingerprint", "")
        except Exception as exc:
            raise HTTPException(503, f"could not read the earlier order {order_id}: {exc}") from exc
        if earlier != print_:
            raise HTTPException(
                409, f"idempotency key already used for order {order_id} with a different body"
            )
        return JSONResponse(
            {"order_id": order_id, "status": "accepted", "duplicate": True}, status_code=202
        )

    @app.post("/orders/{order_id}/cancel", status_code=202)
    async def cancel_order(order_id: OrderId) -> JSONResponse:
        """The customer cancels: 202 once the saga has the request (it honours it until the
        stock is committed; GET /orders/{id} tells how it ended), 404 for no such order, 409
        when the order has already finished."""
        try:
            client = await temporal.get()
        except Exception as exc:  # nothing was sent: a definite refusal
            raise HTTPException(
                503, f"temporal is not reachable; nothing was sent (retry later): {exc}"
            ) from exc
        handle = client.get_workflow_handle(order_id)
        try:
            await handle.signal(CANCEL_SIGNAL, CUSTOMER_CANCELLED)
        except Exception as exc:
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
                await _not_running(client, order_id)  # raises 404 or 409
            raise HTTPException(
                504, f"the cancel may or may not have reached the order (retry): {exc}"
            ) from exc
        return JSONResponse({"order_id": order_id, "status": "cancel requested"}, status_code=202)

    async def _not_running(client: Client, order_id: str) -> None:
        """Why a signal found no running saga: 404 (none) or 409 (finished)."""
        try:
            described = await client.get_workflow_handle(order_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, f"no order {order_id!r}") from exc
            raise HTTPException(503, f"could not read order {order_id}: {exc}") from exc
        state = described.status.name.lower() if described.status else "finished"
        raise HTTPException(
            409, f"order {order_id} has already finished ({state}): too late to cancel"
        )

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        view = await read_model.get(order_id)
        if not view:
            raise HTTPException(404, f"order {order_id!r} not found in the read model (yet)")
        return view

    return app
