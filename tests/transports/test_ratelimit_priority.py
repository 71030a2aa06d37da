"""The rate limiter's queue by priority, with real concurrency: 1,000 tasks or threads wait
on a clock whose time moves only when every one of them is asleep (a discrete-event run), so
the order they are sent in is exact and the test takes no real time."""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress import RateLimitConfig
from buttress.policies.priority import Priority
from buttress.testing import DemoServer, FakeClock
from buttress.transports import RateLimitTransport

from ..conftest import Either
from ..policies.test_ratelimit_priority import expected_order
from .test_gate_priority import Recording

pytestmark = pytest.mark.anyio

ONE_PER_SECOND = RateLimitConfig(max_requests=1, time_window=1.0, burst_size=1, queue_timeout=None)


class SteppedClock(FakeClock):
    """A fake clock whose sleepers, threads or tasks, wake only when :meth:`step` says so.

    :meth:`run` lets every caller go until each sleeps or is done, then moves time to the
    earliest wake-up and wakes whoever is due, and so on until all are done.
    """

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()
        self._due: list[tuple[float, int, threading.Event | anyio.Event]] = []
        self._order = itertools.count()
        self.asleep_or_done = 0

    def _sleep_until(self, seconds: float, wake: threading.Event | anyio.Event) -> None:
        with self.changed:
            due = self.monotonic() + max(seconds, 0.0)
            heapq.heappush(self._due, (due, next(self._order), wake))
            self.asleep_or_done += 1
            self.changed.notify_all()

    def sleep(self, seconds: float) -> None:
        wake = threading.Event()
        self._sleep_until(seconds, wake)
        assert wake.wait(timeout=60)

    async def asleep(self, seconds: float) -> None:
        wake = anyio.Event()
        self._sleep_until(seconds, wake)
        await wake.wait()

    def done(self) -> None:
        with self.changed:
            self.asleep_or_done += 1
            self.changed.notify_all()

    def step(self) -> None:
        """Move time to the earliest wake-up and wake every sleeper due then."""
        with self.changed:
            moment = self._due[0][0]
            self.advance(max(0.0, moment - self.monotonic()))
            woken = []
            while self._due and self._due[0][0] <= moment:
                woken.append(heapq.heappop(self._due)[2])
                self.asleep_or_done -= 1  # running from now on, until it sleeps again
        for wake in woken:
            wake.set()

    async def run_tasks(self, calls: list[Callable[[], Awaitable[Any]]]) -> None:
        async def run(call: Callable[[], Awaitable[Any]]) -> None:
            await call()
            self.done()

        async with anyio.create_task_group() as group:
            for call in calls:
                group.start_soon(run, call)
            while True:
                while self.asleep_or_done < len(calls):
                    await anyio.sleep(0)  # a woken task runs until it sleeps or is done
                if not self._due:
                    return
                self.step()

    def run_threads(self, calls: list[Callable[[], Any]]) -> None:
        def run(call: Callable[[], Any]) -> None:
            call()
            self.done()

        threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
        for thread in threads:
            thread.start()
        while True:
            with self.changed:
                assert self.changed.wait_for(lambda: self.asleep_or_done == len(calls), 60)
                if not self._due:
                    break
            self.step()
        for thread in threads:
            thread.join(timeout=60)


def schedule(count: int) -> list[tuple[float, Priority | None]]:
    """``count`` arrivals at random moments over 100 s, each with a random priority."""
    rng = random.Random(count)
    moments = sorted(rng.uniform(0.0, 100.0) for _ in range(count))
    return [(moment, rng.choice(["high", "normal", "low", None, -4, 5])) for moment in moments]


class Network(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers at once, recording which request came when."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seen: list[int] = []
        self.moments: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(int(request.url.params["n"]))
        self.moments.append(self.clock.monotonic())
        return httpx.Response(200)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)


