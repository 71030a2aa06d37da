"""How buttress scales with the work (``python -m benchmarks`` runs this in its full set).

* Concurrency: buttress's full stack on one ``AsyncClient`` with 1, 10, 100 and
  1,000 tasks, and on one ``Client`` with 1, 8 and 32 threads: requests per
  second (median of the windows) and the resident memory the client and its
  workers added, each in a fresh interpreter.
* Hosts: one client with a per-host circuit breaker, a per-host rate limit and
  the retry budget sends one request to each of 10,000 hosts (an in-process
  origin, no network): the memory its per-host state holds, the cost of a
  request with 10 and with 10,000 hosts known, and the memory once the hosts
  have been idle for a minute (a fake clock passes it).
* Cache entries: the cost of a hit through ``CacheTransport`` with 10, 1,000 and
  100,000 entries stored, for ``MemoryCache`` and ``DiskCache``, and the cost of
  a store that evicts, once full.

``python -m benchmarks.scaling`` runs the last two parts alone (no server needed).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from hishel import Headers, Request

import buttress
from buttress.cache import CacheBackend, CacheConfig, DiskCache, MemoryCache
from buttress.policies._idle import IDLE_AFTER
from buttress.testing import FakeClock
from buttress.transports import CacheTransport

__all__ = ["measure", "report"]

TASKS = (1, 10, 100, 1000)
THREADS = (1, 8, 32)
HOSTS = 10_000
ENTRIES = (10, 1_000, 100_000)
BUSY = "http://busy.example/"
BODY = b'{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}' * 4


@dataclass(frozen=True)
class Load:
    """One concurrency level: requests per second (median of windows), MiB of RSS added."""

    kind: str  # "tasks" or "threads"
    workers: int
    rate: float
    added_mib: float | None


@dataclass(frozen=True)
class Hosts:
    """Per-host state for ``hosts`` hosts: bytes held, microseconds per request."""

    hosts: int
    held_mib: float
    after_idle_mib: float
    kept_after_idle: int
    request_us_few: float
    request_us_many: float
    request_us_few_no_gc: float
    request_us_many_no_gc: float


@dataclass(frozen=True)
class CacheCost:
    """Microseconds per hit, and per store that evicts, with ``entries`` stored."""

    backend: str
    entries: int
    hit_us: float
    evicting_store_us: float


# -- concurrency: each level in a fresh interpreter ---------------------------------------------


def _rss_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _load_child(
    kind: str, workers: int, url: str, warmup: float, window: float, rounds: int
) -> Load:
    from .cases import full_stack
    from .run import _sync_window

    before = _rss_mib()
    rates: list[float] = []
    if kind == "threads":
        client = buttress.Client(**full_stack())
        _sync_window(lambda: client.get(url), workers, warmup, 0)
        for _ in range(rounds):
            done, elapsed, _ = _sync_window(lambda: client.get(url), workers, 0.1, window)
            rates.append(done / elapsed)
    else:

        async def run() -> None:
            client = buttress.AsyncClient(**full_stack())
            done = 0

            async def worker() -> None:
                nonlocal done
                while True:
                    await client.get(url)
                    done += 1

            tasks = [asyncio.create_task(worker()) for _ in range(workers)]
            await asyncio.sleep(warmup)
            for _ in range(rounds):
                count, start = done, time.perf_counter()
                await asyncio.sleep(window)
                rates.append((done - count) / (time.perf_counter() - start))
            del tasks  # the child exits instead of cancelling a thousand requests

        asyncio.run(run())
    after = _rss_mib()
    added = None if before is None or after is None else after - before
    return Load(kind, workers, statistics.median(rates), added)


def _load(kind: str, workers: int, url: str, warmup: float, window: float, rounds: int) -> Load:
    argv = [kind, str(workers), url, str(warmup), str(window), str(rounds)]
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", "--child", *argv],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return Load(**json.loads(out))


# -- hosts ----------------------------------------------------------------------------------------


def _per_host_client(clock: FakeClock) -> buttress.Client:
    origin = httpx.MockTransport(lambda request: httpx.Response(200, content=b"{}"))
    return buttress.Client(
        transport=origin,
        clock=clock,
        circuit_breaker=buttress.CircuitBreakerConfig(per_host=True),
        rate_limit=buttress.RateLimitConfig(max_requests=100, time_window=1.0, scope="host"),
    )


def _request_us(client: buttress.Client, url: str, repeat: int = 1_000) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        client.get(url)
    return (time.perf_counter() - start) / repeat * 1e6


def _timings(count: int) -> tuple[float, float, float, float]:
    """Microseconds per request with 10 and ``count`` hosts known; GC on, then paused.

    Rounds alternate between the two clients; each figure is a median of 5.
    """
    few, many = _per_host_client(FakeClock()), _per_host_client(FakeClock())
    for number in range(10):
        few.get(f"http://h{number}.example/")
    for number in range(count):
        many.get(f"http://h{number}.example/")
    figures = []
    for collecting in (True, False):
        if not collecting:
            gc.disable()  # what is left is the lookups' own cost
        rounds = [(_request_us(few, BUSY), _request_us(many, BUSY)) for _ in range(5)]
        gc.enable()
        figures += [
            statistics.median(r[0] for r in rounds),
            statistics.median(r[1] for r in rounds),
        ]
    few.close()
    many.close()
    return figures[0], figures[1], figures[2], figures[3]


def hosts(count: int = HOSTS) -> Hosts:
    """Per-host state of ``count`` hosts, before and after a minute idle."""
    clock = FakeClock()
    with _per_host_client(clock) as client:
        client.get(BUSY)
        tracemalloc.start()  # traced throughout: what is freed counts too
        start, _ = tracemalloc.get_traced_memory()
        for number in range(count):
            client.get(f"http://h{number}.example/")
        held, _ = tracemalloc.get_traced_memory()
        clock.advance(IDLE_AFTER)
        for _ in range(count):  # the busy host's requests review the idle ones
            client.get(BUSY)
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        breaker = client.circuit_breaker
        kept = len(breaker.circuits) if breaker is not None else 0
    return Hosts(count, (held - start) / 2**20, (after - start) / 2**20, kept, *_timings(count))


# -- cache entries --------------------------------------------------------------------------------


def _origin() -> httpx.MockTransport:
    headers = {"cache-control": "max-age=3600", "content-type": "application/json"}
    return httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, content=BODY))


def _fill(backend: CacheBackend, count: int) -> None:
    request = Request("GET", "https://api.example.com/filler", Headers({}))
    headers = Headers({"cache-control": "max-age=3600", "content-type": "application/json"})
    for number in range(count):
        backend.store(f"filler{number}", uuid.uuid4(), request, 200, headers, BODY)


def _cache_cost(
    name: str, backend: CacheBackend, entries: int, hits: int, stores: int
) -> CacheCost:
    transport = CacheTransport(_origin(), CacheConfig(backend=backend))
    hit = httpx.Request("GET", "https://api.example.com/users/1")
    transport.handle_request(hit).read()  # stored
    _fill(backend, entries - 1)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(hits):
            response = transport.handle_request(hit)
            response.read()
        rounds.append((time.perf_counter() - start) / hits * 1e6)
    assert response.extensions["buttress.cache"].from_cache, "the benchmark must measure hits"
    start = time.perf_counter()
    _fill(backend, stores)  # full: every store evicts
    evicting = (time.perf_counter() - start) / stores * 1e6
    return CacheCost(name, entries, statistics.median(rounds), evicting)


def cache_costs(sizes: Sequence[int] = ENTRIES, hits: int = 2_000) -> list[CacheCost]:
    """Hit and evicting-store costs of both backends, ``sizes`` entries stored."""
    costs = []
    for entries in sizes:
        costs.append(
            _cache_cost("MemoryCache", MemoryCache(max_size=entries), entries, hits, 2_000)
        )
        with tempfile.TemporaryDirectory() as directory:
            probe = DiskCache(Path(directory) / "probe")
            _fill(probe, 1)
            entry_mb = os.path.getsize(next(probe._files())) / 2**20
            disk = DiskCache(Path(directory) / "cache", max_size_mb=entries * entry_mb * 1.001)
            # A full disk cache evicts down to 90% of its limit: a tenth of its entries
            # stored is one whole cycle of eviction, so the figure is the amortised cost.
            costs.append(_cache_cost("DiskCache", disk, entries, hits // 4, entries // 10 + 1))
    return costs


# -- the whole part -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaling:
    """Every figure of this part."""

    loads: list[Load]
    hosts: Hosts
    cache: list[CacheCost]


def measure(url: str, warmup: float, window: float, rounds: int) -> Scaling:
    """Run the three parts against the server at ``url``."""
    loads = [_load("tasks", n, url, warmup, window, rounds) for n in TASKS]
    loads += [_load("threads", n, url, warmup, window, rounds) for n in THREADS]
    return Scaling(loads, hosts(), cache_costs())


def report(scaling: Scaling) -> list[str]:
    """The markdown tables of :func:`measure`'s result."""
    lines = [
        "Full stack on one client; memory: resident set added by the client and its workers.\n",
        "| workers | req/s | MiB added |",
        "|---|---:|---:|",
    ]
    for load in scaling.loads:
        added = "-" if load.added_mib is None else f"{load.added_mib:.1f}"
        lines.append(f"| {load.workers:,} {load.kind} | {load.rate:,.0f} | {added} |")
    lines += ["", *report_hosts(scaling.hosts), "", *report_cache(scaling.cache)]
    return lines


