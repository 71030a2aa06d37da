"""MemcachedCache against a real memcached: a shared cache within Memcached's limits.

Each client gets its own ``MemcachedCache`` on the same server and namespace, as
each process of a fleet would.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hishel import Headers, Request
from pymemcache.client.base import Client as Memcached

import buttress
from buttress import CacheConfig, MemcachedCache
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import MemcachedServer, require_server

pytestmark = pytest.mark.anyio


def origin_hits(demo: DemoServer) -> int:
    return int(demo.app.hits["/cacheable"])


def unique() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def namespace() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
def direct(memcached_server: MemcachedServer) -> Iterator[Memcached]:
    client = Memcached(memcached_server.address)
    yield client
    client.close()


Backend = Callable[..., MemcachedCache]


@pytest.fixture
def backend(
    memcached_server: MemcachedServer, namespace: str, clock: FakeClock
) -> Iterator[Backend]:
    """A factory of backends on the session's memcached, in the test's namespace."""
    made: list[MemcachedCache] = []

    def factory(**options: Any) -> MemcachedCache:
        options = {"namespace": namespace, "timeout": 2.0, "clock": clock, **options}
        made.append(MemcachedCache(memcached_server.address, **options))
        return made[-1]

    yield factory
    for cache in made:
        cache.close()


def ttl(direct: Memcached, key: str) -> int:
    """The seconds ``key`` has left on the server (memcached's meta get, ``t`` flag)."""
    answer = direct.raw_command(f"mg {key} t".encode(), b"\r\n").decode()
    assert answer.startswith("HD t"), answer
    return int(answer[4:])


def entry_keys(server: MemcachedServer, namespace: str) -> list[str]:
    """The keys of the namespace's entries, from memcached's key dump (for tests only).

    The LRU crawler's dump is not a snapshot: an item moving between LRU segments while
    it crawls can be missed (seen once on a busy CI machine). Items do not leave during a
    test, so the union of a few dumps is the set of keys.
    """
    keys: set[str] = set()
    for _ in range(3):
        keys |= _dumped_keys(server)
    return sorted(key for key in keys if key.startswith(f"{namespace}:") and key.count(":") == 3)


def _dumped_keys(server: MemcachedServer) -> set[str]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"lru_crawler metadump all\r\n")
        dump = b""
        while not dump.endswith(b"END\r\n"):
            dump += connection.recv(65536)
    return {
        unquote(field[4:])
        for line in dump.decode().splitlines()
        for field in line.split()
        if field.startswith("key=")
    }


async def test_two_clients_share_one_cache(
    make_client: Callable[..., Either], demo: DemoServer, backend: Backend, clock: FakeClock
) -> None:
    first = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend()))
    other = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend()))
    key, before = unique(), origin_hits(demo)
    fetched = await first.get("/cacheable", params={"key": key})
    shared = await other.get("/cacheable", params={"key": key})
    assert (fetched.from_cache, shared.from_cache) == (False, True)
    assert shared.json() == fetched.json()
    assert origin_hits(demo) == before + 1
    revalidated = await other.get("/cacheable", params={"key": key}, cache_control="no-cache")
    assert revalidated.extensions["buttress.cache"].revalidated
    assert (await first.get("/cacheable", params={"key": key})).from_cache


async def test_the_server_side_expiry_is_the_freshness_lifetime_plus_what_stays_useful(
    make_client: Callable[..., Either],
    demo: DemoServer,
    backend: Backend,
    clock: FakeClock,
    direct: Memcached,
    namespace: str,
    memcached_server: MemcachedServer,
) -> None:
    config = CacheConfig(backend=backend(revalidation_window=100.0), stale_if_error=20)
    api = make_client(base_url=demo.url, clock=clock, cache=config)
    await api.get("/cacheable", params={"key": unique(), "max_age": 60})
    [key] = entry_keys(memcached_server, namespace)
    # max-age 60, then 20 s servable for errors, then 100 s kept for a 304 (it has an ETag);
    # memcached counts whole seconds: one more is allowed for the rounding up.
    assert 175 <= ttl(direct, key) <= 181


async def test_a_body_above_the_item_size_is_served_not_stored_and_counted(
    make_client: Callable[..., Either], demo: DemoServer, backend: Backend, clock: FakeClock
) -> None:
    cache = backend(max_item_size=5000)
    config = CacheConfig(backend=cache, default_ttl=60)
    api = make_client(base_url=demo.url, clock=clock, cache=config)
    for _ in range(2):
        response = await api.get("/download", params={"size": 20_000})
        assert len(response.content) == 20_000
        assert not response.from_cache
    assert cache.stats().too_large == 2
    assert (await api.get("/download", params={"size": 100})).status_code == 200
    assert (await api.get("/download", params={"size": 100})).from_cache
    assert cache.stats().too_large == 2


