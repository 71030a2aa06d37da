"""Every wrapper transport passes the client's lifecycle calls down, as httpx expects.

``httpx.Client.__enter__`` calls ``transport.__enter__()`` and ``__exit__`` calls
``transport.__exit__(...)`` (the async client the ``a`` twins); a layer must
forward them to the transport it wraps, not turn them into a bare ``close()``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import httpx
import pytest

from buttress import CacheConfig, CircuitBreakerConfig, LoggingConfig, RateLimitConfig, RetryConfig
from buttress.testing import DemoServer, FakeClock
from buttress.transports import (
    AttemptTransport,
    BodyGuardTransport,
    CacheTransport,
    CircuitBreakerTransport,
    LoggingTransport,
    MiddlewareTransport,
    RateLimitTransport,
    RetryTransport,
    stack,
)

pytestmark = pytest.mark.anyio


class Lifecycle(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A real network transport that records the lifecycle calls it receives."""

    def __init__(self, is_async: bool) -> None:
        self.calls: list[str] = []
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()
        self.is_async = is_async

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._async.handle_async_request(request)

    def __enter__(self) -> Lifecycle:
        self.calls.append("enter")
        self._sync.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.calls.append(f"exit:{type(exc_info[1]).__name__}")
        self._sync.__exit__(*exc_info)

    async def __aenter__(self) -> Lifecycle:
        self.calls.append("aenter")
        await self._async.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.calls.append(f"aexit:{type(exc_value).__name__}")
        await self._async.__aexit__(exc_type, exc_value, traceback)

    def close(self) -> None:
        self.calls.append("close")
        self._sync.close()

    async def aclose(self) -> None:
        self.calls.append("aclose")
        await self._async.aclose()


async def _noop(request: httpx.Request, call_next: Any) -> httpx.Response:
    return await call_next(request)  # type: ignore[no-any-return]


WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "middleware": lambda inner: MiddlewareTransport(inner, [_noop]),
    "logging": LoggingTransport,
    "attempt": AttemptTransport,
    "cache": lambda inner: CacheTransport(inner, CacheConfig(), clock=FakeClock()),
    "retry": RetryTransport,
    "breaker": lambda inner: CircuitBreakerTransport(inner, CircuitBreakerConfig()),
    "rate_limit": lambda inner: RateLimitTransport(inner, RateLimitConfig()),
    "guard": BodyGuardTransport,
    "stack": lambda inner: stack(
        inner,
        middleware=[_noop],
        logging=LoggingConfig(),
        retry=RetryConfig(),
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimitConfig(),
        cache=CacheConfig(),
        guard=True,
    ),
}


class Boom(Exception):
    pass


async def _use_then_fail(transport: Any, url: str, is_async: bool) -> None:
    """Send one request inside the client's context, then leave it with an error."""
    if is_async:
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(url)).status_code == 200
            raise Boom
    with httpx.Client(transport=transport) as client:
        assert client.get(url).status_code == 200
        raise Boom


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_the_client_context_reaches_the_wrapped_transport(
    demo: DemoServer, wrapper: str, is_async: bool
) -> None:
    network = Lifecycle(is_async)
    with pytest.raises(Boom):
        await _use_then_fail(WRAPPERS[wrapper](network), f"{demo.url}/users/1", is_async)
    assert network.calls == (["aenter", "aexit:Boom"] if is_async else ["enter", "exit:Boom"])


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_closing_the_client_closes_the_wrapped_transport(
    wrapper: str, is_async: bool
) -> None:
    network = Lifecycle(is_async)
    transport = WRAPPERS[wrapper](network)
    if is_async:
        await httpx.AsyncClient(transport=transport).aclose()
        assert network.calls == ["aclose"]
    else:
        httpx.Client(transport=transport).close()
        assert network.calls == ["close"]
