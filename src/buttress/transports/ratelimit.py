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
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import require_config
from .._exceptions import RateLimitError, TimeoutError, describe
from .._extensions import DEADLINE_KEY, METRICS_EXTENSION, RATE_LIMIT_INFO
from .._flow import Effect, Flow, Outcome, Read, Send, Sleep
from .._options import RequestOptions
from .._response import Response, limited_response
from ..observability import report, request_trace
from ..policies.headers import parse_retry_after
from ..policies.ratelimit import (
    Booking,
    Hold,
    RateLimitBackend,
    RateLimitConfig,
    RateLimiter,
    RateLimitStatus,
    Refusal,
)
from ..policies.retry import clipped_timeouts
from ._layer import Layer

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

    def _flow(self, request: httpx.Request) -> Flow:
        options = RequestOptions.of(request)
        on_limit = options.rate_limit or self.limiter.config.on_limit
        deadline = request.extensions.get(DEADLINE_KEY)
        if deadline is None and options.total_timeout is not None:  # no retry layer above
            deadline = self._clock.monotonic() + options.total_timeout
        waited = yield from self._slot(request, on_limit, deadline)
        if isinstance(waited, httpx.Response):  # refused, and asked to return the refusal
            return waited
        if waited and (trace := request_trace(request)) is not None:
            trace.rate_limit_wait += waited
        outcome = yield from self._send(request, deadline if waited else None)
        info = self.limiter.observe(request, outcome)
        if info is not None:
            outcome.extensions = {**outcome.extensions, RATE_LIMIT_INFO: info}
        if outcome.status_code == 429 and on_limit == "raise":
            yield Read(outcome)
            outcome.__class__ = Response  # an httpx.Response with .rate_limit, like the facade's
            retry_after = parse_retry_after(outcome.headers, self._clock.time())
            raise RateLimitError(
                f"429 Too Many Requests for {describe(request)}",
                request=request,
                response=outcome,
                retry_after=retry_after,
            )
        return outcome

    def _slot(
        self, request: httpx.Request, on_limit: str, deadline: float | None
    ) -> Generator[Effect, Outcome, float | httpx.Response]:
        """Wait for the request's slot: the seconds waited, or the refusal to return."""
        limiter = self.limiter
        priority = RequestOptions.of(request).priority
        waited = late = 0.0  # late: waits for admission, not counted against queue_timeout
        while True:  # a Hold (the server paused the host) books again after the pause
            booking = limiter.book(
                request,
                wait=on_limit == "wait",
                waited=waited,
                deadline=deadline,
                priority=priority,
            )
            if isinstance(booking, Refusal):
                return _refused(request, booking, on_limit)
            if isinstance(booking, Hold) or booking.queued:
                _report_queue(request, limiter)
                try:
                    yield Sleep(booking.delay)
                    # Woken late, a sleeper could bunch with others: it goes only when
                    # the sends so far leave room.
                    while isinstance(booking, Booking) and (gap := limiter.admit(request, booking)):
                        if deadline is not None and self._clock.monotonic() + gap > deadline:
                            raise TimeoutError(
                                f"total timeout: the rate-limit slot came {gap:.3g}s too late "
                                f"for the deadline of {describe(request)}",
                                request=request,
                            )
                        yield Sleep(gap)
                        late += gap
                finally:  # also when the caller is cancelled, times out or is interrupted
                    limiter.done_waiting(booking)
                    _report_queue(request, limiter)
                waited += booking.delay
            if isinstance(booking, Booking):
                return waited + late

    def _send(
        self, request: httpx.Request, deadline: float | None
    ) -> Generator[Effect, Outcome, httpx.Response]:
        """Send ``request``; after a wait, with only the time left before ``deadline``."""
        given_timeouts = request.extensions.get("timeout")
        if deadline is not None:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"total timeout ran out waiting for a rate-limit slot for {describe(request)}",
                    request=request,
                )
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

    def __repr__(self) -> str:
        return f"RateLimitTransport({self._inner!r}, {self.limiter.config!r})"
