"""Retry budgets shared through Redis: two clients on two stores are two processes.

The budget allows retries of ``ratio`` times the fleet's first attempts (no floor
here), so a process that has sent nothing may retry only thanks to the requests
of the others. A FakeClock times the scripts and the clients.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import buttress
from buttress._flow import call_at_once
from buttress.stores.budget import RedisRetryBudget
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import RedisServer
from tests.stores.fleet import scripts_run, time_to_live

pytestmark = pytest.mark.anyio

Fleet = Callable[..., list[Either]]
BUDGET = buttress.RetryBudgetConfig(ratio=0.1, min_per_second=0, window=10)


@pytest.fixture
async def fleet(
    make_client: Callable[..., Either], redis_server: RedisServer, demo: DemoServer
) -> AsyncIterator[Fleet]:
    """``fleet(n, clock, url=...)``: ``n`` clients sharing one retry budget through Redis."""
    namespace = f"test-{secrets.token_hex(6)}"
    stores: list[buttress.RedisStore] = []

    def make(count: int, clock: FakeClock, *, url: str = redis_server.url) -> list[Either]:
        clients = []
        for _ in range(count):
            store = buttress.RedisStore(url, namespace=namespace, clock=clock, timeout=2.0)
            stores.append(store)
            retry = buttress.RetryConfig(
                max_attempts=2, backoff_factor=0, budget=BUDGET, store=store
            )
            clients.append(
                make_client(base_url=demo.url, retry=retry, raise_for_status=False, clock=clock)
            )
        return clients

    make.namespace = namespace  # type: ignore[attr-defined]
    yield make
    for store in stores:
        await store.aclose()
        store.close()


async def attempts(client: Either, demo: DemoServer) -> int:
    """How many attempts one request to a failing endpoint made (2: it was retried)."""
    hits = demo.app.hits["/status/503"]
    assert (await client.get("/status/503")).status_code == 503
    return demo.app.hits["/status/503"] - hits


async def test_retries_spend_one_budget_fed_by_the_whole_fleet(
    fleet: Fleet, demo: DemoServer, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    first, second = fleet(2, clock)
    before = scripts_run(redis_server.url)
    for _ in range(20):
        assert (await first.get("/status/200")).status_code == 200
    assert scripts_run(redis_server.url) == before  # first attempts are kept a second...
    clock.advance(1.0)
    assert (await first.get("/status/200")).status_code == 200
    assert scripts_run(redis_server.url) == before + 1  # ...then sent, 21 in one call

    # 22 and 23 first attempts: 10% allows a first and a second retry, not a third.
    assert [await attempts(second, demo) for _ in range(3)] == [2, 2, 1]
    assert await attempts(first, demo) == 1  # the other process's retries spent it
    ttls = time_to_live(redis_server.url, fleet.namespace)  # type: ignore[attr-defined]
    assert list(ttls) == [f"buttress:{{{fleet.namespace}}}:retry-budget:127.0.0.1"]  # type: ignore[attr-defined]
    assert all(ttl > 0 for ttl in ttls.values())  # no key without an expiry


async def test_while_redis_is_away_each_process_keeps_its_own_budget(
    fleet: Fleet, demo: DemoServer, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    caplog.set_level(logging.WARNING, "buttress.store")
    (client,) = fleet(1, clock, url=own_redis_server.url)
    for _ in range(10):
        assert (await client.get("/status/200")).status_code == 200
    own_redis_server.kill()
    # Its own budget counted every first attempt: 11 allow one retry in ten, 12 not two.
    assert await attempts(client, demo) == 2
    assert await attempts(client, demo) == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "buttress.store"]
    assert len(warnings) == 1
    assert "using per-process state" in warnings[0]


async def test_on_store_error_raise_raises_before_a_request_never_after_it(
    make_client: Callable[..., Either],
    own_redis_server: RedisServer,
    demo: DemoServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    store = buttress.RedisStore(own_redis_server.url, clock=clock, on_store_error="raise")
    retry = buttress.RetryConfig(max_attempts=2, backoff_factor=0, budget=BUDGET, store=store)
    client = make_client(base_url=demo.url, retry=retry, raise_for_status=False, clock=clock)
    own_redis_server.kill()
    # The retry is asked for once the 503 is in hand: the error is logged, this
    # process's budget (one first attempt: no retry at 10%) decides, the 503 is returned.
    caplog.set_level(logging.WARNING, "buttress.retry")
    assert await attempts(client, demo) == 1
    assert "this process's own budget decides" in caplog.text
    clock.advance(1.0)  # the first attempts kept are due to be sent, before the next request
    with pytest.raises(buttress.StoreError, match="Redis at"):
        await client.get("/status/200")
    await store.aclose()
    store.close()


def test_a_client_that_meets_many_hosts_keeps_counts_only_for_those_in_use(
    redis_store: buttress.RedisStore,
) -> None:
    budget = RedisRetryBudget(redis_store, window=10)
    for number in range(10_000):
        call_at_once(budget.record(f"host-{number}.example", now=0.0))
    call_at_once(budget.record("busy.example", now=9.5))
    assert len(budget._pending) == 10_001  # none is older than the window yet
    call_at_once(budget.record("busy.example", now=10.0))  # forgets the hosts no longer called
    assert budget._pending == {"busy.example": (2, 9.5)}
    call_at_once(budget.record("busy.example", now=10.5))  # a second on: its three are sent
    assert budget._pending == {}
    sent: Any = redis_store.run(
        lambda client: client.hgetall(redis_store.key("retry-budget", "busy.example"))
    )
    assert sum(int(count) for count in sent.values()) == 3
