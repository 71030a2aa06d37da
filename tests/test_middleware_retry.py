"""RetryMiddleware: the retry layer's flow run around ``call_next``, on both clients."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

import buttress
from buttress import RetryConfig, RetryMiddleware
from buttress.testing import DemoServer, FakeClock
from buttress.transports.middleware import CallNext
from tests.conftest import Either

pytestmark = pytest.mark.anyio

NO_JITTER = RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none", budget=None)


def _client(
    make_client: Callable[..., Either], demo: DemoServer, middleware: RetryMiddleware
) -> Either:
    # retry=False: only the middleware retries, the retry layer below sends once.
    return make_client(base_url=demo.url, retry=False, middleware=[middleware])


async def test_retries_a_flaky_endpoint_until_it_succeeds(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    client = _client(make_client, demo, RetryMiddleware(NO_JITTER, clock=clock))

    response = await client.get(f"/flaky?key=rm-ok-{mode}&failures=2")

    assert response.json() == {"ok": True, "attempts": 3}
    assert response.extensions["buttress.attempts"] == 3
    assert clock.sleeps == [0.5, 1.0]  # the retry policy's backoff, slept on our clock


async def test_gives_up_after_max_attempts_with_the_status_error(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    client = _client(make_client, demo, RetryMiddleware(NO_JITTER, clock=clock))

    with pytest.raises(buttress.ServerError) as raised:
        await client.get(f"/flaky?key=rm-fail-{mode}&failures=5")

    assert raised.value.response.status_code == 503
    assert "failure 3 of 5" in str(raised.value)  # three attempts in all, then the error
    assert clock.sleeps == [0.5, 1.0]


async def test_post_without_idempotency_key_is_not_retried(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    client = _client(make_client, demo, RetryMiddleware(NO_JITTER, clock=clock))

    with pytest.raises(buttress.ServerError):
        await client.post(f"/flaky?key=rm-post-{mode}&failures=1")
    assert clock.sleeps == []

    keyed = await client.post(
        f"/flaky?key=rm-post-key-{mode}&failures=1", headers={"Idempotency-Key": "k-1"}
    )
    assert keyed.json() == {"ok": True, "attempts": 2}
    assert clock.sleeps == [0.5]


async def test_retry_after_is_honoured(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    client = _client(make_client, demo, RetryMiddleware(NO_JITTER, clock=clock))

    response = await client.get(f"/flaky?key=rm-after-{mode}&failures=1&status=429&retry_after=7")

    assert response.json() == {"ok": True, "attempts": 2}
    assert clock.sleeps == [7.0]


async def test_the_client_clock_does_not_sleep(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    client_clock, clock = FakeClock(), FakeClock()
    client = make_client(
        base_url=demo.url,
        retry=False,
        clock=client_clock,
        middleware=[RetryMiddleware(NO_JITTER, clock=clock)],
    )

    await client.get(f"/flaky?key=rm-clock-{mode}&failures=1")

    assert (client_clock.sleeps, clock.sleeps) == ([], [0.5])


def test_repr_and_default_config() -> None:
    middleware = RetryMiddleware()
    assert middleware.config == RetryConfig()
    assert repr(middleware) == "RetryMiddleware(max_attempts=3)"


async def test_call_next_says_whether_it_blocks(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    seen: list[bool] = []

    async def spy(request: httpx.Request, call_next: CallNext) -> httpx.Response:
        seen.append(getattr(call_next, "is_async", True))
        return await call_next(request)

    client = make_client(base_url=demo.url, middleware=[spy])
    await client.get("/users/1")

    assert seen == [client.is_async]
