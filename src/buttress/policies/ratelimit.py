"""Client-side rate limits: configuration, shared state and decisions; no I/O, no sleeping.

:class:`RateLimitConfig` says what the limits are; :class:`RateLimiter` is the
state every request (and client) given it shares, with a lock held only for
O(1) bookkeeping; :class:`RateLimitPolicy` decides, with time passed in. The
limit algorithms themselves are in :mod:`buttress.policies.limits`, and
:class:`~buttress.transports.RateLimitTransport` is the layer that waits.

A sleeper can wake late (a busy event loop fires a thousand timers at once), and
late sleepers bunch: sent together, they would exceed the limit even though
their slots did not. So each limit is kept twice: once for the slots *booked*
(the queue's order and waits) and once for the requests really *sent*. A queued
caller that wakes asks :meth:`RateLimitPolicy.admit`, which lets it go only if
sending at that moment keeps every limit, and otherwise says how much longer to
wait. When the sends trail the bookings, later bookings are pushed back by the
same amount, so the queue's waits stay honest under a lagging scheduler.

A request may also wait between its turn and the moment it leaves: for a
connection, when the pool is full. Counted as sent at its turn, it would leave
late, together with the others that waited, in a burst over the limit. So such
a request books with ``send_now=False``: its turn (:meth:`RateLimitPolicy.take_turn`)
takes it out of the queue, and it counts as sent only when :meth:`RateLimitPolicy.admit`,
asked once it has its connection, lets it go.

A queued caller may leave before its slot comes (cancelled, timed out). Its
booking is then undone, newest first: at once when nobody booked after it is
still waiting, else as soon as they have all left. Those still waiting keep
their slots and their order; nobody is moved into the gap, because a sleeper
cannot be woken early, and a newcomer put there would jump the queue.

Requests may carry a priority (:mod:`buttress.policies.priority`). Callers waiting for
the same limits stand in one line, ordered by priority, then arrival, with
ageing; the slots booked for that line go to the callers in line order. A
newcomer that goes ahead of others takes the slot of the first it passes, and
each caller it passed moves one slot later: a sleeper woken for its old slot
is told to sleep on until its new one. Without priorities the line is the
booking order, and every caller keeps its own slot.

:class:`RateLimitPolicy` combines the limits: a global or per-host limit,
endpoint rules, and what servers said (``Retry-After``, "0 remaining until ..."),
per host, never pausing a host longer than ``max_pause``.

A host's budgets and what its server said are forgotten once they have been
unused for a minute and are back to where new ones start (budgets whole, nobody
in line, no pause), so a client that meets many hosts keeps only those in use.
"""

from __future__ import annotations

import bisect
import fnmatch
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal, Protocol

import httpx
from pydantic import Field, model_validator

from .._clock import SYSTEM_CLOCK, Clock
from .._config import AnyCollection, FrozenConfig, PythonOnly, require_config
from .._exceptions import describe
from .._lazy import moved
from ._idle import IdleStates
from .headers import RateLimitInfo, parse_rate_limit, parse_retry_after, rate_limit_headers
from .limits import _ROUNDING, Limit, Strategy, make_limit
from .priority import AGEING, Priority, place
from .store import SharedStore

if TYPE_CHECKING:
    from ..stores.ratelimit import SharedLimits

__all__ = [
    "Booking",
    "EndpointLimit",
    "Hold",
    "RateLimitBackend",
    "RateLimitConfig",
    "RateLimitPolicy",
    "RateLimitStatus",
    "RateLimiter",
    "Refusal",
    "Rule",
]

# The limit algorithms were released here, before they had a module of their own.
__getattr__ = moved(
    __name__, "buttress.policies.limits", ("FixedWindow", "SlidingWindow", "TokenBucket")
)

logger = logging.getLogger("buttress.ratelimit")


class EndpointLimit(FrozenConfig):
    """A client-side limit for the requests whose method and path match (fnmatch patterns).

    It applies on top of :class:`RateLimitConfig`'s main limit: a request goes
    when every limit it falls under allows it.

    Examples:
        >>> rule = EndpointLimit(method="POST", path="/users*", max_requests=1, time_window=1.0)
        >>> rule.strategy
        'token_bucket'
    """

    method: str = "*"
    path: str = "*"
    strategy: Strategy = "token_bucket"
    max_requests: int = Field(gt=0)
    time_window: float = Field(default=1.0, gt=0)
    burst_size: int | None = Field(default=None, gt=0)


