"""A rate limit shared by a fleet of processes through Redis: how exact, and what it costs.

Against a local ``redis-server`` (started here, on a free port) and the
benchmark's HTTP server:

* accuracy: ``processes`` child processes, each with one client of its own (and
  a ``RedisStore`` of its own, as real workers would have), flood the server for
  ``seconds`` with ``threads`` threads (sync) or ``tasks`` tasks (async), all
  sharing one limit of ``rate`` requests per second (a token bucket with
  ``burst_size=1``, so no burst is expected in any second). Each request's
  departure is noted where it leaves the client (a counting transport beneath
  the limiter), on the wall clock every process shares. Reported: the aggregate
  rate over the run against the limit (goal: within 5%), and the densest
  one-second window of departures (goal: never over the limit), and how often
  a process lost the store (a call outlasting ``STORE_TIMEOUT``) and used its
  own limit meanwhile.
* cost: one thread (or task) sends requests back to back under a limit far
  above what it can reach, with the local limiter and with the shared one in
  turns: the requests per second of each and the latency the shared limiter
  adds to each request (one Redis round trip: one script call).

Run alone: ``uv run python -m benchmarks.fleet [--full]``; ``python -m benchmarks``
runs it too (the small case unless ``--full``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

import buttress


@dataclass(frozen=True)
class Shape:
    """One accuracy run: how many processes, how many workers each, what limit, how long."""

    kind: str  # "sync" (threads) or "async" (tasks)
    processes: int
    workers: int
    rate: int
    seconds: float


QUICK = (Shape("sync", 2, 4, 50, 3.0), Shape("async", 2, 20, 50, 3.0))
FULL = (Shape("sync", 4, 8, 200, 10.0), Shape("async", 4, 100, 200, 10.0))
QUICK_COST_REQUESTS = 200  # per round
FULL_COST_REQUESTS = 1_000
ROUNDS = 7
# Longer than the default (0.05 s): on a machine busy with other work a call can stall
# that long, and each process would then fall back to its own limit for a while.
STORE_TIMEOUT = 0.25
LEAD = 0.5  # seconds between telling the ready children the start time and the start


@dataclass(frozen=True)
class Accuracy:
    """What one accuracy run measured."""

    shape: Shape
    sent: int  # requests that left within the run
    aggregate: float  # requests per second over the run
    densest: int  # most departures in any one second
    outages: int  # times a process lost the store (and used its own limit meanwhile)

    @property
    def error(self) -> float:
        return self.aggregate / self.shape.rate - 1


@dataclass(frozen=True)
class Cost:
    """Back-to-back requests, one thread, under a limit they never reach."""

    kind: str
    local_rate: float
    shared_rate: float

    @property
    def added_ms(self) -> float:
        """Milliseconds the shared limiter adds to each request."""
        return (1 / self.shared_rate - 1 / self.local_rate) * 1000


@dataclass(frozen=True)
class FleetResult:
    accuracy: list[Accuracy]
    costs: list[Cost]


# -- a redis-server of our own ------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server on a free port (its URL), or ``None`` when none is installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


# -- one process of the fleet -----------------------------------------------------------


class Departures(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network, noting when each request leaves (wall clock: shared by the processes)."""

    def __init__(self, inner: httpx.HTTPTransport | httpx.AsyncHTTPTransport) -> None:
        self.inner = inner
        self.times: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.time())
        assert isinstance(self.inner, httpx.HTTPTransport)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.time())
        assert isinstance(self.inner, httpx.AsyncHTTPTransport)
        return await self.inner.handle_async_request(request)


def _limit(rate: int, redis_url: str | None, namespace: str) -> buttress.RateLimitConfig:
    store = None
    if redis_url is not None:
        store = buttress.RedisStore(redis_url, namespace=namespace, timeout=STORE_TIMEOUT)
    return buttress.RateLimitConfig(
        max_requests=rate, burst_size=1, queue_timeout=None, store=store
    )


def _ready() -> float:
    """Tell the parent this process is ready; the common start time it answers (wall clock)."""
    print("ready", flush=True)
    return float(sys.stdin.readline())


class _Outages(logging.Handler):
    """Counts the store's WARNINGs: each is an outage, with this process on its own limit."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _member(shape: Shape, url: str, redis_url: str, namespace: str) -> None:
    """One process: flood ``url`` from the common start for the run; print departures as JSON."""
    limit = _limit(shape.rate, redis_url, namespace)
    outages = _Outages()
    logging.getLogger("buttress.store").addHandler(outages)
    if shape.kind == "sync":
        network = Departures(httpx.HTTPTransport())
        with buttress.Client(transport=network, rate_limit=limit, retry=False) as client:
            start = _ready()
            end = start + shape.seconds

            def worker() -> None:
                while time.time() < end:
                    client.get(url)

            time.sleep(max(0.0, start - time.time()))
            threads = [threading.Thread(target=worker) for _ in range(shape.workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    else:
        network = Departures(httpx.AsyncHTTPTransport())

        async def flood() -> None:
            async with buttress.AsyncClient(
                transport=network, rate_limit=limit, retry=False
            ) as client:
                start = await asyncio.to_thread(_ready)
                end = start + shape.seconds

                async def worker() -> None:
                    while time.time() < end:
                        await client.get(url)

                await asyncio.sleep(max(0.0, start - time.time()))
                await asyncio.gather(*(worker() for _ in range(shape.workers)))

        asyncio.run(flood())
    print(json.dumps({"times": network.times, "outages": outages.count}), flush=True)


def _densest(times: list[float]) -> int:
    """The most departures within any one second (a window starting at each departure)."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def accuracy(shape: Shape, url: str, redis_url: str) -> Accuracy:
    """Run ``shape.processes`` children sharing one limit; what left, and how densely."""
    namespace = f"bench-{secrets.token_hex(4)}"
    argv = [shape.kind, str(shape.processes), str(shape.workers), str(shape.rate)]
    argv += [str(shape.seconds), url, redis_url, namespace]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fleet", "--child", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(shape.processes)
    ]
    for child in children:  # each has imported everything and made its client
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a process of the fleet failed to start")
    start = time.time() + LEAD
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start!r}\n")
        child.stdin.flush()
    times: list[float] = []
    outages = 0
    for child in children:
        out, _ = child.communicate(timeout=shape.seconds + 120)
        report = json.loads(out)
        times += report["times"]
        outages += report["outages"]
    times = sorted(t for t in times if start <= t < start + shape.seconds)
    return Accuracy(shape, len(times), len(times) / shape.seconds, _densest(times), outages)


