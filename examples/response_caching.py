"""Response caching: hits, their age, a forced refetch and the statistics.

Runs as-is against the bundled demo API: ``python examples/response_caching.py``.
"""

from __future__ import annotations

from buttress import CacheConfig, Client, MemoryCache
from buttress.testing import DemoServer


def main(base_url: str) -> None:
    client = Client(
        base_url=base_url,
        cache=CacheConfig(enabled=True, backend=MemoryCache(max_size=500), default_ttl=300.0),
    )

    # First request fetches from server
    response1 = client.get("/users/1")
    print(f"From cache: {response1.from_cache}")  # False

    # Second request served from cache
    response2 = client.get("/users/1")
    print(f"From cache: {response2.from_cache}")  # True
    print(f"Cache age: {response2.cache_age or 0:.1f}s")

    # Force fresh fetch
    response3 = client.get("/users/1", cache_control="no-cache")
    print(f"After no-cache, from cache: {response3.from_cache}")

    # View cache statistics
    stats = client.cache.stats()
    print(f"Cache hit rate: {stats.hit_rate:.1%}")
    print(f"Cache size: {stats.size} entries")

    hits = client.get("/stats").json()
    print(f"the server saw /users/1 {hits['/users/1']} times")
    client.close()


if __name__ == "__main__":
    with DemoServer() as server:
        main(server.url)
