"""Cache hits per second: buttress's memory cache against hishel's RFC mode on in-memory SQLite.

Both caches wrap the same in-process origin (so no network is measured) and
answer the same fresh GET from storage, through their httpx transports. Each
side is warmed up, then timed for the same number of hits; rounds alternate
between the two so that both see the same machine load, and each figure is
the median of its rounds. Then buttress's memory is checked to stay bounded
by ``max_size`` while many distinct URLs are stored.

``python -m benchmarks`` runs it with the rest; ``python -m benchmarks.handbuilt``
prints the cache-hit rows of the comparison with hishel through each client.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from hishel import CacheOptions, SqliteStorage
from hishel.httpx import CacheTransport as HishelTransport

from buttress.cache import CacheConfig, MemoryCache
from buttress.transports import CacheTransport

__all__ = ["CacheResult", "measure"]

REQUEST = httpx.Request(
    "GET", "https://api.example.com/users/1", headers={"authorization": "Bearer t"}
)
BODY = b'{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}' * 4


@dataclass(frozen=True)
class CacheResult:
    """Hits per second of each cache (medians), and the bounded-memory check."""

    buttress: float
    hishel: float
    ratios: list[float]  # buttress over hishel, one per round (the rounds alternate)
    hits: int
    rounds: int
    urls: int
    max_size: int
    kept: int
    peak_mb: float

    @property
    def ratio(self) -> float:
        """buttress's hits per second over hishel's."""
        return self.buttress / self.hishel


def _origin() -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(
            200,
            headers={
                "cache-control": "max-age=3600",
                "etag": '"v1"',
                "content-type": "application/json",
            },
            content=BODY,
        )
    )


def _warm(transport: httpx.BaseTransport, is_hit: Callable[[httpx.Response], bool]) -> None:
    for _ in range(100):  # store, then warm up
        response = transport.handle_request(REQUEST)
        response.read()
    assert is_hit(response), "the benchmark must measure hits"


def _round(transport: httpx.BaseTransport, hits: int) -> float:
    start = time.perf_counter()
    for _ in range(hits):
        transport.handle_request(REQUEST).read()
    return hits / (time.perf_counter() - start)


def _bounded_memory(max_size: int, urls: int) -> tuple[int, int]:
    backend = MemoryCache(max_size=max_size)
    transport = CacheTransport(_origin(), CacheConfig(backend=backend))
    tracemalloc.start()
    for number in range(urls):
        transport.handle_request(
            httpx.Request("GET", f"https://api.example.com/users/{number}")
        ).read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return backend.size, peak


def measure(hits: int, rounds: int, urls: int = 5_000, max_size: int = 500) -> CacheResult:
    """Time ``rounds`` alternating rounds of ``hits`` hits on each cache."""
    ours = CacheTransport(_origin(), CacheConfig(backend=MemoryCache(max_size=1000)))
    storage = SqliteStorage(connection=sqlite3.connect(":memory:", check_same_thread=False))
    theirs = HishelTransport(_origin(), storage=storage, rfc=CacheOptions(shared=False))
    _warm(ours, lambda r: r.extensions["buttress.cache"].from_cache)
    _warm(theirs, lambda r: r.extensions["caching"]["from_cache"])
    buttress_rates, hishel_rates = [], []
    for _ in range(rounds):
        buttress_rates.append(_round(ours, hits))
        hishel_rates.append(_round(theirs, hits))
    kept, peak = _bounded_memory(max_size, urls)
    return CacheResult(
        buttress=statistics.median(buttress_rates),
        hishel=statistics.median(hishel_rates),
        ratios=[ours / theirs for ours, theirs in zip(buttress_rates, hishel_rates, strict=True)],
        hits=hits,
        rounds=rounds,
        urls=urls,
        max_size=max_size,
        kept=kept,
        peak_mb=peak / 1e6,
    )


def report(result: CacheResult) -> list[str]:
    """The markdown table of :func:`measure`'s result."""
    return [
        f"Median of {result.rounds} alternating rounds of {result.hits:,} hits, "
        "in-process origin (no network).\n",
        "| cache | hits/s | ratio |",
        "|---|---:|---:|",
        f"| buttress `MemoryCache` | {result.buttress:,.0f} | {result.ratio:.2f} |",
        f"| hishel RFC mode, SQLite `:memory:` | {result.hishel:,.0f} | 1.00 |",
        "",
        f"{result.urls:,} URLs stored in `MemoryCache(max_size={result.max_size})`: "
        f"{result.kept} entries kept, peak {result.peak_mb:.1f} MB traced.",
    ]
