"""The middleware layer: order, early answers, errors, per-call middleware, both clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress import LoggingMiddleware, Middleware
from buttress.testing import DemoServer
from buttress.transports import MiddlewareTransport
from buttress.transports.middleware import CallNext
from tests.conftest import Either

pytestmark = pytest.mark.anyio


class Recorder(Middleware):
    """Writes ``name>`` on the way in and ``<name`` on the way out."""

    def __init__(self, name: str, trail: list[str]) -> None:
        self.name, self.trail = name, trail

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        self.trail.append(f"{self.name}>")
        request.headers[f"X-Seen-{self.name}"] = "1"
        response = await call_next(request)
        self.trail.append(f"<{self.name}")
        return response


class SyncRecorder:
    """The same, as a plain synchronous middleware."""

    def __init__(self, name: str, trail: list[str]) -> None:
        self.name, self.trail = name, trail

    def __call__(
        self, request: httpx.Request, call_next: Callable[[httpx.Request], httpx.Response]
    ) -> httpx.Response:
        self.trail.append(f"{self.name}>")
        response = call_next(request)
        self.trail.append(f"<{self.name}")
        return response


async def test_requests_in_list_order_responses_in_reverse(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    trail: list[str] = []
    client = make_client(
        base_url=demo.url,
        middleware=[Recorder("a", trail), SyncRecorder("b", trail), Recorder("c", trail)],
    )
    response = await client.get("/echo")
    assert trail == ["a>", "b>", "c>", "<c", "<b", "<a"]
    headers = response.json()["headers"]
    assert headers["x-seen-a"] == headers["x-seen-c"] == "1"


async def test_early_return_skips_the_network(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    class Canned(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            return httpx.Response(200, json={"canned": True}, request=request)

    trail: list[str] = []
    client = make_client(base_url=demo.url, middleware=[Canned(), Recorder("never", trail)])
    before = httpx.get(f"{demo.url}/stats").json().get("/users/77", 0)
    response = await client.get("/users/77")
    assert response.json() == {"canned": True}
    assert trail == []
    assert httpx.get(f"{demo.url}/stats").json().get("/users/77", 0) == before


async def test_exceptions_can_be_caught_and_transformed(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    class Fallback(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            try:
                return await call_next(request)
            except httpx.ConnectError:
                return httpx.Response(503, json={"fallback": True}, request=request)

    class Translate(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            try:
                return await call_next(request)
            except httpx.ConnectError as exc:
                raise buttress.ConfigurationError("the API host is down") from exc

    # Port 1 on loopback: connection refused, fast and deterministic.
    client = make_client(
        base_url="http://127.0.0.1:1", middleware=[Fallback()], raise_for_status=False
    )
    response = await client.get("/users")
    assert response.status_code == 503
    assert response.json() == {"fallback": True}

    failing = make_client(base_url="http://127.0.0.1:1", middleware=[Translate()])
    with pytest.raises(buttress.ConfigurationError, match="host is down"):
        await failing.get("/users")


async def test_middleware_sees_error_responses_before_the_facade_raises(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    seen: list[int] = []

    class Watch(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            response = await call_next(request)
            seen.append(response.status_code)
            return response

    client = make_client(base_url=demo.url, middleware=[Watch()])
    with pytest.raises(buttress.NotFoundError):
        await client.get("/users/999")
    assert seen == [404]


async def test_per_call_middleware_runs_inside_the_clients(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    trail: list[str] = []
    client = make_client(base_url=demo.url, middleware=[Recorder("global", trail)])
    await client.get("/users/1", middleware=[Recorder("call", trail)])
    assert trail == ["global>", "call>", "<call", "<global"]
    trail.clear()
    await client.get("/users/1")
    assert trail == ["global>", "<global"]


async def test_per_call_middleware_runs_on_a_client_without_middleware(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    trail: list[str] = []
    client = make_client(base_url=demo.url)
    await client.get("/users/1", middleware=[Recorder("call", trail)])
    assert trail == ["call>", "<call"]


async def test_function_middleware_both_kinds(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    async def add_a(request: httpx.Request, call_next: CallNext) -> httpx.Response:
        request.headers["X-A"] = "a"
        return await call_next(request)

    def add_b(request: httpx.Request, call_next: Callable[..., httpx.Response]) -> httpx.Response:
        request.headers["X-B"] = "b"
        return call_next(request)

    client = make_client(base_url=demo.url, middleware=[add_a, add_b])
    headers = (await client.get("/echo")).json()["headers"]
    assert (headers["x-a"], headers["x-b"]) == ("a", "b")


def test_async_io_in_middleware_on_the_sync_client_is_a_clear_error(demo: DemoServer) -> None:
    class Sleeper(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            await asyncio.sleep(0)
            return await call_next(request)

    class RealSleeper(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            await asyncio.sleep(0.5)
            return await call_next(request)

    for middleware in (Sleeper(), RealSleeper()):
        with (
            buttress.Client(base_url=demo.url, middleware=[middleware]) as client,
            pytest.raises(buttress.ConfigurationError, match="asynchronous I/O on the synchronous"),
        ):
            client.get("/users/1")


async def test_async_io_in_middleware_works_on_the_async_client(demo: DemoServer) -> None:
    class Sleeper(Middleware):
        async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
            await asyncio.sleep(0)
            return await call_next(request)

    async with buttress.AsyncClient(base_url=demo.url, middleware=[Sleeper()]) as client:
        assert (await client.get("/users/1")).status_code == 200


async def test_sync_middleware_on_the_async_client_does_not_block_the_loop(
    demo: DemoServer,
) -> None:
    ticks: list[int] = []

    def blocking(
        request: httpx.Request, call_next: Callable[..., httpx.Response]
    ) -> httpx.Response:
        time.sleep(0.05)  # work that blocks; it runs in a worker thread
        return call_next(request)

    async def ticker() -> None:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)

    async with buttress.AsyncClient(base_url=demo.url, middleware=[blocking]) as client:
        response, _ = await asyncio.gather(client.get("/users/1"), ticker())
    assert response.status_code == 200
    assert ticks == [0, 1, 2]


async def test_returning_something_else_than_a_response_is_an_error(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    async def broken(request: httpx.Request, call_next: CallNext) -> Any:
        await call_next(request)
        return {"not": "a response"}

    client = make_client(base_url=demo.url, middleware=[broken])
    with pytest.raises(buttress.ConfigurationError, match="returned dict"):
        await client.get("/users/1")


def test_non_callable_middleware_is_refused() -> None:
    with pytest.raises(buttress.ConfigurationError, match="callable"):
        MiddlewareTransport(httpx.MockTransport(lambda r: httpx.Response(200)), ["nope"])  # type: ignore[list-item]


# -- on plain httpx clients ------------------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
async def plain(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., Any]]:
    """``await send(middleware, method, url, **kw)`` through a plain httpx client."""
    opened: list[httpx.Client | httpx.AsyncClient] = []

    async def send(middleware: list[Any], method: str, url: str, **kw: Any) -> httpx.Response:
        if request.param == "sync":
            sync = httpx.Client(transport=MiddlewareTransport(httpx.HTTPTransport(), middleware))
            opened.append(sync)
            return sync.request(method, url, **kw)
        transport = MiddlewareTransport(httpx.AsyncHTTPTransport(), middleware)
        client = httpx.AsyncClient(transport=transport)
        opened.append(client)
        return await client.request(method, url, **kw)

    yield send
    for client in opened:
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()
        else:
            client.close()


async def test_middleware_transport_on_plain_httpx(plain: Any, demo: DemoServer) -> None:
    trail: list[str] = []
    response = await plain(
        [Recorder("a", trail), SyncRecorder("b", trail)],
        "GET",
        f"{demo.url}/echo",
        extensions=buttress.options(middleware=[Recorder("call", trail)]),
    )
    assert response.json()["headers"]["x-seen-a"] == "1"
    assert trail == ["a>", "b>", "call>", "<call", "<b", "<a"]


# -- with_middleware -------------------------------------------------------------------------


async def test_with_middleware_appends_and_shares_the_pool(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    trail: list[str] = []
    original = make_client(base_url=demo.url, middleware=[Recorder("a", trail)])
    derived = Either(original.client.with_middleware(Recorder("b", trail)))
    assert type(derived.client) is type(original.client)
    await derived.get("/users/1")
    assert trail == ["a>", "b>", "<b", "<a"]
    trail.clear()
    await original.get("/users/1")
    assert trail == ["a>", "<a"]  # the original is unchanged

    network = original.client._bottom[0]
    assert derived.client._bottom[0]._inner is network  # the very same pool

    await derived.aclose()  # closing the derived client leaves the pool open
    trail.clear()
    assert (await original.get("/users/2")).status_code == 200

    again = Either(original.client.with_middleware(LoggingMiddleware()))
    await original.aclose()  # closing the original closes the pool
    with pytest.raises(buttress.ClientError, match="derived from"):
        await again.get("/users/1")
    await again.aclose()


async def test_with_middleware_shares_the_budget_the_breaker_and_the_cache(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    original = make_client(
        base_url=demo.url,
        rate_limit=buttress.RateLimitConfig(max_requests=10, time_window=60.0),
        circuit_breaker=buttress.CircuitBreakerConfig(failure_threshold=2),
        cache=buttress.CacheConfig(),
        retry=False,
    )
    derived = Either(original.client.with_middleware(LoggingMiddleware()))
    await derived.get("/users/1")
    await original.get("/users/2")
    assert original.client.get_rate_limit_status().remaining == 8  # one budget for both
    assert derived.client.circuit_breaker is original.client.circuit_breaker
    with pytest.raises(buttress.ServerError):
        await derived.get("/status/500")
    assert original.client.circuit_breaker is not None
    assert original.client.circuit_breaker.metrics.failure_count == 1
    await original.get("/cacheable", params={"key": "shared"})
    cached = await derived.get("/cacheable", params={"key": "shared"})
    assert cached.from_cache
    await derived.aclose()


async def test_spec_18_12_middleware_example(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    class TimingMiddleware(Middleware):
        """Add request timing to response headers."""

        async def __call__(self, request: Any, call_next: Any) -> Any:
            start = time.perf_counter()
            response = await call_next(request)
            duration = time.perf_counter() - start
            response.headers["X-Request-Duration"] = f"{duration:.3f}"
            return response

    class RetryCountMiddleware(Middleware):
        """Track retry attempts."""

        async def __call__(self, request: Any, call_next: Any) -> Any:
            request.extensions["retry_count"] = 0
            return await call_next(request)

    client = make_client(
        base_url=demo.url,
        middleware=[LoggingMiddleware(level="DEBUG"), TimingMiddleware(), RetryCountMiddleware()],
    )
    response = await client.get("/users")
    assert float(response.headers["X-Request-Duration"]) >= 0
    assert response.request.extensions["retry_count"] == 0
