"""RedisCache against a real redis-server: one cache shared by clients as by processes.

Each client gets its own ``RedisCache`` on the same store, as each process of a
fleet would; the demo API's ``/cacheable`` counts how often the origin is asked.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

import buttress
from buttress import CacheConfig, MemoryCache, RedisCache, RedisStore
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

WAIT = 10.0
"""Seconds a test waits for another thread to act on a pub/sub message: generous, so
a loaded machine never fails it; a pass takes milliseconds."""


def origin_hits(demo: DemoServer) -> int:
    return int(demo.app.hits["/cacheable"])


def unique() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(redis_server: RedisServer, clock: FakeClock) -> AsyncIterator[RedisStore]:
    """A store of the test's own namespace, timed by the test's clock."""
    store = RedisStore(
        redis_server.url, namespace=f"test-{secrets.token_hex(6)}", timeout=2.0, clock=clock
    )
    yield store
    await store.aclose()
    store.close()


@pytest.fixture
def direct(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as client:
        yield client


def process_client(
    make_client: Callable[..., Either], demo: DemoServer, store: RedisStore, clock: FakeClock
) -> Either:
    """A client with a RedisCache of its own on ``store``, as another process would have."""
    return make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=RedisCache(store)))


def namespace_keys(direct: redis.Redis, store: RedisStore) -> list[bytes]:
    return list(direct.scan_iter(match=f"buttress:{{{store.namespace}}}:*"))


def assert_every_key_expires(direct: redis.Redis, store: RedisStore) -> None:
    keys = namespace_keys(direct, store)
    assert keys
    assert all(direct.pttl(key) > 0 for key in keys), {k: direct.pttl(k) for k in keys}


async def test_two_clients_share_one_cache(
    make_client: Callable[..., Either],
    demo: DemoServer,
    store: RedisStore,
    clock: FakeClock,
    direct: redis.Redis,
) -> None:
    first = process_client(make_client, demo, store, clock)
    other = process_client(make_client, demo, store, clock)
    key, before = unique(), origin_hits(demo)
    fetched = await first.get("/cacheable", params={"key": key})
    shared = await other.get("/cacheable", params={"key": key})
    assert (fetched.from_cache, shared.from_cache) == (False, True)
    assert shared.json() == fetched.json() == {"key": key, "version": "1"}
    assert origin_hits(demo) == before + 1
    assert other.client.cache.stats().hits == 1
    assert first.client.cache.stats().size == 1
    assert_every_key_expires(direct, store)


async def test_the_server_side_expiry_is_the_freshness_lifetime_plus_what_stays_useful(
    make_client: Callable[..., Either],
    demo: DemoServer,
    store: RedisStore,
    clock: FakeClock,
    direct: redis.Redis,
) -> None:
    backend = RedisCache(store, revalidation_window=100.0)
    config = CacheConfig(backend=backend, stale_if_error=20)
    api = make_client(base_url=demo.url, clock=clock, cache=config)
    params = {"key": unique(), "max_age": 60}
    await api.get("/cacheable", params=params)
    [entry_key] = [k for k in namespace_keys(direct, store) if b":cache:e:" in k]
    # max-age 60, then 20 s servable for errors, then 100 s kept for a 304 (it has an ETag).
    # The fake clock does not move; real time between the write and PTTL is milliseconds,
    # 5 s of tolerance keeps a loaded machine green.
    assert 175_000 < direct.pttl(entry_key) <= 180_000
    assert_every_key_expires(direct, store)

    clock.advance(61)  # stale now: revalidated with the origin, which confirms it (304)
    again = await api.get("/cacheable", params=params)
    assert again.extensions["buttress.cache"].revalidated


async def test_an_entry_no_longer_useful_is_not_stored(
    make_client: Callable[..., Either], demo: DemoServer, store: RedisStore, clock: FakeClock
) -> None:
    backend = RedisCache(store, revalidation_window=0)
    api = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend))
    key = unique()
    await api.get("/cacheable", params={"key": key, "max_age": 0})
    assert backend.size == 0
    await api.get("/cacheable", params={"key": key, "max_age": 30})
    assert backend.size == 1


async def test_a_revalidated_entry_gets_a_new_expiry(
    make_client: Callable[..., Either],
    demo: DemoServer,
    store: RedisStore,
    clock: FakeClock,
    direct: redis.Redis,
) -> None:
    backend = RedisCache(store, revalidation_window=0)
    api = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend))
    params = {"key": unique(), "max_age": 60}
    await api.get("/cacheable", params=params)
    [entry_key] = [k for k in namespace_keys(direct, store) if b":cache:e:" in k]
    direct.pexpire(entry_key, 1000)  # as if most of its life had passed
    revalidated = await api.get("/cacheable", params=params, cache_control="no-cache")
    assert revalidated.extensions["buttress.cache"].revalidated
    assert 55_000 < direct.pttl(entry_key) <= 60_000  # 5 s of tolerance, as above


async def test_the_size_bound_removes_the_keys_closest_to_expiring(
    make_client: Callable[..., Either], demo: DemoServer, store: RedisStore, clock: FakeClock
) -> None:
    backend = RedisCache(store, max_size=2)
    api = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend))
    soon, later, latest = unique(), unique(), unique()
    await api.get("/cacheable", params={"key": soon, "max_age": 10})
    await api.get("/cacheable", params={"key": later, "max_age": 500})
    await api.get("/cacheable", params={"key": latest, "max_age": 1000})
    assert backend.size == 2
    assert backend.stats().evictions == 1
    assert not (await api.get("/cacheable", params={"key": soon, "max_age": 10})).from_cache
    assert (await api.get("/cacheable", params={"key": latest, "max_age": 1000})).from_cache


async def test_two_credentials_never_share_an_entry_and_no_secret_is_stored(
    make_client: Callable[..., Either],
    demo: DemoServer,
    store: RedisStore,
    clock: FakeClock,
    direct: redis.Redis,
) -> None:
    key = unique()

    def client_of(token: str) -> Either:
        backend = RedisCache(store)  # one per "process"
        return make_client(
            base_url=demo.url,
            clock=clock,
            cache=CacheConfig(backend=backend),
            headers={"Authorization": f"Bearer {token}", "X-Api-Key": token},
        )

    alice, bob = client_of("alice-s3cret-token"), client_of("bob-s3cret-token")
    assert not (await alice.get("/cacheable", params={"key": key, "token": "q-s3cret"})).from_cache
    assert not (await bob.get("/cacheable", params={"key": key, "token": "q-s3cret"})).from_cache
    assert (await bob.get("/cacheable", params={"key": key, "token": "q-s3cret"})).from_cache
    stored: list[Any] = []
    for name in namespace_keys(direct, store):
        kind = direct.type(name)
        if kind == b"hash":
            stored += [name, *direct.hgetall(name).items()]
        elif kind == b"zset":
            stored += [name, *direct.zrange(name, 0, -1)]
        else:
            stored += [name, direct.get(name)]
    assert b"s3cret" not in repr(stored).encode()
    assert key in repr(stored)  # the body is stored: the search does see values


async def test_invalidation_by_one_client_is_seen_by_the_other(
    make_client: Callable[..., Either], demo: DemoServer, store: RedisStore, clock: FakeClock
) -> None:
    one = process_client(make_client, demo, store, clock)
    two = process_client(make_client, demo, store, clock)
    keys = [unique() for _ in range(3)]
    for key in keys:
        await one.get("/cacheable", params={"key": key})

    assert one.client.cache.invalidate(f"/cacheable?key={keys[0]}") == 1
    assert not (await two.get("/cacheable", params={"key": keys[0]})).from_cache
    assert (await two.get("/cacheable", params={"key": keys[1]})).from_cache

    assert one.client.cache.invalidate_pattern("/cache*") == 3
    assert not (await two.get("/cacheable", params={"key": keys[1]})).from_cache

    one.client.cache.clear()
    assert two.client.cache.stats().size == 0
    assert not (await two.get("/cacheable", params={"key": keys[2]})).from_cache


async def test_an_unsafe_request_invalidates_the_url_for_every_process(
    make_client: Callable[..., Either], demo: DemoServer, store: RedisStore, clock: FakeClock
) -> None:
    def process() -> Either:
        config = CacheConfig(backend=RedisCache(store), default_ttl=60)
        return make_client(base_url=demo.url, clock=clock, cache=config)

    one, two = process(), process()
    await one.get("/download", params={"size": 10})
    assert (await two.get("/download", params={"size": 10})).from_cache
    await two.post("/download", params={"size": 10})  # a success invalidates its URL
    assert not (await one.get("/download", params={"size": 10})).from_cache


def wait_for(condition: Callable[[], bool]) -> None:
    """Until ``condition`` holds (another thread acts on a message), at most WAIT seconds."""
    pause = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the condition never held")


async def test_a_memory_tier_hears_invalidations_from_other_processes(
    make_client: Callable[..., Either],
    demo: DemoServer,
    store: RedisStore,
    clock: FakeClock,
    direct: redis.Redis,
) -> None:
    tiered = RedisCache(store, local=MemoryCache(max_size=10))
    other = RedisCache(store)
    try:
        wait_for(tiered._listening.is_set)
        reader = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=tiered))
        writer = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=other))
        key = unique()
        # Fetched by this process: kept in both tiers. (Had the other process stored it, its
        # announcement, heard a moment later on a busy machine, could empty the tier again.)
        assert not (await reader.get("/cacheable", params={"key": key})).from_cache
        assert tiered.local is not None
        assert tiered.local.size == 1

        # Removed behind the cache's back (no announcement): the memory tier still answers.
        for name in namespace_keys(direct, store):
            if b":cache:e:" in name:
                direct.delete(name)
        assert (await reader.get("/cacheable", params={"key": key})).from_cache

        # Another process invalidates: the announcement empties this process's tier.
        await writer.get("/cacheable", params={"key": key})
        wait_for(lambda: tiered.local is not None and tiered.local.size == 0)
        writer.client.cache.invalidate("/cacheable")
        before = origin_hits(demo)
        assert not (await reader.get("/cacheable", params={"key": key})).from_cache
        assert origin_hits(demo) == before + 1
        await writer.get("/cacheable", params={"key": key})
        writer.client.cache.clear()
        wait_for(lambda: tiered.local is not None and tiered.local.size == 0)
    finally:
        tiered.close()
    assert tiered._listener is not None
    assert not tiered._listener.is_alive()


async def test_a_store_that_goes_away_makes_lookups_misses(
    make_client: Callable[..., Either], demo: DemoServer, own_redis_server: RedisServer
) -> None:
    clock = FakeClock()
    store = RedisStore(own_redis_server.url, namespace="away", timeout=2.0, clock=clock)
    api = process_client(make_client, demo, store, clock)
    key = unique()
    await api.get("/cacheable", params={"key": key})
    assert (await api.get("/cacheable", params={"key": key})).from_cache

    own_redis_server.kill()
    for _ in range(2):
        response = await api.get("/cacheable", params={"key": key})
        assert response.status_code == 200
        assert not response.from_cache
    assert store.degraded
    assert api.client.cache.invalidate("/cacheable") == 0
    assert api.client.cache.stats().size == 0
    await store.aclose()
    store.close()


@pytest.mark.parametrize("salt", [None, b"k" * 16])
async def test_on_store_error_raise_fails_the_request_with_a_store_error(
    make_client: Callable[..., Either],
    demo: DemoServer,
    caplog: pytest.LogCaptureFixture,
    salt: bytes | None,
) -> None:
    unreachable = RedisStore("redis://127.0.0.1:1/0", on_store_error="raise")
    caplog.set_level(logging.WARNING, "buttress.cache")
    backend = RedisCache(unreachable, salt=salt)  # a store away at start is no setup error
    told = [r.getMessage() for r in caplog.records if r.name == "buttress.cache"]
    assert len(told) == (1 if salt is None else 0)  # its own salt: it shares nothing
    assert all("salt of its own" in message for message in told)
    api = make_client(base_url=demo.url, cache=CacheConfig(backend=backend))
    with pytest.raises(buttress.StoreError, match=r"Redis at redis://127\.0\.0\.1:1/0 failed"):
        await api.get("/cacheable", params={"key": unique()})
    await unreachable.aclose()


async def test_an_async_client_never_calls_redis_synchronously(
    demo: DemoServer, store: RedisStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RedisCache(store)  # the salt is read now, synchronously, once

    def blocking(operation: Any) -> Any:
        raise AssertionError("a blocking Redis call on the event loop")

    monkeypatch.setattr(store, "run", blocking)
    config = CacheConfig(backend=backend, default_ttl=60, max_entry_size=None)
    async with buttress.AsyncClient(base_url=demo.url, clock=clock, cache=config) as api:
        path = "/download?size=3000000"
        first = await api.get(path)
        second = await api.get(path)
        async with api.stream("GET", "/download?size=20000&chunked=1") as streamed:
            await streamed.aread()
        stream_hit = await api.get("/download?size=20000&chunked=1")
        await api.post("/download?size=1")
    assert (first.from_cache, second.from_cache, stream_hit.from_cache) == (False, True, True)
    assert second.content == first.content
    assert len(second.content) == 3_000_000


async def test_bad_settings_raise_a_configuration_error(store: RedisStore) -> None:
    with pytest.raises(buttress.ConfigurationError, match="RedisStore"):
        RedisCache("redis://127.0.0.1:6379/0")  # type: ignore[arg-type]
    with pytest.raises(buttress.ConfigurationError, match="max_size"):
        RedisCache(store, max_size=0)
    with pytest.raises(buttress.ConfigurationError, match="revalidation_window"):
        RedisCache(store, revalidation_window=-1)
    with pytest.raises(buttress.ConfigurationError, match="local"):
        RedisCache(store, local=store)  # type: ignore[arg-type]


def test_the_repr_shows_no_password(redis_server: RedisServer) -> None:
    url = redis_server.url.replace("redis://", "redis://user:pa55word@")
    backend = RedisCache(RedisStore(url, namespace="n"), salt=b"k" * 16)
    assert "pa55word" not in repr(backend)
    assert repr(CacheConfig(backend=backend)).count("pa55word") == 0


async def test_a_frozen_store_costs_one_timeout_then_misses(
    make_client: Callable[..., Either], demo: DemoServer, own_redis_server: RedisServer
) -> None:
    store = RedisStore(own_redis_server.url, namespace="frozen", timeout=0.2)
    api = make_client(base_url=demo.url, cache=CacheConfig(backend=RedisCache(store)))
    key = unique()
    await api.get("/cacheable", params={"key": key})
    own_redis_server.pause()  # accepts connections, never answers
    try:
        for _ in range(3):  # the first waits out the timeout; the others do not ask
            response = await api.get("/cacheable", params={"key": key})
            assert (response.status_code, response.from_cache) == (200, False)
        assert "Timeout" in str(store.status().last_error)
    finally:
        own_redis_server.resume()
    await store.aclose()
    store.close()
