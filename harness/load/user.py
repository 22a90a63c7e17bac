"""The Locust side of a load run: the order-placing user and the per-process arrival driver.

Imported only by the locustfile (it imports Locust, which monkey-patches with gevent; never import
Temporal here). One `LoadDriver` per process holds the profile, the arrival schedule of this
process, the lag statistics and the client ledger. Users claim arrivals from it in `wait_time`
(so a user waiting for its slot is in Locust's WAITING state and stops at once), and send them in
their task, retries included, writing one ledger line per attempt.

Distributed runs (`--processes N`): on test start the master sends every worker a plan (common
start time, idempotency-key prefix, the ordered list of workers); worker i of N then sends the
arrivals k ≡ i (mod N). Workers report progress to the master with their stats reports, which
the shape uses to end the run once every worker has drained.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import time
from typing import Any

import gevent
import gevent.pool
import locust.stats
import orjson
from locust import FastHttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

from harness.load.arrivals import Arrival, ArrivalSchedule, ArrivalStats
from harness.load.ledger import CancelLedger, ClientLedger, classify
from harness.load.orders import OrderFactory
from harness.load.profile_loader import load_profile, parse_hour
from harness.load.settings import LoadSettings
from harness.runs import RunFolder

__all__ = ["LoadDriver", "OrderUser", "driver"]

logger = logging.getLogger("sagaquake.load")

PLAN_MESSAGE = "sagaquake_plan"
IDLE_POLL_S = 1.0
WORKER_START_DELAY_S = 3.0
_ACTIVE_WORKER_STATES = ("ready", "spawning", "running")


class LoadDriver:
    """Everything one Locust process shares between its users."""

    def __init__(self, settings: LoadSettings) -> None:
        self.settings = settings
        self.profile = load_profile(settings.profile)
        self.compress = settings.compress or self.profile.compress
        self.start_hour = (
            parse_hour(settings.start_hour) if settings.start_hour else self.profile.start_hour
        )
        self.curve = self.profile.curve(self.compress, self.start_hour)
        self.duration_s = settings.duration_s or self.profile.full_day_s(self.compress)
        self.mode = settings.arrivals or self.profile.arrivals
        self.retry = self.profile.retry
        self.per_order_s = self.retry.worst_case_s
        self.drain_s = self.per_order_s + 5.0
        self.factory = OrderFactory(self.profile.order_mix, settings.seed)
        self.schedule: ArrivalSchedule | None = None
        self.t0: float | None = None
        self.ended_at: float | None = None  # when the run stopped (its end, or Ctrl-C)
        self.nonce = ""
        self.share = (0, 1)
        self.workers: list[str] = []  # master: the plan's workers, in share order
        self.worker_reports: dict[str, dict[str, Any]] = {}
        self.stats = ArrivalStats()
        self.in_flight = 0
        self.ops = 0
        self.ledger: ClientLedger | None = None
        self.cancels: CancelLedger | None = None
        self.name: str | None = None
        self.patience = self.profile.patience
        self.patience_wall_s = self.patience.after_s / self.compress
        self.waiting_customers = gevent.pool.Group()  # impatient customers, until they look

    # --- the plan of one run ---------------------------------------------------------------

    def begin(self, t0: float, nonce: str, share: tuple[int, int] | None) -> None:
        """Start a new schedule (each test start; the web UI can start several runs)."""
        self.t0, self.nonce = t0, nonce
        self.ended_at = None
        self.stats = ArrivalStats()
        if share is None:
            self.schedule = None
            return
        self.share = share
        self.schedule = ArrivalSchedule(
            self.curve, self.duration_s, self.mode, self.settings.seed, share
        )
        logger.info(
            "arrivals: %s %s at %sx from %02d:%02d for %.0f s, share %d/%d, %.0f orders expected in all",
            self.profile.name,
            self.mode,
            f"{self.compress:g}",
            int(self.start_hour),
            int(self.start_hour % 1 * 60),
            self.duration_s,
            share[0] + 1,
            share[1],
            self.schedule.total_expected,
        )

    def claim(self) -> Arrival | None:
        if self.schedule is None:
            return None
        arrival = self.schedule.next()
        if arrival is not None:
            self.stats.claimed += 1
        return arrival

    def due_at(self, arrival: Arrival) -> float:
        return (self.t0 or 0.0) + arrival.t_s

    def done(self) -> bool:
        """Every arrival of this process was sent and answered (or given up on)."""
        s = self.schedule
        return bool(
            s and s.exhausted and self.stats.claimed == self.stats.sent and self.in_flight == 0
        )

    def report(self) -> dict[str, Any]:
        return {
            "t0": self.t0,
            "done": self.done(),
            "in_flight": self.in_flight,
            **self.stats.summary(),
        }

    def drained(self) -> bool:
        """Local: this process is done. Master: every worker of the plan reported done."""
        if not self.workers:
            return self.done()
        reports = [self.worker_reports.get(w) or {} for w in self.workers]
        return all(r.get("done") and r.get("t0") == self.t0 for r in reports)

    # --- the ledger ---------------------------------------------------------------------------

    def open_ledger(self, name: str) -> ClientLedger:
        if self.ledger is None:
            self.ledger = ClientLedger.create(
                self.settings.run_dir, name, self.settings.ledger_fsync_every
            )
            self.name = self.ledger.name
            logger.info("client ledger: %s", self.ledger.path)
        return self.ledger

    def cancel_ledger(self) -> CancelLedger:
        if self.cancels is None:
            name = self.name or "c1"
            self.cancels = CancelLedger.create(
                self.settings.run_dir, name, self.settings.ledger_fsync_every
            )
        return self.cancels

    def impatient(self, k: int) -> bool:
        """Whether the customer of arrival `k` cancels an order still unfinished after
        patience: the same customers for the same seed, whichever process sends them."""
        share = self.patience.cancel_share
        return share > 0 and random.Random(f"cancel:{self.settings.seed}:{k}").random() < share

    def write_summary(self) -> None:
        """`locust/arrivals-<name>.json`: this process's schedule and lag (read by the runner)."""
        if self.name is None or self.schedule is None:
            return
        path = RunFolder(self.settings.run_dir).arrivals(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "profile": self.profile.name,
            "compress": self.compress,
            "start_hour": self.start_hour,
            "duration_s": self.duration_s,
            "arrivals": self.mode,
            "seed": self.settings.seed,
            "share": list(self.share),
            "t0": self.t0,
            "ended_at": self.ended_at,
            "expected_all": self.schedule.total_expected,
            "in_flight": self.in_flight,
            **self.stats.summary(),
        }
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


