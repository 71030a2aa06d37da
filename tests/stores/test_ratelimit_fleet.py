"""A rate limit shared through Redis: two clients stand for two processes of a fleet.

Each client has a RedisStore of its own on the same namespace (as two processes
would), and one FakeClock times both the stores' scripts and the clients' waits,
so the tests read off when each request left without sleeping. Every client,
sync and async, runs against the demo API and a real redis-server.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

import buttress
from buttress import EndpointLimit, RateLimitConfig, RateLimitError, RedisStore
from buttress.policies.limits import Strategy
from buttress.testing import DemoServer, FakeClock
from buttress.transports import RateLimiter, stack
from tests.conftest import Either
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

STRATEGIES = ["token_bucket", "fixed_window", "sliding_window"]


class Fleet:
    """Stores of one namespace on one server, timed by one fake clock; the clients they serve."""

    def __init__(self, url: str, make_client: Callable[..., Either], demo: DemoServer) -> None:
        self.url = url
        self.namespace = f"fleet-{secrets.token_hex(6)}"
        self.clock = FakeClock()
        self.demo = demo
        self._make_client = make_client
        self.stores: list[RedisStore] = []

    def store(self, **settings: Any) -> RedisStore:
        settings.setdefault("timeout", 2.0)  # a busy machine must not look like an outage
        # The fake clock moves only when told: no lag between a check and the send to allow
        # for, so the departures these tests expect are the exact ones.
        settings.setdefault("send_margin", 0.0)
        store = RedisStore(self.url, namespace=self.namespace, clock=self.clock, **settings)
        self.stores.append(store)
        return store

    def client(self, store: RedisStore | None = None, **limits: Any) -> Either:
        """A client, as another process would make it: its own store, the same limits."""
        config = RateLimitConfig(store=store or self.store(), **limits)
        return self._make_client(
            base_url=self.demo.url,
            rate_limit=config,
            retry=False,
            raise_for_status=False,
            clock=self.clock,
        )

    async def get(self, client: Either, path: str = "/users/1", **kwargs: Any) -> float:
        """Send a request; the fake time at which it left (nothing else moves the clock)."""
        response = await client.get(path, **kwargs)
        assert response.status_code < 500
        return self.clock.monotonic()

    def ttls(self) -> dict[str, int]:
        """Every key of the namespace, with its time to live in milliseconds (-1: none)."""
        with redis.Redis.from_url(self.url) as direct:
            found = direct.scan_iter(match=f"buttress:{{{self.namespace}}}:*")
            ttls = {key.decode(): direct.pttl(key) for key in found}
        return {key: ttl for key, ttl in ttls.items() if ttl != -2}  # -2: expired meanwhile

    async def close(self) -> None:
        for store in self.stores:
            await store.aclose()
            store.close()


def limiter(client: Either) -> RateLimiter:
    """The client's rate limiter (every client here has one)."""
    assert client.client.rate_limiter is not None
    return client.client.rate_limiter


@pytest.fixture
async def fleet(
    redis_server: RedisServer, make_client: Callable[..., Either], demo: DemoServer
) -> Any:
    fleet = Fleet(redis_server.url, make_client, demo)
    yield fleet
    await fleet.close()
    ttls = fleet.ttls()
    assert -1 not in ttls.values(), ttls  # none lives forever (0: expiring as we read)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_two_processes_share_one_global_limit(fleet: Fleet, strategy: Strategy) -> None:
    one, two = (
        fleet.client(max_requests=2, strategy=strategy),
        fleet.client(max_requests=2, strategy=strategy),
    )
    assert [await fleet.get(one), await fleet.get(one)] == [0.0, 0.0]
    # The other process finds the budget spent: it waits for the next slot.
    next_slot = 0.5 if strategy == "token_bucket" else 1.0
    assert await fleet.get(two) == pytest.approx(next_slot)
    assert fleet.ttls()  # the budget lives in Redis
    assert limiter(one).status().degraded is False


async def test_sends_keep_the_margin_a_request_needs_to_reach_the_network(fleet: Fleet) -> None:
    """A send lags its check a little: the fleet spaces its sends over a longer window."""
    margin = 0.25  # far more than a real lag, so the test reads it plainly
    limits: dict[str, Any] = {"max_requests": 2, "strategy": "sliding_window"}
    one = fleet.client(fleet.store(send_margin=margin), **limits)
    two = fleet.client(fleet.store(send_margin=margin), **limits)
    assert [await fleet.get(one), await fleet.get(two)] == [0.0, 0.0]
    fleet.clock.advance(1.0)  # the window has passed; its sends may have left up to 0.25 s late
    assert await fleet.get(one) == pytest.approx(1.0 + margin)
    assert await fleet.get(two) == pytest.approx(1.0 + margin)


