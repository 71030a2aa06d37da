"""Client-side rate limits and obedience to servers' limits, as an httpx transport.

:class:`RateLimitTransport` sits just above the network, so every real attempt
(retries included) takes a slot. A request books its slot under a lock in O(1)
and then *sleeps outside the lock* until the slot comes, as a ``Sleep`` effect of
its flow: threads sharing a ``Client`` and tasks sharing an ``AsyncClient`` are
served in booking order (FIFO) and the event loop is never blocked. On waking it
is admitted only if the requests really sent leave room, so sleepers that a busy
event loop wakes late together cannot go out in a bunch.

Every response's rate-limit headers are recorded per host. When a server says
nothing remains until a reset, or answers 429 with ``Retry-After``, later
requests to that host wait for that moment (within ``queue_timeout``) instead
of being sent into certain 429s; other hosts are unaffected. The 429 itself is
not re-sent here: the retry layer above does that, and because both wait for the
same moment nobody waits twice. No server can pause a host for longer than
``max_server_pause``, and :meth:`RateLimiter.reset` ends a pause early.

A caller that stops waiting (cancelled, timed out, interrupted) gives its slot
back, and a wait that would outlast the request's total deadline fails at once
with :class:`~buttress.TimeoutError` instead of sleeping.

Beneath a pool gate (:class:`~buttress.transports.PoolGateTransport`) a request
may wait again, for a connection, after its slot came; when responses are slow
the requests pile up there and leave together as connections free up. So the
stack puts a :class:`RateLimitAdmission` beneath the gate: there, where the
request really leaves, it is admitted only if sending it at that moment keeps
the limit, else it waits there, keeping its place in the pool, until it may go.
Waiting for a slot above the gate holds no connection. The slot travels down in
``request.extensions["buttress.rate_limit_admission"]``.

A limit shared by a fleet (``RateLimitConfig(store=...)``, see
:mod:`buttress.stores.ratelimit`) is booked where the request leaves too: after
its turn in the process's queue, one store call books its fleet-wide slot and
the request sleeps until that slot comes; one that slept goes only once the
fleet's sends so far leave room (one more store call). Beneath a pool gate that
happens in the :class:`RateLimitAdmission`, so a slot cannot pass while the
request waits for a connection. A refusal books nothing; while the store is
away the process's own limit (or the store's ``degraded_share`` of it) stands in.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import require_config
from .._exceptions import RateLimitError, TimeoutError, describe
from .._extensions import (
    BREAKER_ACQUISITION,
    CLIENT_RATE_LIMITED,
    DEADLINE_KEY,
    METRICS_EXTENSION,
    RATE_LIMIT_ADMISSION,
    RATE_LIMIT_INFO,
)
from .._flow import Effect, Flow, Outcome, Read, Send, Sleep, adrive, drive
from .._options import RequestOptions
from .._response import as_response, limited_response
from ..observability import report, request_trace
from ..policies.breaker import Rejection, open_circuit_error
from ..policies.headers import asked_wait
from ..policies.priority import Priority
from ..policies.ratelimit import (
    Booking,
    Hold,
    RateLimitBackend,
    RateLimitConfig,
    RateLimiter,
    RateLimitStatus,
    Refusal,
    deadline_refusal,
)
from ..policies.retry import clipped_timeouts
from ..stores.health import UNAVAILABLE
from ._layer import Layer, Wrapper

if TYPE_CHECKING:
    from ..stores.ratelimit import SharedLimits

# RateLimiter and its kin live with the policy; importable from here as they always were.
__all__ = ["RateLimitBackend", "RateLimitStatus", "RateLimitTransport", "RateLimiter"]


def _report_queue(request: httpx.Request, limiter: RateLimitBackend) -> None:
    """Tell the request's collector, if any, how many requests wait in ``limiter``'s queue."""
    if METRICS_EXTENSION in request.extensions:  # status() takes the lock: only when asked
        depth = limiter.status(request.url.host).queued
        report(request, "rate_limit_queue", host=request.url.host, depth=depth)


def _refused(request: httpx.Request, refusal: Refusal, on_limit: str) -> httpx.Response:
    """The synthetic 429 to return for a refused slot, or the error to raise."""
    if refusal.past_deadline:
        raise TimeoutError(
            f"total timeout: {refusal.reason}, for {describe(request)}", request=request
        )
    if on_limit == "return":
        return limited_response(request, refusal.retry_after)
    raise RateLimitError(
        f"{refusal.reason} for {describe(request)}; retry in {refusal.retry_after:.3g}s",
        request=request,
        response=limited_response(request, refusal.retry_after),
        retry_after=refusal.retry_after,
    )


def _wait_more(
    request: httpx.Request, clock: Clock, deadline: float | None, gap: float
) -> Generator[Effect, Outcome, None]:
    """Sleep ``gap`` seconds more for the slot, or fail at once if that outlasts ``deadline``."""
    if deadline is not None and clock.monotonic() + gap > deadline:
        raise TimeoutError(
            f"total timeout: the rate-limit slot came {gap:.3g}s too late "
            f"for the deadline of {describe(request)}",
            request=request,
        )
    yield Sleep(gap)


def _left_or_refuse(request: httpx.Request, clock: Clock, deadline: float) -> float:
    """The seconds left before ``deadline``; a ``TimeoutError`` if none are."""
    left = deadline - clock.monotonic()
    if left <= 0:
        raise TimeoutError(
            f"total timeout ran out waiting to send {describe(request)}", request=request
        )
    return left


def _send(
    request: httpx.Request, clock: Clock, deadline: float | None
) -> Generator[Effect, Outcome, httpx.Response]:
    """Send ``request``; after a wait, with only the time left before ``deadline``."""
    given_timeouts = request.extensions.get("timeout")
    if deadline is not None:
        left = _left_or_refuse(request, clock, deadline)
        request.extensions["timeout"] = clipped_timeouts(dict(given_timeouts or {}), left)[0]
    try:
        outcome = yield Send(request)
    finally:  # leave the request as it came, should it be sent again
        if deadline is not None and given_timeouts is None:
            del request.extensions["timeout"]
        elif deadline is not None:
            request.extensions["timeout"] = given_timeouts
    if isinstance(outcome, Exception):
        raise outcome
    assert isinstance(outcome, httpx.Response)
    return outcome


def _wait_for_slot(
    limiter: RateLimitBackend,
    request: httpx.Request,
    on_limit: str,
    deadline: float | None,
    clock: Clock,
    *,
    beneath: bool,
    priority: Priority | None,
    waited: float = 0.0,
) -> Generator[Effect, Outcome, tuple[Booking, float] | httpx.Response]:
    """Wait for the request's slot in ``limiter``: its booking and the wait, or the refusal.

    ``beneath``: a :class:`RateLimitAdmission` of ``limiter`` admits the request
    where it leaves, so its turn only takes it out of the queue. ``priority``
    is the request's place in line (see :mod:`buttress.policies.priority`).
    """
    start = waited
    late = 0.0  # waits for admission, not counted against queue_timeout
    while True:  # a Hold (the server paused the host) books again after the pause
        booking = limiter.book(
            request,
            wait=on_limit == "wait",
            waited=waited,
            deadline=deadline,
            priority=priority,
            send_now=not beneath,
        )
        if isinstance(booking, Refusal):
            return _refused(request, booking, on_limit)
        turn = booking
        if isinstance(booking, Hold) or booking.queued:
            _report_queue(request, limiter)
            try:
                yield Sleep(booking.delay)
                # Woken late, a sleeper could bunch with others: it goes only when
                # the sends so far leave room.
                while isinstance(booking, Booking):
                    turn, gap = _turn(limiter, request, booking, beneath)
                    if not gap:
                        break
                    yield from _wait_more(request, clock, deadline, gap)
                    late += gap
            finally:  # also when the caller is cancelled, times out or is interrupted
                limiter.done_waiting(booking)
                _report_queue(request, limiter)
            waited += booking.delay
        if isinstance(turn, Booking):
            return turn, waited - start + late


def _turn(
    limiter: RateLimitBackend, request: httpx.Request, booking: Booking, beneath: bool
) -> tuple[Booking, float]:
    """Whether a queued ``booking``'s turn came: the booking to go with, and the wait left."""
    if beneath:  # out of the queue; admitted beneath the pool gate
        turn = limiter.take_turn(request, booking)
        return turn, turn.delay
    return booking, limiter.admit(request, booking)