class RateLimitConfig(FrozenConfig):
    """Client-side rate limits, and how server rate limits are obeyed.

    Attributes:
        strategy: ``"token_bucket"`` (a steady pace with bursts), ``"fixed_window"``
            or ``"sliding_window"``.
        max_requests: requests per ``time_window`` (``None``: no client-side limit;
            servers' headers are still obeyed).
        time_window: the window in seconds.
        burst_size: a token bucket's capacity (default ``max_requests``);
            ``1`` paces requests evenly.
        scope: ``"global"`` (one budget for every host) or ``"host"`` (one per host);
            it applies to ``endpoints`` too.
        endpoints: extra limits for matching methods and paths.
        queue_size: requests that may wait for a slot at once (``None``: no limit).
        queue_timeout: the longest a request waits for a slot, in seconds.
        respect_retry_after: a 429's (or 503's) ``Retry-After`` pauses that host.
        max_server_pause: the longest a server's headers (``Retry-After``, or
            none remaining until a reset) may pause a host, in seconds; a longer
            request is cut to this and logged at WARNING. The retry layer's
            ``retry_after_max`` is its counterpart for retries.
        on_limit: when no slot is free: ``"wait"`` in the queue, ``"raise"``
            :class:`~buttress.RateLimitError`, or ``"return"`` a synthetic 429
            response whose ``limited_by_client`` is true. A server's 429 is
            raised as ``RateLimitError`` with ``"raise"``, returned otherwise.
        store: a :class:`~buttress.RedisStore`: every process given the same store
            and namespace (and the same limits) shares one limit, and a pause one
            server asked of one process holds them all (see ``docs/scaling-out.md``).

    Examples:
        >>> config = RateLimitConfig(max_requests=100, time_window=60.0, burst_size=10)
        >>> config.on_limit, config.scope
        ('wait', 'global')
    """

    strategy: Strategy = "token_bucket"
    max_requests: int | None = Field(default=None, gt=0)
    time_window: float = Field(default=1.0, gt=0)
    burst_size: int | None = Field(default=None, gt=0)
    scope: Literal["global", "host"] = "global"
    endpoints: AnyCollection[tuple[EndpointLimit, ...]] = ()
    queue_size: int | None = Field(default=None, ge=0)
    queue_timeout: float | None = Field(default=60.0, ge=0)
    respect_retry_after: bool = True
    max_server_pause: float = Field(default=300.0, gt=0)
    on_limit: Literal["wait", "raise", "return"] = "wait"
    store: PythonOnly[SharedStore | None] = None

    @model_validator(mode="after")
    def _burst_needs_bucket(self) -> RateLimitConfig:
        if self.burst_size is not None and self.strategy != "token_bucket":
            raise ValueError("burst_size applies to the token_bucket strategy only")
        return self


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


# Not frozen: one is made for every request, and a frozen dataclass's __init__
# (object.__setattr__ per field) costs several times a plain one's. Nothing changes it.
@dataclass(slots=True)
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


