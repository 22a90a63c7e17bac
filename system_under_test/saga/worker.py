"""The saga worker process: runs OrderSaga and ReprocessOrders (system_under_test/reprocess) and
their activities on the `order-saga` task queue.

Started with `python -m system_under_test.saga.worker`. It waits for Temporal instead of crashing
when the server is down (a restarting server must not turn into a crash loop of workers), and
serves /healthz, /readyz and /version on SAGAQUAKE_HEALTH_PORT.

SAGAQUAKE_SAGA_VERSION says which version of the saga it runs (docs/system.md): the patches of
that version are the ones it activates for new decisions, and its Temporal identity
(`<pid>@<host> saga-v<version>`, recorded in every workflow task it completes) says so.
With SAGAQUAKE_WORKER_DEPLOYMENT set it is also a versioned worker of that Temporal Worker
Deployment, as its version `saga-v<version>` (`build_id`), and the sagas it starts are PINNED to it:
they run to the end on that version's workers, whatever the deployment's current version becomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import PatchActivationInput, Worker, WorkerDeploymentConfig

from system_under_test.config import Settings, settings
from system_under_test.logs import setup_logging
from system_under_test.reprocess.activities import ReprocessActivities
from system_under_test.reprocess.workflows import ReprocessOrders
from system_under_test.saga.activities import TRANSIENT_FAILURES, SagaActivities, http_session
from system_under_test.saga.workflows import OrderSaga, patches_for
from system_under_test.serving import health_app, redis_ready, serve_async
from system_under_test.streams import EventAppender, connect

__all__ = [
    "build_id",
    "connect_temporal",
    "deployment_config",
    "identity",
    "main",
    "run_worker",
    "version_info",
]

log = logging.getLogger("saga-worker")


async def connect_temporal(cfg: Settings, attempts: int = 0) -> Client:
    """Connect, retrying every second (forever when attempts == 0)."""
    tried = 0
    while True:
        try:
            return await Client.connect(cfg.temporal_address, namespace=cfg.temporal_namespace)
        except Exception as exc:
            tried += 1
            if attempts and tried >= attempts:
                raise
            log.warning("temporal not reachable; retrying", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(1)


def identity(cfg: Settings) -> str:
    """This worker's Temporal identity: the default `<pid>@<host>`, plus the saga version."""
    return f"{os.getpid()}@{socket.gethostname()} saga-v{cfg.saga_version}"


def build_id(cfg: Settings) -> str:
    """The Worker Deployment Version's build id of this worker: its saga version."""
    return f"saga-v{cfg.saga_version}"


def deployment_config(cfg: Settings) -> WorkerDeploymentConfig | None:
    """Versioned (PINNED by default) when SAGAQUAKE_WORKER_DEPLOYMENT names a deployment."""
    if not cfg.worker_deployment:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(cfg.worker_deployment, build_id(cfg)),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


def version_info(cfg: Settings) -> dict[str, Any]:
    """What GET /version answers: the saga version this process runs, its patches and, when
    versioned, its Worker Deployment Version."""
    return {
        "saga_version": cfg.saga_version,
        "patches": sorted(patches_for(cfg.saga_version)),
        "identity": identity(cfg),
        "pid": os.getpid(),
        "deployment": cfg.worker_deployment or None,
        "build_id": build_id(cfg) if cfg.worker_deployment else None,
    }


async def run_worker(cfg: Settings, stop: asyncio.Event) -> None:
    active = patches_for(cfg.saga_version)  # an unknown version stops the worker here

    def activate(patch: PatchActivationInput) -> bool:
        return patch.patch_id in active

    redis = connect(cfg.redis_url)
    async with http_session(cfg.http_timeout_s, cfg.worker_concurrency) as http:
        activities = SagaActivities(
            http,
            EventAppender(redis),
            redis,
            cfg.payment_url,
            cfg.inventory_url,
            cfg.notification_url,
            cfg.fraud_limit_cents,
        )
        running = asyncio.Event()

        async def ready() -> list[str]:
            failing = await redis_ready(redis)
            if not running.is_set():
                failing.append("worker not polling yet (waiting for temporal)")
            return failing

        # Health first: a worker waiting for Temporal is alive, just not ready.
        app = health_app("saga-worker", ready)
        app.add_api_route("/version", lambda: version_info(cfg), methods=["GET"])
        health = asyncio.create_task(serve_async(app, cfg))
        client = await connect_temporal(cfg)
        worker = Worker(
            client,
            task_queue=cfg.task_queue,
            workflows=[OrderSaga, ReprocessOrders],
            activities=activities.all() + ReprocessActivities(redis).all(),
            max_concurrent_activities=cfg.worker_concurrency,
            max_concurrent_local_activities=cfg.worker_concurrency,
            max_concurrent_workflow_tasks=cfg.worker_concurrency,
            # only the steps that wait are regular activities: this paces them, not the sagas
            max_task_queue_activities_per_second=cfg.waiting_steps_per_s or None,
            graceful_shutdown_timeout=timedelta(seconds=5),
            identity=identity(cfg),
            patch_activation_callback=activate,
            deployment_config=deployment_config(cfg),
        )
        async with worker:
            running.set()
            log.info(
                "worker polling",
                extra={"fields": {"task_queue": cfg.task_queue, **version_info(cfg)}},
            )
            await stop.wait()
        health.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await health
    await redis.aclose()


def main() -> None:
    cfg = settings()
    # A cancelled activity is one line too: a local attempt cut at the saga's LOCAL_BUDGET (a hung
    # service) or the worker shutting down, neither a bug.
    setup_logging(
        "saga-worker", cfg.log_level, transient=(*TRANSIENT_FAILURES, asyncio.CancelledError)
    )

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(cfg, stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
