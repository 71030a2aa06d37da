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
    RateLimitAdmission       with a rate limit and a gate: the request leaves within the limit
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
square of its queue, never holds more requests than connections. A request that
waited there may leave late, together with others whose connections came free at
the same time; so the rate-limit layer comes in two halves sharing one limiter:
``RateLimitTransport`` above books, queues and obeys servers (waiting there holds
no connection), and ``RateLimitAdmission`` beneath the gate lets the request go
only if sending it at that moment keeps the limit. Each request counts once.
When the breaker and the limiter share one store, the breaker hands its question
down and the limiter asks it in the store call that books the request's slot:
one round trip for both.
A layer whose configuration is ``None`` is simply left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._options import RequestOptions
from ._layer import Wrapper

if TYPE_CHECKING:
    from ..cache import CacheConfig
    from ..observability import TracingConfig
    from ..policies.breaker import CircuitBreaker, CircuitBreakerConfig
    from ..policies.logging import LoggingConfig
    from ..policies.ratelimit import RateLimitConfig, RateLimiter
    from ..policies.retry import RetryConfig
    from .middleware import MiddlewareTypes

__all__ = ["Layers", "build", "stack"]

_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


@dataclass(frozen=True)
class Layers:
    """Which layers a stack has, and their configurations; a layer left ``None`` is left out.

    One value can build several stacks (a client's default transport and its
    mounts): a :class:`CircuitBreaker` or a ``RateLimiter`` in it is then shared.

    Attributes:
        middleware: user middleware; adds the :class:`MiddlewareTransport`, which also
            runs each request's own middleware (``buttress.options(middleware=...)``).
            ``()`` runs only the requests' own (the layer is loaded for the first
            request that brings some); ``None`` leaves the layer out.
        logging: turns the logging layer on (with ``tracing``; both default
            when one is given): a :class:`LoggingTransport` per logical request
            and an :class:`AttemptTransport` per attempt, just above the network.
        tracing: request ids, W3C trace context and OpenTelemetry spans.
        retry: the :class:`RetryTransport`'s configuration.
        circuit_breaker: a config, or a :class:`CircuitBreaker` shared between
            several stacks (a client's mounts).
        rate_limit: a :class:`~buttress.RateLimitConfig`, or a shared
            :class:`~buttress.transports.RateLimiter` (one budget for every
            transport given it).
        cache: the :class:`CacheTransport`'s configuration (``enabled=False``
            leaves it out too).
        guard: add the :class:`BodyGuardTransport` (size limit, truncation)
            just above the network.
        pool_gate: add the :class:`PoolGateTransport` beneath everything: at
            most this many requests (the pool's ``max_connections``) enter the
            network transport at once, the rest wait their turn in order. With
            ``rate_limit``, the limit's final check moves beneath the gate.
        clock: the clock every layer uses.

    Examples:
        >>> import httpx
        >>> from buttress import RetryConfig
        >>> build(httpx.MockTransport(lambda r: httpx.Response(204)), Layers(retry=RetryConfig()))
        RetryTransport(<httpx.MockTransport object at ...>, max_attempts=3)
    """

    middleware: Sequence[MiddlewareTypes] | None = None
    logging: LoggingConfig | None = None
    tracing: TracingConfig | None = None
    retry: RetryConfig | None = None
    circuit_breaker: CircuitBreakerConfig | CircuitBreaker | None = None
    rate_limit: RateLimitConfig | RateLimiter | None = None
    cache: CacheConfig | None = None
    guard: bool = False
    pool_gate: int | None = None
    clock: Clock = SYSTEM_CLOCK


