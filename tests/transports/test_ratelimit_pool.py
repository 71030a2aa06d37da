"""The rate limit holds where requests leave, also when they waited for a connection.

Regression: the limiter admitted requests on schedule above the pool gate; with slow
responses they piled up at the gate, and when the connections came free they left
together, over the limit (65 sends in one window of 60 in tests/reliability/test_stress.py).

Against a real server on 127.0.0.1 that holds each response until the test lets it go
(:class:`~tests.servers.Turnstile`), on a fake clock: which requests wait where, and when,
is the test's to choose, without timing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.policies.limits import Strategy
from buttress.testing import DemoServer, FakeClock
from buttress.transports import PoolGateTransport, stack
from tests.servers import Turnstile
from tests.testing.kinds import KINDS, client_of

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


def pool_gate(transport: Any) -> PoolGateTransport:
    while not isinstance(transport, PoolGateTransport):
        transport = transport._inner
    return transport


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, which the requests' tasks or threads make true."""
    with anyio.fail_after(30):  # a bound for a busy machine, not a measurement
        while not condition():
            await anyio.sleep(0.001)


class Scene:
    """A client of one kind with a pool of CONNECTIONS and a rate limit, on a fake clock.

    The facade builds its layers itself; a plain httpx client gets them from ``stack()``.
    """

    def __init__(self, kind: str, server: DemoServer, **limit: Any) -> None:
        self.clock = FakeClock()
        asynchronous = kind.endswith("async")
        connections = httpx.AsyncHTTPTransport() if asynchronous else httpx.HTTPTransport()
        self.network = Recorder(connections, self.clock)
        config = buttress.RateLimitConfig(max_requests=LIMIT, time_window=WINDOW, **limit)
        if kind.startswith("buttress"):
            self.caller = client_of(
                kind,
                self.network,
                server.url,
                max_connections=CONNECTIONS,
                rate_limit=config,
                clock=self.clock,
            )
            self.gate = pool_gate(self.caller.client._transport)
        else:
            layers = stack(self.network, rate_limit=config, pool_gate=CONNECTIONS, clock=self.clock)
            self.caller = client_of(kind, layers, server.url)
            self.gate = pool_gate(layers)
        self.asynchronous = asynchronous
        self.outcomes: dict[int, int | str] = {}  # status code, or the error's class name

    async def call(self, number: int, **kwargs: Any) -> None:
        url = f"/turnstile/{number}"
        try:
            if self.asynchronous:
                response = await self.caller.get(url, **kwargs)
            else:  # one thread per call, as threads sharing a client do
                response = await anyio.to_thread.run_sync(
                    lambda: self.caller.client.get(url, **kwargs)
                )
            self.outcomes[number] = response.status_code
        except buttress.TimeoutError as exc:
            self.outcomes[number] = type(exc).__name__

    async def pile_up_then_release(self, app: Turnstile, *windows: dict[str, Any]) -> None:
        """Fill the pool with held requests, then LIMIT more per window wait for a connection.

        ``windows`` gives each window's calls their keyword arguments (two windows of
        none by default). The windows' requests get their rate-limit slots on
        schedule, so, had they been counted as sent then, they would all leave at once
        when the held responses are released together, and the connections come free.
        """
        windows = windows or ({}, {})
        async with anyio.create_task_group() as group:
            try:
                for number in range(CONNECTIONS):  # the server holds them, with the connections
                    group.start_soon(self.call, number)
                await until(lambda: len(app.waiting) == CONNECTIONS)
                for window, kwargs in enumerate(windows, start=1):
                    self.clock.advance(WINDOW)
                    for number in range(
                        CONNECTIONS + (window - 1) * LIMIT, CONNECTIONS + window * LIMIT
                    ):
                        group.start_soon(functools.partial(self.call, number, **kwargs))
                    await until(lambda window=window: self.gate.waiting == window * LIMIT)  # type: ignore[misc]
                app.open()  # every held response at once
            except BaseException:
                app.open()  # the requests on their way finish, and the test reports why
                raise

    async def aclose(self) -> None:
        await self.caller.aclose()


@pytest.fixture
async def scenes() -> AsyncIterator[list[Scene]]:
    made: list[Scene] = []
    yield made
    for scene in made:
        await scene.aclose()


