"""Per-host state that is forgotten once idle, so memory follows the hosts in use.

A client that talks to many hosts (a crawler, a webhook sender) would otherwise
keep a circuit, a rate-limit budget and a retry budget for every host it ever
met. :class:`IdleStates` drops a host's state once it has been unused for
:data:`IDLE_AFTER` seconds *and* is back to where a fresh one starts (the owner
says when: a closed circuit with nothing in its window, a whole budget), so
forgetting it changes no decision. State that still means something (an open
circuit, a paused host, a partly spent budget) is kept however long it is idle.

The work is amortised O(1): states wait in one line in the order they were
last reviewed. Only when the first in line has waited :data:`IDLE_AFTER` does a
call review the first few (at most :data:`_REVIEWS_PER_CALL`), dropping those
idle and fresh and sending the others to the back. There are no full scans,
and each lookup stays a dictionary lookup however many hosts there are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["IDLE_AFTER", "IdleStates"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

IDLE_AFTER = 60.0
"""Seconds a host's state stays unused before it may be forgotten."""

_REVIEWS_PER_CALL = 16  # bounds one call's extra work; the line still drains faster than it fills


class _Slot(Generic[V]):
    __slots__ = ("queued", "used", "value")

    def __init__(self, value: V, now: float) -> None:
        self.value = value
        self.used = now  # last looked up
        self.queued = now  # last joined the back of the review line


class IdleStates(Generic[K, V]):
    """A mapping of per-host state whose idle, fresh entries are forgotten.

    ``is_fresh(value, now)`` says whether a state is back to its starting
    point. Not thread-safe: the owner calls every method under its lock (a state
    looked up must be marked used before a tidy may judge it idle).

    Examples:
        >>> states = IdleStates(lambda count, now: count == 0)
        >>> states.add("a.example", 0, now=0.0), states.add("b.example", 3, now=0.0)
        (0, 3)
        >>> states.due(now=60.0), states.tidy(now=60.0)  # "b.example" still counts
        (True, [0])
        >>> list(states)
        ['b.example']
    """

    def __init__(
        self, is_fresh: Callable[[V, float], bool], *, idle_after: float = IDLE_AFTER
    ) -> None:
        self._is_fresh = is_fresh
        self._idle_after = idle_after
        self._slots: OrderedDict[K, _Slot[V]] = OrderedDict()
        self._review_at = float("inf")

    def get(self, key: K, now: float) -> V | None:
        """The state for ``key``, marked used at ``now``; ``None`` when there is none."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        slot.used = now
        return slot.value

    def peek(self, key: K) -> V | None:
        """The state for ``key`` without marking it used (for reports)."""
        slot = self._slots.get(key)
        return None if slot is None else slot.value

    def add(self, key: K, value: V, now: float) -> V:
        """Keep ``value`` as ``key``'s state, used at ``now``; returns it."""
        if not self._slots:
            self._review_at = now + self._idle_after
        self._slots[key] = _Slot(value, now)
        return value

    def pop(self, key: K) -> V | None:
        """Forget ``key``'s state at once; returns it, or ``None``."""
        slot = self._slots.pop(key, None)
        return None if slot is None else slot.value

    def clear(self) -> None:
        """Forget every state."""
        self._slots.clear()
        self._review_at = float("inf")

    def due(self, now: float) -> bool:
        """Whether a call to :meth:`tidy` at ``now`` has anything to review (one comparison)."""
        return now >= self._review_at

    def tidy(self, now: float) -> list[V]:
        """Review the first few states in line; returns those forgotten.

        A state idle for :data:`IDLE_AFTER` and fresh is dropped; any other goes
        to the back of the line, to be reviewed again :data:`IDLE_AFTER` later.
        """
        forgotten: list[V] = []
        slots, idle_after = self._slots, self._idle_after
        for _ in range(_REVIEWS_PER_CALL):
            if not slots:
                break
            key, slot = next(iter(slots.items()))
            if now - slot.queued < idle_after:
                break
            if now - slot.used >= idle_after and self._is_fresh(slot.value, now):
                del slots[key]
                forgotten.append(slot.value)
            else:
                slot.queued = now
                slots.move_to_end(key)
        self._review_at = next(iter(slots.values())).queued + idle_after if slots else float("inf")
        return forgotten

    def values(self) -> list[V]:
        """Every state kept, oldest review first."""
        return [slot.value for slot in self._slots.values()]

    def items(self) -> list[tuple[K, V]]:
        """Every ``(key, state)`` kept, oldest review first."""
        return [(key, slot.value) for key, slot in self._slots.items()]

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._slots))

    def __len__(self) -> int:
        return len(self._slots)
