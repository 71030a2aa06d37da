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

from .._clock import SYSTEM_CLOCK, Clock
from .cache import CacheTransport

if TYPE_CHECKING:
    from ..cache.config import CacheConfig

__all__ = ["stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


def stack(inner: _T, *, cache: CacheConfig | None = None, clock: Clock = SYSTEM_CLOCK) -> _T:
    """Wrap the network transport ``inner`` in the configured layers (outermost first).

    Example:
        >>> import httpx
        >>> from buttress.cache import CacheConfig
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> type(stack(network, cache=CacheConfig())).__name__
        'CacheTransport'
    """
    wrapped: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    # Wrapped innermost first: rate limit, breaker and retry belong here, below the cache.
    if cache is not None and cache.enabled:
        wrapped = CacheTransport(wrapped, cache, clock=clock)
    return cast(_T, wrapped)
