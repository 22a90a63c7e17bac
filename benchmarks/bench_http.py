"""HTTP stack: what uvloop + httptools save a service, and what aiohttp saves the saga worker.

Why: every order costs five HTTP calls from the saga worker and their answers from the services
(docs/performance.md, figure 1: about 25 CPU ms per order in the worker and 14.5 in the
services), on two cores where CPU is the ceiling. Two choices shape that cost, each measured
against the other side held fixed, interleaved in one run, median of `--repeat` (3):

- **server**: the real payment-service (`python -m system_under_test.payment`, its Lua ledger on
  a real redis-server started on a free port), once with uvicorn on asyncio + h11 and once on
  uvloop + httptools (SAGAQUAKE_HTTP_LOOP / SAGAQUAKE_HTTP_PARSER; each process's own log line
  says what it really runs), driven by one fixed client (aiohttp, `--concurrency` requests in
  flight). Figure: the service's CPU ms per request (psutil), and requests/s.
- **client**: httpx.AsyncClient against aiohttp.ClientSession, set up as the saga worker sets up
  its client (`--concurrency` requests in flight, a keep-alive pool of that size, the worker's
  time-out), against one fixed server (the payment-service on uvloop + httptools). Figure: the
  client's CPU ms per request (getrusage of this process), and requests/s. Also with only
  `--low-concurrency` (10) requests in flight through the same pool: the worker's usual load
  between backlogs.

Each request is a charge the saga makes (a new order id and Idempotency-Key each time), its JSON
answer read and decoded. Also reported: what uvicorn's "auto" picks in this environment.

    .venv/bin/python benchmarks/bench_http.py              # 10 s a run, median of 3: ~5 minutes
    .venv/bin/python benchmarks/bench_http.py --quick      # 2 s a run, once
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common
from benchmarks.common import (
    Bench,
    console,
    headline,
    median,
    print_table,
    start_redis,
    stop_process,
    wait_answering,
)
from harness.settings import free_port
from system_under_test.saga.activities import http_session

__all__ = ["SERVER_VARIANTS", "drive", "main"]

ROOT = Path(__file__).resolve().parents[1]
# name → (SAGAQUAKE_HTTP_LOOP, SAGAQUAKE_HTTP_PARSER)
SERVER_VARIANTS = {"asyncio+h11": ("asyncio", "h11"), "uvloop+httptools": ("uvloop", "httptools")}
CLIENTS = ("httpx", "aiohttp")
FIXED_CLIENT = "aiohttp"
FIXED_SERVER = "uvloop+httptools"

# One request: (url, JSON body, Idempotency-Key) → (status, decoded JSON answer).
Post = Callable[[str, dict[str, Any], str], Awaitable[tuple[int, Any]]]


def _httpx_client(concurrency: int, timeout_s: float) -> AbstractAsyncContextManager[Post]:
    """httpx as the saga worker had it set up (before issue 17)."""

    class _Client:
        async def __aenter__(self) -> Post:
            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            self._client = httpx.AsyncClient(timeout=timeout_s, limits=limits)

            async def post(url: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
                answer = await self._client.post(url, json=body, headers={"Idempotency-Key": key})
                return answer.status_code, answer.json()

            return post

        async def __aexit__(self, *_: object) -> None:
            await self._client.aclose()

    return _Client()


def _aiohttp_client(concurrency: int, timeout_s: float) -> AbstractAsyncContextManager[Post]:
    """aiohttp as the saga worker sets it up now (the same pool size and time-out)."""

    class _Client:
        async def __aenter__(self) -> Post:
            self._session = http_session(timeout_s, concurrency)

            async def post(url: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
                headers = {"Content-Type": "application/json", "Idempotency-Key": key}
                async with self._session.post(url, data=orjson.dumps(body), headers=headers) as a:
                    return a.status, orjson.loads(await a.read())

            return post

        async def __aexit__(self, *_: object) -> None:
            await self._session.close()

    return _Client()


_CLIENT_FACTORIES = {"httpx": _httpx_client, "aiohttp": _aiohttp_client}


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


async def drive(
    client: str,
    base_url: str,
    server: psutil.Process,
    *,
    concurrency: int,
    pool_size: int,
    warmup_s: float,
    duration_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """`concurrency` charges in flight through a pool of `pool_size` connections for
    `warmup_s` (pool filled, not counted), then for
    `duration_s`: requests/s, CPU ms per request of this process and of `server`, latencies."""
    url = f"{base_url}/charges"
    measuring = False
    stop_at = time.monotonic() + warmup_s
    latencies: list[float] = []
    errors = 0

    async def one_user(post: Post) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            order_id = uuid.uuid4().hex
            body = {
                "order_id": order_id,
                "customer_id": "bench",
                "amount_cents": 1999,
                "currency": "EUR",
            }
            started = time.perf_counter()
            try:
                status, answer = await post(url, body, f"{order_id}:charge")
            except (httpx.HTTPError, aiohttp.ClientError, TimeoutError):
                errors += measuring
                continue
            if measuring:
                latencies.append(time.perf_counter() - started)
                errors += status not in (201, 402) or "payment_id" not in answer

    async with _CLIENT_FACTORIES[client](pool_size, timeout_s) as post:
        await asyncio.gather(*(one_user(post) for _ in range(concurrency)))  # warm-up
        measuring = True
        stop_at = time.monotonic() + duration_s
        cpu0, server0, wall0 = _own_cpu_s(), _proc_cpu_s(server), time.perf_counter()
        await asyncio.gather(*(one_user(post) for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
        client_cpu, server_cpu = _own_cpu_s() - cpu0, _proc_cpu_s(server) - server0
    done = len(latencies)
    latencies.sort()
    return {
        "requests": done,
        "errors": errors,
        "wall_s": wall,
        "requests_per_s": done / wall,
        "client_cpu_ms_per_request": 1000 * client_cpu / max(done, 1),
        "server_cpu_ms_per_request": 1000 * server_cpu / max(done, 1),
        "latency_p50_ms": 1000 * latencies[done // 2] if done else None,
        "latency_p99_ms": 1000 * latencies[int(done * 0.99)] if done else None,
    }


# -- the payment-service, as a real process ---------------------------------------------------


def _service_env(redis_url: str, port: int, loop: str | None, parser: str | None) -> dict[str, str]:
    env = {**os.environ, "SAGAQUAKE_REDIS_URL": redis_url, "SAGAQUAKE_PORT": str(port)}
    env["SAGAQUAKE_LOG_LEVEL"] = "INFO"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for name, value in (("SAGAQUAKE_HTTP_LOOP", loop), ("SAGAQUAKE_HTTP_PARSER", parser)):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_payment(
    redis_url: str, loop: str, parser: str, log: Path
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """The payment-service on a free port, once it answers /readyz; and the loop and parser its
    own start-up log line says it runs."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "system_under_test.payment"],
            env=_service_env(redis_url, port, loop, parser), cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_answering(
        proc, answers, 60,
        exited=lambda: f"the payment-service ({loop}, {parser}) exited:\n{log.read_text()}",
        late=f"the payment-service ({loop}, {parser}) was not ready in 60 s",
    )  # fmt: skip
    return proc, url, _stack_from_log(log)


