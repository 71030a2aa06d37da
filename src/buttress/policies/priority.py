"""Request priorities: who goes first where requests wait.

A request's priority is ``"high"``, ``"normal"`` (the default) or ``"low"``, or
an integer level from -10 to 10: higher goes first, and the names stand for
levels 1, 0 and -1. Where requests wait (the rate limiter's queue, the pool
gate) the waiting request of the highest level goes first, first come, first
served within a level.

Ageing keeps a low level from starving: a waiting request gains one level for
every :data:`AGEING` seconds it has waited. Every waiter ages at the same rate,
so the order between two of them never changes while they wait; it is fixed
when they join, by :func:`place` - the moment the request joined, moved
earlier by ``AGEING`` seconds per level. So a request is never overtaken by one
that joined more than ``(q - p) * AGEING`` seconds after it, ``p`` being its
level and ``q`` the newcomer's: a ``"low"`` request is overtaken only by
``"high"`` requests that joined less than 20 seconds after it, and by no
request at all that joined more than 110 seconds after it (level 10).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import anyio

from .._clock import Clock
from .._exceptions import ConfigurationError

__all__ = ["AGEING", "LEVELS", "Places", "Priority", "level", "place"]

Priority: TypeAlias = Literal["high", "normal", "low"] | int
"""A request's priority: a named level, or an integer level (higher goes first)."""

LEVELS = {"high": 1, "normal": 0, "low": -1}
"""The level each named priority stands for."""

LOWEST, HIGHEST = -10, 10

AGEING = 10.0
"""Seconds of waiting that raise a waiting request's priority by one level."""

ALLOWED = f"'high', 'normal', 'low' or an int from {LOWEST} to {HIGHEST}"


def valid(value: Any) -> bool:
    """Whether ``value`` is a priority (``None`` is not: callers treat it as "normal")."""
    if isinstance(value, str):
        return value in LEVELS
    return isinstance(value, int) and not isinstance(value, bool) and LOWEST <= value <= HIGHEST


def level(priority: Priority | None) -> int:
    """The integer level of ``priority`` (``None`` is ``"normal"``, level 0).

    Raises :class:`~buttress.ConfigurationError`, naming the allowed values,
    for anything else.

    Examples:
        >>> level("high"), level(None), level(-3)
        (1, 0, -3)
        >>> level("urgent")
        Traceback (most recent call last):
        ...
        buttress.ConfigurationError: priority takes 'high', 'normal', \
'low' or an int from -10 to 10, not str
    """
    if priority is None:
        return 0
    if not valid(priority):
        got = repr(priority) if isinstance(priority, int | float) else type(priority).__name__
        raise ConfigurationError(f"priority takes {ALLOWED}, not {got}")
    return LEVELS[priority] if isinstance(priority, str) else priority


def place(joined: float, priority: Priority | None, ageing: float = AGEING) -> float:
    """Where a request that joined a queue at ``joined`` stands: the smallest goes first.

    The moment it joined, moved earlier by ``ageing`` seconds per level: a
    waiter gains a level every ``ageing`` seconds, and all gain at once, so
    this number orders them for as long as they wait. Break ties by arrival.

    Examples:
        >>> place(0.0, "low") > place(0.0, "normal") > place(0.0, "high")
        True
        >>> place(0.0, "low") < place(25.0, "high")  # waited 25 s: past two levels
        True
    """
    return joined - level(priority) * ageing


@dataclass(eq=False, slots=True)
class _Waiter:
    wake: threading.Event | anyio.Event
    given: bool = False  # a place was handed to it
    gone: bool = False  # it stopped waiting without one


@dataclass(eq=False)
class Places:
    """``count`` places, handed to waiters by priority, then arrival, as they are released.

    While a place is free nobody waits, and taking it costs one locked
    decrement. Otherwise the caller joins a line ordered by :func:`place`, and
    :meth:`release` hands the freed place straight to the first in line, so a
    newcomer cannot take it first. Use one instance for threads
    (:meth:`acquire`) or for the tasks of one event loop (:meth:`acquire_async`).

    Examples:
        >>> from buttress.testing import FakeClock
        >>> places = Places(1, clock=FakeClock())
        >>> places.acquire("normal", timeout=None), places.acquire("high", timeout=0)
        (True, False)
        >>> places.release()
        >>> places.waiting
        0
    """

    count: int
    clock: Clock
    ageing: float = AGEING
    _free: int = field(init=False)
    _waiting: int = field(init=False, default=0)
    _line: list[tuple[float, int, _Waiter]] = field(init=False, default_factory=list)
    _arrivals: itertools.count[int] = field(init=False, default_factory=itertools.count)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._free = self.count

    @property
    def waiting(self) -> int:
        """How many callers wait for a place."""
        return self._waiting

    def take_free(self) -> bool:
        """Take a free place, without waiting: whether there was one.

        Asked first, it spares the common case working out a waiter's priority
        and timeout; :meth:`acquire` looks again, as a place may come free meanwhile.
        """
        with self._lock:
            if self._free:
                self._free -= 1
                return True
            return False

    def _take_or_join(
        self, priority: Priority | None, wake: Callable[[], threading.Event | anyio.Event]
    ) -> _Waiter | None:
        """Take a free place (``None``), or join the line, to be woken by a ``wake()`` event."""
        with self._lock:
            if self._free:
                self._free -= 1
                return None
            waiter = _Waiter(wake())
            where = place(self.clock.monotonic(), priority, self.ageing)
            heapq.heappush(self._line, (where, next(self._arrivals), waiter))
            self._waiting += 1
            return waiter

    def _leave(self, waiter: _Waiter) -> bool:
        """``waiter`` stops waiting: whether it holds a place after all (handed as it left)."""
        with self._lock:
            if not (waiter.given or waiter.gone):
                waiter.gone = True
                self._waiting -= 1
            return waiter.given

    def acquire(self, priority: Priority | None, timeout: float | None) -> bool:
        """Take a place for this thread, waiting at most ``timeout`` seconds (``None``: forever)."""
        waiter = self._take_or_join(priority, threading.Event)
        if waiter is None:
            return True
        assert isinstance(waiter.wake, threading.Event)
        try:
            return waiter.wake.wait(timeout) or self._leave(waiter)
        except BaseException:  # interrupted: a place handed over meanwhile goes to the next
            if self._leave(waiter):
                self.release()
            raise

    async def acquire_async(self, priority: Priority | None, timeout: float | None) -> bool:
        """Take a place for this task, waiting at most ``timeout`` seconds (``None``: forever)."""
        waiter = self._take_or_join(priority, anyio.Event)
        if waiter is None:
            return True
        assert isinstance(waiter.wake, anyio.Event)
        try:
            with anyio.move_on_after(timeout):
                await waiter.wake.wait()
        except BaseException:  # cancelled: a place handed over meanwhile goes to the next
            if self._leave(waiter):
                self.release()
            raise
        return self._leave(waiter)

    def release(self) -> None:
        """Give a place back: to the first in line, or to the free ones."""
        with self._lock:
            while self._line:
                _, _, waiter = heapq.heappop(self._line)
                if not waiter.gone:
                    waiter.given = True
                    self._waiting -= 1
                    break
            else:
                self._free += 1
                return
        waiter.wake.set()