@pytest.mark.parametrize(
    ("server_options", "max_item_size", "size"),
    [
        ((), 2_000_000, 1_500_000),  # max_item_size above memcached's 1 MiB
        (("-I", "512k"), 1_000_000, 600_000),  # the default, above a server's -I 512k
    ],
)
async def test_an_entry_the_server_refuses_is_counted_and_the_cache_stays_available(
    make_client: Callable[..., Either],
    demo: DemoServer,
    clock: FakeClock,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
    server_options: tuple[str, ...],
    max_item_size: int,
    size: int,
) -> None:
    require_server("memcached", shutil.which("memcached") is not None)
    caplog.set_level(logging.WARNING)
    with MemcachedServer(*server_options) as server:
        cache = MemcachedCache(
            server.address, namespace=namespace, timeout=2.0, clock=clock,
            max_item_size=max_item_size,
        )  # fmt: skip
        config = CacheConfig(backend=cache, default_ttl=60)
        api = make_client(base_url=demo.url, clock=clock, cache=config)
        for _ in range(2):
            response = await api.get("/download", params={"size": size})  # SERVER_ERROR
            assert len(response.content) == size
            assert not response.from_cache
        assert cache.stats().too_large == 2
        assert not cache.degraded
        assert cache.health.status().last_error is None
        await api.get("/download", params={"size": 100})
        assert (await api.get("/download", params={"size": 100})).from_cache  # still caching
        cache.close()
    assert [record.name for record in caplog.records] == ["buttress.cache"]  # once, not degraded
    assert "refused to store an entry (object too large" in caplog.records[0].getMessage()


def test_a_server_out_of_memory_for_one_entry_refuses_it_and_stays_available(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymemcache.exceptions import MemcacheServerError

    cache = backend()
    request = Request("GET", "https://a.test/x", Headers({}))
    headers = Headers({"etag": ['"1"']})  # kept for revalidation_window
    cache.store("k" * 72, uuid.uuid4(), request, 200, headers, b"kept")

    def refuse(*args: Any, **kwargs: Any) -> Any:  # memcached started with -M, its memory full
        raise MemcacheServerError(b"out of memory storing object")

    monkeypatch.setattr(cache._client, "add", refuse)
    cache.store("j" * 72, uuid.uuid4(), request, 200, headers, b"refused")
    assert (cache.stats().too_large, cache.degraded) == (1, False)
    assert [entry.id for entry in cache.get_entries("k" * 72)]


async def test_two_credentials_never_share_an_entry_and_no_secret_is_stored(
    make_client: Callable[..., Either],
    demo: DemoServer,
    backend: Backend,
    clock: FakeClock,
    direct: Memcached,
    namespace: str,
    memcached_server: MemcachedServer,
) -> None:
    key = unique()

    def client_of(token: str) -> Either:
        return make_client(
            base_url=demo.url,
            clock=clock,
            cache=CacheConfig(backend=backend()),
            headers={"Authorization": f"Bearer {token}"},
        )

    alice, bob = client_of("alice-s3cret-token"), client_of("bob-s3cret-token")
    params = {"key": key, "api_key": "q-s3cret"}
    assert not (await alice.get("/cacheable", params=params)).from_cache
    assert not (await bob.get("/cacheable", params=params)).from_cache
    assert (await bob.get("/cacheable", params=params)).from_cache
    keys = entry_keys(memcached_server, namespace)
    assert len(keys) == 2
    values = direct.get_many(keys)
    assert all(b"s3cret" not in value for value in values.values())
    assert all("s3cret" not in name for name in keys)
    assert all(key.encode() in value for value in values.values())  # values are searched


async def test_invalidation_by_one_client_is_seen_by_the_other(
    make_client: Callable[..., Either], demo: DemoServer, backend: Backend, clock: FakeClock
) -> None:
    one = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend()))
    two = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend()))
    first, second = unique(), unique()
    for key in (first, second):
        await one.get("/cacheable", params={"key": key})
        assert (await two.get("/cacheable", params={"key": key})).from_cache

    # No key listing: a new generation orphans every entry of the namespace.
    assert one.client.cache.invalidate("/cacheable") == 0
    assert not (await two.get("/cacheable", params={"key": first})).from_cache
    assert not (await two.get("/cacheable", params={"key": second})).from_cache

    assert (await one.get("/cacheable", params={"key": first})).from_cache
    one.client.cache.invalidate_pattern("/cache*")
    assert not (await two.get("/cacheable", params={"key": first})).from_cache
    two.client.cache.clear()
    assert not (await one.get("/cacheable", params={"key": first})).from_cache


async def test_an_unsafe_request_invalidates_only_its_url_for_every_process(
    make_client: Callable[..., Either], demo: DemoServer, backend: Backend, clock: FakeClock
) -> None:
    def process() -> Either:
        config = CacheConfig(backend=backend(), default_ttl=60)
        return make_client(base_url=demo.url, clock=clock, cache=config)

    one, two = process(), process()
    for size in (10, 11):
        await one.get("/download", params={"size": size})
        assert (await two.get("/download", params={"size": size})).from_cache
    await two.post("/download", params={"size": 10})
    assert not (await one.get("/download", params={"size": 10})).from_cache
    assert (await one.get("/download", params={"size": 11})).from_cache


