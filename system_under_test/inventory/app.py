"""HTTP API of the inventory-service (see docs/api.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from system_under_test.config import Settings
from system_under_test.inventory.stock import Stock, parse_catalogue
from system_under_test.serving import add_health_routes, add_redis_error_handlers, redis_ready
from system_under_test.streams import connect

__all__ = ["create_app"]


class Item(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=100)


class Reservation(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    items: list[Item] = Field(min_length=1, max_length=20)


_SETTLED_STATUS = {"missing": 404, "conflict": 409}


def create_app(cfg: Settings) -> FastAPI:
    client = connect(cfg.redis_url)
    stock = Stock(client)
    catalogue = parse_catalogue(cfg.catalogue)
    seeded = False

    async def ensure_seeded() -> None:
        nonlocal seeded
        if not seeded:
            await stock.seed(catalogue)
            seeded = True

    async def ready() -> list[str]:
        failing = await redis_ready(client)
        if not failing:
            await ensure_seeded()
        return failing

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(Exception):  # Redis not there yet: /readyz seeds once it is
            await ready()
        yield
        await client.aclose()

    app = FastAPI(title="inventory-service", lifespan=lifespan)
    add_health_routes(app, ready)
    add_redis_error_handlers(app)

    @app.post("/reservations", status_code=201)
    async def reserve(body: Reservation) -> JSONResponse:
        await ensure_seeded()
        result = await stock.reserve(body.order_id, [i.model_dump() for i in body.items])
        if result[0] == "rejected":
            return JSONResponse(
                {"state": "rejected", "reason": result[1], "sku": result[2]}, status_code=409
            )
        return JSONResponse({"state": result[0]}, status_code=201)

    async def settle(order_id: str, result: list[str]) -> JSONResponse:
        status = _SETTLED_STATUS.get(result[0], 200)
        body = {"order_id": order_id, "state": result[-1] if status == 409 else result[0]}
        return JSONResponse(body, status_code=status)

    @app.post("/reservations/{order_id}/commit")
    async def commit(order_id: str) -> JSONResponse:
        return await settle(order_id, await stock.commit(order_id))

    @app.post("/reservations/{order_id}/release")
    async def release(order_id: str) -> JSONResponse:
        return await settle(order_id, await stock.release(order_id))

    @app.get("/stock")
    async def levels() -> dict[str, dict[str, int]]:
        return await stock.levels()

    return app
