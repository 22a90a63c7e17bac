"""HTTP API of the payment-service (see docs/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from system_under_test.config import Settings
from system_under_test.payment.ledger import ChargeRequest, PaymentLedger
from system_under_test.serving import add_health_routes, add_redis_error_handlers, redis_ready
from system_under_test.streams import connect

__all__ = ["create_app"]

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


class Charge(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(gt=0, le=100_000_000)
    currency: str = Field(pattern="^(EUR|USD|GBP)$")


class Refund(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    payment_id: str = Field(min_length=1, max_length=64)


def create_app(cfg: Settings) -> FastAPI:
    client = connect(cfg.redis_url)
    ledger = PaymentLedger(client, cfg.decline_rate)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="payment-service", lifespan=lifespan)
    add_health_routes(app, lambda: redis_ready(client))
    add_redis_error_handlers(app)

    @app.post("/charges", status_code=201)
    async def charge(body: Charge, key: IdempotencyKey) -> JSONResponse:
        result = await ledger.charge(
            ChargeRequest(key, body.order_id, body.customer_id, body.amount_cents, body.currency)
        )
        return JSONResponse(result, status_code=201 if result["status"] == "captured" else 402)

    @app.post("/refunds", status_code=201)
    async def refund(body: Refund, key: IdempotencyKey) -> JSONResponse:
        result = await ledger.refund(key, body.order_id, body.payment_id)
        return JSONResponse(result, status_code=404 if result["status"] == "not_found" else 201)

    return app
