"""A client that meets many hosts forgets the idle ones' state, sync and async alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import buttress
from buttress.policies._idle import IDLE_AFTER
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import free_port

pytestmark = pytest.mark.anyio


async def test_idle_hosts_are_forgotten_and_a_down_host_is_remembered(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    clock = FakeClock()
    client = make_client(
        clock=clock,
        retry=False,
        circuit_breaker=buttress.CircuitBreakerConfig(
            per_host=True, failure_threshold=1, reset_timeout=IDLE_AFTER * 10
        ),
        rate_limit=buttress.RateLimitConfig(max_requests=100, time_window=1.0, scope="host"),
    )
    breaker, limiter = client.client.circuit_breaker, client.client.rate_limiter
    assert breaker is not None
    assert limiter is not None
    localhost = demo.url.replace("127.0.0.1", "localhost")
    assert (await client.get(f"{localhost}/users/1")).status_code == 200
    with pytest.raises(buttress.ConnectionError):  # nothing listens there: the circuit opens
        await client.get(f"http://127.0.0.2:{free_port()}/users/1")
    assert set(breaker.circuits) == {"localhost", "127.0.0.2"}

    clock.advance(IDLE_AFTER)
    assert (await client.get(f"{demo.url}/users/1")).status_code == 200

    assert set(breaker.circuits) == {"127.0.0.1", "127.0.0.2"}
    assert breaker.for_host("127.0.0.2").state == "open"
    assert set(limiter._policy._budgets) == {("main", demo.url.removeprefix("http://"))}
    assert breaker.metrics.success_count == 2  # the forgotten host's call still counts
    assert (await client.get(f"{localhost}/users/1")).status_code == 200
