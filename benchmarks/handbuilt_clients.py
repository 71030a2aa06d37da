"""The clients of :mod:`benchmarks.handbuilt`, in a module that imports only httpx.

Each case's libraries are imported when its client is made (see :data:`IMPORTS`),
so that the memory benchmark, which loads this module in a fresh interpreter,
charges each case with its own imports and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from httpx_retries import Retry
    from pyrate_limiter import Limiter

__all__ = [
    "BARE",
    "CASES",
    "FACADE",
    "HAND_BUILT",
    "IMPORTS",
    "STACKED",
    "async_client",
    "sync_client",
]

TIMEOUT = 120.0
GENEROUS_RATE = 1_000_000_000  # never binds

# -- the hand-built stack ---------------------------------------------------------------


class _ServerError(Exception):
    """Carries a 5xx response out of the breaker's block, which counts it as a failure."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _retry() -> Retry:
    from httpx_retries import Retry

    return Retry(total=2, backoff_factor=0.5)  # 3 attempts, as buttress's default


def _limiter() -> Limiter:
    from pyrate_limiter import Duration, Limiter, Rate

    return Limiter(Rate(GENEROUS_RATE, Duration.SECOND))


class _GuardedTransport(httpx.BaseTransport):
    """A rate-limit slot, then the request inside the host's circuit breaker."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        from purgatory import SyncCircuitBreakerFactory

        self._inner = inner
        self._breakers = SyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
        self._limiter = _limiter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self._limiter.try_acquire(host)
        try:
            with self._breakers.get_breaker(host):
                response = self._inner.handle_request(request)
                if response.status_code >= 500:
                    raise _ServerError(response)
        except _ServerError as error:
            return error.response
        return response

    def close(self) -> None:
        self._limiter.close()
        self._inner.close()


class _AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`_GuardedTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        from purgatory import AsyncCircuitBreakerFactory

        self._inner = inner
        self._breakers = AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30)
        self._limiter = _limiter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        await self._limiter.try_acquire_async(host)
        try:
            async with await self._breakers.get_breaker(host):
                response = await self._inner.handle_async_request(request)
                if response.status_code >= 500:
                    raise _ServerError(response)
        except _ServerError as error:
            return error.response
        return response

    async def aclose(self) -> None:
        self._limiter.close()
        await self._inner.aclose()


# -- the cases --------------------------------------------------------------------------


def _layers() -> dict[str, Any]:
    import buttress

    return {
        "retry": buttress.RetryConfig(),
        "circuit_breaker": buttress.CircuitBreakerConfig(),
        "rate_limit": buttress.RateLimitConfig(max_requests=GENEROUS_RATE, time_window=1.0),
    }


HAND_BUILT = "hand-built"
FACADE = "buttress client"
STACKED = "stack() on an httpx client"
BARE = "bare httpx client"
CASES = (BARE, HAND_BUILT, FACADE, STACKED)
"""Every row of the throughput and memory tables, in order; ratios are over HAND_BUILT."""


IMPORTS = {
    BARE: ("httpx",),
    HAND_BUILT: ("httpx", "httpx_retries", "purgatory", "pyrate_limiter"),
    FACADE: ("httpx", "buttress"),
    STACKED: ("httpx", "buttress", "buttress.transports"),
}
"""What a program using each case imports at its top (a client may import more itself)."""


def sync_client(case: str) -> httpx.Client:
    """A sync client of ``case``."""
    if case == HAND_BUILT:
        from httpx_retries import RetryTransport

        guarded = _GuardedTransport(httpx.HTTPTransport())
        return httpx.Client(timeout=TIMEOUT, transport=RetryTransport(guarded, retry=_retry()))
    if case == FACADE:
        import buttress

        return buttress.Client(timeout=TIMEOUT, **_layers())
    if case == STACKED:
        from buttress.transports import stack

        return httpx.Client(timeout=TIMEOUT, transport=stack(httpx.HTTPTransport(), **_layers()))
    return httpx.Client(timeout=TIMEOUT)


def async_client(case: str) -> httpx.AsyncClient:
    """An async client of ``case``."""
    if case == HAND_BUILT:
        from httpx_retries import RetryTransport

        guarded = _AsyncGuardedTransport(httpx.AsyncHTTPTransport())
        transport = RetryTransport(guarded, retry=_retry())
        return httpx.AsyncClient(timeout=TIMEOUT, transport=transport)
    if case == FACADE:
        import buttress

        return buttress.AsyncClient(timeout=TIMEOUT, **_layers())
    if case == STACKED:
        from buttress.transports import stack

        return httpx.AsyncClient(
            timeout=TIMEOUT, transport=stack(httpx.AsyncHTTPTransport(), **_layers())
        )
    return httpx.AsyncClient(timeout=TIMEOUT)
