"""The pool gate: at most ``max_connections`` requests inside the network transport at once.

Regression: 1,000 tasks on one ``AsyncClient`` all queued inside httpcore's pool, whose
matching of requests to connections costs queue x connections on every event; under
coverage the loop spent its time there and the connections being opened hit their 30 s
connect timeout (tests/reliability/test_stress.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.testing import DemoServer
from buttress.transports import PoolGateTransport, stack

from ..conftest import Either

pytestmark = pytest.mark.anyio


class Gauge(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network transport, counting the requests inside it until their bodies close."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.in_flight = self.most = 0
        self._lock = threading.Lock()

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._enter()
        response: httpx.Response = self._inner.handle_request(request)
        response.read()
        self._leave()
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._enter()
        response: httpx.Response = await self._inner.handle_async_request(request)
        await response.aread()
        self._leave()
        return response

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def run_together(either: Either, calls: list[Callable[[], Any]]) -> None:
    """Start every call at once: tasks on the async client, threads on the sync one."""
    if either.is_async:
        async with anyio.create_task_group() as group:
            for call in calls:
                group.start_soon(call)
    else:
        threads = [threading.Thread(target=lambda c=c: anyio.run(c)) for c in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)


async def test_no_more_requests_reach_the_network_than_the_pool_has_connections(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    network = httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()
    gauge = Gauge(network)
    either = make_client(base_url=demo.url, transport=gauge, max_connections=2)
    answered: list[int] = []

    def call(n: int) -> Callable[[], Any]:
        async def one() -> None:
            response = await either.get("/slow", params={"delay": "0.05", "n": str(n)})
            answered.append(response.status_code)

        return one

    await run_together(either, [call(n) for n in range(8)])
    assert answered == [200] * 8
    assert gauge.most <= 2  # without the gate all 8 wait inside httpcore's pool
    assert gauge.in_flight == 0


async def test_a_streamed_response_keeps_its_place_until_closed(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # 0.2 s: long enough to be a wait on a busy machine, short enough to keep the test quick.
    timeout = buttress.TimeoutConfig(pool=0.2)
    either = make_client(base_url=demo.url, max_connections=1, timeout=timeout)
    client: Any = either.client
    if either.is_async:
        async with client.stream("GET", "/download", params={"size": "10"}):
            with pytest.raises(buttress.PoolTimeoutError) as caught:
                await client.get("/users/1")
    else:
        with (
            client.stream("GET", "/download", params={"size": "10"}),
            pytest.raises(buttress.PoolTimeoutError) as caught,
        ):
            client.get("/users/1")
    assert "pool" in str(caught.value)
    assert (await either.get("/users/1")).status_code == 200  # the closed stream let it go


async def test_a_failed_attempt_gives_its_place_back(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    timeout = buttress.TimeoutConfig(pool=5.0)
    either = make_client(max_connections=1, timeout=timeout)
    with DemoServer() as gone:
        refused = gone.url
    for _ in range(3):  # each would wait for the pool if a failure kept the place
        with pytest.raises(buttress.ConnectionError):
            await either.get(f"{refused}/users/1")
    assert (await either.get(f"{demo.url}/users/1")).status_code == 200


async def test_http2_clients_are_not_gated(make_client: Callable[..., Either]) -> None:
    pytest.importorskip("h2")
    either = make_client(http2=True)
    assert "PoolGateTransport" not in repr(either.client._transport)
    gated = make_client()
    assert "PoolGateTransport" in repr(gated.client._transport)


async def test_the_drop_in_gate_on_a_plain_client(demo: DemoServer, mode: str) -> None:
    is_async = mode == "async"
    network: Any = httpx.AsyncHTTPTransport() if is_async else httpx.HTTPTransport()
    gauge = Gauge(network)
    transport = stack(gauge, pool_gate=1)
    assert isinstance(transport, PoolGateTransport)
    if is_async:
        async with (
            httpx.AsyncClient(transport=transport) as client,
            anyio.create_task_group() as group,
        ):
            for n in range(4):
                group.start_soon(client.get, f"{demo.url}/slow?delay=0.02&n={n}")
    else:
        with httpx.Client(transport=transport) as client:
            threads = [
                threading.Thread(target=client.get, args=(f"{demo.url}/slow?delay=0.02&n={n}",))
                for n in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    assert gauge.most == 1


def test_the_gate_needs_a_place() -> None:
    with pytest.raises(buttress.ConfigurationError, match="at least 1"):
        PoolGateTransport(httpx.HTTPTransport(), max_in_flight=0)
