"""A clock for tests: time moves only when something sleeps or the test says so."""

from __future__ import annotations

import threading

import anyio

__all__ = ["FakeClock"]


class FakeClock:
    """A :class:`buttress.Clock` whose time moves only on ``sleep`` or :meth:`advance`.

    Sleeping returns at once, having moved the clock forward, so retries,
    breakers, rate limits and cache expiry run in tests without real waiting.
    Every sleep is recorded in :attr:`sleeps`. Thread-safe.

    Examples:
        >>> clock = FakeClock()
        >>> clock.sleep(2.5)
        >>> clock.monotonic(), clock.sleeps
        (2.5, [2.5])
        >>> clock.advance(10)
        >>> clock.monotonic()
        12.5
    """

    def __init__(self, start: float = 0.0, *, epoch: float = 1_700_000_000.0) -> None:
        self._now = start
        self._epoch = epoch
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await anyio.sleep(0)  # still a checkpoint: other tasks get to run

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"