def _shared(limiter: RateLimitBackend) -> SharedLimits | None:
    """The fleet-wide half of ``limiter``, when its config names a store."""
    shared = getattr(limiter, "shared", None)
    if shared is None:
        return None
    # Imported here: a limiter without a store never loads the store's scripts.
    from ..stores.ratelimit import SharedLimits

    return shared if isinstance(shared, SharedLimits) else None


def _longest_wait(
    config: RateLimitConfig, on_limit: str, waited: float, deadline: float | None, clock: Clock
) -> float | None:
    """How long a request may still wait for its slot (``None``: as long as it takes)."""
    if on_limit != "wait":
        return 0.0
    longest = None if config.queue_timeout is None else config.queue_timeout - waited
    if deadline is not None:
        left = deadline - clock.monotonic()
        longest = left if longest is None else min(longest, left)
    return longest


def _shared_turn(
    request: httpx.Request,
    limiter: RateLimitBackend,
    on_limit: str,
    deadline: float | None,
    waited: float,
    clock: Clock,
) -> Generator[Effect, Outcome, float | httpx.Response]:
    """Book the request's fleet-wide slot and sleep until it comes, just before it leaves.

    Returns the seconds slept, or the refusal to return (nothing was booked). While
    the store is away, the limiter's local limit (already passed) stands in, or
    the store's ``degraded_share`` of it.
    """
    shared = _shared(limiter)
    slept = 0.0
    # The breaker above handed its circuit's acquire step down: asked with the first booking.
    acquisition = request.extensions.get(BREAKER_ACQUISITION)
    while shared is not None:
        longest = _longest_wait(limiter.config, on_limit, waited + slept, deadline, clock)
        answer = yield from shared.book(request, longest, acquisition)
        acquisition = None
        if isinstance(answer, Rejection):  # the circuit is open: nothing was booked
            raise open_circuit_error(request, answer)
        if answer is UNAVAILABLE:
            if shared.fallback is None:
                break
            slot = yield from _wait_for_slot(
                shared.fallback,
                request,
                on_limit,
                deadline,
                clock,
                beneath=False,
                priority=RequestOptions.of(request).priority,
                waited=waited + slept,
            )
            return slot if isinstance(slot, httpx.Response) else slept + slot[1]
        if isinstance(answer, Refusal):
            return _refused(
                request, _why(answer, limiter.config, on_limit, deadline, clock), on_limit
            )
        delay = answer.delay if isinstance(answer, Hold) else answer
        if delay > 0:
            yield Sleep(delay)
            slept += delay
        if isinstance(answer, Hold):  # a hold books again once the pause is over
            continue
        if delay > 0:  # woken, perhaps late: it goes when the fleet's sends leave room
            slept += yield from _room_to_send(request, shared, deadline, clock)
        break
    return slept


