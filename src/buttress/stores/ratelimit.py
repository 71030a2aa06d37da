"""A rate limit shared by every process of a fleet, kept in Redis by atomic scripts.

A :class:`~buttress.RateLimiter` whose configuration names a store
(``RateLimitConfig(..., store=RedisStore(...))``) keeps its in-process queue as
before (FIFO, priorities) and, when a request's local turn comes, books its
fleet-wide slot here: :meth:`SharedLimits.book` runs one script that

- reads the time once (the Redis server's ``TIME``, or a test's fake clock, see
  :meth:`~buttress.RedisStore.time_argument`), so clock skew between machines
  cannot matter;
- finds the earliest moment at which *every* budget the request counts against
  (the global or per-host limit, each endpoint rule it matches) allows it, and
  no server-imposed pause of its host is running;
- books that moment in all of them at once and returns the delay, which the
  request sleeps before it goes; or books nothing and refuses, when the delay is
  longer than the request may wait.

Like the local limiter, each budget is kept twice: the slots *booked* and the
requests really *sent*. A request that goes at once is counted as sent by the
same script. One that slept may wake late, and would then leave together with
the requests booked after it, more than the limit within one window; so when it
wakes it asks :meth:`SharedLimits.send` (a second script) whether the fleet's
sends so far leave room at the server's present, and waits the gap if not.
The common case (no wait) stays one round trip; only sleepers pay a second.

Booking a *reservation* and sleeping until it comes means nobody polls: the
fleet's requests go in the order they booked (first booked, first served,
across processes), and no request starves. Within a process, the local queue
decides who books first (priorities apply there).

A pause a server asked for (``Retry-After``, none remaining until a reset),
seen by one process, is written here by :meth:`SharedLimits.pause` (capped by
``max_server_pause``) and holds every process's requests to that host.

Every key carries an expiry set in the same script, so a process that dies
mid-way can never leave a budget that blocks forever. While the store is away
the store answers ``UNAVAILABLE`` and the limiter falls back to its local limit,
or to :attr:`SharedLimits.fallback` (``degraded_share`` of it) when the store
says each process's share.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import httpx

from .._exceptions import StoreError
from .._flow import Effect
from ..policies.breaker import Rejection
from ..policies.headers import RateLimitInfo, parse_retry_after
from ..policies.ratelimit import (
    EndpointLimit,
    Hold,
    RateLimitConfig,
    RateLimiter,
    Refusal,
    Rule,
)
from ._lua import CLOCK
from ._replies import decoded
from .breaker import _SCRIPT as _CIRCUIT
from .breaker import Acquisition
from .health import UNAVAILABLE, Unavailable

if TYPE_CHECKING:
    from .._clock import Clock
    from .redis import RedisStore

__all__ = ["SharedLimits"]

logger = logging.getLogger("buttress.ratelimit")

# What both scripts share: the time, and each budget kept twice (as the local limiter
# keeps it): the slots *booked* (the order and the waits) and the requests really
# *sent*. KEYS[first + 2i], KEYS[first + 2i + 1]: budget i's bookings and sends;
# ARGV[args + 5i ..]: its strategy, max_requests, time_window, burst_size, and the margin
# its sends keep (the store's send_margin).
# Times are seconds as strings: Redis would truncate a Lua number to an integer.
_BUDGETS = (
    CLOCK
    + """
local now = clock(ARGV[1])
local rounding = 1e-6  -- TIME's resolution; epoch seconds carry float error below it

local function seconds(x) return string.format('%.17g', x) end

local function expire_after(key, s)
  local ms = math.max(1, math.ceil(s * 1000))
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

-- A budget's state: a token bucket's theoretical arrival time, a fixed window's
-- start and count, or a sliding window's log of moments.
local function load(key, kind, max, window, burst)
  local b = {key = key, kind = kind, max = max, window = window, burst = burst}
  if kind == 'token_bucket' then
    b.interval = window / max
    b.tat = tonumber(redis.call('GET', key) or '') or -math.huge
  elseif kind == 'fixed_window' then
    local state = redis.call('HMGET', key, 'start', 'count')
    b.start = tonumber(state[1] or '')
    b.count = tonumber(state[2] or '') or 0
  else
    b.length = redis.call('LLEN', key)
    b.oldest = tonumber(redis.call('LINDEX', key, 0) or '')
  end
  return b
end

-- The window a request at t falls in: its start and the requests it holds.
local function window_of(b, t)
  if not b.start then return t, 0 end
  if t >= b.start + b.window then
    return b.start + math.floor((t - b.start) / b.window) * b.window, 0
  end
  return b.start, b.count
