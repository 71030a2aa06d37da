"""RedisStore on a three-node Redis Cluster: calls and multi-key scripts, sync and async."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster as BlockingRedisCluster

import buttress
from buttress._flow import Flow, adrive, drive
from buttress.stores import UNAVAILABLE, RedisStore
from buttress.testing import FakeClock
from tests.servers import RedisCluster, free_port

pytestmark = pytest.mark.anyio

# Touches three keys of one namespace at once: only possible when they share a slot.
MOVE = """
local taken = redis.call('DECRBY', KEYS[1], ARGV[1])
local given = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[1])
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, 60000) end
return {taken, given, redis.call('LLEN', KEYS[3])}
"""


@pytest.fixture
def direct(redis_cluster: RedisCluster) -> Iterator[Any]:
    """A plain cluster client of the test's own, to look at what the store wrote."""
    client = BlockingRedisCluster.from_url(redis_cluster.url)
    yield client
    client.close()


def namespace_per_node(direct: Any, prefix: str) -> list[str]:
    """One namespace whose keys live on each node, so every node serves a script."""
    found: dict[str, str] = {}
    for n in range(1000):
        namespace = f"{prefix}-{n}"
        node = direct.get_node_from_key(f"buttress:{{{namespace}}}:x").name
        found.setdefault(node, namespace)
        if len(found) == len(direct.get_primaries()):
            return list(found.values())
    raise AssertionError("a node serves none of a thousand namespaces")


def moving_flow(store: RedisStore) -> Flow:
    """A flow running the three-key script twice through the store."""
    script = store.script(MOVE)
    keys = [store.key("from"), store.key("to"), store.key("log")]
    first = yield from script(keys, [2])
    second = yield from script(keys, [3])
    return httpx.Response(200, json=[first, second])


async def run(flow: Flow, mode: str) -> httpx.Response:
    inner = httpx.MockTransport(lambda request: httpx.Response(204))
    if mode == "sync":
        return drive(flow, inner, FakeClock())
    return await adrive(flow, inner, FakeClock())


def assert_written(direct: Any, store: RedisStore) -> None:
    assert direct.get(store.key("from")) == b"-5"
    assert direct.get(store.key("to")) == b"5"
    assert direct.lrange(store.key("log"), 0, -1) == [b"2", b"3"]
    keys = direct.keys(
        f"buttress:{{{store.namespace}}}:*", target_nodes=BlockingRedisCluster.ALL_NODES
    )
    assert len(keys) == 3
    assert all(0 < direct.pttl(key) <= 60000 for key in keys)


async def test_scripts_over_several_keys_run_on_every_node(
    redis_cluster: RedisCluster, direct: Any, mode: str
) -> None:
    for namespace in namespace_per_node(direct, f"cluster-{mode}"):
        async with RedisStore(
            redis_cluster.url, cluster=True, namespace=namespace, timeout=2.0
        ) as store:
            response = await run(moving_flow(store), mode)
            assert response.json() == [[-2, 2, 1], [-5, 5, 2]]
            assert not store.degraded
        assert_written(direct, store)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_given_cluster_client_of_either_kind_serves_both(
    redis_cluster: RedisCluster, direct: Any, kind: str
) -> None:
    given: Any = (BlockingRedisCluster if kind == "sync" else AsyncRedisCluster)(
        host="127.0.0.1", port=redis_cluster.nodes[1].port
    )
    store = RedisStore(client=given, namespace=f"given-{kind}", timeout=2.0)
    # One node, whichever the client knows first: the store finds the others from it.
    ports = "|".join(str(node.port) for node in redis_cluster.nodes)
    assert re.fullmatch(
        rf"RedisStore\('127\.0\.0\.1:({ports})', namespace='given-{kind}', cluster=True\)",
        repr(store),
    )
    await run(moving_flow(store), "sync")
    await run(moving_flow(store), "async")
    assert direct.get(store.key("to")) == b"10"
    await store.aclose()
    # The given client is still open: the store closes only the clients it made.
    if kind == "sync":
        assert given.ping() is True
        given.close()
    else:
        assert await given.ping() is True
        await given.aclose()


async def test_an_unreachable_cluster_falls_back_or_raises(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisStore(url, cluster=True, timeout=0.5)
    caplog.set_level(logging.WARNING, "buttress.store")
    assert await run_ping(store, mode) is UNAVAILABLE
    assert store.degraded
    assert [r.getMessage() for r in caplog.records] == [
        f"Redis Cluster at {url} is unavailable ({store.status().last_error}); "
        "using per-process state until it is back"
    ]
    raising = RedisStore(url, cluster=True, timeout=0.5, on_store_error="raise")
    with pytest.raises(buttress.StoreError, match=re.escape(f"Redis Cluster at {url} failed")):
        await run_ping(raising, mode)


async def run_ping(store: RedisStore, mode: str) -> object:
    if mode == "sync":
        return store.run(lambda client: client.ping())
    return await store.arun(lambda client: client.ping(), lambda client: client.ping())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"url": "redis://127.0.0.1:7000/1", "cluster": True}, "database 0"),
        ({"url": "unix:///tmp/redis.sock", "cluster": True}, "database 0"),
        ({"client": redis.Redis(), "cluster": True}, "RedisCluster client"),
    ],
)
def test_bad_cluster_settings_raise_a_configuration_error(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        RedisStore(**arguments)


async def test_a_shared_limiter_asks_the_breaker_in_its_call_on_a_cluster(
    redis_cluster: RedisCluster, make_client: Any, demo: Any, mode: str
) -> None:
    # The booking and the circuit's acquire run as one script over both's keys: one slot.
    async with RedisStore(
        redis_cluster.url, cluster=True, namespace=f"both-{secrets.token_hex(6)}", timeout=2.0
    ) as store:
        client = make_client(
            base_url=demo.url,
            rate_limit=buttress.RateLimitConfig(max_requests=100, store=store),
            circuit_breaker=buttress.CircuitBreakerConfig(failure_threshold=1, store=store),
            retry=False,
            raise_for_status=False,
        )
        assert (await client.get("/users/1")).status_code == 200
        assert (await client.get("/status/500")).status_code == 500  # opens the circuit
        with pytest.raises(buttress.CircuitBreakerOpenError):
            await client.get("/users/1")
        assert not store.degraded
