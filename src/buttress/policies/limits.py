"""Limit algorithms: when may the next request go? Pure bookkeeping, time passed in.

Every limit answers one question, "when may the next request go?", and hands
out *reservations*: :meth:`Limit.available_at` gives the earliest moment at or
after ``now`` (possibly in the future, past slots already promised to others),
and :meth:`Limit.take` commits a slot at that moment. Because each caller books
its slot in O(1) and slots are handed out in booking order, callers that then
sleep until their slot are served first in, first out, and nobody holds a lock
while waiting.

The three strategies:

* :class:`TokenBucket` - a steady rate with a burst allowance, kept as one
  number (the GCRA "theoretical arrival time"), so it is exact and O(1).
* :class:`FixedWindow` - at most ``max_requests`` in each window of
  ``time_window`` seconds, windows counted from the first request.
* :class:`SlidingWindow` - at most ``max_requests`` in *any* ``time_window``
  seconds (a log of the last ``max_requests`` slots).

:mod:`buttress.policies.ratelimit` combines them into a rate limiter.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, Protocol, cast

__all__ = ["FixedWindow", "Limit", "SlidingWindow", "Strategy", "TokenBucket", "make_limit"]

Strategy = Literal["token_bucket", "fixed_window", "sliding_window"]

_ROUNDING = 1e-9  # seconds: far below any clock's resolution, far above float error here


class Limit(Protocol):
    """One budget of requests over time."""

    max_requests: int

    def available_at(self, now: float) -> float:
        """The earliest time (>= ``now``) at which one more request may go."""
        ...

    def take(self, at: float) -> object:
        """Commit one request at ``at`` (which is >= ``available_at(at)``).

        Returns what :meth:`untake` needs to undo it.
        """
        ...

    def untake(self, undo: object) -> None:
        """Undo the newest :meth:`take` still standing, given what it returned."""

    def remaining(self, now: float) -> int:
        """Requests that could go at ``now`` without waiting."""
        ...

    def reset_at(self, now: float) -> float:
        """When the budget is whole again (``now`` if it already is)."""
        ...


class TokenBucket:
    """``max_requests`` per ``time_window`` at a steady pace, with bursts of ``burst_size``.

    Kept as the GCRA theoretical arrival time ``tat``: one request costs
    ``interval = time_window / max_requests``; a request at ``t`` conforms when
    ``t >= tat - (burst_size - 1) * interval``.

    Examples:
        >>> bucket = TokenBucket(max_requests=2, time_window=1.0, burst_size=2)
        >>> for _ in range(3):
        ...     at = bucket.available_at(0.0)
        ...     undo = bucket.take(at)  # what untake(undo) needs
        ...     print(at)
        0.0
        0.0
        0.5
    """

    def __init__(self, max_requests: int, time_window: float, burst_size: int) -> None:
        self.max_requests = max_requests
        self.burst_size = burst_size
        self._interval = time_window / max_requests
        self._tolerance = (burst_size - 1) * self._interval
        self._tat = float("-inf")

    def available_at(self, now: float) -> float:
        at = self._tat - self._tolerance
        # ``tat`` is a sum of many intervals: its rounding error must not make the
        # last request of a burst wait 2e-16 s (and queue).
        return now if at <= now + _ROUNDING else at

    def take(self, at: float) -> object:
        before = self._tat
        self._tat = (before if before > at else at) + self._interval  # max(), without a call
        return before

    def untake(self, undo: object) -> None:
        assert isinstance(undo, float)
        self._tat = undo

    def remaining(self, now: float) -> int:
        backlog = max(0.0, self._tat - now)  # seconds of requests not yet paid back
        return max(0, int((self._tolerance + self._interval - backlog) / self._interval + 1e-9))

    def reset_at(self, now: float) -> float:
        return max(now, self._tat)


class FixedWindow:
    """At most ``max_requests`` per window of ``time_window`` seconds.

    Windows are laid end to end from the first request. Bookings fill the
    newest window with room; a full window sends the next booking to the start
    of the following one.

    Examples:
        >>> window = FixedWindow(max_requests=2, time_window=10.0)
        >>> for now in (1.0, 2.0, 3.0):
        ...     at = window.available_at(now)
        ...     undo = window.take(at)
        ...     print(at)
        1.0
        2.0
        11.0
    """

    def __init__(self, max_requests: int, time_window: float) -> None:
        self.max_requests = max_requests
        self._window = time_window
        self._start: float | None = None  # start of the newest window with bookings
        self._count = 0

    def _window_of(self, now: float) -> tuple[float, int]:
        """The (start, bookings) of the window a request at ``now`` would fall in."""
        if self._start is None:
            return now, 0
        if now >= self._start + self._window:
            elapsed = (now - self._start) // self._window
            return self._start + elapsed * self._window, 0
        return self._start, self._count

    def available_at(self, now: float) -> float:
        start, count = self._window_of(now)
        return max(now, start) if count < self.max_requests else start + self._window

    def take(self, at: float) -> object:
        before = self._start, self._count
        start, count = self._window_of(at)
        self._start, self._count = start, count + 1
        return before

    def untake(self, undo: object) -> None:
        self._start, self._count = cast("tuple[float | None, int]", undo)

    def remaining(self, now: float) -> int:
        start, count = self._window_of(now)
        return 0 if start > now else self.max_requests - count

    def reset_at(self, now: float) -> float:
        start, count = self._window_of(now)
        return now if count == 0 else start + self._window


class SlidingWindow:
    """At most ``max_requests`` in any span of ``time_window`` seconds.

    A log of the last ``max_requests`` booked slots: the next request may go
    ``time_window`` after the oldest of them. Exact, with O(max_requests) memory.

    Examples:
        >>> window = SlidingWindow(max_requests=2, time_window=10.0)
        >>> [window.take(window.available_at(now)) for now in (1.0, 2.0)]
        [None, None]
        >>> window.available_at(3.0)  # time_window after the oldest of the last two
        11.0
    """

    def __init__(self, max_requests: int, time_window: float) -> None:
        self.max_requests = max_requests
        self._window = time_window
        self._log: deque[float] = deque(maxlen=max_requests)

    def available_at(self, now: float) -> float:
        if len(self._log) < self.max_requests:
            return now
        return max(now, self._log[0] + self._window)

    def take(self, at: float) -> object:
        pushed_out = self._log[0] if len(self._log) == self.max_requests else None
        self._log.append(at)
        return pushed_out

    def untake(self, undo: object) -> None:
        self._log.pop()
        if isinstance(undo, float):
            self._log.appendleft(undo)

    def remaining(self, now: float) -> int:
        return self.max_requests - sum(1 for t in self._log if t > now - self._window)

    def reset_at(self, now: float) -> float:
        return max(now, self._log[-1] + self._window) if self._log else now


def make_limit(
    strategy: Strategy, max_requests: int, time_window: float, burst_size: int | None = None
) -> Limit:
    """A fresh limit for ``strategy``; a token bucket's burst defaults to ``max_requests``.

    Examples:
        >>> type(make_limit("sliding_window", 10, 1.0)).__name__
        'SlidingWindow'
    """
    if strategy == "token_bucket":
        return TokenBucket(max_requests, time_window, burst_size or max_requests)
    if strategy == "fixed_window":
        return FixedWindow(max_requests, time_window)
    return SlidingWindow(max_requests, time_window)