end

-- The earliest moment at or after t at which budget b allows one more request.
local function available_at(b, t)
  if b.kind == 'token_bucket' then
    local at = b.tat - (b.burst - 1) * b.interval
    if at <= t + rounding then return t end
    return at
  elseif b.kind == 'fixed_window' then
    local start, count = window_of(b, t)
    if count < b.max then return math.max(t, start) end
    return start + b.window
  end
  if b.length < b.max then return t end
  return math.max(t, b.oldest + b.window)
end

-- Count one request at ``at`` in budget b; every key expires once it is whole again.
local function take(b, at)
  if b.kind == 'token_bucket' then
    local tat = math.max(b.tat, at) + b.interval
    redis.call('SET', b.key, seconds(tat))
    redis.call('PEXPIRE', b.key, math.max(1, math.ceil((tat - now) * 1000)))
  elseif b.kind == 'fixed_window' then
    local start, count = window_of(b, at)
    redis.call('HSET', b.key, 'start', seconds(start), 'count', count + 1)
    expire_after(b.key, start + b.window - now)
  else
    redis.call('RPUSH', b.key, seconds(at))
    redis.call('LTRIM', b.key, -b.max, -1)
    expire_after(b.key, at + b.window - now)
  end
end

-- Budget i's bookings and its sends. The sends keep the limit over every window:
-- a fixed window counts them in the booked window they fall in; the others log
-- them over a sliding window, as many as the strategy lets through in one window
-- (a token bucket's burst_size - 1 more than max_requests).
local function budgets(first, args)
  local booked, sent = {}, {}
  for i = 0, (#KEYS - first - 1) / 2 do
    local a = args + i * 5
    local kind, max = ARGV[a], tonumber(ARGV[a + 1])
    local window, burst = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local margin = tonumber(ARGV[a + 4])
    local b = load(KEYS[first + 2 * i], kind, max, window, burst)
    local s
    if kind == 'fixed_window' then
      s = load(KEYS[first + 2 * i + 1], 'fixed_window', max, window, burst)
      local start = window_of(b, now)  -- the sends' windows are the booked ones
      if s.start ~= start then s.start, s.count = start, 0 end
    else
      local cap = kind == 'token_bucket' and max + burst - 1 or max
      -- A request reaches the network a little after the server's check: its sends
      -- are spaced over a window ``margin`` longer, so that lag cannot crowd one.
      s = load(KEYS[first + 2 * i + 1], 'sliding_window', cap, window + margin, burst)
    end
    booked[#booked + 1], sent[#sent + 1] = b, s
  end
  return booked, sent
end

-- The earliest moment at or after t at which every budget of the list allows one more.
local function earliest(list, t)
  local at = t
  for _ = 1, 64 do  -- each budget may push it later; a few rounds settle it
    local later = at
    for _, b in ipairs(list) do later = math.max(later, available_at(b, at)) end
    if later <= at then break end
    at = later
  end
  return at
end
"""
)

# KEYS: the host's pause, then each budget's bookings and sends.
# ARGV: time ("" = the server's TIME), the longest wait allowed (-1: any), then per
# budget: strategy, max_requests, time_window, burst_size, send margin.
# Returns {outcome, seconds}: "booked" (go now, counted as sent, when 0; else sleep
# that long and ask SEND before going), "hold" (the host is paused that long; book
# again then) or "refused" (the wait it would take, and what imposed it: "pause" or
# "limit"); a refusal books nothing.
_BOOK = (
    _BUDGETS
    + """
local max_wait = tonumber(ARGV[2])
local function too_long(delay) return max_wait >= 0 and delay > max_wait + rounding end

local paused = tonumber(redis.call('GET', KEYS[1]) or '')
if paused and paused > now + rounding then
  local delay = paused - now
  if too_long(delay) then return {'refused', seconds(delay), 'pause'} end
  return {'hold', seconds(delay)}
end

local booked, sent = budgets(2, 3)
local at = earliest(booked, now)
-- A request that would go at once goes only if the sends so far leave room (late
-- sleepers may have just left); else it waits, and asks again when it wakes.
if at <= now then at = math.max(now, earliest(sent, now)) end
local delay = at - now
if too_long(delay) then return {'refused', seconds(delay), 'limit'} end
for _, b in ipairs(booked) do take(b, at) end
if delay > 0 then return {'booked', seconds(delay)} end
for _, s in ipairs(sent) do take(s, now) end
return {'booked', '0'}
"""
)

# A request that slept for its slot may wake late, and go together with those
# booked after it: it goes only if the fleet's sends so far leave room now.
# KEYS: each budget's bookings and sends; ARGV: time, then the budgets' terms as in
# _BOOK. Returns the seconds still to wait (then ask again): "0" means sent now.
_SEND = (
    _BUDGETS
    + """
local _, sent = budgets(1, 2)
local at = earliest(sent, now)
if at > now + rounding then return seconds(at - now) end
for _, s in ipairs(sent) do take(s, now) end
return '0'
"""
)

# KEYS: the host's pause. ARGV: time ("" = TIME), seconds to pause (already capped).
# A pause only ever grows: a shorter one seen later does not end a longer one.
_PAUSE = (
    CLOCK
    + """
local now = clock(ARGV[1])
local pause = tonumber(ARGV[2])
local paused = tonumber(redis.call('GET', KEYS[1]) or '')
if not paused or now + pause > paused then
  redis.call('SET', KEYS[1], string.format('%.17g', now + pause),
             'PX', math.max(1, math.ceil(pause * 1000)))
end
return 1
"""
)


def _degraded(config: RateLimitConfig, share: float) -> RateLimitConfig:
    """``config`` with every limit cut to ``share`` (at least one request per window)."""

    def cut(n: int | None) -> int | None:
        return None if n is None else max(1, math.floor(n * share))

    return config.model_copy(
        update={
            "store": None,
            "max_requests": cut(config.max_requests),
            "burst_size": cut(config.burst_size),
            "endpoints": tuple(
                rule.model_copy(
                    update={
                        "max_requests": cut(rule.max_requests),
                        "burst_size": cut(rule.burst_size),
                    }
                )
                for rule in config.endpoints
            ),
        }
    )


def _host(url: httpx.URL) -> str:
    return url.netloc.decode("ascii", "replace")


class SharedLimits:
    """The fleet-wide half of a :class:`~buttress.RateLimiter` whose config names a store.

    Every process (and every limiter) given the same store and namespace books
    its requests against the same budgets. Each booking is one script call, one
    round trip; a request that had to sleep for its slot asks once more when it
    wakes, and a server-imposed pause costs one more, when it is seen.

    Examples:
        >>> from buttress import RateLimitConfig, RedisStore
        >>> store = RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
        >>> limits = SharedLimits(store, RateLimitConfig(max_requests=200, store=store))
        >>> for key in limits.keys(httpx.Request("GET", "https://api.example.com/users")):
        ...     print(key)
        buttress:{billing}:ratelimit:pause:api.example.com
        buttress:{billing}:ratelimit:main:global
        buttress:{billing}:ratelimit:main:global:sent
    """

    def __init__(
        self, store: RedisStore, config: RateLimitConfig, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.store = store
        self._book = self.store.script(_BOOK)
        self._send = self.store.script(_SEND)
        self._acquire_and_book = self.store.gated_script(_CIRCUIT, _BOOK)
        self._pause = self.store.script(_PAUSE)
        # Each budget by the name of its key: the main limit, then the endpoint rules.
        named: list[tuple[tuple[str, ...], str, str, RateLimitConfig | EndpointLimit]] = [
            (("rule", str(index)), rule.method, rule.path, rule)
            for index, rule in enumerate(config.endpoints)
        ]
        if config.max_requests is not None:
            named.insert(0, (("main",), "*", "*", config))
        self._rules = [
            (
                name,
                Rule(method, path, spec.strategy, size, spec.time_window, spec.burst_size or size),
            )
            for name, method, path, spec in named
            if (size := spec.max_requests) is not None
        ]
        share = self.store.degraded_share
        #: While the store is away: the limiter for this process's share of the limit
        #: (``None``: the local limiter, with the whole limit, is the fallback).
        self.fallback = (
            None
            if share is None or share == 1
            else RateLimiter(_degraded(config, share), clock=clock or self.store.clock)
        )

    def keys(self, request: httpx.Request) -> list[str]:
        """The host's pause, then each budget ``request`` counts against: bookings, sends."""
        return self._budgets(request)[0]

    def _budgets(self, request: httpx.Request) -> tuple[list[str], list[str | int | float]]:
        """The keys (the host's pause first) and each budget's terms, for the scripts."""
        url = request.url
        host = _host(url)
        scope = host if self.config.scope == "host" else "global"
        keys = [self.store.key("ratelimit", "pause", host)]
        terms: list[str | int | float] = []
        for name, rule in self._rules:
            if rule.matches(request.method, url.path):
                booked = self.store.key("ratelimit", *name, scope)
                keys += [booked, booked + ":sent"]
                terms += [
                    rule.strategy,
                    rule.max_requests,
                    rule.time_window,
                    rule.burst_size or 0,
                    self.store.send_margin,
                ]
        return keys, terms

    def book(
        self,
        request: httpx.Request,
        max_wait: float | None,
        acquisition: Acquisition | None = None,
    ) -> Generator[Effect, object, float | Hold | Refusal | Rejection | Unavailable]:
        """Book ``request``'s fleet-wide slot: the seconds to sleep before it goes.

        ``0.0``: it goes now, and counts as sent. After a longer sleep it asks
        :meth:`send` before it goes. A :class:`~buttress.policies.ratelimit.Hold`
        when its host is paused (book again after it), a
        :class:`~buttress.policies.ratelimit.Refusal` (nothing booked) when the
        wait would be longer than ``max_wait`` seconds (``None``: any wait),
        ``UNAVAILABLE`` when the store is away.

        With a breaker's ``acquisition`` (the breaker above handed it down) the
        circuit is asked first, in the same call when it shares this store (one
        round trip for both), and the slot is booked only if it lets the request
        go; its verdict is left in ``acquisition.verdict``, and a rejection is
        returned as it is.
        """
        if acquisition is not None and acquisition.store is not self.store:
            verdict = yield from acquisition.run()  # another store: asked on its own
            if isinstance(verdict, Rejection):
                return verdict
            acquisition = None
        time = self.store.time_argument()
        longest = -1.0 if max_wait is None else max(max_wait, 0.0)
        keys, terms = self._budgets(request)
        if acquisition is None:
            answer = yield from self._book(keys, [time, longest, *terms])
        else:
            try:
                answers = yield from self._acquire_and_book(
                    acquisition.keys, acquisition.arguments, keys, [time, longest, *terms]
                )
            except StoreError:
                acquisition.failed()
                raise
            verdict = acquisition.answered(
                answers if isinstance(answers, Unavailable) else answers[0]
            )
            if isinstance(verdict, Rejection):
                return verdict
            answer = answers if isinstance(answers, Unavailable) else answers[1]
        if isinstance(answer, Unavailable):
            return UNAVAILABLE
        outcome, *rest = (decoded(part) for part in answer)
        delay = float(rest[0])
        if outcome == "booked":
            return delay
        if outcome == "hold":
            return Hold(delay)
        paused = rest[1] == "pause"
        return Refusal(
            delay, "the server asked to wait" if paused else "fleet-wide rate limit reached"
        )

    def send(self, request: httpx.Request) -> Generator[Effect, object, float | Unavailable]:
        """Whether ``request``, woken from its sleep for a booked slot, may go now.

        ``0.0``: the fleet's sends so far leave room now, and it counts as sent;
        else the seconds to wait before asking again (a sleeper that woke late
        must not go together with those booked after it). ``UNAVAILABLE`` when
        the store is away.
        """
        keys, terms = self._budgets(request)
        answer = yield from self._send(keys[1:], [self.store.time_argument(), *terms])
        if isinstance(answer, Unavailable):
            return UNAVAILABLE
        return float(decoded(answer))

    def pause(
        self, request: httpx.Request, response: httpx.Response, info: RateLimitInfo | None
    ) -> Generator[Effect, object, None]:
        """Share the pause ``response``'s server asked for, if any, with the whole fleet."""
        seconds = None
        if self.config.respect_retry_after and response.status_code in (429, 503):
            seconds = parse_retry_after(response.headers, self.store.clock.time())
        if seconds is None and info is not None and info.remaining is not None:
            seconds = info.reset_after if info.remaining <= 0 else None
        if seconds is None or seconds <= 0:
            return
        seconds = min(seconds, self.config.max_server_pause)
        key = self.store.key("ratelimit", "pause", _host(request.url))
        yield from self._pause([key], [self.store.time_argument(), seconds])

    def reset(self, host: str | None = None) -> None:
        """End ``host``'s shared pause, or forget every shared budget and pause (``None``).

        A blocking call of at most the store's ``timeout``; nothing happens while
        the store is away.
        """
        if host is not None:
            key = self.store.key("ratelimit", "pause", host)
            self.store.run(lambda client: client.delete(key))
            return
        pattern = _glob_escape(self.store.key("ratelimit")) + ":*"

        def forget(client: Any) -> None:
            keys = list(client.scan_iter(match=pattern, count=500))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])

        self.store.run(forget)

    def __repr__(self) -> str:
        return f"SharedLimits({self.store!r})"


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
