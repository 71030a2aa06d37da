"""buttress against the stack a user assembles from separate libraries for the same policy.

The hand-built stack: httpx-retries' ``RetryTransport`` over a small transport that
takes a slot from pyrate-limiter's ``Limiter`` and sends inside purgatory's circuit
breaker (one breaker and one budget per host, 5xx counted as failures), over httpx's
own transport. It is compared with ``buttress.Client`` / ``AsyncClient`` given the
same three layers (retry, breaker, a rate limit too generous to bind), with
:func:`buttress.transports.stack` putting them on a plain httpx client, and with
bare httpx:

- **sync**: one thread, ``requests`` GETs per case and repetition;
- **async c=100**: 100 tasks sharing ``requests`` GETs on one event loop;
- **cache hits**: ``buttress.Client(cache=...)`` and ``stack(cache=...)`` against
  hishel's ``CacheTransport`` (RFC mode, private, SQLite ``:memory:``) on a plain
  ``httpx.Client``, all in front of one in-process origin (no network);
- **memory**: in a fresh interpreter, what the case's imports, one client and
  1,000 requests through it add, and what a second client and its 1,000 requests
  add on top (the goal's "per client"): traced by tracemalloc, and as resident
  memory (Linux).

Cases take turns within each repetition, so a noisy neighbour hits them all alike;
each ratio divides two figures of the same repetition, and the table shows the
minimum, median and maximum of those ratios.

``python -m benchmarks.handbuilt [--rounds N] [--requests N]`` runs this part alone
against the bundled server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hishel import CacheOptions, SqliteStorage
from hishel.httpx import CacheTransport as HishelTransport

import buttress
from buttress.transports import stack

from .cache_hits import _origin
from .cases import quiet_logging
from .handbuilt_clients import CASES, FACADE, HAND_BUILT, STACKED, async_client, sync_client
from .server import Server

__all__ = ["Comparison", "measure", "report", "targets"]

MEMORY_REQUESTS = 1_000
MEMORY_ROUNDS = 3  # fresh interpreters per case
CONCURRENCY = 100
CACHE_URL = "https://api.example.com/users/1"


HISHEL = "hishel CacheTransport on an httpx client"
CACHE_CASES = (HISHEL, FACADE, STACKED)
"""The cache-hit rows; ratios are over HISHEL."""


def cache_client(case: str) -> httpx.Client:
    """A client of ``case`` whose cache answers every GET of :data:`CACHE_URL` after the first."""
    if case == HISHEL:
        storage = SqliteStorage(connection=sqlite3.connect(":memory:", check_same_thread=False))
        transport = HishelTransport(_origin(), storage=storage, rfc=CacheOptions(shared=False))
        return httpx.Client(transport=transport)
    cache = buttress.CacheConfig(backend=buttress.MemoryCache(max_size=1000))
    if case == FACADE:
        return buttress.Client(transport=_origin(), cache=cache)
    return httpx.Client(transport=stack(_origin(), cache=cache))


def _is_hit(response: httpx.Response) -> bool:
    if "caching" in response.extensions:  # hishel's
        return bool(response.extensions["caching"]["from_cache"])
    return bool(response.extensions["buttress.cache"].from_cache)


# -- measuring --------------------------------------------------------------------------


@dataclass
class Rows:
    """Per case, one figure per repetition (requests per second, or MiB)."""

    unit: str
    base: str
    figures: dict[str, list[float]] = field(default_factory=dict)

    def add(self, case: str, figure: float) -> None:
        """Record ``case``'s figure of the current repetition."""
        self.figures.setdefault(case, []).append(figure)

    def ratios(self, case: str) -> list[float]:
        """``case`` over the base, repetition by repetition."""
        return [a / b for a, b in zip(self.figures[case], self.figures[self.base], strict=True)]

    def differences(self, case: str) -> list[float]:
        """``case`` minus the base, repetition by repetition."""
        return [a - b for a, b in zip(self.figures[case], self.figures[self.base], strict=True)]