def test_a_bad_send_margin_is_a_configuration_error() -> None:
    for bad in (-0.1, "soon", True):
        with pytest.raises(buttress.ConfigurationError, match="send_margin"):
            RedisStore("redis://127.0.0.1:1/0", send_margin=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_per_host_limit_is_shared_per_host(fleet: Fleet, strategy: Strategy) -> None:
    limits: dict[str, Any] = {"max_requests": 1, "strategy": strategy, "scope": "host"}
    one, two = fleet.client(**limits), fleet.client(**limits)
    other_host = fleet.demo.url.replace("127.0.0.1", "localhost")
    assert await fleet.get(one) == 0.0
    assert await fleet.get(two, other_host + "/users/1") == 0.0  # another host: its own budget
    assert await fleet.get(two) == pytest.approx(1.0)  # the same host: the budget one spent


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_endpoint_rules_are_shared_and_apply_only_to_their_paths(
    fleet: Fleet, strategy: Strategy
) -> None:
    rule = EndpointLimit(path="/users/*", max_requests=1, time_window=2.0, strategy=strategy)
    one, two = fleet.client(endpoints=[rule]), fleet.client(endpoints=[rule])
    assert await fleet.get(one, "/users/1") == 0.0
    assert await fleet.get(two, "/echo") == 0.0  # no rule for it, no main limit
    assert await fleet.get(two, "/users/2") == pytest.approx(2.0)


async def test_a_request_waits_for_every_budget_it_counts_against(fleet: Fleet) -> None:
    rule = EndpointLimit(path="/users/*", max_requests=1, time_window=3.0)
    limits: dict[str, Any] = {"max_requests": 2, "strategy": "fixed_window", "endpoints": [rule]}
    one, two = fleet.client(**limits), fleet.client(**limits)
    assert await fleet.get(one, "/users/1") == 0.0
    assert await fleet.get(two, "/echo") == 0.0  # the window's second request
    # The rule frees a slot at 3.0, when the main window (full until 1.0) allows too.
    assert await fleet.get(two, "/users/2") == pytest.approx(3.0)
    # /echo counted against the main limit only: the window from 3.0 has one slot left.
    assert await fleet.get(one, "/echo") == pytest.approx(3.0)
    assert await fleet.get(one, "/echo") == pytest.approx(4.0)


async def test_slots_are_served_in_booking_order_across_processes(fleet: Fleet) -> None:
    clients = [fleet.client(max_requests=1, burst_size=1) for _ in range(3)]
    times = [await fleet.get(client) for client in clients * 2]
    assert times == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])


class LateClock(FakeClock):
    """A fake clock whose next sleep, once armed, ends late, as on a busy machine."""

    def __init__(self) -> None:
        super().__init__()
        self.late = 0.0

    def sleep(self, seconds: float) -> None:
        late, self.late = self.late, 0.0
        super().sleep(seconds + late)


def densest(departures: list[float], window: float) -> int:
    """The most departures within any ``window`` seconds (each starting at a departure)."""
    return max(sum(start <= at < start + window for at in departures) for start in departures)


async def test_a_sleeper_that_wakes_late_does_not_put_a_window_over_the_limit(
    fleet: Fleet,
) -> None:
    fleet.clock = clock = LateClock()
    limits: dict[str, Any] = {"max_requests": 2, "time_window": 1.0, "burst_size": 1}
    one, two = fleet.client(**limits), fleet.client(**limits)
    departures = [await fleet.get(one)]
    clock.late = 0.6  # two's slot is at 0.5: it wakes at 1.1, with one's next slot due
    departures.append(await fleet.get(two))
    departures.append(await fleet.get(one))  # its slot (1.0) has passed: it goes at once
    # Booked at 1.6, it would leave 0.5 s after the late sleeper and the one that
    # went with it: three within a second. The sends leave room only at 2.1.
    departures.append(await fleet.get(two))
    assert departures == pytest.approx([0.0, 1.1, 1.1, 2.1])
    assert densest(departures, 1.0) == 2


async def test_a_late_sleeper_counts_in_the_fixed_window_it_is_sent_in(fleet: Fleet) -> None:
    fleet.clock = clock = LateClock()
    limits: dict[str, Any] = {"max_requests": 2, "time_window": 1.0, "strategy": "fixed_window"}
    one, two = fleet.client(**limits), fleet.client(**limits)
    departures = [await fleet.get(one), await fleet.get(one)]  # the window [0, 1) is full
    clock.late = 1.1  # two's slot opens the window [1, 2); it wakes in [2, 3)
    departures.append(await fleet.get(two))
    departures.append(await fleet.get(one))  # [2, 3) has booked nothing yet: it goes
    # Counted in the window it was booked in, the late one left a slot in [2, 3) for a
    # third request; sent in [2, 3), it fills it: the next waits for [3, 4).
    departures.append(await fleet.get(two))
    assert departures == pytest.approx([0.0, 0.0, 2.1, 2.1, 3.0])
    assert max(sum(start <= at < start + 1 for at in departures) for start in (0, 1, 2, 3)) == 2