def _stack_from_log(log: Path) -> dict[str, str]:
    for line in log.read_text().splitlines():
        if '"serving http"' in line:
            entry = json.loads(line)
            return {"loop": entry["loop"], "http": entry["http"]}
    raise SystemExit(f"no 'serving http' line in {log}")


def auto_stack(redis_url: str) -> dict[str, str]:
    """What uvicorn's "auto" resolves to for a service in this environment."""
    code = (
        "import json; from fastapi import FastAPI; from system_under_test.config import Settings;"
        "from system_under_test.serving import serving_stack, uvicorn_config;"
        "print(json.dumps(serving_stack(uvicorn_config(FastAPI(), Settings()))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_service_env(redis_url, 0, None, None), cwd=ROOT,
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- the run ----------------------------------------------------------------------------------


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
    return {k: median(r[k] for r in runs) for k in keys} | {"runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_common_args(parser)
    parser.add_argument("--repeat", type=int, default=None, help="runs per variant (3; quick 1)")
    parser.add_argument("--duration-s", type=float, default=None, help="per run (10; quick 2)")
    parser.add_argument("--warmup-s", type=float, default=None, help="per run (2; quick 0.5)")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="requests in flight and pool size (100)"
    )
    parser.add_argument(
        "--low-concurrency", type=int, default=10, help="the clients' second run (10 in flight)"
    )
    parser.add_argument("--timeout-s", type=float, default=5.0, help="client time-out (5)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    duration_s = args.duration_s or (2.0 if args.quick else 10.0)
    warmup_s = args.warmup_s or (0.5 if args.quick else 2.0)
    bench = Bench("http", args.quick, args.out)
    bench.settings = {
        "repeat": repeat, "duration_s": duration_s, "warmup_s": warmup_s,
        "concurrency": args.concurrency, "low_concurrency": args.low_concurrency,
        "pool_size": args.concurrency, "timeout_s": args.timeout_s,
        "fixed_client": FIXED_CLIENT, "fixed_server": FIXED_SERVER,
    }  # fmt: skip
    run = dict(pool_size=args.concurrency, warmup_s=warmup_s, duration_s=duration_s)
    run["timeout_s"] = args.timeout_s
    levels = (args.concurrency, args.low_concurrency)
    clients = [(name, level) for level in levels for name in CLIENTS]
    folder = Path(tempfile.mkdtemp(prefix="sagaquake-bench-http-"))
    started: list[subprocess.Popen[Any]] = []
    try:
        redis_proc, redis_url = start_redis(folder)
        started.append(redis_proc)
        auto = auto_stack(redis_url)
        servers: dict[str, tuple[str, psutil.Process, dict[str, str]]] = {}
        for name, (loop, http) in SERVER_VARIANTS.items():
            proc, url, stack = start_payment(redis_url, loop, http, folder / f"{name}.log")
            started.append(proc)
            if stack != {"loop": loop, "http": http}:
                raise SystemExit(f"the {name} service runs {stack}: install uvicorn[standard]")
            servers[name] = (url, psutil.Process(proc.pid), stack)
        console.print(f"uvicorn 'auto' here runs: loop {auto['loop']}, http {auto['http']}")
        server_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        client_runs: dict[str, list[dict[str, Any]]] = {_key(*c): [] for c in clients}
        for i in range(repeat):
            bench.quiet(f"repeat {i + 1}")
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            for name in order:
                url, proc, _ = servers[name]
                result = asyncio.run(
                    drive(FIXED_CLIENT, url, proc, concurrency=args.concurrency, **run)
                )
                server_runs[name].append(result)
                console.print(f"  server {name}: {_line(result)}")
            for name, level in clients if i % 2 == 0 else reversed(clients):
                url, proc, _ = servers[FIXED_SERVER]
                result = asyncio.run(drive(name, url, proc, concurrency=level, **run))
                client_runs[_key(name, level)].append(result)
                console.print(f"  client {_key(name, level)}: {_line(result)}")
    finally:
        with common.shielded():
            for proc in reversed(started):
                stop_process(proc)
    servers_m = {name: _medians(runs) for name, runs in server_runs.items()}
    clients_m = {name: _medians(runs) for name, runs in client_runs.items()}
    return _report(bench, auto, servers_m, clients_m, levels)


def _key(client: str, concurrency: int) -> str:
    return f"{client}, {concurrency} in flight"


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['requests_per_s']:.0f} req/s, server {r['server_cpu_ms_per_request']:.2f} ms, "
        f"client {r['client_cpu_ms_per_request']:.2f} ms CPU per request, "
        f"p50 {r['latency_p50_ms']:.1f} ms, {r['errors']} errors"
    )