async def test_a_lost_generation_starts_anew_and_never_revives_old_entries(
    make_client: Callable[..., Either],
    demo: DemoServer,
    backend: Backend,
    clock: FakeClock,
    direct: Memcached,
    namespace: str,
) -> None:
    api = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=backend()))
    key = unique()
    await api.get("/cacheable", params={"key": key})
    generation = direct.get(f"{namespace}:gen")
    api.client.cache.clear()
    direct.delete(f"{namespace}:gen")  # evicted, say
    assert not (await api.get("/cacheable", params={"key": key})).from_cache
    assert direct.get(f"{namespace}:gen") not in (None, generation)
    assert (await api.get("/cacheable", params={"key": key})).from_cache


async def test_a_server_that_goes_away_makes_lookups_misses(
    make_client: Callable[..., Either],
    demo: DemoServer,
    own_memcached_server: MemcachedServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = MemcachedCache(own_memcached_server.address, timeout=2.0, clock=clock)
    api = make_client(base_url=demo.url, clock=clock, cache=CacheConfig(backend=cache))
    key = unique()
    await api.get("/cacheable", params={"key": key})
    assert (await api.get("/cacheable", params={"key": key})).from_cache

    caplog.set_level(logging.WARNING, "buttress.store")
    own_memcached_server.kill()
    for _ in range(2):
        response = await api.get("/cacheable", params={"key": key})
        assert response.status_code == 200
        assert not response.from_cache
    assert cache.degraded
    assert len(caplog.records) == 1
    assert "Memcached at 127.0.0.1" in caplog.records[0].getMessage()

    own_memcached_server.start()  # back, empty
    clock.advance(1.0)  # due a recheck
    await api.get("/cacheable", params={"key": key})
    assert cache.health.status().degraded is False
    assert (await api.get("/cacheable", params={"key": key})).from_cache
    cache.close()


async def test_on_store_error_raise_fails_the_request_with_a_store_error(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    with pytest.raises(buttress.StoreError, match=r"Memcached at 127\.0\.0\.1:1 failed"):
        MemcachedCache("127.0.0.1:1", on_store_error="raise")  # the salt is read at once
    cache = MemcachedCache("127.0.0.1:1", on_store_error="raise", salt=b"k" * 16)
    api = make_client(base_url=demo.url, cache=CacheConfig(backend=cache))
    with pytest.raises(buttress.StoreError, match=r"Memcached at 127\.0\.0\.1:1 failed"):
        await api.get("/cacheable", params={"key": unique()})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"server": "localhost"}, "host:port"),
        ({"namespace": "a b"}, "namespace"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "café"}, "ASCII"),  # pymemcache refuses every non-ASCII key
        ({"namespace": "é" * 64}, "ASCII"),
        ({"namespace": "x" * 65}, "1 to 64"),
        ({"timeout": 0}, "timeout"),
        ({"max_item_size": 0}, "max_item_size"),
        ({"revalidation_window": -1}, "revalidation_window"),
        ({"on_store_error": "ignore"}, "on_store_error"),
    ],
)
def test_bad_settings_raise_a_configuration_error(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        MemcachedCache(**{"salt": b"k" * 16, **arguments})


def test_without_the_memcached_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymemcache.client.base", None)  # an install without it
    with pytest.raises(buttress.ConfigurationError) as caught:
        MemcachedCache("127.0.0.1:1", salt=b"k" * 16)
    assert str(caught.value) == "MemcachedCache needs pymemcache: pip install 'buttress[memcached]'"
    assert isinstance(caught.value.__cause__, ImportError)


def test_the_repr_says_where_and_which_namespace() -> None:
    cache = MemcachedCache("127.0.0.1:1", namespace="billing", salt=b"k" * 16)
    assert repr(cache) == "MemcachedCache('127.0.0.1:1', namespace='billing')"
    assert repr(cache.health) == "StoreHealth('Memcached at 127.0.0.1:1', healthy)"


async def test_an_async_client_calls_memcached_from_worker_threads_only(
    demo: DemoServer, backend: Backend, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = backend()  # the salt is read now, synchronously, once
    threads: set[int] = set()
    run = cache._run

    def recorded(operation: Callable[[Any], Any]) -> Any:
        threads.add(threading.get_ident())
        return run(operation)

    monkeypatch.setattr(cache, "_run", recorded)
    config = CacheConfig(backend=cache, default_ttl=60)
    async with buttress.AsyncClient(base_url=demo.url, clock=clock, cache=config) as api:
        first = await api.get("/download", params={"size": 50_000})
        second = await api.get("/download", params={"size": 50_000})
        await api.post("/download", params={"size": 50_000})
    assert (first.from_cache, second.from_cache) == (False, True)
    assert threads
    assert threading.get_ident() not in threads  # the event loop's thread never waited
