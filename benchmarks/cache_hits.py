"""Cache hits per second: buttress's memory cache against hishel's RFC mode on in-memory SQLite.

Both caches wrap the same in-process origin (so no network is measured) and
answer the same fresh GET from storage; each side is warmed up, then timed
for the same number of hits. Rounds alternate between the two so that both
see the same machine load; the best round of each counts. Then buttress's memory
stays bounded by ``max_size`` while many distinct URLs are stored.

Run: ``uv run python benchmarks/cache_hits.py``
"""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from collections.abc import Callable

import httpx
from hishel import CacheOptions, SqliteStorage
from hishel.httpx import CacheTransport as HishelTransport

from buttress.cache import CacheConfig, MemoryCache
from buttress.transports import CacheTransport

HITS = 20_000
ROUNDS = 7
REQUEST = httpx.Request(
    "GET", "https://api.example.com/users/1", headers={"authorization": "Bearer t"}
)
BODY = b'{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}' * 4


def origin() -> httpx.MockTransport:
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


def warm(transport: httpx.BaseTransport, is_hit: Callable[[httpx.Response], bool]) -> None:
    for _ in range(100):  # store, then warm up
        response = transport.handle_request(REQUEST)
        response.read()
    assert is_hit(response), "the benchmark must measure hits"


def one_round(transport: httpx.BaseTransport) -> float:
    start = time.perf_counter()
    for _ in range(HITS):
        transport.handle_request(REQUEST).read()
    return HITS / (time.perf_counter() - start)


def bounded_memory(max_size: int, urls: int) -> tuple[int, int]:
    backend = MemoryCache(max_size=max_size)
    transport = CacheTransport(origin(), CacheConfig(backend=backend))
    tracemalloc.start()
    for number in range(urls):
        transport.handle_request(
            httpx.Request("GET", f"https://api.example.com/users/{number}")
        ).read()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return backend.size, peak


def main() -> None:
    ours = CacheTransport(origin(), CacheConfig(backend=MemoryCache(max_size=1000)))
    storage = SqliteStorage(connection=sqlite3.connect(":memory:", check_same_thread=False))
    theirs = HishelTransport(origin(), storage=storage, rfc=CacheOptions(shared=False))
    warm(ours, lambda r: r.extensions["buttress.cache"].from_cache)
    warm(theirs, lambda r: r.extensions["caching"]["from_cache"])
    buttress_rate = hishel_rate = 0.0
    for _ in range(ROUNDS):
        buttress_rate = max(buttress_rate, one_round(ours))
        hishel_rate = max(hishel_rate, one_round(theirs))
    print(f"buttress MemoryCache        {buttress_rate:>10,.0f} hits/s")
    print(f"hishel RFC, SQLite :memory: {hishel_rate:>10,.0f} hits/s")
    print(f"ratio                       {buttress_rate / hishel_rate:>10.2f}x")
    size, peak = bounded_memory(max_size=500, urls=5_000)
    print(
        f"5,000 URLs into MemoryCache(max_size=500): {size} entries kept, peak {peak / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
