"""What the policies ask of a store that a fleet of processes shares.

A policy's configuration may name a ``store`` (``RateLimitConfig(store=...)``,
``CircuitBreakerConfig(store=...)``, ``RetryConfig(store=...)``). The policy does
not know Redis: it asks the store for the shared half of its state, through this
interface, and keeps its per-process state as the fallback. :class:`~buttress.RedisStore`
is the store buttress ships; the dependency points from the store to the policies,
never back.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._clock import Clock
    from ..stores.breaker import SharedCircuit
    from ..stores.ratelimit import SharedLimits
    from .breaker import CircuitBreakerConfig
    from .budget import RetryBudget
    from .ratelimit import RateLimitConfig

__all__ = ["SharedStore"]


class SharedStore(abc.ABC):
    """A store that keeps the policies' state for every process that uses it.

    Examples:
        >>> import buttress
        >>> isinstance(buttress.RedisStore("redis://127.0.0.1:6379/0"), SharedStore)
        True
    """

    @abc.abstractmethod
    def circuit(self, config: CircuitBreakerConfig, clock: Clock, *, name: str) -> SharedCircuit:
        """The circuit called ``name``, as every process sees it."""

    @abc.abstractmethod
    def limits(self, config: RateLimitConfig, clock: Clock | None = None) -> SharedLimits:
        """The budgets of ``config``'s limits, booked by every process."""

    @abc.abstractmethod
    def retry_budget(self, *, ratio: float, min_per_second: float, window: float) -> RetryBudget:
        """A per-host retry budget fed and spent by every process."""