@dataclass
class Comparison:
    """Everything :func:`measure` found."""

    server: str
    rounds: int
    requests: int
    sync: Rows
    concurrent: Rows
    cache: Rows
    memory: dict[str, dict[str, Rows] | None]  # by kind, then scope; None where unreadable


def _timed_sync(client: httpx.Client, url: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        client.get(url).raise_for_status()
    return count / (time.perf_counter() - start)


async def _timed_async(client: httpx.AsyncClient, url: str, count: int) -> float:
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            (await client.get(url)).raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return count / (time.perf_counter() - start)


def _sync_rows(url: str, rounds: int, requests: int) -> Rows:
    rows = Rows("req/s", HAND_BUILT)
    clients = {case: sync_client(case) for case in CASES}
    try:
        for client in clients.values():
            _timed_sync(client, url, requests // 10)  # warm up: connect, fill caches
        for _ in range(rounds):
            for case, client in clients.items():
                rows.add(case, _timed_sync(client, url, requests))
    finally:
        for client in clients.values():
            client.close()
    return rows


async def _async_rows(url: str, rounds: int, requests: int) -> Rows:
    rows = Rows("req/s", HAND_BUILT)
    clients = {case: async_client(case) for case in CASES}
    try:
        for client in clients.values():
            await _timed_async(client, url, CONCURRENCY * 2)  # warm up: open the connections
        for _ in range(rounds):
            for case, client in clients.items():
                rows.add(case, await _timed_async(client, url, requests))
    finally:
        for client in clients.values():
            await client.aclose()
    return rows


def _cache_rows(rounds: int, hits: int) -> Rows:
    rows = Rows("hits/s", HISHEL)
    clients = {case: cache_client(case) for case in CACHE_CASES}
    try:
        for case, client in clients.items():
            for _ in range(100):
                response = client.get(CACHE_URL)
            if not _is_hit(response):
                raise RuntimeError(f"{case}: the benchmark must measure cache hits")
        for _ in range(rounds):
            for case, client in clients.items():
                rows.add(case, _timed_sync(client, CACHE_URL, hits))
    finally:
        for client in clients.values():
            client.close()
    return rows


_MEMORY_PROGRAM = """
import gc, importlib, json, os, sys, tracemalloc
from benchmarks.handbuilt_clients import IMPORTS, sync_client
case, url, count, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
def used():
    gc.collect()
    return tracemalloc.get_traced_memory()[0] if kind == "traced" else resident()
def client_and_requests():
    client = sync_client(case)
    for _ in range(count):
        client.get(url).raise_for_status()
    return client
if kind == "traced":
    tracemalloc.start()
start = used()
for module in IMPORTS[case]:
    importlib.import_module(module)
first = client_and_requests()  # both clients stay alive while measured
after_first = used()
second = client_and_requests()
print(json.dumps([(after_first - start) / (1 << 20), (used() - after_first) / (1 << 20)]))
"""
"""A fresh interpreter with httpx imported: what the case's library and its clients add (MiB).

Two figures per run: *in all*, the case's imports, one client and its requests (a
library that imports lazily pays when its first client is made, one that imports
eagerly when it is imported: both are charged); and *per client*, what a second
client and its requests add on top, the cost of each client an application makes
beyond the first. ``traced``: what Python's allocator holds more (tracemalloc;
steady from run to run, blind to memory C libraries allocate, such as OpenSSL's).
``resident``: the resident set's growth (Linux), which sees everything but moves in
steps of the allocator's arenas, so the same code can measure a few MiB apart.
"""

MEMORY_KINDS = ("traced", "resident")
MEMORY_SCOPES = ("in all", "per client")
_MEMORY_TITLES = {"in all": "imports, one client", "per client": "a second client"}


def _memory_rows(url: str, kind: str) -> dict[str, Rows] | None:
    if kind == "resident" and not Path("/proc/self/statm").exists():
        return None
    rows = {scope: Rows("MiB", HAND_BUILT) for scope in MEMORY_SCOPES}
    for _ in range(MEMORY_ROUNDS):
        for case in CASES:
            argv = [case, url, str(MEMORY_REQUESTS), kind]
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_PROGRAM, *argv],
                capture_output=True,
                check=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            ).stdout
            for scope, figure in zip(MEMORY_SCOPES, json.loads(out), strict=True):
                rows[scope].add(case, figure)
    return rows


