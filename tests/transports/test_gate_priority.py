"""The pool gate by priority: waiting requests go highest level first, first come first served
within a level, and a waiting request gains a level every AGEING seconds (fake clock)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.policies.priority import AGEING, Priority, level
from buttress.testing import DemoServer, FakeClock
from buttress.transports import PoolGateTransport

from ..conftest import Either

pytestmark = pytest.mark.anyio


def eventually(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, which other threads make true without notifying anyone."""
    for _ in range(30_000):  # 30 s at most, for a busy machine
        if condition():
            return
        time.sleep(0.001)
    raise AssertionError("the condition never became true")


def arrivals(count: int) -> list[tuple[float, Priority | None]]:
    """``count`` requests ~0.1 s apart (100 s for 1,000: far past every level's ageing).

    0.0999 s: no two of them differ by a whole number of levels' ageing, which would make
    their order a matter of float rounding.
    """
    rng = random.Random(count)
    return [(0.0999, rng.choice(["high", "normal", "low", None, -7, 8])) for _ in range(count)]


def expected(schedule: list[tuple[float, Priority | None]]) -> list[int]:
    """The order to serve requests that all wait: an independent model.

    When the place frees up, the request whose level, plus one for every AGEING seconds
    it has waited, is highest goes first; among equals, the first to arrive.
    """
    moments = list(itertools.accumulate(after for after, _ in schedule))
    freed = moments[-1]

    def urgency(n: int) -> tuple[float, int]:
        return (level(schedule[n][1]) + (freed - moments[n]) / AGEING, -n)

    return sorted(range(len(schedule)), key=urgency, reverse=True)


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body read as it streams: its request keeps its place in the gate until closed."""

    def __iter__(self) -> Iterator[bytes]:
        yield b"ok"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"ok"


class Network(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers at once, recording the order requests come through the gate."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(int(request.url.params.get("n", "-1")))
        return httpx.Response(200, stream=Body())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._answer(request)


def gated() -> tuple[PoolGateTransport, Network, FakeClock]:
    clock, network = FakeClock(), Network()
    return PoolGateTransport(network, max_in_flight=1, clock=clock), network, clock


async def test_a_thousand_waiting_tasks_go_by_priority_then_arrival_with_ageing() -> None:
    schedule = arrivals(1000)
    gate, network, clock = gated()
    async with httpx.AsyncClient(transport=gate, base_url="http://api") as client:
        holder = await client.send(client.build_request("GET", "/hold"), stream=True)
        async with anyio.create_task_group() as group:
            for n, (after, priority) in enumerate(schedule):
                clock.advance(after)
                extensions = buttress.options(priority=priority)
                group.start_soon(functools.partial(client.get, f"/?n={n}", extensions=extensions))
                while gate.waiting <= n:
                    await anyio.sleep(0)
            await holder.aclose()  # frees the place: each request then hands it on
    assert network.seen == [-1, *expected(schedule)]
    assert gate.waiting == 0


def test_a_thousand_waiting_threads_go_by_priority_then_arrival_with_ageing() -> None:
    schedule = arrivals(1000)
    gate, network, clock = gated()
    with httpx.Client(transport=gate, base_url="http://api") as client:
        holder = client.send(client.build_request("GET", "/hold"), stream=True)
        threads = []
        for n, (after, priority) in enumerate(schedule):
            clock.advance(after)
            thread = threading.Thread(
                target=client.get,
                args=(f"/?n={n}",),
                kwargs={"extensions": buttress.options(priority=priority)},
                daemon=True,
            )
            thread.start()
            threads.append(thread)
            eventually(lambda n=n: gate.waiting > n)  # type: ignore[misc]
        holder.close()
        for thread in threads:
            thread.join(timeout=30)
    assert network.seen == [-1, *expected(schedule)]


# --- through the facade, against the demo API -------------------------------------------------


class Recording(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The real network beneath a client, recording the order requests reach it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seen: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.params.get("n"))
        response: httpx.Response = self._inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.url.params.get("n"))
        response: httpx.Response = await self._inner.handle_async_request(request)
        return response

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


def gate_of(client: Any) -> PoolGateTransport:
    layer = client._transport
    while not isinstance(layer, PoolGateTransport):
        layer = layer._inner
    return layer


async def test_clients_send_queued_requests_by_priority(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    network = Recording(httpx.AsyncHTTPTransport() if mode != "sync" else httpx.HTTPTransport())
    either = make_client(
        base_url=demo.url, transport=network, max_connections=1, clock=clock, retry=False
    )
    gate = gate_of(either.client)
    # The low request waits 2 * AGEING + 1 seconds before the last high one comes: it has
    # gained more than the two levels between them, so it goes first.
    schedule: list[tuple[float, str]] = [
        (0.0, "low"),
        (0.0, "normal"),
        (0.0, "high"),
        (0.0, "normal"),
        (2 * AGEING + 1, "high"),
    ]
    calls = [
        (after, lambda n=n, p=p: either.get("/users/1", params={"n": n}, priority=p))
        for n, (after, p) in enumerate(schedule)
    ]
    client: Any = either.client
    if either.is_async:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(client.stream("GET", "/download?size=10"))
            async with anyio.create_task_group() as group:
                for n, (after, call) in enumerate(calls):
                    clock.advance(after)
                    group.start_soon(call)
                    while gate.waiting <= n:
                        await anyio.sleep(0)
                await stack.aclose()  # its connection, and place, are free: the queue goes
    else:
        threads = []
        with contextlib.ExitStack() as stack:
            stack.enter_context(client.stream("GET", "/download?size=10"))
            for n, (after, call) in enumerate(calls):
                clock.advance(after)
                threads.append(threading.Thread(target=anyio.run, args=(call,), daemon=True))
                threads[-1].start()
                eventually(lambda n=n: gate.waiting > n)  # type: ignore[misc]
        for thread in threads:
            thread.join(timeout=30)
    assert network.seen == [None, "2", "1", "3", "0", "4"]