_DRIVER: LoadDriver | None = None


def driver() -> LoadDriver:
    """This process's driver, built from the environment on first use."""
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = LoadDriver(LoadSettings.from_env())
    return _DRIVER


def active_workers(runner: MasterRunner) -> list[str]:
    """The workers the master hands users to, in a stable order."""
    ids = [c.id for c in runner.clients.values() if c.state in _ACTIVE_WORKER_STATES]
    return sorted(ids, key=runner.get_worker_index)


# --- Locust events -------------------------------------------------------------------------------


@events.init.add_listener
def _on_init(environment, **_kw) -> None:
    runner = environment.runner
    d = driver()
    if isinstance(runner, WorkerRunner):

        def on_plan(environment, msg, **_kw) -> None:
            plan = msg.data
            me = environment.runner.client_id
            workers = plan["workers"]
            share = (workers.index(me), len(workers)) if me in workers else None
            if share is None:
                logger.warning("this worker joined after the start: it sends no arrivals this run")
            d.begin(plan["t0"], plan["nonce"], share)

        runner.register_message(PLAN_MESSAGE, on_plan)

        @environment.events.report_to_master.add_listener
        def _report(client_id, data, **_kw) -> None:
            data["sagaquake"] = d.report()

    elif isinstance(runner, MasterRunner):

        @environment.events.worker_report.add_listener
        def _collect(client_id, data, **_kw) -> None:
            if "sagaquake" in data:
                d.worker_reports[client_id] = data["sagaquake"]