def cost(kind: str, url: str, redis_url: str, requests: int) -> Cost:
    """Back-to-back requests under a limit never reached: local and shared limiter in turns.

    The two clients take turns, ``ROUNDS`` times, so a noisy neighbour on the
    machine hits both alike; each rate is the median of its rounds.
    """
    limits = [
        _limit(1_000_000, store, f"cost-{secrets.token_hex(4)}") for store in (None, redis_url)
    ]
    rates: list[list[float]] = [[], []]
    if kind == "sync":
        clients = [buttress.Client(rate_limit=limit, retry=False) for limit in limits]
        for client in clients:
            client.get(url)  # connect (and load the script) before timing
        for _ in range(ROUNDS):
            for client, measured in zip(clients, rates, strict=True):
                began = time.perf_counter()
                for _ in range(requests):
                    client.get(url)
                measured.append(requests / (time.perf_counter() - began))
        for client in clients:
            client.close()
    else:

        async def turns() -> None:
            clients = [buttress.AsyncClient(rate_limit=limit, retry=False) for limit in limits]
            for client in clients:
                await client.get(url)
            for _ in range(ROUNDS):
                for client, measured in zip(clients, rates, strict=True):
                    began = time.perf_counter()
                    for _ in range(requests):
                        await client.get(url)
                    measured.append(requests / (time.perf_counter() - began))
            for client in clients:
                await client.aclose()

        asyncio.run(turns())
    return Cost(kind, statistics.median(rates[0]), statistics.median(rates[1]))


def measure(url: str, *, full: bool = False) -> FleetResult | None:
    """Every fleet figure against ``url``; ``None`` when no redis-server is installed."""
    with redis_server() as redis_url:
        if redis_url is None:
            return None
        shapes = FULL if full else QUICK
        requests = FULL_COST_REQUESTS if full else QUICK_COST_REQUESTS
        runs = [accuracy(shape, url, redis_url) for shape in shapes]
        costs = [cost(kind, url, redis_url, requests) for kind in ("sync", "async")]
    return FleetResult(runs, costs)


def report(result: FleetResult | None) -> list[str]:
    """The fleet tables, in markdown."""
    if result is None:
        return ["redis-server is not installed: the fleet case was not run."]
    lines = [
        "| processes x workers | limit/s | seconds | sent | aggregate/s | vs limit "
        "| densest second | store outages |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result.accuracy:
        shape = run.shape
        unit = "threads" if shape.kind == "sync" else "tasks"
        lines.append(
            f"| {shape.processes} x {shape.workers} {unit} | {shape.rate} | {shape.seconds:g} "
            f"| {run.sent} | {run.aggregate:.1f} | {run.error:+.1%} | {run.densest} "
            f"| {run.outages} |"
        )
    lines += [
        "",
        "| one client, back to back | local limiter req/s | shared limiter req/s "
        "| added per request |",
        "|---|---:|---:|---:|",
    ]
    for item in result.costs:
        lines.append(
            f"| {item.kind} | {item.local_rate:,.0f} | {item.shared_rate:,.0f} "
            f"| {item.added_ms:.2f} ms |"
        )
    return lines


def targets(result: FleetResult | None) -> list[tuple[str, list[float], str]]:
    """Rows for the targets table: aggregate within 5% of the limit, no second over it.

    Each shape runs once, so each row has one figure.
    """
    rows: list[tuple[str, list[float], str]] = []
    for run in [] if result is None else result.accuracy:
        shape = run.shape
        name = f"fleet {shape.processes}x{shape.workers} {shape.kind}"
        aggregate = [run.aggregate / shape.rate]
        rows.append((f"{name}: aggregate / limit", aggregate, ">= 0.95"))
        rows.append((f"{name}: aggregate / limit", aggregate, "<= 1.05"))
        rows.append((f"{name}: densest second / limit", [run.densest / shape.rate], "<= 1.0"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--full", action="store_true", help="4 processes sharing 200/s for 10 s")
    parser.add_argument("--child", nargs=8, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, processes, workers, rate, seconds, url, redis_url, namespace = args.child
        shape = Shape(kind, int(processes), int(workers), int(rate), float(seconds))
        _member(shape, url, redis_url, namespace)
        os._exit(0)
    from .cases import quiet_logging
    from .server import Server

    quiet_logging()
    with Server("auto") as server:
        result = measure(server.url, full=args.full)
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