def deadline_refusal(why: str, delay: float, now: float, deadline: float | None) -> Refusal | None:
    """The refusal of a wait of ``delay`` seconds from ``now`` that would outlast ``deadline``.

    ``None`` when the wait ends in time, or there is no deadline (times are monotonic).

    Examples:
        >>> refusal = deadline_refusal("rate limit reached", 2.0, now=10.0, deadline=11.0)
        >>> refusal.reason, refusal.past_deadline
        ("rate limit reached: a wait of 2s would outlast the request's deadline (1s left)", True)
        >>> deadline_refusal("rate limit reached", 0.5, now=10.0, deadline=11.0) is None
        True
    """
    if deadline is None or now + delay <= deadline:
        return None
    return Refusal(
        delay,
        f"{why}: a wait of {delay:.3g}s would outlast the request's deadline "
        f"({max(deadline - now, 0.0):.3g}s left)",
        past_deadline=True,
    )


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
    :func:`~buttress.policies.priority.place`); ``bookings`` the line's bookings in the
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
        for budget in reservation.budgets:
            budget.in_line += 1
        self.bookings.append(reservation)
        self.callers.insert(self.position(where, reservation.ticket), (where, reservation.ticket))

    def slot_of(self, where: float, ticket: int) -> float:
        return self.bookings[self.position(where, ticket)].slot

    def leave(self, where: float, ticket: int) -> _Reservation:
        """Take the caller out of line, with the booking whose slot it held."""
        position = self.position(where, ticket)
        del self.callers[position]
        reservation = self.bookings.pop(position)
        for budget in reservation.budgets:
            budget.in_line -= 1
        return reservation


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
    in_line: int = 0  # callers queued on this budget (a line's key names it by identity)

    def is_whole(self, scheduled: float, now: float) -> bool:
        """Whether this budget decides as a new one would: all of it left, nobody queued."""
        return (
            not self.in_line
            and not self.reservations
            and self.booked.reset_at(scheduled) <= scheduled
            and self.sent.reset_at(now) <= now
        )

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


def _free_from(budgets: list[_Budget], at: float, *, sends: bool) -> float:
    """The earliest moment at or after ``at`` every budget leaves room for: its booked
    slots, or with ``sends`` its sends."""
    free_from = at
    for budget in budgets:  # a loop, not max() over a generator: this runs for every request
        free = (budget.sent if sends else budget.booked).available_at(at)
        if free > free_from:
            free_from = free
    return free_from


