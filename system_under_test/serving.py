"""Health endpoints and serving shared by every process of the system.

Replicas of a service share one port (SO_REUSEPORT), as pods share a Service; each replica
may also answer on a port of its own so the platform can check that replica's readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

import redis.exceptions
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from system_under_test.config import Settings

__all__ = [
    "ReadyCheck",
    "add_health_routes",
    "add_redis_error_handlers",
    "bind_socket",
    "health_app",
    "redis_ready",
    "serve",
    "serve_async",
    "serving_stack",
    "uvicorn_config",
]

log = logging.getLogger("serving")

# What SAGAQUAKE_HTTP_LOOP and SAGAQUAKE_HTTP_PARSER may say (uvicorn's own names).
LOOPS = ("auto", "asyncio", "uvloop")
PARSERS = ("auto", "h11", "httptools")

# Returns the names of the dependencies that do not answer (empty when ready).
ReadyCheck = Callable[[], Awaitable[list[str]]]


def add_health_routes(app: FastAPI, ready: ReadyCheck) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            failing = await asyncio.wait_for(ready(), timeout=3)
        except Exception as exc:  # a check that cannot run means not ready
            failing = [f"readiness check failed: {exc}"]
        if failing:
            return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})


def add_redis_error_handlers(app: FastAPI) -> None:
    """A Redis that refuses writes or does not answer is a 503: the caller retries, nothing is lost."""

    @app.exception_handler(redis.exceptions.OutOfMemoryError)
    async def _oom(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"redis refuses writes (out of memory): {exc}"}, status_code=503
        )

    @app.exception_handler(redis.exceptions.RedisError)
    async def _redis(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"redis unavailable: {exc}"}, status_code=503)


async def redis_ready(client: object) -> list[str]:
    try:
        await client.ping()  # type: ignore[attr-defined]
    except Exception as exc:
        return [f"redis: {exc}"]
    return []


def health_app(title: str, ready: ReadyCheck) -> FastAPI:
    """An app with only the health routes, for processes without an API (worker, projection)."""
    app = FastAPI(title=title, openapi_url=None)
    add_health_routes(app, ready)
    return app


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A socket bound to the port (so a port in use fails at once) but not yet listening:
    uvicorn listens only once the app has started, so a restarted replica is handed no
    connection (the kernel shares a SO_REUSEPORT port among listening sockets only) before
    it can answer it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: FastAPI, cfg: Settings, **options: object) -> uvicorn.Config:
    """uvicorn's settings for `app` with the event loop and HTTP parser `cfg` names."""
    if cfg.http_loop not in LOOPS:
        raise SystemExit(f"unknown SAGAQUAKE_HTTP_LOOP {cfg.http_loop!r}: use one of {LOOPS}")
    if cfg.http_parser not in PARSERS:
        raise SystemExit(f"unknown SAGAQUAKE_HTTP_PARSER {cfg.http_parser!r}: use one of {PARSERS}")
    return uvicorn.Config(
        app,
        loop=cfg.http_loop,
        http=cfg.http_parser,
        log_config=None,
        access_log=False,
        **options,  # type: ignore[arg-type]
    )


def serving_stack(config: uvicorn.Config) -> dict[str, str]:
    """The loop and parser uvicorn really runs: "auto" falls back to asyncio and h11 without a
    word when uvloop or httptools is missing, so a service says which it got."""
    if not config.loaded:
        config.load()
    factory = config.get_loop_factory()
    loop = factory.__module__.split(".")[0] if factory else "none"
    parser = config.http_protocol_class.__module__.rsplit(".", 1)[-1].removesuffix("_impl")
    return {"loop": loop, "http": parser}


def serve(app: FastAPI, cfg: Settings) -> None:
    """Serve `app` on the shared service port and, if set, this replica's health port."""
    sockets = []
    if cfg.port:
        sockets.append(bind_socket(cfg.bind_host, cfg.port, reuse_port=True))
    if cfg.health_port:
        sockets.append(bind_socket(cfg.bind_host, cfg.health_port, reuse_port=False))
    if not sockets:
        raise SystemExit("set SAGAQUAKE_PORT (and/or SAGAQUAKE_HEALTH_PORT) to serve")
    config = uvicorn_config(app, cfg, timeout_graceful_shutdown=5, lifespan="on")
    log.info("serving http", extra={"fields": serving_stack(config)})
    uvicorn.Server(config).run(sockets=sockets)


async def serve_async(app: FastAPI, cfg: Settings) -> None:
    """The same, inside a running event loop (the worker runs its health app beside Temporal):
    the loop is the caller's, only the parser is chosen here."""
    if not cfg.health_port:
        return
    sock = bind_socket(cfg.bind_host, cfg.health_port, reuse_port=False)
    config = uvicorn_config(app, cfg, lifespan="off")
    server = uvicorn.Server(config)
    # The process owns SIGTERM/SIGINT (the worker drains on them); a health endpoint must not
    # take them over, as Server.serve would by default.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    await server.serve(sockets=[sock])
