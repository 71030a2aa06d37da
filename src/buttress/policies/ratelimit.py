"""Client-side rate limits as pure bookkeeping: no I/O, no sleeping, time passed in.

Every limit answers one question, "when may the next request go?", and hands
out *reservations*: :meth:`Limit.available_at` gives the earliest moment at or
after ``now`` (possibly in the future, past slots already promised to others),
and :meth:`Limit.take` commits a slot at that moment. Because each caller books
its slot in O(1) and slots are handed out in booking order, callers that then
sleep until their slot are served first in, first out, and nobody holds a lock
while waiting.

A sleeper can wake late (a busy event loop fires a thousand timers at once), and
late sleepers bunch: sent together, they would exceed the limit even though
their slots did not. So each limit is kept twice: once for the slots *booked*
(the queue's order and waits) and once for the requests really *sent*. A queued
caller that wakes asks :meth:`RateLimitPolicy.admit`, which lets it go only if
sending at that moment keeps every limit, and otherwise says how much longer to
wait. When the sends trail the bookings, later bookings are pushed back by the
same amount, so the queue's waits stay honest under a lagging scheduler.

A queued caller may leave before its slot comes (cancelled, timed out). Its
booking is then undone, newest first: at once when nobody booked after it is
still waiting, else as soon as they have all left. Those still waiting keep
their slots and their order; nobody is moved into the gap, because a sleeper
cannot be woken early, and a newcomer put there would jump the queue.

Requests may carry a priority (:mod:`buttress._priority`). Callers waiting for
the same limits stand in one line, ordered by priority, then arrival, with
ageing; the slots booked for that line go to the callers in line order. A
newcomer that goes ahead of others takes the slot of the first it passes, and
each caller it passed moves one slot later: a sleeper woken for its old slot
is told to sleep on until its new one. Without priorities the line is the
booking order, and every caller keeps its own slot.

The three strategies:

* :class:`TokenBucket` - a steady rate with a burst allowance, kept as one
  number (the GCRA "theoretical arrival time"), so it is exact and O(1).
* :class:`FixedWindow` - at most ``max_requests`` in each window of
  ``time_window`` seconds, windows counted from the first request.
* :class:`SlidingWindow` - at most ``max_requests`` in *any* ``time_window``
  seconds (a log of the last ``max_requests`` slots).

:class:`RateLimitPolicy` combines them: a global or per-host limit, endpoint
rules, and what servers said (``Retry-After``, "0 remaining until ..."), per host,
never pausing a host longer than ``max_pause``.
"""

from __future__ import annotations

import bisect
import fnmatch
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol, cast

from .._priority import AGEING, Priority, place

__all__ = [
    "Booking",
    "FixedWindow",
    "Hold",
    "Limit",
    "RateLimitPolicy",
    "Refusal",
    "SlidingWindow",
    "Strategy",
    "TokenBucket",
    "make_limit",
]

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
        self._tat = max(self._tat, at) + self._interval
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


@dataclass(frozen=True, slots=True)
class Rule:
    """A limit for requests matching ``method`` and ``path`` (fnmatch patterns).

    Examples:
        >>> Rule("POST", "/users*", "token_bucket", 1, 1.0, None).matches("POST", "/users/1")
        True
    """

    method: str
    path: str
    strategy: Strategy
    max_requests: int
    time_window: float
    burst_size: int | None

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with ``method`` and ``path`` counts against this rule."""
        return fnmatch.fnmatchcase(method.upper(), self.method.upper()) and fnmatch.fnmatchcase(
            path, self.path
        )


@dataclass(frozen=True, slots=True)
class Booking:
    """A slot was booked: wait ``delay`` seconds, then (when ``queued``) ask to be admitted.

    ``slot`` is the booked moment on the policy's own schedule, for
    :meth:`RateLimitPolicy.admit`; ``ticket`` names a queued booking, so that a
    caller who gives up can hand its slot back (:meth:`RateLimitPolicy.done_waiting`).
    """

    delay: float
    queued: bool
    slot: float = field(default=0.0, repr=False, compare=False)
    ticket: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Hold:
    """The host's server asked for a pause: wait ``delay`` seconds, then book again.

    Nothing is booked, so a paused host's requests do not hold slots that other
    hosts' requests could use.
    """

    delay: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """No slot: the queue is full or the wait would exceed the timeout; retry in ``retry_after``.

    ``past_deadline`` is true when the wait would outlast the request's own deadline.
    """

    retry_after: float
    reason: str
    past_deadline: bool = False


@dataclass(eq=False, slots=True)
class _Reservation:
    """A queued booking's slot, from booking until it is sent or given back."""

    ticket: int
    budgets: list[_Budget]
    slot: float
    left: bool = False  # the caller gave up waiting