@events.test_start.add_listener
def _on_test_start(environment, **_kw) -> None:
    runner = environment.runner
    d = driver()
    t0, nonce = time.time(), "sq" + secrets.token_hex(5)
    if isinstance(runner, MasterRunner):
        # the workers get their users a second or so after this: start the schedule after that,
        # or the first arrivals of every run would be late
        t0 += WORKER_START_DELAY_S
        d.workers = active_workers(runner)
        d.worker_reports.clear()
        d.t0 = t0
        runner.send_message(PLAN_MESSAGE, {"t0": t0, "nonce": nonce, "workers": d.workers})
    elif isinstance(runner, WorkerRunner):
        d.open_ledger(f"c{runner.worker_index + 1}")
    else:
        d.open_ledger("c1")
        d.begin(t0, nonce, (0, 1))


@events.test_stop.add_listener
def _on_test_stop(environment, **_kw) -> None:
    d = driver()
    if d.ended_at is None:
        d.ended_at = time.time()
    d.waiting_customers.kill(block=False)  # the run is over: nobody looks any more
    d.write_summary()


@events.quitting.add_listener
def _on_quitting(environment, **_kw) -> None:
    """Let Locust's CSV writer write once more after the last request: it rewrites the files
    every CSV_STATS_INTERVAL_SEC and not at exit, so requests of the run's last second (an
    impatient customer's cancel) were missing from `stats_stats.csv` but in the ledger."""
    options = environment.parsed_options
    if options is not None and getattr(options, "csv_prefix", None):
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.25)


@events.quit.add_listener
def _on_quit(**_kw) -> None:
    d = driver()
    d.write_summary()
    for ledger in (d.ledger, d.cancels):
        if ledger is not None:
            ledger.close()


# --- the user ------------------------------------------------------------------------------------


