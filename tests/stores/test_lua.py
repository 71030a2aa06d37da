"""The Lua the stores' scripts share, against a real redis-server on its own clock.

The fleet tests time the scripts with a FakeClock; these use a store on the
system clock, so each script reads the Redis server's ``TIME``.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TypeVar

import httpx
import pytest
import redis

import buttress
from buttress._clock import SYSTEM_CLOCK
from buttress._flow import Effect, acall_at_once, call_at_once
from buttress.policies.breaker import Permit
from buttress.stores import RedisStore
from buttress.stores._replies import decoded
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

T = TypeVar("T")


def server_time(url: str) -> float:
    """The Redis server's ``TIME`` in epoch seconds, computed as the scripts compute it."""
    with redis.Redis.from_url(url) as direct:
        seconds, microseconds = direct.time()
    return int(seconds) + int(microseconds) / 1_000_000


async def ask(step: Generator[Effect, object, T], mode: str) -> T:
    """Run a store step blocking (``sync``) or awaiting (``async``)."""
    return call_at_once(step) if mode == "sync" else await acall_at_once(step)


async def test_every_script_on_the_system_clock_is_timed_by_the_redis_server(
    redis_server: RedisServer, redis_store: RedisStore, mode: str
) -> None:
    request = httpx.Request("GET", "https://api.example.com/users")
    breaker = buttress.CircuitBreakerConfig(failure_threshold=1, store=redis_store)
    circuit = redis_store.circuit(breaker, SYSTEM_CLOCK, name="api.example.com")
    budget = redis_store.retry_budget(ratio=0.1, min_per_second=1.0, window=10.0)
    limit = buttress.RateLimitConfig(
        strategy="sliding_window", max_requests=5, time_window=60.0, store=redis_store
    )
    limits = redis_store.limits(limit)

    before = server_time(redis_server.url)
    permit = await ask(circuit.acquire(), mode)
    assert isinstance(permit, Permit)
    await ask(circuit.record(permit, failure=True, duration=0.0), mode)
    assert await ask(budget.withdraw("api.example.com", now=0.0), mode)
    assert await ask(limits.book(request, max_wait=None), mode) == 0.0
    limited = httpx.Response(429, headers={"Retry-After": "30"})
    await ask(limits.pause(request, limited, None), mode)
    after = server_time(redis_server.url)
    await redis_store.aclose()

    with redis.Redis.from_url(redis_server.url) as direct:
        opened = int(decoded(direct.hget(redis_store.key("breaker", "api.example.com"), "opened")))
        retries = [
            decoded(field)
            for field in direct.hkeys(redis_store.key("retry-budget", "api.example.com"))
        ]
        pause_key, booked_key, sent_key = limits.keys(request)
        booked = float(decoded(direct.lindex(booked_key, 0)))
        sent = float(decoded(direct.lindex(sent_key, 0)))
        paused_until = float(decoded(direct.get(pause_key)))

    assert circuit.state == "open"
    # The breaker times in whole milliseconds (floored), the others in seconds.
    assert math.floor(before * 1000) <= opened <= after * 1000
    (taken,) = retries  # the retry taken, in the bucket of its whole second
    assert taken.startswith("t")
    assert math.floor(before) <= int(taken[1:]) <= after
    assert before <= booked == sent <= after
    assert before + 30 <= paused_until <= after + 30
