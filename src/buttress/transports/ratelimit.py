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

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

import httpx

from .._clock import SYSTEM_CLOCK, Clock
from .._config import RateLimitConfig, require_config
from .._exceptions import RateLimitError, TimeoutError, describe
from .._flow import Flow, Read, Send, Sleep
from .._options import DEADLINE_KEY, RequestOptions
from .._priority import Priority
from .._response import RATE_LIMIT_INFO, Response, limited_response
from ..observability import METRICS_EXTENSION, report, request_trace
from ..policies.headers import RateLimitInfo, parse_rate_limit, parse_retry_after
from ..policies.ratelimit import Booking, Hold, RateLimitPolicy, Refusal, Rule
from ..policies.retry import _clipped_timeouts
from ._layer import Layer

__all__ = ["RateLimitBackend", "RateLimitStatus", "RateLimitTransport", "RateLimiter"]

logger = logging.getLogger("buttress.ratelimit")


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
    ) -> Booking | Hold | Refusal:
        """Book a slot for ``request``, hold it while its host is paused, or refuse.

        A wait that would end after ``deadline`` (monotonic) is refused; a
        request that waits takes its place in line by ``priority``.
        """
        ...

    def admit(self, request: httpx.Request, booking: Booking) -> float:
        """Let a queued ``request`` whose wait is over go (0.0), or say how much longer to wait."""
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


def _report_queue(request: httpx.Request, limiter: RateLimitBackend) -> None:
    """Tell the request's collector, if any, how many requests wait in ``limiter``'s queue."""
    if METRICS_EXTENSION in request.extensions:  # status() takes the lock: only when asked
        depth = limiter.status(request.url.host).queued
        report(request, "rate_limit_queue", host=request.url.host, depth=depth)


def _host(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


class RateLimiter:
    """The in-memory rate-limit state, shared by every request (and client) given it.

    A lock guards the O(1) bookkeeping and is never held while waiting. Give one
    limiter to several clients or transports and they share one budget.

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
        self._servers: dict[str, RateLimitInfo] = {}
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

    def book(
        self,
        request: httpx.Request,
        *,
        wait: bool,
        waited: float = 0.0,
        deadline: float | None = None,
        priority: Priority | None = None,
    ) -> Booking | Hold | Refusal:
        url = request.url
        with self._lock:
            now = self.clock.monotonic()
            return self._policy.book(
                request.method,
                _host(url),
                url.path,
                now,
                wait=wait,
                waited=waited,
                deadline=deadline,
                priority=priority,
            )

    def admit(self, request: httpx.Request, booking: Booking) -> float:
        url = request.url
        with self._lock:
            now = self.clock.monotonic()
            return self._policy.admit(request.method, _host(url), url.path, now, booking)

    def done_waiting(self, booking: Booking | Hold | None = None) -> None:
        with self._lock:
            self._policy.done_waiting(booking)

    def observe(self, request: httpx.Request, response: httpx.Response) -> RateLimitInfo | None:
        info = parse_rate_limit(response.headers, self.clock.time())
        retry_after = None
        if self.config.respect_retry_after and response.status_code in (429, 503):
            retry_after = parse_retry_after(response.headers, self.clock.time())
        if info is None and retry_after is None:
            return None
        host = _host(request.url)
        with self._lock:
            now = self.clock.monotonic()
            if info is not None:
                self._servers[host] = info
                asked = self._policy.observe(
                    host,
                    now,
                    limit=info.limit,
                    remaining=info.remaining,
                    reset_after=info.reset_after,
                    policy=info.policy,
                    retry_after=retry_after,
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
        Requests already waiting out the pause keep waiting.

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
            if host is None:
                self._servers.clear()
            else:
                self._servers.pop(host, None)

    def status(self, host: str | None = None) -> RateLimitStatus:
        with self._lock:
            now, epoch = self.clock.monotonic(), self.clock.time()
            limit, remaining, reset = self._policy.client_status(host or "", now)
            servers = dict(self._servers)
            queued = self._policy.waiting
        reset_at = None if reset is None else _utc(epoch + reset - now)
        if limit is None and host in servers:  # no client-side limit: report the server's
            server = servers[host]
            limit, remaining, reset_at = server.limit, server.remaining, server.reset_at
        return RateLimitStatus(limit, remaining, reset_at, queued, servers)

    def __repr__(self) -> str:
        return f"RateLimiter({self.config!r})"


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


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
        limiter = self.limiter
        options = RequestOptions.of(request)
        on_limit = options.rate_limit or limiter.config.on_limit
        deadline = request.extensions.get(DEADLINE_KEY)
        if deadline is None and options.total_timeout is not None:  # no retry layer above
            deadline = self._clock.monotonic() + options.total_timeout
        waited = late = 0.0  # late: waits for admission, not counted against queue_timeout
        while True:  # a Hold (the server paused the host) books again after the pause
            booking = limiter.book(
                request,
                wait=on_limit == "wait",
                waited=waited,
                deadline=deadline,
                priority=options.priority,
            )
            if isinstance(booking, Refusal) and booking.past_deadline:
                raise TimeoutError(
                    f"total timeout: {booking.reason}, for {describe(request)}", request=request
                )
            if isinstance(booking, Refusal):
                if on_limit == "return":
                    return limited_response(request, booking.retry_after)
                raise RateLimitError(
                    f"{booking.reason} for {describe(request)}; "
                    f"retry in {booking.retry_after:.3g}s",
                    request=request,
                    response=limited_response(request, booking.retry_after),
                    retry_after=booking.retry_after,
                )
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
                break
        if (waited or late) and (trace := request_trace(request)) is not None:
            trace.rate_limit_wait += waited + late
        given_timeouts = request.extensions.get("timeout")
        shortened = False
        if deadline is not None and (waited or late):
            # The wait used part of the deadline: the request gets only what is left.
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"total timeout ran out waiting for a rate-limit slot for {describe(request)}",
                    request=request,
                )
            request.extensions["timeout"] = _clipped_timeouts(dict(given_timeouts or {}), left)[0]
            shortened = True
        try:
            outcome = yield Send(request)
        finally:  # leave the request as it came, should it be sent again
            if shortened and given_timeouts is None:
                del request.extensions["timeout"]
            elif shortened:
                request.extensions["timeout"] = given_timeouts
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        info = limiter.observe(request, outcome)
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

    def __repr__(self) -> str:
        return f"RateLimitTransport({self._inner!r}, {self.limiter.config!r})"
