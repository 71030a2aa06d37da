"""The rate limit holds where requests leave, also when they waited for a connection.

Regression: the limiter admitted requests on schedule above the pool gate; with slow
responses they piled up at the gate, and when the connections came free they left
together, over the limit (65 sends in one window of 60 in tests/reliability/test_stress.py).

Against a real server on 127.0.0.1 that holds each response until the test lets it go
(:class:`~tests.servers.Turnstile`), on a fake clock: which requests wait where, and when,
is the test's to choose, without timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.policies.limits import Strategy
from buttress.testing import DemoServer, FakeClock
from buttress.transports import PoolGateTransport
from tests.conftest import Either
from tests.servers import Turnstile

pytestmark = pytest.mark.anyio

WINDOW = 10.0  # fake seconds
LIMIT = 2  # requests per window (sliding)
CONNECTIONS = 2


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network transport, noting on the fake clock when each request really left."""

    def __init__(self, inner: Any, clock: FakeClock) -> None:
        self._inner, self._clock = inner, clock
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def _note(self) -> None:
        with self._lock:
            self.sent.append(self._clock.monotonic())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._note()
        response: httpx.Response = self._inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._note()
        response: httpx.Response = await self._inner.handle_async_request(request)
        return response

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def turnstile() -> Iterator[tuple[Turnstile, DemoServer]]:
    app = Turnstile()
    with DemoServer(app) as server:
        yield app, server
        app.open()  # a failed test leaves no request waiting for the server to stop


def densest_window(sent: list[float]) -> int:
    """The most requests that left within any span shorter than the window."""
    times, most, start = sorted(sent), 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= WINDOW:
            start += 1
        most = max(most, end - start + 1)
    return most


def pool_gate(either: Either) -> PoolGateTransport:
    layer: Any = either.client._transport
    while not isinstance(layer, PoolGateTransport):
        layer = layer._inner
    return layer


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, which the requests' tasks or threads make true."""
    with anyio.fail_after(30):  # a bound for a busy machine, not a measurement
        while not condition():
            await anyio.sleep(0.001)


@pytest.mark.parametrize("strategy", ["sliding_window", "token_bucket"])
async def test_requests_that_waited_for_a_connection_leave_within_the_limit(
    make_client: Callable[..., Either],
    turnstile: tuple[Turnstile, DemoServer],
    mode: str,
    strategy: Strategy,
) -> None:
    app, server = turnstile
    clock = FakeClock()
    connections = httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()
    network = Recorder(connections, clock)
    either = make_client(
        base_url=server.url,
        transport=network,
        max_connections=CONNECTIONS,
        rate_limit=buttress.RateLimitConfig(
            strategy=strategy, max_requests=LIMIT, time_window=WINDOW
        ),
        retry=False,
        clock=clock,
    )
    gate = pool_gate(either)
    statuses: list[int] = []

    async def call(number: int) -> None:
        url = f"/turnstile/{number}"
        if either.is_async:
            response = await either.get(url)
        else:  # one thread per call, as threads sharing a Client do
            response = await anyio.to_thread.run_sync(either.client.get, url)
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        try:
            for number in range(CONNECTIONS):  # they take the connections; the server holds them
                group.start_soon(call, number)
            await until(lambda: len(app.waiting) == CONNECTIONS)
            # Each window, LIMIT more requests get a rate-limit slot at once and wait for a
            # connection: on schedule, had they left when their slots came.
            for waiting in (LIMIT, 2 * LIMIT):
                clock.advance(WINDOW)
                for number in range(CONNECTIONS + waiting - LIMIT, CONNECTIONS + waiting):
                    group.start_soon(call, number)
                await until(lambda waiting=waiting: gate.waiting == waiting)  # type: ignore[misc]
            app.open()  # every held response at once: the connections come free together
        except BaseException:
            app.open()  # the requests still on their way finish, and the test reports why
            raise

    assert statuses == [200] * (CONNECTIONS + 2 * LIMIT)
    # Released together, the requests still leave at most LIMIT per window: those over it
    # waited, with their connection, until sending kept the limit (before: 4 in one moment).
    assert densest_window(network.sent) <= LIMIT
    assert len(network.sent) == CONNECTIONS + 2 * LIMIT
