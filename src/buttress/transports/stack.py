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
    BodyGuardTransport       size limit and truncation, judged per attempt
    PoolGateTransport        waits by priority for a free connection (facade, HTTP/1.1)
    network transport        httpx.HTTPTransport / AsyncHTTPTransport / aiohttp / SOCKS

Why this order: the cache answers before anything is retried or counted; the
breaker sits inside the retry layer so each attempt is judged and an open
circuit is not retried; the limiter is innermost so retries pay for tokens too.
Middleware is outermost so it sees what the caller sent, once per logical
request, and may answer before anything is logged or counted; logging comes
next so the request id and ``traceparent`` are set before any layer acts, and
its record covers retries and cache hits. ``AttemptTransport`` belongs to the
logging layer: it is innermost, so each real network attempt gets its own span.
The pool gate is beneath everything: a request waits for a connection only once
it has its rate-limit token, and httpcore's pool, whose cost grows with the
square of its queue, never holds more requests than connections.
A layer whose configuration is ``None`` is simply left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import httpx

from .._clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from .._config import RateLimitConfig
    from .._logging import LoggingConfig
    from ..cache import CacheConfig
    from ..observability import TracingConfig
    from ..policies.breaker import CircuitBreaker, CircuitBreakerConfig
    from ..policies.retry import RetryConfig
    from .middleware import MiddlewareTypes
    from .ratelimit import RateLimiter

__all__ = ["stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


def stack(
    inner: _T,
    *,
    middleware: Sequence[MiddlewareTypes] = (),
    logging: LoggingConfig | None = None,
    tracing: TracingConfig | None = None,
    retry: RetryConfig | None = None,
    circuit_breaker: CircuitBreakerConfig | CircuitBreaker | None = None,
    rate_limit: RateLimitConfig | RateLimiter | None = None,
    cache: CacheConfig | None = None,
    guard: bool = False,
    pool_gate: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> _T:
    """Wrap the network transport ``inner`` in the configured layers (outermost first).

    Args:
        inner: the network transport.
        middleware: user middleware; adds the :class:`MiddlewareTransport`.
        logging: turns the logging layer on (with ``tracing``; both default
            when one is given): a :class:`LoggingTransport` per logical request
            and an :class:`AttemptTransport` per attempt, just above the network.
        tracing: request ids, W3C trace context and OpenTelemetry spans.
        retry: the :class:`RetryTransport`'s configuration; ``None`` leaves it out.
        circuit_breaker: a config, or a :class:`CircuitBreaker` shared between
            several stacks (a client's mounts); ``None`` leaves it out.
        rate_limit: a :class:`~buttress.RateLimitConfig`, or a shared
            :class:`~buttress.transports.RateLimiter` (one budget for every
            transport given it); ``None`` leaves it out.
        cache: the :class:`CacheTransport`'s configuration; ``None`` (or
            ``enabled=False``) leaves it out.
        guard: add the :class:`BodyGuardTransport` (size limit, truncation)
            just above the network.
        pool_gate: add the :class:`PoolGateTransport` beneath everything: at
            most this many requests (the pool's ``max_connections``) enter the
            network transport at once, the rest wait their turn in order.
        clock: the clock every layer uses.

    Examples:
        >>> import httpx
        >>> from buttress import RetryConfig
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> stack(network, retry=RetryConfig())
        RetryTransport(<httpx.HTTPTransport object at ...>, max_attempts=3)
    """
    # Each layer's module is imported here, when a stack first uses it: a client
    # without a cache or a breaker never loads them.
    layer: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    if pool_gate is not None:
        from .gate import PoolGateTransport

        layer = PoolGateTransport(layer, max_in_flight=pool_gate, clock=clock)
    if guard:
        from .guard import BodyGuardTransport

        layer = BodyGuardTransport(layer)
    observed = logging is not None or tracing is not None
    if observed:
        from .logging import AttemptTransport

        layer = AttemptTransport(layer, logging, tracing=tracing)
    if rate_limit is not None:
        from .ratelimit import RateLimitTransport

        layer = RateLimitTransport(layer, rate_limit, clock=clock)
    if circuit_breaker is not None:
        from .breaker import CircuitBreakerTransport

        layer = CircuitBreakerTransport(layer, circuit_breaker, clock=clock)
    if retry is not None:
        from .retry import RetryTransport

        layer = RetryTransport(layer, retry, clock=clock)
    if cache is not None and cache.enabled:
        from .cache import CacheTransport

        layer = CacheTransport(layer, cache, clock=clock)
    if observed:
        from .logging import LoggingTransport

        layer = LoggingTransport(layer, logging, tracing=tracing)
    if middleware:
        from .middleware import MiddlewareTransport

        layer = MiddlewareTransport(layer, middleware)
    return cast(_T, layer)
