"""The cache through the facade: ``Client(cache=...)`` against the demo API's /cacheable."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress import CacheConfig, DiskCache, MemoryCache
from buttress.testing import DemoServer, FakeClock, Fault, FaultServer

from .conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too


def origin_hits(demo: DemoServer) -> int:
    return int(demo.app.hits["/cacheable"])


def unique() -> str:
    return uuid.uuid4().hex


async def test_miss_hit_revalidation_and_invalidation(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig())
    key = unique()
    before = origin_hits(demo)
    first = await api.get("/cacheable", params={"key": key})
    second = await api.get("/cacheable", params={"key": key})
    assert isinstance(second, buttress.Response)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert first.cache_age is None
    assert second.cache_age is not None
    assert second.cache_age >= 0
    assert second.json() == first.json()
    assert origin_hits(demo) == before + 1

    revalidated = await api.get("/cacheable", params={"key": key}, cache_control="no-cache")
    assert revalidated.from_cache
    assert revalidated.extensions["buttress.cache"].revalidated

    assert api.client.cache.invalidate("/cacheable") == 1
    assert not (await api.get("/cacheable", params={"key": key})).from_cache
    stats = api.client.cache.stats()
    assert (stats.hits, stats.misses, stats.revalidations, stats.size) == (1, 2, 1, 1)


async def test_expired_entry_is_revalidated_by_the_origin_304(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig())
    params = {"key": unique(), "max_age": 0}
    await api.get("/cacheable", params=params)
    again = await api.get("/cacheable", params=params)
    assert again.from_cache
    assert again.extensions["buttress.cache"].revalidated


async def test_only_if_cached_miss_raises_server_error_or_returns_504(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig())
    before = origin_hits(demo)
    with pytest.raises(buttress.ServerError) as caught:
        await api.get("/cacheable", params={"key": unique()}, cache_control="only-if-cached")
    assert caught.value.status_code == 504
    answer = await api.get(
        "/cacheable",
        params={"key": unique()},
        cache_control="only-if-cached",
        raise_for_status=False,
    )
    assert answer.status_code == 504
    assert origin_hits(demo) == before


async def test_invalidate_pattern_and_clear_through_the_client(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig(backend=MemoryCache(max_size=10)))
    await api.get("/users/1")
    await api.get("/users/2")
    await api.get("/cacheable", params={"key": unique()})
    assert api.client.cache.invalidate_pattern("/users/*") == 2
    assert api.client.cache.stats().size == 1
    api.client.cache.clear()
    assert api.client.cache.stats().size == 0


async def test_memory_cache_is_bounded_and_counts_evictions(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig(backend=MemoryCache(max_size=3)))
    keys = [unique() for _ in range(5)]
    for key in keys:
        await api.get("/cacheable", params={"key": key})
    stats = api.client.cache.stats()
    assert (stats.size, stats.evictions) == (3, 2)
    assert not (await api.get("/cacheable", params={"key": keys[0]})).from_cache
    assert (await api.get("/cacheable", params={"key": keys[-1]})).from_cache


async def test_clients_with_different_tokens_share_no_responses(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    config = CacheConfig()
    alice = make_client(base_url=demo.url, cache=config, auth=("bearer", "alice-token"))
    bob = make_client(base_url=demo.url, cache=config, auth=("bearer", "bob-token"))
    anonymous = make_client(base_url=demo.url, cache=config)
    key = unique()
    await alice.get("/cacheable", params={"key": key})
    assert (await alice.get("/cacheable", params={"key": key})).from_cache
    assert not (await bob.get("/cacheable", params={"key": key})).from_cache
    assert not (await anonymous.get("/cacheable", params={"key": key})).from_cache


async def test_cache_applies_under_mounts(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    network: Any = httpx.HTTPTransport() if mode == "sync" else httpx.AsyncHTTPTransport()
    api = make_client(base_url=demo.url, cache=CacheConfig(), mounts={demo.url: network})
    key = unique()
    await api.get("/cacheable", params={"key": key})
    assert (await api.get("/cacheable", params={"key": key})).from_cache


async def test_streamed_responses_are_stored_once_read_whole(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig())
    key = unique()
    body = await api.stream_bytes("GET", "/cacheable", params={"key": key})
    assert key.encode() in body
    hit = await api.get("/cacheable", params={"key": key})
    assert hit.from_cache
    assert hit.content == body
    assert await api.stream_bytes("GET", "/cacheable", params={"key": key}) == body
    assert api.client.cache.stats().hits == 2


async def test_with_options_keeps_the_cache(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    api = make_client(base_url=demo.url, cache=CacheConfig())
    key = unique()
    await api.get("/cacheable", params={"key": key})
    other = Either(api.client.with_options(headers={"Accept-Language": "fr"}))
    team = Either(api.client.with_options(headers={"X-Team": "web"}))
    try:
        assert (await other.get("/cacheable", params={"key": key})).from_cache
        # A header outside the short list of those carrying no credential makes
        # another caller, whose entries are its own (in the same cache).
        assert not (await team.get("/cacheable", params={"key": key})).from_cache
        assert (await team.get("/cacheable", params={"key": key})).from_cache
    finally:
        await other.aclose()
        await team.aclose()


def test_client_without_cache_has_no_cache_handle(demo: DemoServer) -> None:
    with buttress.Client(base_url=demo.url) as client:
        with pytest.raises(buttress.ConfigurationError, match="cache=CacheConfig"):
            client.cache.stats()
        assert not client.get("/users/1").from_cache


def test_disabled_cache_is_left_out(demo: DemoServer) -> None:
    with buttress.Client(base_url=demo.url, cache=CacheConfig(enabled=False)) as client:
        key = unique()
        client.get("/cacheable", params={"key": key})
        assert not client.get("/cacheable", params={"key": key}).from_cache


async def test_disk_cache_outlives_the_client(
    make_client: Callable[..., Either], demo: DemoServer, tmp_path: Path
) -> None:
    key = unique()
    first = make_client(base_url=demo.url, cache=CacheConfig(backend=DiskCache(tmp_path)))
    await first.get("/cacheable", params={"key": key})
    await first.aclose()
    later = make_client(base_url=demo.url, cache=CacheConfig(backend=DiskCache(tmp_path)))
    again = await later.get("/cacheable", params={"key": key})
    assert again.from_cache
    assert again.json()["key"] == key
    assert later.client.cache.stats().size == 1


async def test_rfc5861_3_stale_while_revalidate_through_the_client(
    make_client: Callable[..., Either],
) -> None:
    swr = {"cache-control": "max-age=10, stale-while-revalidate=60"}
    clock = FakeClock()
    with FaultServer() as server:
        server.route("/doc", Fault.ok({"v": 1}, headers=swr))
        api = make_client(base_url=server.url, cache=CacheConfig(), clock=clock)
        await api.get("/doc")
        clock.advance(30)
        server.route("/doc", Fault.ok({"v": 2}, headers=swr))
        stale = await api.get("/doc")
        assert stale.json() == {"v": 1}
        assert stale.extensions["buttress.cache"].revalidating
        # The revalidation runs on another thread or task: poll the cache (hits, no
        # network) until it stored the new answer; 5 s only guards against a hang.
        with anyio.fail_after(5):
            while (await api.get("/doc")).json() != {"v": 2}:
                await anyio.sleep(0.01)
        assert server.count(path="/doc") == 2  # one revalidation, however many stale hits
