"""``CircuitBreakerTransport``: fail fast while a host is failing.

All the logic is :func:`buttress.policies.breaker.breaker_flow` over a shared
:class:`~buttress.policies.breaker.CircuitBreaker`; this class only runs it.
"""

from __future__ import annotations

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import require_config
from .._flow import Flow
from ..policies.breaker import CircuitBreaker, CircuitBreakerConfig, breaker_flow
from ._layer import Layer
from .ratelimit import _books_with_store

__all__ = ["CircuitBreakerTransport"]


class CircuitBreakerTransport(Layer):
    """Judge every call through ``inner``; while the circuit is open, send nothing.

    Args:
        inner: the transport calls go through (sync or async).
        config: a :class:`CircuitBreakerConfig`, or a :class:`CircuitBreaker` to
            share one breaker's state between several transports (``mounts``).
        clock: where time comes from (a ``FakeClock`` in tests).

    ``transport.breaker`` is the breaker: ``state``, ``metrics``, ``for_host``,
    ``force_open()``, ``force_close()``, ``reset()``.

    Examples:
        >>> import httpx
        >>> transport = CircuitBreakerTransport(httpx.HTTPTransport(), CircuitBreakerConfig())
        >>> transport.breaker.state
        'closed'
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        config: CircuitBreakerConfig | CircuitBreaker = CircuitBreakerConfig(),  # noqa: B008
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        require_config(
            type(self).__name__, config, CircuitBreakerConfig, CircuitBreaker, optional=False
        )
        self._inner = inner
        self._clock = clock
        self.breaker = (
            config if isinstance(config, CircuitBreaker) else CircuitBreaker(config, clock=clock)
        )
        # A limiter beneath booking with the circuit's store asks the circuit in the same call.
        store = self.breaker.config.store
        self._hand_down = store is not None and _books_with_store(inner, store)

    def _flow(self, request: httpx.Request) -> Flow:
        return breaker_flow(self.breaker, request, self._clock, hand_down=self._hand_down)

    def __repr__(self) -> str:
        return f"CircuitBreakerTransport({self._inner!r}, {self.breaker!r})"
