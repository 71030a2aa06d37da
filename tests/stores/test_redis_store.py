"""RedisStore against a real redis-server: calls from flows, keys, health, faults."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from typing import Any

import httpx
import pytest
import redis

import buttress
from buttress._flow import Flow, adrive, drive
from buttress.stores import UNAVAILABLE, RedisStore
from buttress.testing import FakeClock
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

COUNTER = """
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], 60000)
return value
"""


def counting_flow(store: RedisStore, key: str) -> Flow:
    """A flow that asks the store twice, then answers with what it was told."""
    script = store.script(COUNTER)
    first = yield from script([key], [2])
    second = yield from script([key], [3])
    return httpx.Response(200, json=[first, second])


async def run(flow: Flow, mode: str) -> httpx.Response:
    """The flow through the driver of ``mode``: blocking, or awaiting."""
    inner = httpx.MockTransport(lambda request: httpx.Response(204))
    if mode == "sync":
        return drive(flow, inner, FakeClock())
    return await adrive(flow, inner, FakeClock())


async def test_a_flow_asks_the_store_through_its_driver(redis_store: RedisStore, mode: str) -> None:
    key = redis_store.key("counter")
    response = await run(counting_flow(redis_store, key), mode)
    await redis_store.aclose()
    assert response.json() == [2, 5]
    with redis.Redis.from_url(redis_store._url or "") as direct:
        assert direct.get(key) == b"5"
        assert 0 < direct.pttl(key) <= 60000  # every key written carries an expiry


def test_keys_share_one_cluster_slot_and_quote_their_parts() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", namespace="billing")
    assert store.key("limit", "api.example.com") == "buttress:{billing}:limit:api.example.com"
    assert store.key("host", "[::1]:8080") == "buttress:{billing}:host:%5B%3A%3A1%5D%3A8080"


def test_the_repr_and_messages_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisStore("redis://user:pa55word@127.0.0.1:1/0", namespace="n")
    assert "pa55word" not in repr(store)
    assert repr(store) == "RedisStore('redis://127.0.0.1:1/0', namespace='n')"
    with caplog.at_level(logging.WARNING, "buttress.store"):
        assert store.run(lambda client: client.ping()) is UNAVAILABLE
    assert caplog.records
    assert "pa55word" not in caplog.text
    assert "pa55word" not in str(store.status().last_error)
    raising = RedisStore("redis://user:pa55word@127.0.0.1:1/0", on_store_error="raise")
    with pytest.raises(buttress.StoreError) as caught:
        raising.run(lambda client: client.ping())
    assert "pa55word" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_a_password_in_the_url_query_is_not_shown_either() -> None:
    store = RedisStore("redis://127.0.0.1:1/0?password=pa55word&socket_timeout=1", namespace="n")
    assert repr(store) == "RedisStore('redis://127.0.0.1:1/0', namespace='n')"
    assert "pa55word" not in store.health.name


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs a url or a client"),
        ({"url": "redis://x", "client": object()}, "needs a url or a client"),
        ({"client": object()}, "must be a redis.Redis"),
        ({"url": "redis://x", "namespace": ""}, "namespace"),
        ({"url": "redis://x", "namespace": "a{b}"}, "namespace"),
        ({"url": "redis://x", "timeout": 0}, "timeout"),
        ({"url": "redis://x", "timeout": "fast"}, "timeout"),
        ({"url": "redis://x", "degraded_share": 0}, "degraded_share"),
        ({"url": "redis://x", "degraded_share": 1.5}, "degraded_share"),
        ({"url": "redis://x", "on_store_error": "ignore"}, "on_store_error"),
    ],
)
def test_bad_settings_raise_a_configuration_error(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        RedisStore(**arguments)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://:s3cretPW@127.0.0.1:notaport/0", "host and port cannot be read"),
        ("redis://:s3cretPW@127.0.0.1:99999/0", "host and port cannot be read"),
        ("redis://:s3c/retPW@127.0.0.1:6379/0", "host and port cannot be read"),  # unencoded /
        ("http://:s3cretPW@127.0.0.1:6379/0", "must be redis://"),
        ("redis:s3cretPW@127.0.0.1", "must be redis://"),
        ("redis://:s3cretPW@127.0.0.1:6379/x", "database of a RedisStore url is a number"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?socket_timeout=abc", "option 'socket_timeout'"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?db=x", "option 'db'"),
        ("redis://:s3cretPW@127.0.0.1:6379/0?colour=blue", "option 'colour'"),
        ("rediss://:s3cretPW@127.0.0.1:6379/0?ssl_cert_reqs=bogus", "query option"),
        ("unix://", "socket's path"),
    ],
)
def test_a_url_redis_py_would_refuse_is_refused_at_once_without_the_password(
    url: str, message: str
) -> None:
    for on_store_error in ("fallback", "raise"):
        with pytest.raises(buttress.ConfigurationError, match=message) as caught:
            RedisStore(url, namespace="n", on_store_error=on_store_error)
        shown = "".join(traceback.format_exception(caught.value))
        assert "s3cretPW" not in shown
        assert "retPW" not in shown


async def test_a_url_with_options_redis_py_reads_is_accepted_without_connecting(
    redis_server: RedisServer, mode: str
) -> None:
    direct = redis.Redis(port=redis_server.port)  # one connection, for both counts

    def connections() -> int:
        return int(direct.info("stats")["total_connections_received"])

    before = connections()
    options = "socket_timeout=2&socket_connect_timeout=2&health_check_interval=30"
    store = RedisStore(f"{redis_server.url}?{options}", namespace="options", timeout=2.0)
    assert connections() == before  # parsed, not connected
    direct.close()
    if mode == "sync":
        assert store.run(lambda client: client.ping()) is True
    else:
        assert await store.arun(lambda client: client.ping(), lambda client: client.ping())
    assert not store.degraded
    await store.aclose()


def test_without_the_redis_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # an install without redis-py
    with pytest.raises(buttress.ConfigurationError) as caught:
        RedisStore(url="redis://127.0.0.1:1")
    assert str(caught.value) == "RedisStore needs redis-py: pip install 'buttress[redis]'"
    assert isinstance(caught.value.__cause__, ImportError)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_given_client_of_either_kind_serves_both(
    redis_server: RedisServer, kind: str
) -> None:
    given: Any = (redis.Redis if kind == "sync" else redis.asyncio.Redis)(
        host="127.0.0.1", port=redis_server.port
    )
    store = RedisStore(client=given, namespace="given")
    assert store.run(lambda client: client.ping()) is True
    assert await store.arun(lambda client: client.ping(), lambda client: client.ping()) is True
    assert repr(store) == f"RedisStore('127.0.0.1:{redis_server.port}/0', namespace='given')"
    await store.aclose()
    store.close()
    await given.aclose() if kind == "async" else given.close()


async def test_a_store_that_goes_away_falls_back_and_says_so_once(
    own_redis_server: RedisServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = RedisStore(own_redis_server.url, namespace="away", timeout=2.0, clock=clock)
    key = store.key("counter")
    caplog.set_level(logging.INFO, "buttress.store")
    assert (await run(counting_flow(store, key), mode)).json() == [2, 5]

    own_redis_server.kill()
    for _ in range(3):  # the first call finds it gone; the others do not even try
        assert await ask_counter(store, key, mode) is UNAVAILABLE
    assert store.degraded
    assert store.status().failed_calls == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "using per-process state" in warnings[0].getMessage()

    own_redis_server.start()  # same port, empty: the counter starts again
    assert await ask_counter(store, key, mode) is UNAVAILABLE  # not yet due a recheck
    clock.advance(1.0)
    assert await ask_counter(store, key, mode) == 1
    assert store.status().degraded is False
    assert store.status().failed_calls == 0
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1
    assert "is back" in infos[0].getMessage()
    await store.aclose()
    store.close()


async def ask_counter(store: RedisStore, key: str, mode: str) -> object:
    def blocking(client: Any) -> object:
        return client.incr(key)

    async def awaiting(client: Any) -> object:
        return await client.incr(key)

    if mode == "sync":
        return store.run(blocking)
    return await store.arun(awaiting, blocking)


async def test_a_frozen_store_costs_one_timeout_not_a_hang(
    own_redis_server: RedisServer, mode: str
) -> None:
    store = RedisStore(own_redis_server.url, namespace="frozen", timeout=0.2)
    assert await ask_counter(store, store.key("n"), mode) == 1
    own_redis_server.pause()
    try:
        assert await ask_counter(store, store.key("n"), mode) is UNAVAILABLE
        assert store.degraded
        assert "Timeout" in str(store.status().last_error)
    finally:
        own_redis_server.resume()
    await store.aclose()
    store.close()


async def test_on_store_error_raise_raises_a_store_error_each_time(mode: str) -> None:
    store = RedisStore("redis://127.0.0.1:1/0", on_store_error="raise")
    for _ in range(2):
        with pytest.raises(buttress.StoreError, match=r"Redis at redis://127\.0\.0\.1:1/0 failed"):
            await ask_counter(store, store.key("n"), mode)
    assert isinstance(buttress.StoreError("x"), buttress.ClientError)


def test_a_store_refuses_to_be_pickled_with_the_way_to_share_it() -> None:
    import pickle

    store = RedisStore("redis://user:pa55word@127.0.0.1:1/0", namespace="n")
    config = buttress.RateLimitConfig(max_requests=10, store=store)
    for value in (store, config):
        with pytest.raises(TypeError, match="make one in each process") as caught:
            pickle.dumps(value)
        assert "pa55word" not in str(caught.value)


def test_the_store_gives_each_policy_its_shared_half(redis_store: RedisStore) -> None:
    from buttress.policies.store import SharedStore

    assert isinstance(redis_store, SharedStore)
    breaker = buttress.CircuitBreaker(
        buttress.CircuitBreakerConfig(per_host=True, store=redis_store)
    )
    assert isinstance(breaker.for_host("api.example.com"), buttress.stores.SharedCircuit)
    from buttress.transports import RateLimiter

    limiter = RateLimiter(buttress.RateLimitConfig(max_requests=5, store=redis_store))
    assert isinstance(limiter.shared, buttress.stores.SharedLimits)
    budget = buttress.RetryBudgetConfig().create(redis_store)
    assert isinstance(budget, buttress.stores.RedisRetryBudget)


def connected_clients(server: RedisServer, expected: int) -> int:
    """How many clients the server has, polled until it is ``expected`` (10 s at most).

    A socket a client closed takes the server a moment to notice: poll, never sleep a guess.
    """
    with redis.Redis(port=server.port) as direct:
        deadline = time.monotonic() + 10
        while True:
            count = int(direct.info("clients")["connected_clients"]) - 1  # not this one
            if count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.01)


def test_an_event_loop_that_ends_closes_its_connections(own_redis_server: RedisServer) -> None:
    store = RedisStore(own_redis_server.url, namespace="loops", timeout=2.0)

    async def ping() -> object:
        return await store.arun(lambda client: client.ping(), lambda client: client.ping())

    for _ in range(3):  # one event loop each, none of them closing the store
        assert asyncio.run(ping()) is True
    assert connected_clients(own_redis_server, 0) == 0
    assert store.run(lambda client: client.ping()) is True  # the blocking client still works
    store.close()
    assert connected_clients(own_redis_server, 0) == 0


async def test_the_store_is_a_context_manager_closing_what_it_made(
    own_redis_server: RedisServer,
) -> None:
    async with RedisStore(own_redis_server.url, namespace="ctx", timeout=2.0) as store:
        assert await store.arun(lambda c: c.ping(), lambda c: c.ping()) is True
        assert store.run(lambda client: client.ping()) is True
        assert connected_clients(own_redis_server, 2) == 2
    assert connected_clients(own_redis_server, 0) == 0
    # Closed is not broken: a later call connects again.
    with store:
        assert store.run(lambda client: client.ping()) is True
    assert connected_clients(own_redis_server, 0) == 0


def test_a_script_runs_on_every_event_loop_in_turn(own_redis_server: RedisServer) -> None:
    store = RedisStore(own_redis_server.url, namespace="loops", timeout=2.0)
    key = store.key("counter")
    inner = httpx.MockTransport(lambda request: httpx.Response(204))
    answers = [
        asyncio.run(adrive(counting_flow(store, key), inner, FakeClock())).json()
        for _ in range(5)  # each loop's client closes with it; the next gets a new one
    ]
    assert answers == [[2 + 5 * n, 5 + 5 * n] for n in range(5)]
    assert drive(counting_flow(store, key), inner, FakeClock()).json() == [27, 30]
    store.close()