def stack(
    inner: _T,
    *,
    middleware: Sequence[MiddlewareTypes] | None = None,
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

    The keywords are :class:`Layers`' fields; a layer given ``None`` is left out.

    Examples:
        >>> import httpx
        >>> from buttress import RetryConfig
        >>> network = httpx.HTTPTransport()
        >>> stack(network) is network   # no layer configured
        True
        >>> stack(network, retry=RetryConfig())
        RetryTransport(<httpx.HTTPTransport object at ...>, max_attempts=3)
    """
    layers = Layers(
        middleware=middleware,
        logging=logging,
        tracing=tracing,
        retry=retry,
        circuit_breaker=circuit_breaker,
        rate_limit=rate_limit,
        cache=cache,
        guard=guard,
        pool_gate=pool_gate,
        clock=clock,
    )
    return build(inner, layers)


def build(inner: _T, layers: Layers) -> _T:
    """The stack :func:`stack` describes: ``inner`` wrapped in ``layers``, innermost first.

    Examples:
        >>> import httpx
        >>> network = httpx.MockTransport(lambda r: httpx.Response(204))
        >>> build(network, Layers()) is network
        True
    """
    # Each layer's module is imported here, when a stack first uses it: a client
    # without a cache or a breaker never loads them.
    layer: httpx.BaseTransport | httpx.AsyncBaseTransport = inner
    clock = layers.clock
    limiter = layers.rate_limit
    if limiter is not None and layers.pool_gate is not None:
        from .ratelimit import RateLimitAdmission, RateLimiter

        if not isinstance(limiter, RateLimiter):  # one limiter for both halves of the layer
            limiter = RateLimiter(limiter, clock=clock)
        layer = RateLimitAdmission(layer, limiter, clock=limiter.clock)
    if layers.pool_gate is not None:
        from .gate import PoolGateTransport

        layer = PoolGateTransport(layer, max_in_flight=layers.pool_gate, clock=clock)
    if layers.guard:
        from .guard import BodyGuardTransport

        layer = BodyGuardTransport(layer)
    observed = layers.logging is not None or layers.tracing is not None
    if observed:
        from .logging import AttemptTransport

        layer = AttemptTransport(layer, layers.logging, tracing=layers.tracing)
    if limiter is not None:
        from .ratelimit import RateLimitTransport

        layer = RateLimitTransport(layer, limiter, clock=clock)
    if layers.circuit_breaker is not None:
        from .breaker import CircuitBreakerTransport

        layer = CircuitBreakerTransport(layer, layers.circuit_breaker, clock=clock)
    if layers.retry is not None:
        from .retry import RetryTransport

        layer = RetryTransport(layer, layers.retry, clock=clock)
    if layers.cache is not None and layers.cache.enabled:
        from .cache import CacheTransport

        layer = CacheTransport(layer, layers.cache, clock=clock)
    if observed:
        from .logging import LoggingTransport

        layer = LoggingTransport(layer, layers.logging, tracing=layers.tracing)
    if layers.middleware:
        from .middleware import MiddlewareTransport

        layer = MiddlewareTransport(layer, layers.middleware)
    elif layers.middleware is not None:
        layer = _RequestsOwnMiddleware(layer)
    return cast(_T, layer)


class _RequestsOwnMiddleware(Wrapper):
    """The middleware layer of a stack with no middleware of its own, made on first use.

    A request may bring middleware (``middleware=[...]`` on a call); most do not,
    so the middleware layer's module is imported for the first request that does.
    """

    def __init__(self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._layer: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None

    def _transport_for(
        self, request: httpx.Request
    ) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
        if not RequestOptions.of(request).middleware:
            return self._inner
        if self._layer is None:  # two threads may both make one: they are alike and stateless
            from .middleware import MiddlewareTransport

            self._layer = MiddlewareTransport(self._inner)
        return self._layer

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transport_for(request)
        assert isinstance(transport, httpx.BaseTransport)
        return transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transport_for(request)
        assert isinstance(transport, httpx.AsyncBaseTransport)
        return await transport.handle_async_request(request)

    def __repr__(self) -> str:
        return repr(self._inner)  # not a layer of its own until a request brings middleware
