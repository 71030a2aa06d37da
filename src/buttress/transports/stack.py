"""The order of the layers, written down once.

``stack(inner, ...)`` wraps a network transport in the buttress layers, first
listed = outermost (as in tower)::

    MiddlewareTransport      user middleware, sees one call per logical request
    LoggingTransport         request id, trace context, one record per logical request
    CacheTransport           RFC 9111 private cache; a hit never goes lower
    RetryTransport           backoff, Retry-After, retry budget, one deadline
    CircuitBreakerTransport  judges every attempt; open -> fail fast
    RateLimitTransport       every real network attempt takes a token
    AttemptTransport         counts, traces and logs each network attempt
    network transport        httpx.HTTPTransport / AsyncHTTPTransport / aiohttp / SOCKS

Why this order: the cache answers before anything is retried or counted; the
breaker sits inside the retry layer so each attempt is judged and an open
circuit is not retried; the limiter is innermost so retries pay for tokens too.
Middleware is outermost so it sees what the caller sent, once per logical
request, and may answer before anything is logged or counted; logging comes
next so the request id and ``traceparent`` are set before any layer acts, and
its record covers retries and cache hits. ``AttemptTransport`` belongs to the
logging layer: it is innermost, so each real network attempt gets its own span.
A layer whose configuration is ``None`` is simply left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import httpx

from .logging import AttemptTransport, LoggingTransport
from .middleware import MiddlewareTransport, MiddlewareTypes

if TYPE_CHECKING:
    from .._logging import LoggingConfig
    from ..observability import TracingConfig

__all__ = ["stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


def stack(
    inner: _T,
    *,
    middleware: Sequence[MiddlewareTypes] = (),
    logging: LoggingConfig | None = None,
    tracing: TracingConfig | None = None,
) -> _T:
    """Wrap the network transport ``inner`` in the configured layers (outermost first).

    ``logging`` or ``tracing`` turns the logging layer on (both default when
    one is given); ``middleware`` adds the middleware layer.

    Example:
        >>> import httpx
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> from buttress import LoggingConfig
        >>> layered = stack(network, middleware=[lambda r, call_next: call_next(r)],
        ...                 logging=LoggingConfig())
        >>> type(layered).__name__, type(layered._inner).__name__
        ('MiddlewareTransport', 'LoggingTransport')
    """
    layer: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    observed = logging is not None or tracing is not None
    if observed:
        layer = AttemptTransport(layer, logging, tracing=tracing)
    # (cache, retry, circuit breaker and rate limit layers go here, in the order above)
    if observed:
        layer = LoggingTransport(layer, logging, tracing=tracing)
    if middleware:
        layer = MiddlewareTransport(layer, middleware)
    return cast(_T, layer)