@pytest.fixture
def sliding(
    turnstile: tuple[Turnstile, DemoServer], scenes: list[Scene], kind: str
) -> tuple[Turnstile, Scene]:
    """The held server and a scene of the test's ``kind`` under a sliding-window limit."""
    app, server = turnstile
    scene = Scene(kind, server, strategy="sliding_window")
    scenes.append(scene)
    return app, scene


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strategy", ["sliding_window", "token_bucket"])
async def test_requests_that_waited_for_a_connection_leave_within_the_limit(
    turnstile: tuple[Turnstile, DemoServer], scenes: list[Scene], kind: str, strategy: Strategy
) -> None:
    app, server = turnstile
    # A token bucket's burst lets a full bucket send burst_size at once and then one per
    # interval: at most LIMIT in any window only when the burst is one (a steady pace).
    burst = {"burst_size": 1} if strategy == "token_bucket" else {}
    scene = Scene(kind, server, strategy=strategy, **burst)
    scenes.append(scene)
    await scene.pile_up_then_release(app)
    total = CONNECTIONS + 2 * LIMIT
    assert scene.outcomes == dict.fromkeys(range(total), 200)
    # Released together, the requests still leave at most LIMIT per window: those over it
    # waited, with their connection, until sending kept the limit (before: 4 in one moment).
    assert densest_window(scene.network.sent) <= LIMIT
    assert len(scene.network.sent) == total


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wait_beneath_the_gate_past_the_deadline_fails_at_once(
    sliding: tuple[Turnstile, Scene],
) -> None:
    app, scene = sliding
    # Each window's requests wait 10 s for a connection; the first window's may take 15 s
    # in all. The second's may take 5 s: waiting for the limit would take 10 s more.
    await scene.pile_up_then_release(app, within(15.0), within(5.0))
    # The held requests and one window's worth go; the other window's requests fail. Which
    # window's go is the order the requests reach the limit beneath the gate: with threads, a
    # request handed a connection may be scheduled after a later one handed the next (then
    # it finds the limit free, and the earlier one would wait past its deadline).
    held, late = range(CONNECTIONS), range(CONNECTIONS, CONNECTIONS + 2 * LIMIT)
    assert [scene.outcomes[number] for number in held] == [200] * CONNECTIONS
    assert sorted(map(str, (scene.outcomes[number] for number in late))) == (
        ["200"] * LIMIT + ["TimeoutError"] * LIMIT
    )
    if scene.asynchronous:  # tasks are woken in the order the gate handed them connections
        assert [scene.outcomes[number] for number in late] == [200] * LIMIT + [
            "TimeoutError"
        ] * LIMIT
    assert len(scene.network.sent) == CONNECTIONS + LIMIT  # failed before sending, not after
    assert scene.clock.sleeps == []  # at once: nothing slept towards the lost deadline


@pytest.mark.parametrize("kind", KINDS)
async def test_a_deadline_that_passes_while_waiting_for_a_connection_fails_unsent(
    sliding: tuple[Turnstile, Scene],
) -> None:
    app, scene = sliding
    # The first window's slots are free when the connections come, 10 s later: past their
    # 5 s deadline. The second window's requests have no deadline, and go.
    await scene.pile_up_then_release(app, within(5.0), {})
    first, second = (range(CONNECTIONS + n * LIMIT, CONNECTIONS + (n + 1) * LIMIT) for n in (0, 1))
    assert [scene.outcomes[number] for number in first] == ["TimeoutError"] * LIMIT
    assert [scene.outcomes[number] for number in second] == [200] * LIMIT
    assert len(scene.network.sent) == CONNECTIONS + LIMIT  # refused where they would leave
    assert scene.clock.sleeps == []  # and not counted as sent: the second window went at once


@pytest.mark.parametrize("kind", KINDS)
async def test_a_request_refused_when_its_wait_for_the_limit_reaches_its_deadline_is_not_sent(
    sliding: tuple[Turnstile, Scene],
) -> None:
    app, scene = sliding
    # The second window's requests (deadline 40 s) find the limit's slots at 30 s taken by
    # the first window's, wait for the next ones until their deadline and are refused there.
    # A refused request must not hold a slot: the others leave in the earliest slots left.
    await scene.pile_up_then_release(app, {}, within(20.0), {})
    late = range(CONNECTIONS, CONNECTIONS + 3 * LIMIT)
    second = range(CONNECTIONS + LIMIT, CONNECTIONS + 2 * LIMIT)
    refused = [number for number in late if scene.outcomes[number] == "TimeoutError"]
    assert refused
    assert set(refused) <= set(second)
    assert all(scene.outcomes[number] == 200 for number in late if number not in refused)
    sent = sorted(scene.network.sent)[CONNECTIONS:]
    assert densest_window(sent) <= LIMIT
    if scene.asynchronous:  # tasks are woken in the order the gate handed them connections
        assert sent == [30.0] * LIMIT + [40.0] * LIMIT
    # Threads give no such order, and the fake clock is one time for all of them: a thread
    # handed a connection may reach the limit after a later one (then one of the second
    # window's goes at 30 s, and may time out reading its response when another thread's
    # sleep moves the clock past its deadline), and two threads sleeping at once add their
    # sleeps up (one wakes a slot late). So with threads the limit is what must hold.


def within(seconds: float) -> dict[str, Any]:
    """The keyword arguments of a call whose total deadline is ``seconds``."""
    return {"extensions": buttress.options(total_timeout=seconds)}