@dataclass(eq=False, slots=True)
class _Line:
    """The callers queued for one set of limits, and the slots booked for them.

    ``callers`` holds ``(place, ticket)`` in the order they will go (see
    :func:`~buttress._priority.place`); ``bookings`` the line's bookings in the
    order they were made, which is the order of their slots. The caller at
    position ``i`` goes at the slot of ``bookings[i]``; when it goes or leaves,
    that booking goes with it, so everyone else keeps their slot.
    """

    key: tuple[int, ...]
    callers: list[tuple[float, int]] = field(default_factory=list)
    bookings: list[_Reservation] = field(default_factory=list)

    def position(self, where: float, ticket: int) -> int:
        return bisect.bisect_left(self.callers, (where, ticket))

    def join(self, where: float, reservation: _Reservation) -> None:
        self.bookings.append(reservation)
        self.callers.insert(self.position(where, reservation.ticket), (where, reservation.ticket))

    def slot_of(self, where: float, ticket: int) -> float:
        return self.bookings[self.position(where, ticket)].slot

    def leave(self, where: float, ticket: int) -> _Reservation:
        """Take the caller out of line, with the booking whose slot it held."""
        position = self.position(where, ticket)
        del self.callers[position]
        return self.bookings.pop(position)


@dataclass(slots=True)
class _Budget:
    """One limit kept twice: the slots booked (order, waits) and the requests really sent.

    ``reservations`` holds the queued bookings that could still be undone, oldest
    first, each with what undoing its take needs. Undoing goes newest first, so a
    caller who leaves from the middle of the queue frees its slot once everyone
    booked after it has left too: those still waiting keep their slots and order.
    """

    booked: Limit
    sent: Limit
    reservations: deque[tuple[_Reservation, object]] = field(default_factory=deque)

    def take_for_good(self, slot: float) -> None:
        """Book ``slot`` for a request that goes now: nothing booked before it can be undone."""
        self.booked.take(slot)
        self.reservations.clear()

    def settle(self, reservation: _Reservation) -> None:
        """``reservation``'s request went: it, and everything booked before it, stays."""
        while self.reservations and self.reservations[0][0].ticket <= reservation.ticket:
            self.reservations.popleft()

    def give_back(self) -> None:
        """Undo the newest bookings whose callers have left."""
        while self.reservations and self.reservations[-1][0].left:
            _, undo = self.reservations.pop()
            self.booked.untake(undo)


@dataclass
class _Host:
    """What a host's server told us most recently."""

    paused_until: float = float("-inf")
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # monotonic
    policy: str | None = None


