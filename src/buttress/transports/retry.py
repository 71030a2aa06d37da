"""``RetryTransport``: retries with backoff, ``Retry-After``, a budget and one deadline.

All the logic is :func:`buttress.policies.retry.retry_flow`; this class only runs
it, with blocking calls or with ``await``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import defaults, require_config
from .._flow import Flow
from ..policies.budget import RetryBudget
from ..policies.retry import RetryConfig, RetryPolicy, retry_flow
from ._layer import Layer

__all__ = ["RetryTransport"]


class RetryTransport(Layer):
    """Retry transient failures of ``inner``; works on ``httpx.Client`` and ``httpx.AsyncClient``.

    Args:
        inner: the transport that sends each attempt (sync or async).
        config: the :class:`RetryConfig` (``max_attempts`` counts the first attempt).
        clock: where time comes from (a ``FakeClock`` in tests).
        budget: the retry budget store; by default one is made from ``config.budget``.
        rng: a ``random()``-like function for jitter.

    Per request, ``extensions=buttress.options(retry=False)`` sends once,
    ``retry=RetryConfig(...)`` replaces the configuration, and
    ``total_timeout=seconds`` sets one deadline for every attempt and sleep.

    Examples:
        >>> import httpx, buttress
        >>> from buttress.testing import DemoServer
        >>> transport = RetryTransport(httpx.HTTPTransport(), RetryConfig(backoff_factor=0.01))
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     client.get(f"{server.url}/flaky?key=doc&failures=2").json()["attempts"]
        3
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        config: RetryConfig = defaults(RetryConfig),  # noqa: B008 - frozen, safe to share
        *,
        clock: Clock = SYSTEM_CLOCK,
        budget: RetryBudget | None = None,
        rng: Callable[[], float] | None = None,
    ) -> None:
        require_config(type(self).__name__, config, RetryConfig, optional=False)
        self._inner = inner
        self._clock = clock
        if budget is None and config.budget is not None:
            budget = config.budget.create(config.store)
        self.policy = RetryPolicy(config, budget, rng)

    @property
    def config(self) -> RetryConfig:
        """The configuration this transport retries with."""
        return self.policy.config

    @property
    def budget(self) -> RetryBudget | None:
        """The retry budget (``budget.exhausted_count`` counts refused retries), if any."""
        return self.policy.budget

    def _flow(self, request: httpx.Request) -> Flow:
        return retry_flow(self.policy, request, self._clock)

    def __repr__(self) -> str:
        return f"RetryTransport({self._inner!r}, max_attempts={self.config.max_attempts})"