class OrderUser(FastHttpUser):
    """A customer placing one order per claimed arrival, retrying lost answers with the same key."""

    host = driver().settings.order_api
    network_timeout = driver().retry.timeout_s
    connection_timeout = driver().retry.timeout_s
    max_retries = 0  # a hidden retry would be a request missing from the ledger
    # a new connection per order, as separate customers have: no stale keep-alive connection
    # (closed by the server while idle) can turn into a spurious "unknown"
    default_headers = {"Connection": "close"}

    _arrival: Arrival | None = None

    def __init__(self, environment) -> None:
        super().__init__(environment)
        # no cookie jar: the order API sets no cookies, and one user serves many customers, so
        # a jar could only carry one customer's session into another's request; it also costs
        # two CookieJar passes per request (about a tenth of the client's CPU per order)
        self.client.cookiejar = None  # type: ignore[assignment]
        self.client.client.cookiejar = None

    def wait_time(self) -> float:
        d = driver()
        self._arrival = d.claim()
        if self._arrival is None:
            return IDLE_POLL_S
        return max(0.0, d.due_at(self._arrival) - time.time())

    @task
    def place_order(self) -> None:
        arrival, self._arrival = self._arrival, None
        if arrival is None:
            return
        d = driver()
        d.stats.record(time.time() - d.due_at(arrival))
        ledger = d.ledger or d.open_ledger("c1")
        d.ops += 1
        op = {
            "op_id": f"{ledger.name}-{d.ops}",
            "key": f"{d.nonce}-{arrival.k:08d}",
            "order": d.factory.order(arrival.k),
        }
        rng: random.Random | None = None  # seeded on the first backoff: most orders need none
        retry = d.retry
        d.in_flight += 1
        try:
            for attempt in range(1, retry.max_attempts + 1):
                outcome, status = self._attempt(ledger, op, attempt)
                if outcome == "ok" and d.impatient(arrival.k):
                    d.waiting_customers.add(
                        gevent.spawn_later(
                            d.patience_wall_s, self._look_and_cancel, op.get("order_id")
                        )
                    )
                if outcome == "ok" or (outcome == "failed" and status not in retry.retry_on_status):
                    return
                if attempt < retry.max_attempts:
                    rng = rng or random.Random(f"backoff:{d.settings.seed}:{arrival.k}")
                    gevent.sleep(retry.backoff(attempt) * (1.0 - retry.jitter * rng.random()))
        finally:
            d.in_flight -= 1

    def _attempt(self, ledger: ClientLedger, op: dict, attempt: int) -> tuple[str, int | None]:
        order = op["order"]
        line = {
            "op_id": op["op_id"],
            "idempotency_key": op["key"],
            "customer_id": order.customer_id,
            "amount_cents": order.amount_cents,
            "currency": order.currency,
            "items": len(order.items),
            "attempt": attempt,
        }
        sent_at = time.time()
        recorded = False

        def record(**fields: Any) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                ledger.record(**line, sent_at=sent_at, answered_at=time.time(), **fields)

        try:
            with self.client.post(
                "/orders",
                json=order.body(),
                headers={"Idempotency-Key": op["key"]},
                name="POST /orders" if attempt == 1 else "POST /orders (retry)",
                catch_response=True,
            ) as resp:
                status = resp.status_code or None
                err = getattr(resp, "error", None)
                body: Any = None
                if status:
                    try:
                        body = orjson.loads(resp.content or b"null")
                    except Exception:  # not JSON, or the body was cut off
                        body = None
                outcome = classify(status, body)
                error = None
                if outcome != "ok":
                    error = _detail(body, status) if status else _describe(err)
                ok_body = outcome == "ok" and isinstance(body, dict)
                if ok_body:
                    op["order_id"] = body.get("order_id")
                record(
                    status=status,
                    outcome=outcome,
                    error=error,
                    order_id=body.get("order_id") if ok_body else None,
                )
                if outcome == "ok":
                    resp.success()
                else:
                    resp.failure(f"{outcome}: {error}")
                return outcome, status
        except Exception as exc:  # the client itself failed: the request may or may not have left
            logger.exception("order request raised")
            record(status=None, outcome="unknown", error=f"{type(exc).__name__}: {exc}")
            return "unknown", None
        except BaseException as exc:  # stopped (GreenletExit) or interrupted mid-request
            stopped = f"load generator stopped mid-request ({type(exc).__name__})"
            record(status=None, outcome="unknown", error=stopped)
            raise

    def _look_and_cancel(self, order_id: str | None) -> None:
        """An impatient customer, `patience.after_s` after the order was accepted: looks at it
        (GET /orders/{id}) and cancels it unless it has finished. Every cancel is recorded in
        the cancel ledger, answered or not."""
        if not order_id:
            return
        d = driver()
        with self.client.get(
            f"/orders/{order_id}", name="GET /orders/{id}", catch_response=True
        ) as resp:
            seen = _json(resp).get("status") if resp.status_code == 200 else None
            resp.success()  # 404: not in the read model yet, which is an answer too
        if seen in FINISHED:
            return
        sent_at = time.time()
        try:
            with self.client.post(
                f"/orders/{order_id}/cancel",
                name="POST /orders/{id}/cancel",
                catch_response=True,
            ) as resp:
                status = resp.status_code or None
                body = _json(resp)
                outcome = classify(status, body if status else None)
                error = (
                    None
                    if outcome == "ok"
                    else (
                        _detail(body, status) if status else _describe(getattr(resp, "error", None))
                    )
                )
                if outcome == "ok" or status == 409:  # 409: it finished meanwhile
                    resp.success()
                else:
                    resp.failure(f"{outcome}: {error}")
        except Exception as exc:  # the client itself failed: the cancel may have left
            status, outcome, error = None, "unknown", f"{type(exc).__name__}: {exc}"
        d.cancel_ledger().record(
            order_id=order_id,
            seen_status=seen,
            sent_at=sent_at,
            answered_at=time.time(),
            status=status,
            outcome=outcome,
            error=error,
        )


FINISHED = ("completed", "cancelled")


def _json(resp: Any) -> dict[str, Any]:
    try:
        body = orjson.loads(resp.content or b"null")
    except Exception:  # not JSON, or the body was cut off
        return {}
    return body if isinstance(body, dict) else {}


def _describe(err: BaseException | None) -> str:
    """The client-side reason an attempt got no answer ("timed out", "connection refused" …)."""
    if err is None:
        return "no answer"
    text = str(err)
    inner = re.search(r"original=(.+)$", text)  # geventhttpclient wraps the socket error
    return inner.group(1) if inner else f"{type(err).__name__}: {text}"


def _detail(body: Any, status: int | None) -> str:
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        text = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
        return f"http {status}: {text[:300]}"
    return f"http {status}" if status else "no answer"