_COLUMNS = (
    "requests/s", "server CPU ms/req", "client CPU ms/req", "p50 ms", "p99 ms", "errors",
)  # fmt: skip


def _row(name: str, m: dict[str, Any]) -> list[Any]:
    return [
        name, m["requests_per_s"], m["server_cpu_ms_per_request"], m["client_cpu_ms_per_request"],
        m["latency_p50_ms"], m["latency_p99_ms"], m["errors"],
    ]  # fmt: skip


def _report(
    bench: Bench,
    auto: dict[str, str],
    servers: dict[str, dict[str, Any]],
    clients: dict[str, dict[str, Any]],
    levels: tuple[int, int],
) -> int:
    print_table(
        f"payment-service under uvicorn, client {FIXED_CLIENT} (medians)",
        ["server", *_COLUMNS], [_row(n, m) for n, m in servers.items()],
    )  # fmt: skip
    print_table(
        f"client, against the payment-service on {FIXED_SERVER} (medians)",
        ["client", *_COLUMNS], [_row(n, m) for n, m in clients.items()],
    )  # fmt: skip
    slow, fast = servers["asyncio+h11"], servers["uvloop+httptools"]
    rows = [
        headline(
            "service CPU ms/request, uvloop+httptools", fast["server_cpu_ms_per_request"], "ms",
            "asyncio+h11", slow["server_cpu_ms_per_request"],
        ),
        headline(
            "service requests/s, uvloop+httptools", fast["requests_per_s"], "req/s",
            "asyncio+h11", slow["requests_per_s"],
        ),
    ]  # fmt: skip
    for level in levels:
        fast, slow = clients[_key("aiohttp", level)], clients[_key("httpx", level)]
        rows += [
            headline(
                f"client CPU ms/request, aiohttp, {level} in flight",
                fast["client_cpu_ms_per_request"], "ms", "httpx", slow["client_cpu_ms_per_request"],
            ),
            headline(
                f"client requests/s, aiohttp, {level} in flight", fast["requests_per_s"], "req/s",
                "httpx", slow["requests_per_s"],
            ),
        ]  # fmt: skip
    bench.finish(
        {"uvicorn_auto": auto, "servers": servers, "clients": clients},
        rows,
        {
            "server_cpu_ms_per_request": "psutil CPU time (user + system) of the service process over the measured window, per answered request",
            "client_cpu_ms_per_request": "getrusage(RUSAGE_SELF) of the benchmark process (the client, all its threads) over the window, per answered request",
            "requests_per_s": "answered requests (201 or 402 with a payment id) / wall seconds of the window",
            "errors": "transport errors, time-outs and unexpected answers in the window",
        },
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
