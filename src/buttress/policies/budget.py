"""The retry budget: retries may add only a fraction on top of first attempts.

Retrying every failure multiplies load on a server that is already failing. A
budget (Finagle's ``RetryBudget``) caps retries per host to ``ratio`` of the
first attempts seen in the last ``window`` seconds, plus a floor of
``min_per_second`` so a quiet client can still retry. Once it is empty, failed
requests are returned or raised as they are until first attempts refill it.

A host's window is forgotten once every second in it has passed and it has
been unused for a minute: it is then full again, as a new one would be.

A budget kept in a shared store (``RetryConfig(store=...)``) is also a
:class:`SharedRetryBudget`: the retry layer then asks it with flow steps, so the
store is awaited under ``AsyncClient`` and never blocks its event loop.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ._idle import IdleStates

if TYPE_CHECKING:
    from .._flow import Effect

__all__ = ["InMemoryRetryBudget", "RetryBudget", "SharedRetryBudget"]


class RetryBudget(Protocol):
    """What the retry layer needs from a budget; a shared backend may implement it too."""

    def record_request(self, key: str, now: float) -> None:
        """Count a first attempt for ``key`` (a host) at monotonic time ``now``."""

    def try_withdraw(self, key: str, now: float) -> bool:
        """Take one retry for ``key`` if the budget allows it; False when it is empty."""
        ...

    @property
    def exhausted_count(self) -> int:
        """How many retries were refused because the budget was empty."""
        ...


class SharedRetryBudget(ABC):
    """A budget the retry layer asks through flow steps, because it lives in a shared store.

    A base class, not a protocol, so the retry layer tells one apart cheaply.
    It is a :class:`RetryBudget` too, for callers outside a flow.

    Examples:
        >>> isinstance(InMemoryRetryBudget(), SharedRetryBudget)
        False
    """

    @abstractmethod
    def record(self, key: str, now: float) -> Generator[Effect, object, None]:
        """In a flow: ``yield from budget.record(host, now)`` counts a first attempt."""

    @abstractmethod
    def withdraw(self, key: str, now: float) -> Generator[Effect, object, bool]:
        """In a flow: ``allowed = yield from budget.withdraw(host, now)`` takes one retry."""

    @abstractmethod
    def record_request(self, key: str, now: float) -> None:
        """Count a first attempt for ``key`` (outside a flow)."""

    @abstractmethod
    def try_withdraw(self, key: str, now: float) -> bool:
        """Take one retry for ``key`` if the budget allows it (outside a flow)."""

    @property
    @abstractmethod
    def exhausted_count(self) -> int:
        """How many retries were refused because the budget was empty."""


@dataclass
class _Window:
    # (second, first attempts, retries) buckets, oldest first, plus running totals.
    buckets: deque[list[int]] = field(default_factory=deque)
    requests: int = 0
    retries: int = 0


class InMemoryRetryBudget:
    """A per-key budget in this process, safe for threads and tasks alike.

    The lock is held only for O(1) amortized bookkeeping, never across I/O.

    Examples:
        >>> budget = InMemoryRetryBudget(ratio=0.2, min_per_second=0, window=10)
        >>> for _ in range(10):
        ...     budget.record_request("api.example.com", now=0.0)
        >>> [budget.try_withdraw("api.example.com", now=1.0) for _ in range(3)]
        [True, True, False]
        >>> budget.exhausted_count
        1
    """

    def __init__(
        self, *, ratio: float = 0.2, min_per_second: float = 10.0, window: float = 10.0
    ) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self._windows: IdleStates[str, _Window] = IdleStates(self._is_full)
        self._lock = threading.Lock()
        self._exhausted = 0

    @property
    def exhausted_count(self) -> int:
        """How many retries were refused because the budget was empty."""
        return self._exhausted

    def _is_full(self, window: _Window, now: float) -> bool:
        """Whether every second counted in ``window`` has passed, as in a new one."""
        return not window.buckets or window.buckets[-1][0] <= int(now) - int(self.window)

    def _current(self, key: str, now: float) -> tuple[_Window, list[int]]:
        windows = self._windows
        if windows.due(now):
            windows.tidy(now)
        window = windows.get(key, now)
        if window is None:
            window = windows.add(key, _Window(), now)
        second, buckets = int(now), window.buckets
        # Opening a second's bucket drops those past the window; until the next second
        # starts, no other bucket can pass it.
        if not buckets or buckets[-1][0] != second:
            self._roll(window, second)
        return window, buckets[-1]

    def _roll(self, window: _Window, second: int) -> None:
        """Drop ``window``'s buckets older than ``self.window`` seconds; open ``second``'s."""
        buckets, horizon = window.buckets, second - int(self.window)
        while buckets and buckets[0][0] <= horizon:
            _, requests, retries = buckets.popleft()
            window.requests -= requests
            window.retries -= retries
        buckets.append([second, 0, 0])

    def record_request(self, key: str, now: float) -> None:
        """Count a first attempt for ``key`` at monotonic time ``now``."""
        with self._lock:
            window, bucket = self._current(key, now)
            bucket[1] += 1
            window.requests += 1

    def try_withdraw(self, key: str, now: float) -> bool:
        """Take one retry for ``key`` if ``retries < ratio * requests + floor`` allows it."""
        with self._lock:
            window, bucket = self._current(key, now)
            allowed = self.ratio * window.requests + self.min_per_second * self.window
            if window.retries + 1 > allowed:
                self._exhausted += 1
                return False
            bucket[2] += 1
            window.retries += 1
            return True

    def __repr__(self) -> str:
        return (
            f"InMemoryRetryBudget(ratio={self.ratio}, min_per_second={self.min_per_second}, "
            f"window={self.window})"
        )
