"""`python -m system_under_test.projection`: run the read-model consumer (health on SAGAQUAKE_HEALTH_PORT)."""

import asyncio
import contextlib
import os
import signal
import socket

from system_under_test.config import settings
from system_under_test.logs import setup_logging
from system_under_test.projection.consumer import Projection
from system_under_test.serving import health_app, redis_ready, serve_async
from system_under_test.streams import connect


async def _main() -> None:
    cfg = settings()
    setup_logging("projection", cfg.log_level)
    # No client retries: a retried `XREADGROUP >` whose first reply was lost skips the entries
    # it delivered; on any error `Projection.run` re-reads its own pending list instead.
    client = connect(cfg.redis_url, retries=0)
    # Stable per replica: a restarted consumer finds its own pending entries again.
    consumer = os.environ.get("SAGAQUAKE_CONSUMER_NAME") or socket.gethostname()
    projection = Projection(
        client, consumer, int(cfg.reclaim_idle_s * 1000), linger_s=cfg.projection_linger_s
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health = asyncio.create_task(
        serve_async(health_app("projection", lambda: redis_ready(client)), cfg)
    )
    await projection.run(stop)
    health.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await health
    await client.aclose()


asyncio.run(_main())