@dataclass
class _Host:
    """What a host's server told us most recently."""

    paused_until: float = float("-inf")
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # monotonic
    policy: str | None = None
    info: RateLimitInfo | None = None  # the headers' figures, for status reports

    def is_over(self, now: float) -> bool:
        """Whether what the server said no longer matters: no pause, the reset passed."""
        return self.paused_until <= now and (self.reset_at is None or self.reset_at <= now)


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
    _budgets: IdleStates[tuple[object, ...], _Budget] = field(init=False)
    _hosts: IdleStates[str, _Host] = field(init=False)
    _lines: dict[tuple[int, ...], _Line] = field(default_factory=dict)
    _queued: dict[int, tuple[float, _Line]] = field(default_factory=dict)  # ticket: place, line
    _tickets: int = 0
    _behind: float = 0.0  # how far the sends trail the booked slots while a queue lasts
    # Whether a request's host matters: the limits are per host, or a server said
    # something (true since then: only resetting every host forgets what all said).
    needs_host: bool = field(init=False)

    def __post_init__(self) -> None:
        self._budgets = IdleStates(lambda budget, now: budget.is_whole(now - self._behind, now))
        self._hosts = IdleStates(_Host.is_over)
        self.needs_host = self.scope == "host"

    def _new_budget(self, key: tuple[object, ...], spec: Rule | None, now: float) -> _Budget:
        if spec is None:
            assert self.max_requests is not None
            spec = Rule(
                "*", "*", self.strategy, self.max_requests, self.time_window, self.burst_size
            )
        booked, sent = (
            make_limit(spec.strategy, spec.max_requests, spec.time_window, spec.burst_size)
            for _ in range(2)
        )
        return self._budgets.add(key, _Budget(booked, sent), now)

    def _applicable(self, method: str, host: str, path: str, now: float) -> list[_Budget]:
        scope_key = host if self.scope == "host" else ""
        budgets: list[_Budget] = []
        key: tuple[object, ...]
        if self.max_requests is not None:
            key = ("main", scope_key)
            budgets.append(self._budgets.get(key, now) or self._new_budget(key, None, now))
        for index, rule in enumerate(self.rules):
            if rule.matches(method, path):
                key = ("rule", index, scope_key)
                budgets.append(self._budgets.get(key, now) or self._new_budget(key, rule, now))
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
        send_now: bool = True,
    ) -> Booking | Hold | Refusal:
        """Book the earliest slot for a request, hold it while its host is paused, or refuse.

        With ``wait=False`` any delay is a refusal. ``waited`` is how long the
        request has already been held (it counts against ``queue_timeout``); a
        wait that would end after ``deadline`` is refused with ``past_deadline``.
        A refusal books nothing; so does a hold. A booking without delay is
        admitted at once; a queued one sleeps, then asks :meth:`admit`, and
        ends with :meth:`done_waiting` either way. A queued request takes its
        place in line by ``priority`` (see :mod:`buttress.policies.priority`).

        With ``send_now=False`` the request is not sent when its turn comes but
        later (it first waits for a connection): a booking without delay, and a
        queued one once :meth:`take_turn` lets it out of line, is counted as sent
        only when :meth:`admit` lets it go.
        """
        if self._budgets.due(now):
            self._budgets.tidy(now)
        server = None
        if self.needs_host:  # no server said anything yet: no host to look up, nor to forget
            if self._hosts.due(now):
                self._hosts.tidy(now)
            server = self._hosts.get(host, now)
        if server is not None and server.paused_until > now:
            delay = server.paused_until - now
            refusal = self._refusal(now, delay, waited, wait, deadline, "the server asked to wait")
            if refusal is not None:
                return refusal
            self.waiting += 1
            return Hold(delay)
        budgets = self._applicable(method, host, path, now)
        if self.waiting == 0:
            self._behind = 0.0  # no queue: nothing left to trail
        # Booked slots live on a schedule shifted back by how far the sends trail it.
        scheduled = now - self._behind
        slot = _free_from(budgets, scheduled, sends=False)
        at = max(slot + self._behind, _free_from(budgets, now, sends=True))
        delay = at - now
        slot = at - self._behind
        if delay <= 0:
            for budget in budgets:
                budget.take_for_good(slot)
                if send_now:
                    budget.sent.take(now)
            return Booking(delay, queued=False, slot=slot)
        return self._queue(budgets, now, slot, delay, priority, (wait, waited, deadline))

    def _queue(
        self,
        budgets: list[_Budget],
        now: float,
        slot: float,
        delay: float,
        priority: Priority | None,
        terms: tuple[bool, float, float | None],
    ) -> Booking | Refusal:
        """Put a request that must wait in its line (by ``priority``), or refuse it.

        ``terms`` are :meth:`book`'s ``wait``, ``waited`` and ``deadline``.
        """
        where = place(now, priority, self.ageing)
        ticket = self._tickets + 1
        # The budgets live as long as the policy: their identities name the line.
        key = tuple(map(id, budgets))
        line = self._lines.get(key) or _Line(key)
        position = line.position(where, ticket)
        given = line.bookings[position].slot if position < len(line.bookings) else slot
        if given < slot:  # it goes ahead of others: at the slot of the first it passes
            sent_at = _free_from(budgets, now, sends=True)
            delay = max(given + self._behind, sent_at) - now
        wait, waited, deadline = terms
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
        """Let a request whose wait is over go now (0.0), or say how much longer to wait.

        It goes only if sending at ``now`` keeps every limit, counting what was
        really sent; a caller that wakes on time finds it so. A refusal means the
        sends trail the schedule: the schedule is pushed back to match, and the
        caller waits for its slot's new place on it. A queued caller that others
        of a higher priority passed while it slept waits for its new slot.
        """
        budgets = self._applicable(method, host, path, now)
        slot, gap = self._turn(booking, now)
        if not gap:
            gap = self._sends_trail(budgets, slot, now)
        if gap:
            return gap
        for budget in budgets:
            budget.sent.take(now)
        if booking.ticket in self._queued:
            self._settle(booking.ticket)
        self._behind = now - slot
        return 0.0

    def take_turn(self, method: str, host: str, path: str, now: float, booking: Booking) -> Booking:
        """A queued caller whose wait is over leaves the line, to be sent a little later.

        For requests that wait for a connection between their turn and the moment
        they leave (``send_now=False``): the same test as :meth:`admit`, but
        nothing is counted as sent. Returns the booking to wait on, still queued,
        when the caller must wait longer (see :meth:`admit`), else the booking
        :meth:`admit` lets go when the request leaves, with the slot it had.
        """
        slot, gap = self._turn(booking, now)
        if not gap:
            gap = self._sends_trail(self._applicable(method, host, path, now), slot, now)
        if gap:
            return Booking(gap, queued=True, slot=booking.slot, ticket=booking.ticket)
        if booking.ticket in self._queued:
            self._settle(booking.ticket)
        return Booking(0.0, queued=False, slot=slot)

    def _turn(self, booking: Booking, now: float) -> tuple[float, float]:
        """The caller's slot now, and how much longer it waits for it (passed meanwhile)."""
        queued = self._queued.get(booking.ticket)
        if queued is None:
            return booking.slot, 0.0
        where, line = queued
        slot = line.slot_of(where, booking.ticket)
        if slot > booking.slot and slot + self._behind > now + _ROUNDING:  # passed meanwhile
            return slot, slot + self._behind - now
        return slot, 0.0

    def _sends_trail(self, budgets: list[_Budget], slot: float, now: float) -> float:
        """How long a request whose slot is ``slot`` waits for the sends to leave room."""
        at = _free_from(budgets, now, sends=True)
        if at <= now:
            return 0.0
        # The sends trail the schedule: shift it, and wait for this slot's new place
        # on it (so callers refused together keep their order and spacing).
        self._behind = max(self._behind, at - slot)
        return slot + self._behind - now

    def _settle(self, ticket: int) -> None:
        """A queued caller's turn came: out of line, its booking stays for good."""
        reservation = self._leave_line(ticket)
        for budget in reservation.budgets:
            budget.settle(reservation)

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
        late = deadline_refusal(why, delay, now, deadline)
        if late is not None:
            return late
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
        info: RateLimitInfo | None = None,
    ) -> float | None:
        """Record what ``host``'s server said; pause the host when it says to.

        A ``retry_after`` (from a 429 or 503) pauses the host for that long;
        "0 remaining" with a reset time pauses it until the reset. No pause
        lasts longer than ``max_pause``: when a server asked for more, the
        pause it asked for is returned (else ``None``).
        """
        state = self._hosts.get(host, now) or self._hosts.add(host, _Host(), now)
        self.needs_host = True
        if info is not None:
            state.info = info
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
            self.needs_host = self.scope == "host"
        else:
            self._hosts.pop(host)

    def client_status(self, host: str, now: float) -> tuple[int | None, int | None, float | None]:
        """``(limit, remaining, reset_at)`` of the main client-side budget for ``host``."""
        if self.max_requests is None:
            return None, None, None
        scope_key = host if self.scope == "host" else ""
        budget = self._budgets.peek(("main", scope_key))
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

    def server_infos(self) -> dict[str, RateLimitInfo]:
        """Per host: the rate-limit headers its server last sent."""
        return {host: state.info for host, state in self._hosts.items() if state.info is not None}


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """A snapshot of the client-side budget and what servers last said.

    Attributes:
        limit: the client-side limit (requests per window) for the host asked
            about; the server's figure when no client-side limit is set.
        remaining: requests that could go now without waiting.
        reset_at: when the budget is whole again (UTC).
        queued: requests waiting for a slot right now.
        servers: the latest figures each host's server sent, by ``host[:port]``.
        degraded: the limit is shared through a store that is away, so this
            process keeps a limit of its own (its ``degraded_share``, or the
            whole limit) until the store is back.

    Examples:
        >>> limiter = RateLimiter(RateLimitConfig(max_requests=10, time_window=1.0))
        >>> status = limiter.status()
        >>> (status.limit, status.remaining, status.queued)
        (10, 10, 0)
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None
    queued: int = 0
    servers: dict[str, RateLimitInfo] = field(default_factory=dict)
    degraded: bool = False


class RateLimitBackend(Protocol):
    """Where a limiter's state lives; :class:`RateLimiter` keeps it in memory.

    A shared backend (Redis, say) implements the same few methods, and every
    transport given it shares one budget across processes.

    Examples:
        >>> from buttress import RateLimitConfig
        >>> backend: RateLimitBackend = RateLimiter(RateLimitConfig(max_requests=10))
        >>> backend.config.max_requests
        10
    """

    config: RateLimitConfig

    def book(
        self,
        request: httpx.Request,
        *,
        wait: bool,
        waited: float = 0.0,
        deadline: float | None = None,
        priority: Priority | None = None,
        send_now: bool = True,
    ) -> Booking | Hold | Refusal:
        """Book a slot for ``request``, hold it while its host is paused, or refuse.

        A wait that would end after ``deadline`` (monotonic) is refused; a
        request that waits takes its place in line by ``priority``. With
        ``send_now=False`` it counts as sent only once :meth:`admit` lets it go.
        """
        ...

    def admit(self, request: httpx.Request, booking: Booking) -> float:
        """Let ``request``, whose wait is over, go (0.0), or say how much longer to wait."""
        ...

    def take_turn(self, request: httpx.Request, booking: Booking) -> Booking:
        """A queued ``request`` whose wait is over leaves the line, to be admitted later.

        Returns the booking to give :meth:`admit` when it leaves, or, still
        queued, the one to wait on for ``delay`` more seconds.
        """
        ...

    def done_waiting(self, booking: Booking | Hold | None = None) -> None:
        """A booked caller stopped waiting; a ``booking`` never admitted gives its slot back."""

    def observe(self, request: httpx.Request, response: httpx.Response) -> RateLimitInfo | None:
        """Record what ``response``'s headers say about its host's limit."""

    def status(self, host: str | None = None) -> RateLimitStatus:
        """The current figures (for ``host`` when the limit is per host)."""
        ...

    def reset(self, host: str | None = None) -> None:
        """End ``host``'s server-imposed pause (every host's when ``None``)."""


def _host(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


class RateLimiter:
    """The in-memory rate-limit state, shared by every request (and client) given it.

    A lock guards the O(1) bookkeeping and is never held while waiting. Give one
    limiter to several clients or transports and they share one budget. When the
    config names a ``store``, :attr:`shared` books each request's slot fleet-wide
    too, after its turn in this limiter's queue.

    Examples:
        >>> from buttress.testing import FakeClock
        >>> config = RateLimitConfig(max_requests=2, time_window=1.0, burst_size=1)
        >>> limiter = RateLimiter(config, clock=FakeClock())
        >>> request = httpx.Request("GET", "https://api.example.com/users")
        >>> limiter.book(request, wait=True)
        Booking(delay=0.0, queued=False)
        >>> limiter.book(request, wait=True)
        Booking(delay=0.5, queued=True)
        >>> limiter.book(request, wait=True, priority="high")  # ahead: takes the 0.5 s slot
        Booking(delay=0.5, queued=True)
    """

    def __init__(self, config: RateLimitConfig | None = None, *, clock: Clock = SYSTEM_CLOCK):
        require_config(type(self).__name__, config, RateLimitConfig)
        self.config = config = config or RateLimitConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._policy = RateLimitPolicy(
            strategy=config.strategy,
            max_requests=config.max_requests,
            time_window=config.time_window,
            burst_size=config.burst_size,
            scope=config.scope,
            rules=tuple(
                Rule(e.method, e.path, e.strategy, e.max_requests, e.time_window, e.burst_size)
                for e in config.endpoints
            ),
            queue_size=config.queue_size,
            queue_timeout=config.queue_timeout,
            max_pause=config.max_server_pause,
        )
        self.shared: SharedLimits | None = None
        if config.store is not None:
            self.shared = config.store.limits(config, clock)

    def book(
        self,
        request: httpx.Request,
        *,
        wait: bool,
        waited: float = 0.0,
        deadline: float | None = None,
        priority: Priority | None = None,
        send_now: bool = True,
    ) -> Booking | Hold | Refusal:
        with self._lock:
            now = self.clock.monotonic()
            method, host, path = self._told_apart(request)
            return self._policy.book(
                method,
                host,
                path,
                now,
                wait=wait,
                waited=waited,
                deadline=deadline,
                priority=priority,
                send_now=send_now,
            )

    def admit(self, request: httpx.Request, booking: Booking) -> float:
        with self._lock:
            now = self.clock.monotonic()
            return self._policy.admit(*self._told_apart(request), now, booking)

    def take_turn(self, request: httpx.Request, booking: Booking) -> Booking:
        with self._lock:
            now = self.clock.monotonic()
            return self._policy.take_turn(*self._told_apart(request), now, booking)

    def _told_apart(self, request: httpx.Request) -> tuple[str, str, str]:
        """``request``'s method, host and path, as far as the policy tells requests apart.

        Working out a URL's host and path costs half as much as booking a slot,
        and one limit for every host, with no endpoint rules and no word from
        any server yet, has no use for them (``""`` stands in). Under the lock.
        """
        url = request.url
        host = _host(url) if self._policy.needs_host else ""
        if not self._policy.rules:
            return "", host, ""
        return request.method, host, url.path

    def done_waiting(self, booking: Booking | Hold | None = None) -> None:
        with self._lock:
            self._policy.done_waiting(booking)

    def observe(self, request: httpx.Request, response: httpx.Response) -> RateLimitInfo | None:
        said = rate_limit_headers(response.headers)
        may_pause = response.status_code in (429, 503) and self.config.respect_retry_after
        if not (said or may_pause):  # most answers: nothing to read
            return None
        info = parse_rate_limit(said, self.clock.time()) if said else None
        retry_after = parse_retry_after(response.headers, self.clock.time()) if may_pause else None
        if info is None and retry_after is None:
            return None
        host = _host(request.url)
        with self._lock:
            now = self.clock.monotonic()
            if info is not None:
                asked = self._policy.observe(
                    host,
                    now,
                    limit=info.limit,
                    remaining=info.remaining,
                    reset_after=info.reset_after,
                    policy=info.policy,
                    retry_after=retry_after,
                    info=info,
                )
            else:
                asked = self._policy.observe(host, now, retry_after=retry_after)
        if asked is not None:
            logger.warning(
                "%s asked to pause requests for %.6gs (%d answer to %s); pausing for "
                "max_server_pause=%gs instead (limiter.reset(%r) ends the pause)",
                host,
                asked,
                response.status_code,
                describe(request),
                self.config.max_server_pause,
                host,
            )
        return info

    def reset(self, host: str | None = None) -> None:
        """End the pause a server imposed on ``host`` (on every host when ``None``).

        What that server last said is forgotten too, so requests to it go
        again at once, paced only by the client-side limit. ``host`` is
        ``host[:port]`` as in :attr:`RateLimitStatus.servers`, or a URL.
        Requests already waiting out the pause keep waiting. With a ``store``,
        the shared pause ends too, and ``reset()`` forgets the fleet's shared
        budgets as well (a blocking call of at most the store's timeout).

        Examples:
            >>> from buttress.testing import FakeClock
            >>> limiter = RateLimiter(RateLimitConfig(), clock=FakeClock())
            >>> request = httpx.Request("GET", "https://api.example.com/users")
            >>> limiter.observe(request, httpx.Response(429, headers={"Retry-After": "30"}))
            >>> limiter.book(request, wait=True)
            Hold(delay=30.0)
            >>> limiter.done_waiting()
            >>> limiter.reset("api.example.com")
            >>> limiter.book(request, wait=True)
            Booking(delay=0.0, queued=False)
        """
        if host is not None and "://" in host:
            host = _host(httpx.URL(host))
        with self._lock:
            self._policy.reset(host)
        if self.shared is not None:
            self.shared.reset(host)

    def status(self, host: str | None = None) -> RateLimitStatus:
        host = host.lower() if host else host  # URLs' hosts are kept lower-cased
        with self._lock:
            now, epoch = self.clock.monotonic(), self.clock.time()
            limit, remaining, reset = self._policy.client_status(host or "", now)
            servers = self._policy.server_infos()
            queued = self._policy.waiting
        reset_at = None if reset is None else _utc(epoch + reset - now)
        if limit is None and host in servers:  # no client-side limit: report the server's
            server = servers[host]
            limit, remaining, reset_at = server.limit, server.remaining, server.reset_at
        degraded = self.shared is not None and self.shared.store.degraded
        return RateLimitStatus(limit, remaining, reset_at, queued, servers, degraded)

    def __repr__(self) -> str:
        return f"RateLimiter({self.config!r})"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)
