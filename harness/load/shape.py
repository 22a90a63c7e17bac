"""The profile as a Locust `LoadTestShape`: it sizes the user pool; the arrival schedule sets the rate.

`tick()` returns how many users (all processes together) the coming seconds need so that the
open-model rate survives the slowest answers; the pool only grows during a run (stopping a user
mid-request would cut an order short). Once the schedule's duration is over it keeps the pool
until every process has drained its in-flight orders (or the drain time, the longest one order
can take, has passed), then returns None: headless Locust quits, the web UI stops the run.
"""

from __future__ import annotations

import logging

from locust import LoadTestShape
from locust.runners import MasterRunner

from harness.load.arrivals import pool_size
from harness.load.user import active_workers, driver

__all__ = ["ProfileShape"]

logger = logging.getLogger("sagaquake.load")

LOOKAHEAD_S = 5.0  # size the pool for the rate a little ahead of now
MAX_SPAWN_RATE = 100  # users per second and process: faster starves a worker's heartbeats


class ProfileShape(LoadTestShape):
    """Users for the profile named by SAGAQUAKE_PROFILE (see harness.load.settings)."""

    use_common_options = False

    def __init__(self) -> None:
        super().__init__()
        self._users = 0
        self._capped_warned = False

    def reset_time(self) -> None:
        super().reset_time()
        self._users = 0

    def _processes(self) -> int:
        if isinstance(self.runner, MasterRunner):
            d = driver()
            return max(1, len(d.workers) or len(active_workers(self.runner)))
        return 1

    def tick(self) -> tuple[int, float] | None:
        d = driver()
        t = self.get_run_time()
        if t < d.duration_s:
            n = self._processes()
            horizon = d.per_order_s + LOOKAHEAD_S
            needed = pool_size(d.curve, t, horizon, d.per_order_s, share_count=n)
            per_process = min(needed, d.settings.max_users)
            if per_process < needed and not self._capped_warned:
                self._capped_warned = True
                logger.warning(
                    "the pool needs %d users per process but is capped at %d (SAGAQUAKE_MAX_USERS): "
                    "if answers get slow, arrivals will be late (the lag is reported); add --processes",
                    needed,
                    d.settings.max_users,
                )
            self._users = max(self._users, per_process * n)
        elif d.drained() or t >= d.duration_s + d.drain_s:
            return None
        # grow the pool within about a second (an idle user costs little; a missing one, lag)
        return self._users, float(min(max(10, self._users), MAX_SPAWN_RATE * self._processes()))
