"""Circuit breakers shared through Redis: two clients on two stores are two processes.

Each client has its own ``RedisStore`` (its own connections) on one namespace, as
two workers of a fleet would, and calls the real demo API; a FakeClock times both
the scripts (``store.time_argument()``) and the clients, so reset timeouts and
lease expiries pass without sleeping.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress._flow import call_at_once
from buttress.policies.breaker import Permit
from buttress.stores.breaker import SharedCircuit
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import RedisServer
from tests.stores.fleet import scripts_run, time_to_live

pytestmark = pytest.mark.anyio

Fleet = Callable[..., list[Either]]


def network(mode: str, before: Callable[[], object]) -> Any:
    """The real network transport, calling ``before()`` as each request goes out."""

    class Network(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            before()
            return super().handle_request(request)

    class AsyncNetwork(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            before()
            return await super().handle_async_request(request)

    return Network() if mode == "sync" else AsyncNetwork()


@pytest.fixture
async def fleet(
    make_client: Callable[..., Either], redis_server: RedisServer, demo: DemoServer, mode: str
) -> AsyncIterator[Callable[..., list[Either]]]:
    """``fleet(n, clock, url=..., **config)``: ``n`` clients sharing one breaker through Redis.

    ``store_options`` go to each ``RedisStore``; ``before_send`` is called as each
    request goes out to the network, under the breaker.
    """
    namespace = f"test-{secrets.token_hex(6)}"
    stores: list[buttress.RedisStore] = []

    def make(
        count: int,
        clock: FakeClock,
        *,
        url: str = redis_server.url,
        store_options: dict[str, Any] | None = None,
        before_send: Callable[[], object] = lambda: None,
        **settings: Any,
    ) -> list[Either]:
        clients = []
        for _ in range(count):
            options = {"timeout": 2.0, **(store_options or {})}
            store = buttress.RedisStore(url, namespace=namespace, clock=clock, **options)
            stores.append(store)
            config = buttress.CircuitBreakerConfig(per_host=True, store=store, **settings)
            clients.append(
                make_client(
                    base_url=demo.url,
                    circuit_breaker=config,
                    retry=False,
                    raise_for_status=False,
                    clock=clock,
                    transport=network(mode, before_send),
                )
            )
        return clients

    yield make
    for store in stores:
        await store.aclose()
        store.close()


def keys_of(store_url: str, client: Either) -> dict[str, int]:
    """Every key of the client's namespace, with its time to live in milliseconds."""
    store = breaker_of(client).config.store
    assert isinstance(store, buttress.RedisStore)
    return time_to_live(store_url, store.namespace)


def breaker_of(either: Either) -> buttress.CircuitBreaker:
    breaker = either.client.circuit_breaker
    assert breaker is not None
    return breaker


def circuit_of(either: Either, host: str = "127.0.0.1") -> SharedCircuit:
    circuit = breaker_of(either).for_host(host)
    assert isinstance(circuit, SharedCircuit)
    return circuit