@dataclass
class RateLimitPolicy:
    """Every limit a client keeps, and what servers said, per host. Not thread-safe alone.

    A request counts against the main limit (one for all hosts with
    ``scope="global"``, one per host with ``scope="host"``) and against every
    endpoint rule it matches (per host too when ``scope="host"``); it goes when
    all of them and the host's server-side pause allow. A server's pause lasts
    at most ``max_pause`` seconds. Times are monotonic seconds.

    No limit is ever exceeded by the requests really sent: a request that waited
    goes only once :meth:`admit` agrees, at the moment it asks. A request that
    one limit delays is charged to every limit at the moment it will go, so
    requests booked after it may wait behind it (never past it). With endpoint
    rules much slower than the main limit this costs some head-of-line waiting;
    give such endpoints a limiter of their own (a separate client or mount)
    when that matters.

    Examples:
        >>> policy = RateLimitPolicy("token_bucket", 1, 1.0, 1, scope="global")
        >>> policy.book("GET", "api", "/", now=0.0)
        Booking(delay=0.0, queued=False)
        >>> policy.book("GET", "api", "/", now=0.0, wait=False)
        Refusal(retry_after=1.0, reason='client-side rate limit reached', past_deadline=False)
    """

    strategy: Strategy = "token_bucket"
    max_requests: int | None = None
    time_window: float = 1.0
    burst_size: int | None = None
    scope: Literal["global", "host"] = "global"
    rules: tuple[Rule, ...] = ()
    queue_size: int | None = None
    queue_timeout: float | None = None
    max_pause: float = 300.0
    ageing: float = AGEING
    waiting: int = 0
    _budgets: dict[tuple[object, ...], _Budget] = field(default_factory=dict)
    _hosts: dict[str, _Host] = field(default_factory=dict)
    _lines: dict[tuple[int, ...], _Line] = field(default_factory=dict)
    _queued: dict[int, tuple[float, _Line]] = field(default_factory=dict)  # ticket: place, line
    _tickets: int = 0
    _behind: float = 0.0  # how far the sends trail the booked slots while a queue lasts

    def _budget(self, key: tuple[object, ...], spec: Rule | None) -> _Budget:
        budget = self._budgets.get(key)
        if budget is None:
            if spec is None:
                assert self.max_requests is not None
                spec = Rule(
                    "*", "*", self.strategy, self.max_requests, self.time_window, self.burst_size
                )
            booked, sent = (
                make_limit(spec.strategy, spec.max_requests, spec.time_window, spec.burst_size)
                for _ in range(2)
            )
            budget = _Budget(booked, sent)
            self._budgets[key] = budget
        return budget

    def _applicable(self, method: str, host: str, path: str) -> list[_Budget]:
        scope_key = host if self.scope == "host" else ""
        budgets = [] if self.max_requests is None else [self._budget(("main", scope_key), None)]
        for index, rule in enumerate(self.rules):
            if rule.matches(method, path):
                budgets.append(self._budget(("rule", index, scope_key), rule))
        return budgets

    def book(
        self,
        method: str,
        host: str,
        path: str,
        now: float,
        *,
        wait: bool = True,
        waited: float = 0.0,
        deadline: float | None = None,
        priority: Priority | None = None,
    ) -> Booking | Hold | Refusal:
        """Book the earliest slot for a request, hold it while its host is paused, or refuse.

        With ``wait=False`` any delay is a refusal. ``waited`` is how long the
        request has already been held (it counts against ``queue_timeout``); a
        wait that would end after ``deadline`` is refused with ``past_deadline``.
        A refusal books nothing; so does a hold. A booking without delay is
        admitted at once; a queued one sleeps, then asks :meth:`admit`, and
        ends with :meth:`done_waiting` either way. A queued request takes its
        place in line by ``priority`` (see :mod:`buttress._priority`).
        """
        server = self._hosts.get(host)
        if server is not None and server.paused_until > now:
            delay = server.paused_until - now
            refusal = self._refusal(now, delay, waited, wait, deadline, "the server asked to wait")
            if refusal is not None:
                return refusal
            self.waiting += 1
            return Hold(delay)
        budgets = self._applicable(method, host, path)
        if self.waiting == 0:
            self._behind = 0.0  # no queue: nothing left to trail
        # Booked slots live on a schedule shifted back by how far the sends trail it.
        scheduled = now - self._behind
        slot = max([scheduled, *(budget.booked.available_at(scheduled) for budget in budgets)])
        at = max([slot + self._behind, *(budget.sent.available_at(now) for budget in budgets)])
        delay = at - now
        slot = at - self._behind
        if delay <= 0:
            for budget in budgets:
                budget.take_for_good(slot)
                budget.sent.take(now)
            return Booking(delay, queued=False, slot=slot)
        where = place(now, priority, self.ageing)
        ticket = self._tickets + 1
        # The budgets live as long as the policy: their identities name the line.
        key = tuple(map(id, budgets))
        line = self._lines.get(key) or _Line(key)
        position = line.position(where, ticket)
        given = line.bookings[position].slot if position < len(line.bookings) else slot
        if given < slot:  # it goes ahead of others: at the slot of the first it passes
            sent_at = max([now, *(budget.sent.available_at(now) for budget in budgets)])
            delay = max(given + self._behind, sent_at) - now
        why = "client-side rate limit reached"
        refusal = self._refusal(now, delay, waited, wait, deadline, why)
        if refusal is not None:
            return refusal
        self.waiting += 1
        self._tickets = ticket
        reservation = _Reservation(ticket, budgets, slot)
        for budget in budgets:
            budget.reservations.append((reservation, budget.booked.take(slot)))
        line.join(where, reservation)
        self._lines[key] = line
        self._queued[ticket] = where, line
        return Booking(delay, queued=True, slot=given, ticket=ticket)

    def admit(self, method: str, host: str, path: str, now: float, booking: Booking) -> float:
        """Let a queued request whose wait is over go now (0.0), or say how much longer to wait.

        It goes only if sending at ``now`` keeps every limit, counting what was
        really sent; a caller that wakes on time finds it so. A refusal means the
        sends trail the schedule: the schedule is pushed back to match, and the
        caller waits for its slot's new place on it. A caller that others of a
        higher priority passed while it slept waits for its new slot.
        """
        budgets = self._applicable(method, host, path)
        slot, queued = booking.slot, self._queued.get(booking.ticket)
        if queued is not None:
            where, line = queued
            slot = line.slot_of(where, booking.ticket)
            if slot > booking.slot and slot + self._behind > now + _ROUNDING:  # passed meanwhile
                return slot + self._behind - now
        at = max([now, *(budget.sent.available_at(now) for budget in budgets)])
        if at > now:
            # The sends trail the schedule: shift it, and wait for this slot's new place
            # on it (so callers refused together keep their order and spacing).
            self._behind = max(self._behind, at - slot)
            return slot + self._behind - now
        for budget in budgets:
            budget.sent.take(now)
        if queued is not None:
            reservation = self._leave_line(booking.ticket)
            for budget in reservation.budgets:
                budget.settle(reservation)
        self._behind = now - slot
        return 0.0

    def _leave_line(self, ticket: int) -> _Reservation:
        """Take a queued caller out of its line, with the booking whose slot it held."""
        where, line = self._queued.pop(ticket)
        reservation = line.leave(where, ticket)
        if not line.callers:
            del self._lines[line.key]
        return reservation

    def _refusal(
        self,
        now: float,
        delay: float,
        waited: float,
        wait: bool,
        deadline: float | None,
        why: str,
    ) -> Refusal | None:
        if not wait:
            return Refusal(delay, why)
        if deadline is not None and now + delay > deadline:
            return Refusal(
                delay,
                f"{why}: a wait of {delay:.3g}s would outlast the request's deadline "
                f"({max(deadline - now, 0.0):.3g}s left)",
                past_deadline=True,
            )
        if self.queue_size is not None and self.waiting >= self.queue_size:
            return Refusal(delay, f"rate-limit queue is full ({self.queue_size} waiting)")
        if self.queue_timeout is not None and waited + delay > self.queue_timeout:
            return Refusal(
                delay,
                f"{why}: a wait of {waited + delay:.3g}s exceeds "
                f"queue_timeout={self.queue_timeout}",
            )
        return None

    def done_waiting(self, booking: Booking | Hold | None = None) -> None:
        """A queued or held caller stops waiting: its slot came, or it gave up.

        A ``booking`` that :meth:`admit` never let go gives its slot back, so a
        caller that is cancelled or times out does not delay the ones after it.
        The slot is freed at once when no one booked later is still waiting, and
        otherwise as soon as they have all left: those still waiting keep their
        slots, in their order.
        """
        self.waiting -= 1
        if isinstance(booking, Booking) and booking.ticket in self._queued:
            reservation = self._leave_line(booking.ticket)
            reservation.left = True
            for budget in reservation.budgets:
                budget.give_back()

    def observe(
        self,
        host: str,
        now: float,
        *,
        limit: int | None = None,
        remaining: int | None = None,
        reset_after: float | None = None,
        policy: str | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """Record what ``host``'s server said; pause the host when it says to.

        A ``retry_after`` (from a 429 or 503) pauses the host for that long;
        "0 remaining" with a reset time pauses it until the reset. No pause
        lasts longer than ``max_pause``: when a server asked for more, the
        pause it asked for is returned (else ``None``).
        """
        state = self._hosts.setdefault(host, _Host())
        if limit is not None or remaining is not None:
            state.limit, state.remaining, state.policy = limit, remaining, policy
            state.reset_at = None if reset_after is None else now + reset_after
        pause = retry_after
        if pause is None and remaining is not None and remaining <= 0:
            pause = reset_after
        if pause is None:
            return None
        state.paused_until = max(state.paused_until, now + min(pause, self.max_pause))
        return pause if pause > self.max_pause else None

    def reset(self, host: str | None = None) -> None:
        """Forget what ``host``'s server said (every host's when ``None``), ending its pause."""
        if host is None:
            self._hosts.clear()
        else:
            self._hosts.pop(host, None)

    def client_status(self, host: str, now: float) -> tuple[int | None, int | None, float | None]:
        """``(limit, remaining, reset_at)`` of the main client-side budget for ``host``."""
        if self.max_requests is None:
            return None, None, None
        scope_key = host if self.scope == "host" else ""
        budget = self._budgets.get(("main", scope_key))
        if budget is None:
            return self.max_requests, self.max_requests, now
        scheduled = now - self._behind
        remaining = budget.booked.remaining(scheduled)
        return self.max_requests, remaining, budget.booked.reset_at(scheduled) + self._behind

    def server_status(self) -> dict[str, tuple[int | None, int | None, float | None, str | None]]:
        """Per host: ``(limit, remaining, reset_at, policy)`` as the server last said."""
        return {
            host: (state.limit, state.remaining, state.reset_at, state.policy)
            for host, state in self._hosts.items()
        }