def report_hosts(result: Hosts) -> list[str]:
    """The per-host state figures."""
    return [
        f"Per-host breaker, rate limit and retry budget, {result.hosts:,} hosts "
        "(in-process origin):\n",
        "| measure | value |",
        "|---|---:|",
        f"| memory held for {result.hosts:,} hosts | {result.held_mib:.1f} MiB |",
        f"| memory held after a minute idle | {result.after_idle_mib:.1f} MiB |",
        f"| circuits kept after a minute idle | {result.kept_after_idle} |",
        f"| request, 10 hosts known | {result.request_us_few:.0f} us |",
        f"| request, {result.hosts:,} hosts known | {result.request_us_many:.0f} us |",
        f"| request, 10 hosts known, GC paused | {result.request_us_few_no_gc:.0f} us |",
        f"| request, {result.hosts:,} hosts known, GC paused | "
        f"{result.request_us_many_no_gc:.0f} us |",
    ]


def report_cache(costs: list[CacheCost]) -> list[str]:
    """The cache cost figures."""
    lines = [
        "Cache hit through `CacheTransport` (median of 5 rounds), and a store once "
        "the backend is full (DiskCache: over a tenth of its entries, one eviction cycle):\n",
        "| backend | entries | hit us | evicting store us |",
        "|---|---:|---:|---:|",
    ]
    for cost in costs:
        lines.append(
            f"| {cost.backend} | {cost.entries:,} | {cost.hit_us:.0f} | "
            f"{cost.evicting_store_us:.0f} |"
        )
    return lines


def _main(argv: Sequence[str]) -> None:
    if argv[:1] == ["--child"]:
        kind, workers, url, warmup, window, rounds = argv[1:]
        load = _load_child(kind, int(workers), url, float(warmup), float(window), int(rounds))
        print(json.dumps(asdict(load)), flush=True)
        os._exit(0)
    from .cases import quiet_logging

    quiet_logging()
    print("\n".join(report_hosts(hosts())))
    print()
    print("\n".join(report_cache(cache_costs())))


if __name__ == "__main__":
    _main(sys.argv[1:])