@pytest.mark.parametrize("kind", ["tasks", "threads"])
async def test_a_thousand_waiting_callers_go_by_priority_then_arrival_with_ageing(
    kind: str,
) -> None:
    arrivals = schedule(1000)
    clock = SteppedClock()
    network = Network(clock)
    transport = RateLimitTransport(network, ONE_PER_SECOND, clock=clock)
    if kind == "tasks":
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

            def arrive(
                n: int, at: float, priority: Priority | None
            ) -> Callable[[], Awaitable[Any]]:
                async def call() -> None:
                    await clock.asleep(at)
                    await client.get(f"/?n={n}", extensions=buttress.options(priority=priority))

                return call

            await clock.run_tasks([arrive(n, *arrival) for n, arrival in enumerate(arrivals)])
    else:
        with httpx.Client(transport=transport, base_url="http://api") as sync_client:

            def arrive_sync(n: int, at: float, priority: Priority | None) -> Callable[[], Any]:
                def call() -> None:
                    clock.sleep(at)
                    sync_client.get(f"/?n={n}", extensions=buttress.options(priority=priority))

                return call

            clock.run_threads([arrive_sync(n, *arrival) for n, arrival in enumerate(arrivals)])
    assert network.seen == expected_order(arrivals, 1.0)
    # One a second from the first arrival on: nobody passed was woken too late.
    first = arrivals[0][0]
    assert network.moments == [pytest.approx(first + n) for n in range(1000)]
    assert transport.limiter.status().queued == 0


async def test_a_request_passed_beyond_its_deadline_times_out_and_frees_its_slot() -> None:
    clock = SteppedClock()
    network = Network(clock)
    transport = RateLimitTransport(network, ONE_PER_SECOND, clock=clock)
    outcomes: dict[int, str] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

        def arrive(n: int, at: float, priority: Priority, total: float | None = None) -> Any:
            async def call() -> None:
                await clock.asleep(at)
                options = buttress.options(priority=priority, total_timeout=total)
                try:
                    await client.get(f"/?n={n}", extensions=options)
                    outcomes[n] = "sent"
                except buttress.TimeoutError as error:
                    outcomes[n] = str(error)

            return call

        await clock.run_tasks(
            [
                arrive(0, 0.0, "normal"),  # goes at once
                arrive(1, 0.1, "low", total=1.5),  # booked for t=1, its deadline t=1.6
                arrive(2, 0.2, "high"),  # takes t=1: the low moves to t=2
                arrive(3, 0.3, "normal"),  # takes t=2: the low moves to t=3, too late
                arrive(4, 2.5, "normal"),  # gets t=3, which the low gave back
            ]
        )
    assert "slot came" in outcomes.pop(1)  # woken at t=1, told of t=3: fails at once
    assert outcomes == dict.fromkeys([0, 2, 3, 4], "sent")
    assert network.seen == [0, 2, 3, 4]
    assert network.moments == [0.0, 1.0, 2.0, 3.0]
    assert transport.limiter.status().queued == 0


# --- through the facade, against the demo API -------------------------------------------------


async def test_clients_pace_requests_by_priority(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = SteppedClock()
    network = Recording(httpx.AsyncHTTPTransport() if mode != "sync" else httpx.HTTPTransport())
    either = make_client(
        base_url=demo.url, transport=network, rate_limit=ONE_PER_SECOND, clock=clock, retry=False
    )
    # A normal request goes at t=0; a low, two normals, a high, a 2 and 24 more normals queue
    # behind it. At t=25.5 a high comes: the low has waited past the two levels between them.
    arrivals: list[tuple[float, Priority]] = [
        (0.0, "normal"),
        (0.1, "low"),
        (0.2, "normal"),
        (0.3, "normal"),
        (0.4, "high"),
        (0.5, 2),
        *((0.6 + n * 0.01, "normal") for n in range(24)),
        (25.5, "high"),
    ]

    def arrive(n: int, at: float, priority: Priority) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            if either.is_async:
                await clock.asleep(at)
            else:
                clock.sleep(at)
            response = await either.get("/users/1", params={"n": n}, priority=priority)
            assert response.status_code == 200

        return call

    calls = [arrive(n, *arrival) for n, arrival in enumerate(arrivals)]
    if either.is_async:
        await clock.run_tasks(calls)
    else:
        clock.run_threads([functools.partial(anyio.run, call) for call in calls])
    order = [int(n) for n in network.seen if n is not None]
    assert order == expected_order(arrivals, 1.0)
    assert order[:5] == [0, 5, 4, 2, 3]
    assert order[-2:] == [1, 30]  # the aged low before the late high