def measure(url: str, server: str, rounds: int, requests: int) -> Comparison:
    """Run every comparison against the server at ``url`` (``server`` names it)."""
    return Comparison(
        server=server,
        rounds=rounds,
        requests=requests,
        sync=_sync_rows(url, rounds, requests),
        concurrent=asyncio.run(_async_rows(url, rounds, requests // 2)),
        cache=_cache_rows(rounds, requests * 5),
        memory={kind: _memory_rows(url, kind) for kind in MEMORY_KINDS},
    )


# -- the report -------------------------------------------------------------------------


def _spread(values: list[float], digits: int = 2) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f} to {high:.{digits}f})"


def report(result: Comparison) -> list[str]:
    """One markdown table: every measure, every case, ratios to the hand-built stack."""
    lines = [
        f"Server: {result.server}, 127.0.0.1. Hand-built: httpx-retries > purgatory breaker "
        "+ pyrate-limiter limit > httpx; buttress with retry, breaker and a rate limit "
        f"too generous to bind. {result.rounds} repetitions, cases taking turns; "
        "ratio: median (min to max) of the repetitions' ratios.\n",
        "| measure | client | figure (median) | vs hand-built (or hishel) |",
        "|---|---|---:|---:|",
    ]
    for title, rows, cases in (
        (f"sync, 1 thread, {result.requests:,} GETs", result.sync, CASES),
        (f"async c={CONCURRENCY}, {result.requests // 2:,} GETs", result.concurrent, CASES),
        (f"cache hits, {result.requests * 5:,} GETs, in-process origin", result.cache, CACHE_CASES),
    ):
        for case in cases:
            figure = statistics.median(rows.figures[case])
            lines.append(
                f"| {title} | {case} | {figure:,.0f} {rows.unit} | {_spread(rows.ratios(case))} |"
            )
    for kind, memory in result.memory.items():
        for scope in MEMORY_SCOPES:
            title = (
                f"memory {kind}, {_MEMORY_TITLES[scope]} + {MEMORY_REQUESTS:,} GETs "
                f"(fresh interpreter, {MEMORY_ROUNDS} runs)"
            )
            if memory is None:
                lines.append(f"| {title} | (read from /proc: Linux only) | | |")
                continue
            for case in CASES:
                figure = statistics.median(memory[scope].figures[case])
                difference = _spread(memory[scope].differences(case), 1)
                lines.append(f"| {title} | {case} | {figure:.1f} MiB | {difference} MiB |")
    return lines


def targets(result: Comparison) -> list[tuple[str, list[float], str]]:
    """The issue's goals for this comparison: ``(what, one figure per repetition, goal)``."""
    rows = []
    for name, rows_of in (("sync", result.sync), (f"async c={CONCURRENCY}", result.concurrent)):
        for case in (FACADE, STACKED):
            rows.append((f"{name}: {case} / hand-built stack", rows_of.ratios(case), ">= 1.0"))
    for case in (FACADE, STACKED):
        rows.append((f"cache hits: {case} / {HISHEL}", result.cache.ratios(case), ">= 1.6"))
    for kind, memory in result.memory.items():
        for scope, case in itertools.product(MEMORY_SCOPES, (FACADE, STACKED)):
            if memory is not None:
                value = memory[scope].differences(case)
                what = f"memory {kind} {scope}: {case} minus hand-built stack, MiB"
                rows.append((what, value, "<= 3"))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Run the comparison alone against the bundled server and print its table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.handbuilt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1_000)
    args = parser.parse_args(argv)
    quiet_logging()
    with Server("builtin") as server:
        result = measure(server.url, server.kind, args.rounds, args.requests)
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
