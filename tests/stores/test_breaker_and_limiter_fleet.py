"""A shared rate limit and a shared circuit breaker on one store: one round trip for both.

Each client has its own ``RedisStore`` on one namespace (two clients are two
processes), calls the real demo API, and counts the requests that reach its
network; the Redis server's ``INFO commandstats`` counts the scripts it ran.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis

import buttress
from buttress._flow import call_at_once
from buttress.policies.breaker import Permit, Rejection
from buttress.stores.breaker import SharedCircuit
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import RedisServer
from tests.stores.fleet import scripts_run, time_to_live

pytestmark = pytest.mark.anyio


class Counted:
    """How many requests reached each client's network."""

    def __init__(self) -> None:
        self.sent = 0

    def transport(self, mode: str) -> httpx.HTTPTransport | httpx.AsyncHTTPTransport:
        counted = self

        class Network(httpx.HTTPTransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                counted.sent += 1
                return super().handle_request(request)

        class AsyncNetwork(httpx.AsyncHTTPTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                counted.sent += 1
                return await super().handle_async_request(request)

        return Network() if mode == "sync" else AsyncNetwork()


Make = Callable[..., Either]


@pytest.fixture
async def namespace() -> str:
    return f"both-{secrets.token_hex(6)}"


@pytest.fixture
async def fleet(
    make_client: Make, redis_server: RedisServer, demo: DemoServer, mode: str, namespace: str
) -> AsyncIterator[Callable[..., tuple[Either, Counted]]]:
    """``fleet(clock, limit=..., breaker=...)``: a client whose limiter and breaker share a store.

    ``limit=None`` or ``breaker=None`` leaves that layer out.
    """
    stores: list[buttress.RedisStore] = []

    def make(
        clock: FakeClock,
        limit: dict[str, Any] | None = None,
        breaker: dict[str, Any] | None = None,
        **options: Any,
    ) -> tuple[Either, Counted]:
        store = buttress.RedisStore(
            redis_server.url, namespace=namespace, clock=clock, timeout=2.0, send_margin=0.0
        )
        stores.append(store)
        counted = Counted()
        client = make_client(
            base_url=demo.url,
            rate_limit=None if limit is None else buttress.RateLimitConfig(store=store, **limit),
            circuit_breaker=(
                None
                if breaker is None
                else buttress.CircuitBreakerConfig(store=store, per_host=True, **breaker)
            ),
            retry=False,
            raise_for_status=False,
            clock=clock,
            transport=counted.transport(mode),
            **options,
        )
        return client, counted

    yield make
    for store in stores:
        await store.aclose()
        store.close()
    ttls = time_to_live(redis_server.url, namespace)
    assert -1 not in ttls.values(), ttls  # none lives forever (0: expiring as we read)


LIMIT = {"max_requests": 1000}


@pytest.mark.parametrize("pool_gate", [True, False], ids=["pool-gate", "no-pool-gate"])
async def test_a_request_through_both_costs_one_round_trip(
    fleet: Callable[..., tuple[Either, Counted]], redis_server: RedisServer, pool_gate: bool
) -> None:
    # Without a pool gate the limiter books in RateLimitTransport, else beneath the gate.
    options = {} if pool_gate else {"limits": httpx.Limits(max_connections=None)}
    client, counted = fleet(FakeClock(), LIMIT, {"failure_threshold": 3}, **options)
    assert (await client.get("/status/200")).status_code == 200  # loads the scripts
    before = scripts_run(redis_server.url)
    for _ in range(10):
        assert (await client.get("/status/200")).status_code == 200
    assert scripts_run(redis_server.url) - before == 10
    # Each request was judged by the fleet's circuit and booked its fleet-wide slot.
    breaker = client.client.circuit_breaker
    assert breaker is not None
    assert breaker.metrics.success_count == 11
    assert counted.sent == 11
    # A failure is recorded at once, as without the limiter: one more round trip.
    assert (await client.get("/status/500")).status_code == 500
    assert scripts_run(redis_server.url) - before == 10 + 2


async def test_each_alone_costs_one_round_trip_as_before(
    fleet: Callable[..., tuple[Either, Counted]], redis_server: RedisServer
) -> None:
    for limit, breaker in [(LIMIT, None), (None, {"failure_threshold": 3})]:
        client, _ = fleet(FakeClock(), limit, breaker)
        assert (await client.get("/status/200")).status_code == 200
        before = scripts_run(redis_server.url)
        for _ in range(5):
            assert (await client.get("/status/200")).status_code == 200
        assert scripts_run(redis_server.url) - before == 5


def budget_key(namespace: str) -> str:
    return f"buttress:{{{namespace}}}:ratelimit:main:global"


async def test_an_open_circuit_fails_fast_and_books_no_slot(
    fleet: Callable[..., tuple[Either, Counted]], redis_server: RedisServer, namespace: str
) -> None:
    clock = FakeClock()
    limit = {"max_requests": 1, "time_window": 10.0}
    breaker = {"failure_threshold": 1, "reset_timeout": 60.0}
    one, _ = fleet(clock, limit, breaker)
    two, counted = fleet(clock, limit, breaker)
    assert (await one.get("/status/500")).status_code == 500  # opens the fleet's circuit
    with redis.Redis.from_url(redis_server.url) as direct:
        booked = direct.get(budget_key(namespace))
        before = scripts_run(redis_server.url)
        with pytest.raises(buttress.CircuitBreakerOpenError, match="was not sent") as caught:
            await two.get("/status/200")
        assert scripts_run(redis_server.url) - before == 1  # asked once, booked nothing
        assert direct.get(budget_key(namespace)) == booked
    assert caught.value.retry_after == pytest.approx(60.0)
    assert counted.sent == 0
    assert clock.monotonic() == 0.0  # nobody waited for a slot
    breaker_two = two.client.circuit_breaker
    assert breaker_two is not None
    assert breaker_two.metrics.rejected_count == 1


async def test_a_half_open_trial_goes_with_its_booking_and_closes_the_circuit(
    fleet: Callable[..., tuple[Either, Counted]], redis_server: RedisServer
) -> None:
    clock = FakeClock()
    breaker = {"failure_threshold": 1, "reset_timeout": 10.0, "half_open_max_calls": 1}
    one, _ = fleet(clock, LIMIT, breaker)
    two, counted = fleet(clock, LIMIT, breaker)
    assert (await one.get("/status/500")).status_code == 500
    clock.advance(10.0)
    before = scripts_run(redis_server.url)
    assert (await two.get("/status/200")).status_code == 200  # the trial
    assert scripts_run(redis_server.url) - before == 2  # its lease with its slot, its result
    assert counted.sent == 1
    breaker_one = one.client.circuit_breaker
    assert breaker_one is not None
    assert (await one.get("/status/200")).status_code == 200
    assert breaker_one.state == "closed"  # the other process's trial closed it


async def test_an_open_circuits_fallback_answers_as_before(
    fleet: Callable[..., tuple[Either, Counted]],
) -> None:
    clock = FakeClock()
    fallback = lambda request: httpx.Response(503, text="later")  # noqa: E731
    breaker = {"failure_threshold": 1, "fallback": fallback}
    one, _ = fleet(clock, LIMIT, breaker)
    two, counted = fleet(clock, LIMIT, breaker)
    assert (await one.get("/status/500")).status_code == 500
    answer = await two.get("/status/200")
    assert (answer.status_code, answer.text) == (503, "later")
    assert counted.sent == 0


async def test_without_the_store_the_local_circuit_and_limit_decide(
    make_client: Make, demo: DemoServer, mode: str
) -> None:
    # Nothing listens on port 1: every store call fails at once.
    store = buttress.RedisStore("redis://127.0.0.1:1/0", namespace="away")
    counted = Counted()
    client = make_client(
        base_url=demo.url,
        rate_limit=buttress.RateLimitConfig(max_requests=100, store=store),
        circuit_breaker=buttress.CircuitBreakerConfig(failure_threshold=1, store=store),
        retry=False,
        raise_for_status=False,
        transport=counted.transport(mode),
    )
    assert (await client.get("/status/500")).status_code == 500  # this process's circuit opens
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get("/status/200")
    assert counted.sent == 1
    assert store.degraded
    store.close()


def test_a_circuit_on_another_store_is_asked_on_its_own_first(redis_server: RedisServer) -> None:
    names = [f"apart-{secrets.token_hex(6)}" for _ in range(2)]
    with (
        buttress.RedisStore(redis_server.url, namespace=names[0], timeout=2.0) as circuits,
        buttress.RedisStore(redis_server.url, namespace=names[1], timeout=2.0) as budgets,
    ):
        config = buttress.CircuitBreakerConfig(failure_threshold=1, store=circuits)
        circuit = buttress.CircuitBreaker(config).for_host("api.example.com")
        assert isinstance(circuit, SharedCircuit)
        limits = budgets.limits(buttress.RateLimitConfig(max_requests=2, store=budgets))
        request = httpx.Request("GET", "https://api.example.com/")
        acquisition = circuit.acquisition()
        assert call_at_once(limits.book(request, None, acquisition)) == 0.0
        assert isinstance(acquisition.verdict, Permit)
        call_at_once(circuit.record(acquisition.verdict, failure=True, duration=0.1))
        # Open now: the next request is rejected before anything is booked...
        rejected = circuit.acquisition()
        assert isinstance(call_at_once(limits.book(request, None, rejected)), Rejection)
        # ... so the second of the two slots is still free.
        assert call_at_once(limits.book(request, 0.0)) == 0.0
    # Each kept where it belongs: the circuit with the breaker's store, the budget apart.
    assert any(":breaker:" in key for key in time_to_live(redis_server.url, names[0]))
    assert not any(":breaker:" in key for key in time_to_live(redis_server.url, names[1]))
