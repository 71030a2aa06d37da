"""Whether a shared store answers, and what to do while it does not.

A store that is slow or gone must never hang a request nor lose its response.
:class:`StoreHealth` sees every failed call: by default (``on_store_error=
"fallback"``) the store is marked *degraded*, one WARNING is logged, and the
callers use per-process state (``UNAVAILABLE`` tells them so) until a call
succeeds again, which logs one INFO. While degraded, the store is asked again at
most once per ``recheck`` seconds, so a store that times out costs one timeout
per ``recheck``, not one per request. With ``on_store_error="raise"`` each failed
call raises :class:`~buttress.StoreError` instead.

A silent fallback multiplies a fleet's rate by its number of processes, so the
degraded state is visible: :attr:`StoreHealth.degraded`, :meth:`StoreHealth.status`,
the log records, and the ``buttress_store_degraded`` metric (give the store
``on_degraded_change=collector.store_degraded_changed``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError, StoreError

__all__ = [
    "UNAVAILABLE",
    "OnDegradedChange",
    "OnStoreError",
    "StoreHealth",
    "StoreStatus",
    "Unavailable",
]

logger = logging.getLogger("buttress.store")

OnStoreError: TypeAlias = Literal["fallback", "raise"]
#: Told ``(store name, degraded)`` when a store goes away or comes back.
OnDegradedChange: TypeAlias = Callable[[str, bool], None]


class Unavailable(enum.Enum):
    """The type of :data:`UNAVAILABLE`."""

    UNAVAILABLE = "UNAVAILABLE"

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = Unavailable.UNAVAILABLE
"""What a store call returns when the store is away and the caller should use its
per-process state instead: ``if answer is UNAVAILABLE: ...``."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """A store's health at one moment.

    Attributes:
        degraded: the store is away and per-process state is used instead.
        since: when it went away (seconds since the epoch), or ``None``.
        failed_calls: calls that failed or were skipped since then.
        last_error: what the last failure was (its type and message, no credentials).

    Examples:
        >>> StoreStatus(degraded=False, since=None, failed_calls=0, last_error=None).degraded
        False
    """

    degraded: bool
    since: float | None
    failed_calls: int
    last_error: str | None


class StoreHealth:
    """Tracks one store's failures: falls back or raises, logs each change once.

    ``name`` says which store in messages and logs (an address, never a
    credential). Thread-safe; the lock is held only for bookkeeping.
    ``on_degraded_change(name, degraded)`` is told the state at once, then each
    change (a metric's gauge, say); calls to it are serialised and each tells
    the state as it is when made, so the last one told is never stale.

    Examples:
        >>> health = StoreHealth("Redis at 127.0.0.1:6379/0")
        >>> health.should_try()
        True
        >>> health.failed(OSError("connection refused"))
        >>> health.degraded, health.should_try()
        (True, False)
        >>> health.succeeded()
        >>> health.degraded
        False
    """

    def __init__(
        self,
        name: str,
        *,
        on_store_error: OnStoreError = "fallback",
        recheck: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
        on_degraded_change: OnDegradedChange | None = None,
    ) -> None:
        if on_store_error not in ("fallback", "raise"):
            raise ConfigurationError(
                f"on_store_error must be 'fallback' or 'raise', not {on_store_error!r}"
            )
        if not recheck >= 0:
            raise ConfigurationError(f"recheck must be a number of seconds >= 0, not {recheck!r}")
        self.name = name
        self.on_store_error: OnStoreError = on_store_error
        self.recheck = recheck
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._next_try = 0.0
        self._failed_calls = 0
        self._last_error: str | None = None
        self._generation = 0  # changes between healthy and degraded so far
        self._on_degraded_change = on_degraded_change
        self._telling = threading.Lock()  # not self._lock: the callback may ask status()
        self._told: bool | None = None
        self._tell()

    @property
    def degraded(self) -> bool:
        """Whether the store is away and per-process state is used instead."""
        return self._since is not None

    def should_try(self) -> bool:
        """Whether to ask the store now (always, unless degraded and not yet due a recheck)."""
        if self._since is None or self.on_store_error == "raise":
            return True
        with self._lock:
            now = self._clock.monotonic()
            if now >= self._next_try:
                self._next_try = now + self.recheck  # one caller probes; the others fall back
                return True
            self._failed_calls += 1
            return False

    @property
    def generation(self) -> int:
        """How many times the store has gone away or come back: read it before a call.

        A call that ends after such a change began before it, and tells nothing of
        the store now (a reply that was on its way when the server died; a timeout
        that ends after a probe found the store back): :meth:`failed` and
        :meth:`succeeded` given the generation the call began in ignore it.

        Examples:
            >>> health = StoreHealth("Redis at 127.0.0.1:6379/0")
            >>> began = health.generation
            >>> health.failed(OSError("connection refused"), health.generation)
            >>> health.succeeded(began)  # answered before the store went away
            >>> health.degraded
            True
        """
        return self._generation

    def failed(self, error: BaseException, began: int | None = None) -> None:
        """A call (begun in generation ``began``) failed: raise, or note it and fall back.

        Raises :class:`~buttress.StoreError` with ``on_store_error="raise"``; otherwise
        returns ``None`` (the caller then returns :data:`UNAVAILABLE`).
        """
        what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if self.on_store_error == "raise":
            self._raise(what, error)
        with self._lock:
            if self._since is None and began not in (None, self._generation):
                return  # it came back since this call began
            self._failed_calls += 1
            self._last_error = what
            self._next_try = self._clock.monotonic() + self.recheck
            if self._since is not None:
                return
            self._since = self._clock.time()
            self._generation += 1
        logger.warning(
            "%s is unavailable (%s); using per-process state until it is back", self.name, what
        )
        self._tell()

    def _raise(self, what: str, error: BaseException) -> NoReturn:
        raise StoreError(f"{self.name} failed: {what}") from error

    def succeeded(self, began: int | None = None) -> None:
        """A call (begun in generation ``began``) succeeded: if the store was away, it is back."""
        if self._since is None:
            return
        with self._lock:
            since = self._since
            if since is None or began not in (None, self._generation):
                return  # seen back by another caller, or an answer from before it went away
            self._since = None
            self._failed_calls = 0
            self._generation += 1
        away = self._clock.time() - since
        logger.info("%s is back after %.3gs; sharing state again", self.name, away)
        self._tell()

    def _tell(self) -> None:
        """Tell ``on_degraded_change`` the state now, unless that is what it was told last."""
        if self._on_degraded_change is None:
            return
        with self._telling:
            degraded = self.degraded
            if degraded != self._told:
                self._told = degraded
                self._on_degraded_change(self.name, degraded)

    def status(self) -> StoreStatus:
        """The store's health now."""
        with self._lock:
            return StoreStatus(self.degraded, self._since, self._failed_calls, self._last_error)

    def __repr__(self) -> str:
        state = "degraded" if self.degraded else "healthy"
        return f"StoreHealth({self.name!r}, {state})"