@pytest.mark.parametrize("on_limit", ["raise", "return"])
async def test_a_refusal_books_nothing(fleet: Fleet, on_limit: str) -> None:
    one = fleet.client(max_requests=1, on_limit=on_limit)
    assert await fleet.get(one) == 0.0
    for _ in range(3):  # three other processes, each refused
        two = fleet.client(max_requests=1, on_limit=on_limit)
        if on_limit == "raise":
            with pytest.raises(RateLimitError, match="fleet-wide rate limit") as caught:
                await two.get("/users/1")
            assert caught.value.retry_after == pytest.approx(1.0)
        else:
            response = await two.get("/users/1")
            assert response.status_code == 429
            assert response.limited_by_client
    fleet.clock.advance(1.0)  # had a refusal booked a slot, this request would wait
    assert await fleet.get(one) == 1.0


async def test_queue_timeout_and_the_deadline_refuse_without_booking(fleet: Fleet) -> None:
    one = fleet.client(max_requests=1, time_window=10.0, queue_timeout=5.0)
    assert await fleet.get(one) == 0.0
    two = fleet.client(max_requests=1, time_window=10.0, queue_timeout=5.0)
    with pytest.raises(RateLimitError, match=r"exceeds queue_timeout=5\.0"):
        await two.get("/users/1")
    three = fleet.client(max_requests=1, time_window=10.0, queue_timeout=5.0)
    short = buttress.options(total_timeout=3.0)
    with pytest.raises(buttress.TimeoutError, match="outlast the request's deadline"):
        await three.get("/users/1", extensions=short)
    assert fleet.clock.monotonic() == 0.0  # nobody waited
    fleet.clock.advance(10.0)
    assert await fleet.get(one) == 10.0  # nothing was booked for the refused ones


async def test_a_servers_pause_seen_by_one_process_holds_the_fleet(fleet: Fleet) -> None:
    one, two = fleet.client(max_requests=100), fleet.client(max_requests=100)
    paused = await one.get("/status/429", params={"retry_after": "5"})
    assert paused.status_code == 429
    assert await fleet.get(two) == pytest.approx(5.0)  # two never saw the 429
    # No server pauses the fleet longer than max_server_pause.
    three = fleet.client(max_requests=100, max_server_pause=2.0)
    await three.get("/status/429", params={"retry_after": "3600"})
    assert await fleet.get(two) == pytest.approx(7.0)


async def test_none_remaining_until_a_reset_pauses_the_fleet_too(fleet: Fleet) -> None:
    one, two = fleet.client(max_requests=100), fleet.client(max_requests=100)
    key = secrets.token_hex(6)
    last = await one.get("/rate-limited", params={"key": key, "limit": 1, "window": 30})
    assert last.status_code == 200
    assert last.headers["x-ratelimit-remaining"] == "0"
    assert await fleet.get(two) == pytest.approx(30.0, abs=1.0)  # the demo rounds its reset


async def test_without_a_test_clock_the_redis_servers_clock_times_the_budget(
    redis_server: RedisServer, make_client: Callable[..., Either], demo: DemoServer
) -> None:
    namespace = f"fleet-{secrets.token_hex(6)}"
    stores = [RedisStore(redis_server.url, namespace=namespace, timeout=2.0) for _ in range(2)]
    one, two = (
        make_client(
            base_url=demo.url,
            rate_limit=RateLimitConfig(
                max_requests=1, time_window=60.0, on_limit="raise", store=store
            ),
            retry=False,
        )
        for store in stores
    )
    await one.get("/users/1")
    with pytest.raises(RateLimitError, match="fleet-wide") as caught:
        await two.get("/users/1")
    # The slot comes back 60 s after the first request by the server's clock; up to 10 s
    # of this test's own run may have passed meanwhile on a busy machine.
    assert caught.value.retry_after is not None
    assert 50.0 <= caught.value.retry_after <= 60.0
    for store in stores:
        await store.aclose()
        store.close()


async def test_reset_of_a_host_ends_its_shared_pause(fleet: Fleet) -> None:
    one, two = fleet.client(max_requests=100), fleet.client(max_requests=100)
    await one.get("/status/429", params={"retry_after": "30"})
    limiter(one).reset(fleet.demo.url)  # a URL names its host
    assert await fleet.get(two) == 0.0
    assert [key for key in fleet.ttls() if ":pause:" in key] == []