def _room_to_send(
    request: httpx.Request, shared: SharedLimits, deadline: float | None, clock: Clock
) -> Generator[Effect, Outcome, float]:
    """Wait until the fleet's sends so far leave room for ``request``: the seconds waited.

    While the store is away the request goes: its slot was booked.
    """
    waited = 0.0
    while True:
        gap = yield from shared.send(request)
        if gap is UNAVAILABLE or not gap:
            return waited
        assert isinstance(gap, float)
        yield from _wait_more(request, clock, deadline, gap)
        waited += gap


def _why(
    refusal: Refusal, config: RateLimitConfig, on_limit: str, deadline: float | None, clock: Clock
) -> Refusal:
    """A fleet-wide refusal, saying which bound (the deadline, ``queue_timeout``) it met."""
    if on_limit != "wait":
        return refusal
    wait, why = refusal.retry_after, refusal.reason
    late = deadline_refusal(why, wait, clock.monotonic(), deadline)
    if late is not None:
        return late
    return Refusal(
        wait, f"{why}: a wait of {wait:.3g}s exceeds queue_timeout={config.queue_timeout}"
    )


@dataclass(slots=True)  # not frozen: one per request, and a frozen one costs more to make
class _Pending:
    """A slot whose request is on its way down, to be admitted where it leaves."""

    limiter: RateLimitBackend
    booking: Booking
    deadline: float | None
    on_limit: str
    waited: float


