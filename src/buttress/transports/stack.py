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

from typing import TYPE_CHECKING, TypeVar, cast

import httpx

if TYPE_CHECKING:
    from .._config import RateLimitConfig
    from .ratelimit import RateLimiter

__all__ = ["stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


def stack(inner: _T, *, rate_limit: RateLimitConfig | RateLimiter | None = None) -> _T:
    """Wrap the network transport ``inner`` in the configured layers (outermost first).

    Args:
        inner: the network transport.
        rate_limit: a :class:`~buttress.RateLimitConfig`, or a shared
            :class:`~buttress.transports.RateLimiter` (one budget for every
            transport given it).

    Example:
        >>> import httpx
        >>> from buttress import RateLimitConfig
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> type(stack(network, rate_limit=RateLimitConfig(max_requests=5))).__name__
        'RateLimitTransport'
    """
    layered: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    if rate_limit is not None:
        from .ratelimit import RateLimitTransport

        layered = RateLimitTransport(layered, rate_limit)
    return cast(_T, layered)
