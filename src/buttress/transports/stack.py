"""The order of the layers, written down once.

``stack(inner, ...)`` wraps a network transport in the buttress layers, first
listed = outermost (as in tower)::

    MiddlewareTransport      user middleware, sees one call per logical request
    LoggingTransport         request id, trace context, one record per logical request
    CacheTransport           RFC 9111 private cache; a hit never goes lower
    RetryTransport           backoff, Retry-After, retry budget, one deadline
    CircuitBreakerTransport  judges every attempt; open -> fail fast
    RateLimitTransport       every real network attempt takes a token
    network transport        httpx.HTTPTransport / AsyncHTTPTransport / aiohttp / SOCKS

Why this order: the cache answers before anything is retried or counted; the
breaker sits inside the retry layer so each attempt is judged and an open
circuit is not retried; the limiter is innermost so retries pay for tokens too.
A layer whose configuration is ``None`` is simply left out.
"""

from __future__ import annotations

from typing import TypeVar, cast

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import RateLimitConfig
from ..policies.breaker import CircuitBreaker, CircuitBreakerConfig
from ..policies.retry import RetryConfig
from .breaker import CircuitBreakerTransport
from .ratelimit import RateLimiter, RateLimitTransport
from .retry import RetryTransport

__all__ = ["stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


def stack(
    inner: _T,
    *,
    retry: RetryConfig | None = None,
    circuit_breaker: CircuitBreakerConfig | CircuitBreaker | None = None,
    rate_limit: RateLimitConfig | RateLimiter | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> _T:
    """Wrap the network transport ``inner`` in the configured layers (outermost first).

    Args:
        inner: the network transport.
        retry: the :class:`RetryTransport`'s configuration; ``None`` leaves it out.
        circuit_breaker: a config, or a :class:`CircuitBreaker` shared between
            several stacks (a client's mounts); ``None`` leaves it out.
        rate_limit: a :class:`~buttress.RateLimitConfig`, or a shared
            :class:`~buttress.transports.RateLimiter` (one budget for every
            transport given it); ``None`` leaves it out.
        clock: the clock every layer uses.

    Example:
        >>> import httpx
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> stack(network, retry=RetryConfig())
        RetryTransport(<httpx.HTTPTransport object at ...>, max_attempts=3)
    """
    layered: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    if rate_limit is not None:
        layered = RateLimitTransport(layered, rate_limit, clock=clock)
    if circuit_breaker is not None:
        layered = CircuitBreakerTransport(layered, circuit_breaker, clock=clock)
    if retry is not None:
        layered = RetryTransport(layered, retry, clock=clock)
    return cast(_T, layered)