class RateLimitAdmission(Wrapper):
    """Where requests leave: a request goes only if sending it now keeps the limit.

    The other half of :class:`RateLimitTransport`, for stacks with a pool gate:
    :func:`~buttress.transports.stack` puts it just beneath the
    :class:`~buttress.transports.PoolGateTransport`, sharing the limiter of the
    ``RateLimitTransport`` above, which then leaves the final admission to it.
    A request that waited for a connection and would now go over the limit
    waits here until it may go (within its total deadline); a request that no
    ``RateLimitTransport`` of this limiter sent down goes at once.

    Examples:
        >>> import httpx
        >>> from buttress import RateLimitConfig
        >>> from buttress.transports import stack
        >>> limit = RateLimitConfig(max_requests=10)
        >>> stack(httpx.HTTPTransport(), rate_limit=limit, pool_gate=4)
        RateLimitTransport(PoolGateTransport(RateLimitAdmission(<httpx.HTTPTransport ...>), ...
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        limiter: RateLimitBackend,
        *,
        clock: Clock,
    ) -> None:
        self._inner = inner
        self.limiter = limiter
        self._clock = clock
        self._shared = _shared(limiter) is not None

    def _admit(self, request: httpx.Request) -> tuple[_Pending | None, float]:
        """The slot the request brought for this limiter, and how long it must still wait.

        ``None`` when it may go now, with nothing to drive: it brought no slot of this
        limiter, or it needs no wait and no fleet-wide turn. A ``TimeoutError`` when its
        deadline passed while it waited for a connection.
        """
        pending = request.extensions.get(RATE_LIMIT_ADMISSION)
        if not isinstance(pending, _Pending) or pending.limiter is not self.limiter:
            return None, 0.0
        if pending.deadline is not None:  # it may have waited for a connection past it
            _left_or_refuse(request, self._clock, pending.deadline)  # refused, not counted as sent
        gap = self.limiter.admit(request, pending.booking)
        return (pending, gap) if gap or self._shared else (None, gap)

    def _late(self, request: httpx.Request, pending: _Pending, gap: float) -> Flow:
        """Wait until sending keeps the limit (``gap`` at least) and the fleet's, then send."""
        late = 0.0
        while gap:
            yield from _wait_more(request, self._clock, pending.deadline, gap)
            late += gap
            if pending.deadline is not None:  # refused before the limiter counts it as sent
                _left_or_refuse(request, self._clock, pending.deadline)
            gap = self.limiter.admit(request, pending.booking)
        shared = yield from _shared_turn(
            request,
            self.limiter,
            pending.on_limit,
            pending.deadline,
            pending.waited + late,
            self._clock,
        )
        if isinstance(shared, httpx.Response):  # refused, and asked to return the refusal
            return shared
        if (trace := request_trace(request)) is not None:
            trace.rate_limit_wait += late + shared
        return (yield from _send(request, self._clock, pending.deadline))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        assert isinstance(inner, httpx.BaseTransport)  # beneath a sync layer: sync too
        pending, gap = self._admit(request)
        if pending is None:  # it may go now: nothing to drive
            return inner.handle_request(request)
        return drive(self._late(request, pending, gap), inner, self._clock)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        assert isinstance(inner, httpx.AsyncBaseTransport)  # beneath an async layer: async too
        pending, gap = self._admit(request)
        if pending is None:
            return await inner.handle_async_request(request)
        return await adrive(self._late(request, pending, gap), inner, self._clock)

    def __repr__(self) -> str:
        return f"RateLimitAdmission({self._inner!r})"


def _books_with_store(inner: httpx.BaseTransport | httpx.AsyncBaseTransport, store: object) -> bool:
    """Whether a :class:`RateLimitTransport` beneath, among our layers, books with ``store``.

    A circuit breaker sharing that store then hands its acquire step down, to be
    asked in the same store call as the booking.
    """
    while isinstance(inner, Wrapper):
        if isinstance(inner, RateLimitTransport):
            shared = _shared(inner.limiter)
            return shared is not None and shared.store is store
        inner = inner._inner
    return False


def _admitted_beneath(
    inner: httpx.BaseTransport | httpx.AsyncBaseTransport, limiter: RateLimitBackend
) -> bool:
    """Whether a :class:`RateLimitAdmission` of ``limiter`` lies beneath, among our layers."""
    while isinstance(inner, Wrapper):
        if isinstance(inner, RateLimitAdmission) and inner.limiter is limiter:
            return True
        inner = inner._inner
    return False