async def test_reset_clears_the_shared_budget_and_pause(fleet: Fleet) -> None:
    one, two = (
        fleet.client(max_requests=1, time_window=60.0),
        fleet.client(max_requests=1, time_window=60.0),
    )
    await one.get("/status/429", params={"retry_after": "30"})  # the budget spent, a pause
    assert fleet.ttls()
    limiter(one).reset()
    assert fleet.ttls() == {}
    assert await fleet.get(two) == 0.0


@pytest.fixture
async def own_fleet(
    own_redis_server: RedisServer, make_client: Callable[..., Either], demo: DemoServer
) -> Any:
    """A fleet on a redis-server of the test's own, to kill and restart."""
    fleet = Fleet(own_redis_server.url, make_client, demo)
    yield fleet
    await fleet.close()


async def test_without_the_store_each_process_keeps_its_share_until_it_is_back(
    own_fleet: Fleet, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = own_fleet
    one = fleet.client(fleet.store(degraded_share=0.5), max_requests=4, burst_size=1)
    two = fleet.client(fleet.store(degraded_share=0.5), max_requests=4, burst_size=1)
    assert [await fleet.get(one), await fleet.get(two)] == pytest.approx([0.0, 0.25])

    own_redis_server.kill()
    caplog.set_level(logging.WARNING, "buttress.store")
    # Each process alone now: half the limit (2/s, one every 0.5 s), no hang, no error.
    start = fleet.clock.monotonic()
    times = [await fleet.get(one) - start for _ in range(3)]
    assert times == pytest.approx([0.0, 0.5, 1.0])
    assert limiter(one).status().degraded is True
    assert "using per-process state" in caplog.text

    own_redis_server.start()
    # The store is asked again after its recheck interval. An asyncio client of some
    # redis-py releases (5.0) first tries the connection the restart closed, and falls back
    # once more: a second recheck later every store is back.
    for _ in range(2):
        fleet.clock.advance(1.0)
        for store in fleet.stores:
            await store.arun(lambda client: client.ping(), lambda client: client.ping())
    assert not any(store.degraded for store in fleet.stores)
    start = fleet.clock.monotonic()
    await fleet.get(one)
    assert limiter(one).status().degraded is False
    # Shared again: the other process books after the slot this one took.
    assert await fleet.get(two) - start == pytest.approx(0.25)
    assert -1 not in fleet.ttls().values()


async def test_without_a_share_the_local_limit_stands_in(
    own_fleet: Fleet, own_redis_server: RedisServer
) -> None:
    fleet = own_fleet
    one = fleet.client(max_requests=2, burst_size=1)
    own_redis_server.kill()
    times = [await fleet.get(one) for _ in range(3)]
    assert times == pytest.approx([0.0, 0.5, 1.0])
    assert limiter(one).status().degraded is True


async def test_on_store_error_raise_fails_the_request_with_a_store_error(
    own_fleet: Fleet, own_redis_server: RedisServer
) -> None:
    fleet = own_fleet
    one = fleet.client(fleet.store(on_store_error="raise"), max_requests=2)
    own_redis_server.kill()
    with pytest.raises(buttress.StoreError):
        await one.get("/users/1")


async def test_a_plain_transport_without_a_pool_gate_shares_the_limit_too(
    fleet: Fleet, mode: str
) -> None:
    """``stack()`` without a pool gate books the fleet's slot in the RateLimitTransport."""
    config = RateLimitConfig(max_requests=1, store=fleet.store())
    other = RateLimitConfig(max_requests=1, store=fleet.store())
    clients: list[Any] = []
    for limit in (config, other):
        if mode == "sync":
            transport: Any = stack(httpx.HTTPTransport(), rate_limit=limit, clock=fleet.clock)
            clients.append(Either(httpx.Client(transport=transport, base_url=fleet.demo.url)))
        else:
            transport = stack(httpx.AsyncHTTPTransport(), rate_limit=limit, clock=fleet.clock)
            clients.append(Either(httpx.AsyncClient(transport=transport, base_url=fleet.demo.url)))
    assert "PoolGate" not in repr(clients[0].client._transport)
    assert [await fleet.get(client) for client in clients] == pytest.approx([0.0, 1.0])
    for client in clients:
        await client.aclose()


def test_a_config_with_a_store_keeps_its_repr_free_of_credentials() -> None:
    store = RedisStore("redis://user:pa55word@127.0.0.1:1/0", namespace="billing")
    config = RateLimitConfig(max_requests=5, store=store)
    assert "pa55word" not in repr(config)
    assert "namespace='billing'" in repr(config)
    assert config == RateLimitConfig(max_requests=5, store=store)
    assert config != RateLimitConfig(max_requests=5)
    with pytest.raises(buttress.ConfigurationError, match="store"):
        RateLimitConfig(max_requests=5, store="redis://127.0.0.1:6379")  # type: ignore[arg-type]