async def test_one_process_opens_the_circuit_and_the_others_fail_fast(
    fleet: Fleet, demo: DemoServer, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    first, second = fleet(2, clock, failure_threshold=2, success_threshold=1, reset_timeout=10)
    assert (await second.get("/status/200")).status_code == 200
    assert (await first.get("/status/503")).status_code == 503
    assert breaker_of(first).metrics.consecutive_failures == 1  # the fleet's
    assert (await first.get("/status/503")).status_code == 503

    hits = demo.app.hits["/status/200"]
    with pytest.raises(buttress.CircuitBreakerOpenError) as caught:
        await second.get("/status/200")
    assert demo.app.hits["/status/200"] == hits  # failed fast: nothing sent
    assert caught.value.retry_after == pytest.approx(10)
    assert breaker_of(second).state == "open"
    changes = breaker_of(second).metrics.state_changes
    assert [(c.from_state, c.to_state, c.reason) for c in changes] == [
        ("closed", "open", "changed by another process")
    ]

    clock.advance(10)  # half-open fleet-wide: the second process's trial closes it for all
    assert (await second.get("/status/200")).status_code == 200
    assert breaker_of(second).state == "closed"
    assert (await first.get("/status/200")).status_code == 200
    assert breaker_of(first).state == "closed"
    ttls = keys_of(redis_server.url, first)
    assert ttls  # the circuit's hash (its leases and window were deleted on closing)
    assert all(ttl > 0 for ttl in ttls.values()), ttls  # no key without an expiry


async def test_half_open_trials_are_limited_fleet_wide_and_a_dead_holders_lease_expires(
    fleet: Fleet, demo: DemoServer, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    first, second = fleet(2, clock, failure_threshold=1, success_threshold=2, reset_timeout=10)
    assert (await first.get("/status/500")).status_code == 500
    clock.advance(10)

    trial = call_at_once(circuit_of(first).acquire())  # the first process's trial call, in flight
    assert isinstance(trial, Permit)
    assert trial.half_open
    with pytest.raises(buttress.CircuitBreakerOpenError) as caught:
        await second.get("/status/200")  # half_open_max_calls=1, taken by the other process
    assert caught.value.retry_after == 0
    assert all(ttl > 0 for ttl in keys_of(redis_server.url, first).values())

    call_at_once(circuit_of(first).record(trial, failure=False, duration=0.01))  # lease given back
    assert (await second.get("/status/200")).status_code == 200  # the next trial: closed now
    assert breaker_of(second).state == "closed"

    # A process that dies holding a lease blocks recovery for one reset_timeout, no longer.
    assert (await second.get("/status/500")).status_code == 500
    clock.advance(10)
    abandoned = call_at_once(circuit_of(first).acquire())
    assert isinstance(abandoned, Permit)
    assert abandoned.half_open
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await second.get("/status/200")
    clock.advance(10)
    assert (await second.get("/status/200")).status_code == 200
    assert (await second.get("/status/200")).status_code == 200
    assert breaker_of(second).state == "closed"


async def test_successes_kept_by_one_process_count_in_the_fleets_failure_rate(
    fleet: Fleet, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    first, second = fleet(
        2, clock, failure_threshold=100, failure_rate_threshold=0.6, minimum_calls=5
    )
    for _ in range(2):
        assert (await first.get("/status/200")).status_code == 200  # kept, not yet sent
    for _ in range(2):
        assert (await second.get("/status/500")).status_code == 500
    # Sent with the first process's failure: 2 successes + 3 failures = 60%.
    assert (await first.get("/status/500")).status_code == 500
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await second.get("/status/200")
    reasons = [c.reason for c in breaker_of(first).metrics.state_changes]
    assert reasons == ["failure rate 3/5 reached 60%"]
    assert all(ttl > 0 for ttl in keys_of(redis_server.url, first).values())


async def test_slow_successes_are_shared_at_once_and_open_the_circuit_by_their_rate(
    fleet: Fleet,
) -> None:
    clock = FakeClock()
    slow = lambda: clock.advance(3.0)  # noqa: E731 - each call takes 3 s on the test's clock
    settings = {"slow_call_duration": 2.0, "slow_call_rate_threshold": 0.5, "minimum_calls": 2}
    (first,) = fleet(1, clock, before_send=slow, **settings)
    (second,) = fleet(1, clock, **settings)
    assert (await first.get("/status/200")).status_code == 200  # slow: sent at once
    # A fast success is kept (it cannot raise a rate); a failure is sent: 1 slow in 2 calls.
    assert (await second.get("/status/500")).status_code == 500
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await second.get("/status/200")
    reasons = [c.reason for c in breaker_of(second).metrics.state_changes]
    assert reasons == ["slow call rate 1/2 reached 50%"]
    assert breaker_of(first).metrics.slow_call_count == 1


async def test_a_closed_circuit_costs_one_round_trip_per_successful_request(
    fleet: Fleet, redis_server: RedisServer
) -> None:
    (client,) = fleet(1, FakeClock(), failure_rate_threshold=0.5)

    assert (await client.get("/status/200")).status_code == 200  # loads the script
    before = scripts_run(redis_server.url)
    for _ in range(10):
        assert (await client.get("/status/200")).status_code == 200
    assert scripts_run(redis_server.url) - before == 10
    for _ in range(3):
        assert (await client.get("/status/500")).status_code == 500
    assert scripts_run(redis_server.url) - before == 10 + 3 * 2  # a failure is recorded at once


async def test_forcing_the_breaker_forces_the_fleet(fleet: Fleet) -> None:
    clock = FakeClock()
    first, second = fleet(2, clock)
    assert (await second.get("/status/200")).status_code == 200
    breaker_of(first).for_host("127.0.0.1").force_open()
    with pytest.raises(buttress.CircuitBreakerOpenError) as caught:
        await second.get("/status/200")
    assert caught.value.retry_after is None
    breaker_of(first).reset()
    assert (await second.get("/status/200")).status_code == 200

    breaker_of(first).force_open()  # a host this process has not called yet
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await first.get("http://localhost:1/never-sent")
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await second.get("http://localhost:1/never-sent")


async def test_when_redis_is_killed_each_process_falls_back_to_its_own_circuit(
    fleet: Fleet, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, "buttress.store")
    (client,) = fleet(1, clock, url=own_redis_server.url, failure_threshold=2)
    assert (await client.get("/status/500")).status_code == 500  # one shared failure

    own_redis_server.kill()
    assert (await client.get("/status/500")).status_code == 500  # its record falls back
    assert (await client.get("/status/500")).status_code == 500  # this process's own circuit
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get("/status/200")
    assert breaker_of(client).state == "open"
    warnings = [r for r in caplog.records if r.name == "buttress.store"]
    assert len(warnings) == 1
    assert "per-process state" in warnings[0].getMessage()

    own_redis_server.start()  # back, empty: the fleet's circuit is closed again
    clock.advance(1.0)  # the store's recheck
    assert (await client.get("/status/200")).status_code == 200
    assert breaker_of(client).state == "closed"


async def test_a_frozen_redis_costs_one_timeout_then_the_process_decides_alone(
    fleet: Fleet, own_redis_server: RedisServer
) -> None:
    clock = FakeClock()
    (client,) = fleet(
        1, clock, url=own_redis_server.url, store_options={"timeout": 0.2}, failure_threshold=1
    )
    assert (await client.get("/status/200")).status_code == 200
    own_redis_server.pause()  # accepts connections, never answers
    try:
        assert (await client.get("/status/500")).status_code == 500  # one timeout, then alone
        assert circuit_of(client).store.degraded
        with pytest.raises(buttress.CircuitBreakerOpenError):  # no store call: not yet due
            await client.get("/status/200")
    finally:
        own_redis_server.resume()


async def test_on_store_error_raise_makes_an_unreachable_store_an_error(
    fleet: Fleet, own_redis_server: RedisServer
) -> None:
    (client,) = fleet(
        1, FakeClock(), url=own_redis_server.url, store_options={"on_store_error": "raise"}
    )
    own_redis_server.kill()
    with pytest.raises(buttress.StoreError, match="Redis at"):
        await client.get("/status/200")


async def test_a_store_lost_after_the_response_never_takes_its_place(
    make_client: Callable[..., Either],
    own_redis_server: RedisServer,
    demo: DemoServer,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # on_store_error="raise" fails a call before it is sent; once the call has its
    # response, a failed record is counted by the process and the response returned.
    store = buttress.RedisStore(own_redis_server.url, namespace="lost", on_store_error="raise")
    config = buttress.CircuitBreakerConfig(failure_threshold=1, store=store)

    either = make_client(
        base_url=demo.url,
        circuit_breaker=config,
        retry=False,
        raise_for_status=False,
        transport=network(mode, own_redis_server.kill),  # after the acquire, before the record
    )
    caplog.set_level(logging.WARNING, "buttress.circuit_breaker")
    assert (await either.get("/status/500")).status_code == 500
    assert "counted by this process only" in caplog.text
    assert circuit_of(either, "*").local.state == "open"  # this process's circuit counted it
    assert breaker_of(either).metrics.failure_count == 1  # once, not also as a shared call
    with pytest.raises(buttress.StoreError):  # the next call, before it is sent, raises
        await either.get("/status/200")
    await store.aclose()
    store.close()


async def test_kept_successes_that_reach_minimum_calls_open_the_circuit_with_the_next_call(
    fleet: Fleet, demo: DemoServer
) -> None:
    clock = FakeClock()
    settings = {"failure_threshold": 100, "failure_rate_threshold": 0.5, "minimum_calls": 4}
    first, second = fleet(2, clock, **settings)
    for _ in range(3):
        assert (await first.get("/status/500")).status_code == 500  # 3 calls: too few
    assert (await second.get("/status/200")).status_code == 200  # the 4th, kept: 3/4 failed
    hits = demo.app.hits["/status/200"]
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await second.get("/status/200")  # its acquire sends the success, which opens it
    assert demo.app.hits["/status/200"] == hits
    reasons = [c.reason for c in breaker_of(first).metrics.state_changes]
    assert reasons == []  # the first process has not called since
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await first.get("/status/200")
    reasons = [c.reason for c in breaker_of(second).metrics.state_changes]
    assert reasons == ["failure rate 3/4 reached 50%"]