class RateLimitTransport(Layer):
    """Paces requests to a client-side limit and obeys servers' rate-limit headers.

    ``config`` is a :class:`~buttress.RateLimitConfig`, or a :class:`RateLimiter`
    to share one budget between transports or clients (``clock`` then defaults
    to the limiter's). What happens when no slot
    is free follows ``config.on_limit``: wait in the FIFO queue (a full queue or a
    wait past ``queue_timeout`` raises :class:`~buttress.RateLimitError` without
    sending anything), raise at once, or return a synthetic 429 whose
    ``extensions["buttress.client_rate_limited"]`` is true. A server's 429 raises
    ``RateLimitError`` with ``on_limit="raise"`` and is returned otherwise. One
    request may choose otherwise with ``extensions=buttress.options(rate_limit="raise")``.

    Examples:
        >>> from buttress import RateLimitConfig
        >>> from buttress.testing import DemoServer
        >>> limit = RateLimitConfig(max_requests=10, time_window=1.0)
        >>> with DemoServer() as server, httpx.Client(
        ...     transport=RateLimitTransport(httpx.HTTPTransport(), limit)
        ... ) as client:
        ...     client.get(server.url + "/users/1").status_code
        200
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        config: RateLimitConfig | RateLimiter | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        require_config(type(self).__name__, config, RateLimitConfig, RateLimiter)
        self._inner = inner
        if isinstance(config, RateLimiter):
            # The limiter books slots on its own clock, so waits must pass on that one too.
            self._clock = config.clock
            self.limiter: RateLimitBackend = config
        else:
            self._clock = clock or SYSTEM_CLOCK
            self.limiter = RateLimiter(config, clock=self._clock)
        # Beneath a pool gate, the final admission waits for the moment the request leaves.
        self._admitted_beneath = _admitted_beneath(inner, self.limiter)
        self._shared_limits = _shared(self.limiter)

    def _flow(self, request: httpx.Request) -> Flow:
        options = RequestOptions.of(request)
        on_limit = options.rate_limit or self.limiter.config.on_limit
        deadline = request.extensions.get(DEADLINE_KEY)
        if deadline is None and options.total_timeout is not None:  # no retry layer above
            deadline = self._clock.monotonic() + options.total_timeout
        slot = yield from _wait_for_slot(
            self.limiter,
            request,
            on_limit,
            deadline,
            self._clock,
            beneath=self._admitted_beneath,
            priority=options.priority,
        )
        if isinstance(slot, httpx.Response):  # refused, and asked to return the refusal
            return slot
        turn, waited = slot
        if self._admitted_beneath:  # the fleet-wide slot too is booked where it leaves
            request.extensions[RATE_LIMIT_ADMISSION] = _Pending(
                self.limiter, turn, deadline, on_limit, waited
            )
        elif self._shared_limits is not None:  # the fleet-wide slot, just before it leaves
            shared = yield from _shared_turn(
                request, self.limiter, on_limit, deadline, waited, self._clock
            )
            if isinstance(shared, httpx.Response):
                return shared
            waited += shared
        if waited and (trace := request_trace(request)) is not None:
            trace.rate_limit_wait += waited
        try:
            outcome = yield from _send(request, self._clock, deadline if waited else None)
        finally:  # this attempt's slot only: a retry or a redirect takes its own
            request.extensions.pop(RATE_LIMIT_ADMISSION, None)
        if outcome.extensions.get(CLIENT_RATE_LIMITED):  # refused beneath the pool gate
            return outcome
        info = self.limiter.observe(request, outcome)
        if info is not None:
            outcome.extensions = {**outcome.extensions, RATE_LIMIT_INFO: info}
        if self._shared_limits is not None:
            yield from self._shared_limits.pause(request, outcome, info)  # for the whole fleet
        if outcome.status_code == 429 and on_limit == "raise":
            yield Read(outcome)
            outcome = as_response(outcome)  # with .rate_limit, like the facade's
            retry_after = asked_wait(outcome, self._clock.time())
            raise RateLimitError(
                f"429 Too Many Requests for {describe(request)}",
                request=request,
                response=outcome,
                retry_after=retry_after,
            )
        return outcome

    def __repr__(self) -> str:
        return f"RateLimitTransport({self._inner!r}, {self.limiter.config!r})"
