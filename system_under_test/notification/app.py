"""HTTP API of the notification-service (see docs/api.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from system_under_test.config import Settings
from system_under_test.notification.outbox import Outbox, listen_live
from system_under_test.serving import add_health_routes, add_redis_error_handlers, redis_ready
from system_under_test.streams import connect

__all__ = ["create_app"]


class Confirmation(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(gt=0, le=100_000_000)


def create_app(cfg: Settings) -> FastAPI:
    client = connect(cfg.redis_url)
    # pub/sub holds its connection open with no traffic: no read time-out on it.
    listener_client = client.__class__.from_url(cfg.redis_url, decode_responses=True)
    outbox = Outbox(client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        listener = asyncio.create_task(listen_live(listener_client))
        yield
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await client.aclose()
        await listener_client.aclose()

    app = FastAPI(title="notification-service", lifespan=lifespan)
    add_health_routes(app, lambda: redis_ready(client))
    add_redis_error_handlers(app)

    @app.post("/confirmations", status_code=201)
    async def confirm(body: Confirmation) -> JSONResponse:
        notification_id, created = await outbox.send_confirmation(
            body.order_id, body.customer_id, body.amount_cents
        )
        return JSONResponse(
            {"notification_id": notification_id, "duplicate": not created},
            status_code=201 if created else 200,
        )

    @app.get("/stats")
    async def stats() -> dict[str, int]:
        return await outbox.stats()

    return app
