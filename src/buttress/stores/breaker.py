"""A circuit whose state the whole fleet shares, in Redis.

``CircuitBreakerConfig(store=RedisStore(...))`` gives every process the same
circuit (one per host with ``per_host=True``): when one process opens it, the
others fail fast on their next call. The state machine is the one of
:class:`~buttress.policies.breaker.Circuit`, run as one atomic server-side
script per step and timed by the Redis server's clock, so processes on
machines whose clocks disagree still agree on when ``reset_timeout`` has passed.

What lives in Redis, per circuit (every key expires, see ``_ttl``):

- a hash: the state, whether it is forced, its generation, when it opened, the
  consecutive failures, the trial successes, and the fleet's cumulative counts;
- the half-open trial calls as *leases*: a sorted set of lease numbers scored
  by their expiry. At most ``half_open_max_calls`` are out fleet-wide; a lease
  lasts ``reset_timeout`` seconds, so a process that dies holding one delays
  recovery by at most that long, never blocks it;
- the failure and slow-call rate window (only when a rate is configured), in
  twenty buckets of ``sampling_duration / 20`` seconds each.

Cost per request, in round trips to Redis:

- closed circuit, call succeeds: **one** (the acquire). A process keeps its
  successes and sends them with its next script call, where they are judged:
  a success opens a circuit only by bringing its window up to ``minimum_calls``,
  so the open comes one call later than in a process of its own;
- a call that fails, or is slow: two (acquire, then the record, which also
  carries the successes kept until then, so the rates are judged on every call);
- open circuit: one, then the call fails fast;
- half-open trial: two (the lease, then its result).

Beneath a breaker, a rate limit shared through the same store asks the acquire
step (an :class:`Acquisition` the breaker hands down) in the call that books
the request's slot: the acquire then costs no round trip of its own.

When the store is away each circuit falls back to its own per-process
:class:`~buttress.policies.breaker.Circuit` (``SharedCircuit.local``), as
:class:`~buttress.stores.StoreHealth` decides; a request never waits on Redis for
longer than the store's ``timeout``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from .._exceptions import StoreError
from .._flow import Effect, call_at_once
from ..policies.breaker import (
    Circuit,
    CircuitBreakerConfig,
    CircuitMetrics,
    CircuitState,
    Permit,
    Rejection,
    StateChange,
    _is_slow,
    _sum_metrics,
    _Tally,
    log_changes,
)
from ._lua import CLOCK, WINDOW_TOTALS
from ._replies import decoded
from .health import UNAVAILABLE

if TYPE_CHECKING:
    from .._clock import Clock
    from .redis import RedisStore

__all__ = ["Acquisition", "SharedCircuit"]

logger = logging.getLogger("buttress.circuit_breaker")

T = TypeVar("T")

# KEYS: the circuit's hash, its trial leases (sorted set), its rate window (hash).
# ARGV: operation, time (seconds; "" = the server's TIME), the configuration (3-11),
# the operation's own arguments (12-15), then pairs of (generation, successes) kept
# by the process until this call. Times inside are integer milliseconds.
_SCRIPT = (
    CLOCK
    + WINDOW_TOTALS
    + """
local circuit, leases, window = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = math.floor(clock(ARGV[2]) * 1000)
local failure_threshold = tonumber(ARGV[3])
local success_threshold = tonumber(ARGV[4])
local reset_timeout = tonumber(ARGV[5])
local max_trials = tonumber(ARGV[6])
local failure_rate = tonumber(ARGV[7])
local slow_rate = tonumber(ARGV[8])
local sampling = tonumber(ARGV[9])
local minimum_calls = tonumber(ARGV[10])
local ttl = tonumber(ARGV[11])
local width = math.max(math.floor(sampling / 20), 1)

local saved = redis.call('HMGET', circuit, 'state', 'forced', 'gen', 'opened', 'consecutive',
  'trial_successes')
local state = saved[1] or 'closed'
local forced = saved[2]
local gen = tonumber(saved[3] or '0')
local opened = tonumber(saved[4] or '0')
local consecutive = tonumber(saved[5] or '0')
local trial_successes = tonumber(saved[6] or '0')
local changes = {}

local function move(to, reason)
  changes[#changes + 1] = state .. ' ' .. to .. ' ' .. reason
  state = to
  gen = gen + 1
  consecutive = 0
  trial_successes = 0
  redis.call('DEL', leases)
  if to == 'open' then opened = now end
  if to ~= 'half_open' then redis.call('DEL', window) end
end

local function count(calls, failures, slow)
  if not failure_rate and not slow_rate then return end
  local bucket = math.floor(now / width)
  redis.call('HINCRBY', window, 'c' .. bucket, calls)
  if failures > 0 then redis.call('HINCRBY', window, 'f' .. bucket, failures) end
  if slow > 0 then redis.call('HINCRBY', window, 's' .. bucket, slow) end
end

local function rate_exceeded()
  if not failure_rate and not slow_rate then return nil end
  local totals = window_totals(window, math.floor(now / width) - 20, {c = 0, f = 0, s = 0})
  if totals.c < minimum_calls then return nil end
  if failure_rate and totals.f / totals.c >= failure_rate then
    return string.format('failure rate %d/%d reached %d%%', totals.f, totals.c,
      math.floor(failure_rate * 100 + 0.5))
  end
  if slow_rate and totals.s / totals.c >= slow_rate then
    return string.format('slow call rate %d/%d reached %d%%', totals.s, totals.c,
      math.floor(slow_rate * 100 + 0.5))
  end
  return nil
end

local function force(to)
  if to == 'reset' then
    redis.call('HDEL', circuit, 'forced')
    forced = nil
    if state ~= 'closed' then
      move('closed', 'reset')
    else
      gen = gen + 1
      consecutive = 0
      redis.call('DEL', window)
    end
  else
    redis.call('HSET', circuit, 'forced', to)
    forced = to
    if state ~= to then move(to, 'forced ' .. to) end
  end
end

if op == 'force' or (op == 'acquire' and ARGV[12] ~= '') then force(ARGV[12]) end
if state == 'open' and not forced and now - opened >= reset_timeout then
  move('half_open', 'reset timeout elapsed')
end

-- Successes the process kept: they count, but only those of this generation
-- (taken while the circuit was closed as it is now) touch its window, where
-- they may bring the calls up to minimum_calls and so open it by a rate.
for i = 16, #ARGV, 2 do
  local successes = tonumber(ARGV[i + 1])
  redis.call('HINCRBY', circuit, 'successes', successes)
  if tonumber(ARGV[i]) == gen and state == 'closed' then
    consecutive = 0
    count(successes, 0, 0)
    local why = rate_exceeded()
    if why and not forced then move('open', why) end
  end
end

local granted, number = 0, 0
if op == 'acquire' then
  if state == 'closed' then
    granted = 1
  elseif state == 'half_open' then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    if redis.call('ZCARD', leases) < max_trials then
      granted = 1
      number = redis.call('HINCRBY', circuit, 'leases_given', 1)
      redis.call('ZADD', leases, now + reset_timeout, number)
    end
  end
  if granted == 0 then redis.call('HINCRBY', circuit, 'rejected', 1) end
elseif op == 'record' then
  local permit_gen, lease = tonumber(ARGV[12]), tonumber(ARGV[13])
  local failed, slow = ARGV[14] == '1', ARGV[15] == '1'
  if failed then
    redis.call('HINCRBY', circuit, 'failures', 1)
    redis.call('HSET', circuit, 'last_failure', now)
  else
    redis.call('HINCRBY', circuit, 'successes', 1)
  end
  if slow then redis.call('HINCRBY', circuit, 'slow', 1) end
  if permit_gen == gen then
    if lease > 0 then
      redis.call('ZREM', leases, lease)
      if failed then
        move('open', 'a trial call failed')
      elseif slow then
        move('open', 'a trial call was slow')
      else
        trial_successes = trial_successes + 1
        if trial_successes >= success_threshold then move('closed', 'trial calls succeeded') end
      end
    elseif state == 'closed' then
      consecutive = failed and consecutive + 1 or 0
      count(1, failed and 1 or 0, slow and 1 or 0)
      local why = rate_exceeded()
      if not forced then
        if consecutive >= failure_threshold then
          why = consecutive .. ' consecutive failures'
        end
        if why then move('open', why) end
      end
    end
  end
elseif op == 'release' then
  if tonumber(ARGV[12]) == gen then redis.call('ZREM', leases, tonumber(ARGV[13])) end
end

redis.call('HSET', circuit, 'state', state, 'gen', gen, 'opened', opened,
  'consecutive', consecutive, 'trial_successes', trial_successes)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
local wait = -1  -- milliseconds until an open circuit lets a trial call through
if state == 'open' and not forced then wait = math.max(reset_timeout - (now - opened), 0) end
local answer = {granted, gen, number, state, forced or '', wait, consecutive}
for _, change in ipairs(changes) do answer[#answer + 1] = change end
return answer
"""
)


class SharedCircuit:
    """One circuit shared by every process using the same store (and circuit name).

    Made by :class:`~buttress.policies.breaker.CircuitBreaker` when its config has
    a ``store``; ``client.circuit_breaker.for_host(host)`` returns one.
    :meth:`acquire`, :meth:`record` and :meth:`release` are flow steps
    (``permit = yield from circuit.acquire()``); the manual controls and the
    readings are plain methods:

    - ``state``: the fleet's state as this process last saw it (every call
      through the circuit refreshes it; reading it costs no store call). While
      the store is away: the per-process circuit's state.
    - ``metrics``: the calls *this process* made and the changes it saw; each
      process reports its own, as metrics exporters expect.
    - ``force_open()``, ``force_close()``, ``reset()``: change the fleet's state
      at once (one blocking store call, bounded by the store's ``timeout``), and
      the per-process circuit's too.

    Examples:
        >>> import buttress
        >>> store = buttress.RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
        >>> config = buttress.CircuitBreakerConfig(per_host=True, store=store)
        >>> circuit = buttress.CircuitBreaker(config).for_host("api.example.com")
        >>> circuit
        SharedCircuit('api.example.com', state='closed')
    """

    def __init__(
        self, store: RedisStore, config: CircuitBreakerConfig, clock: Clock, *, name: str = "*"
    ) -> None:
        self.store = store
        self.config = config
        self.name = name
        self.local = Circuit(config, clock, name=name)
        self._clock = clock
        self._script = store.script(_SCRIPT)
        base = store.key("breaker", name)
        self._keys = [base, f"{base}:leases", f"{base}:window"]
        ms = 1000.0
        self._settings: list[str | int | float] = [
            config.failure_threshold,
            config.success_threshold,
            round(config.reset_timeout * ms),
            config.half_open_max_calls,
            "" if config.failure_rate_threshold is None else config.failure_rate_threshold,
            "" if config.slow_call_duration is None else config.slow_call_rate_threshold,
            round(config.sampling_duration * ms),
            config.minimum_calls,
            self._ttl(config),
        ]
        self._lock = threading.Lock()
        self._pending: dict[int, int] = {}  # generation -> successes not yet sent
        self._forcing = ""  # a breaker-wide force to apply with the next acquire
        self._seen: CircuitState = "closed"
        self._forced = False
        self._half_open_at: float | None = None  # monotonic time an open circuit may try again
        self._tally = _Tally(clock)  # this process's calls through the fleet's circuit
        self._consecutive_failures = 0  # the fleet's, as last seen

    @staticmethod
    def _ttl(config: CircuitBreakerConfig) -> int:
        """Milliseconds a circuit's keys outlive their last use: a day, or more if it needs.

        Renewed by every call, so a circuit in use never expires; one unused
        for that long starts closed again, as a new one would.
        """
        return round(max(86_400.0, 2 * (config.reset_timeout + config.sampling_duration)) * 1000)

    # -- flow steps --------------------------------------------------------------------------

    def acquire(self) -> Generator[Effect, object, Permit | Rejection]:
        """A permit to send a call, or the rejection; the fleet's circuit decides."""
        return (yield from self.acquisition().run())

    def acquisition(self) -> Acquisition:
        """The acquire step, ready to run, alone or in one call with another script."""
        with self._lock:
            forcing, self._forcing = self._forcing, ""
            sent, self._pending = self._pending, {}
        return Acquisition(self, self._arguments("acquire", [forcing], sent), forcing, sent)

    def _acquired(self, acquisition: Acquisition, answer: Any) -> Permit | Rejection:
        """The permit or the rejection the acquire script answered (``UNAVAILABLE``: ours)."""
        if answer is UNAVAILABLE:
            self._keep(acquisition.sent)
            with self._lock:
                self._forcing = self._forcing or acquisition.forcing
            return self.local.acquire()
        granted, generation, lease = self._read(answer)
        if granted:
            return Permit(generation, half_open=lease > 0, lease=lease, shared=True)
        with self._lock:
            self._tally.rejected += 1
            if self._forced:
                return Rejection(None, self.name)
            due = self._half_open_at
        return Rejection(0.0 if due is None else max(due - self._clock.monotonic(), 0.0), self.name)

    def record(
        self, permit: Permit, *, failure: bool, duration: float
    ) -> Generator[Effect, object, None]:
        """Report how a permitted call went; a closed circuit's successes wait for a later call."""
        if not permit.shared:
            self.local.record(permit, failure=failure, duration=duration)
            return
        slow = _is_slow(self.config, duration)
        if not (failure or slow or permit.half_open):
            with self._lock:
                self._tally.count(failure=False, slow=False)
                self._pending[permit.generation] = self._pending.get(permit.generation, 0) + 1
            return
        flag = {True: "1", False: "0"}
        answer = yield from self._ask(
            "record", permit.generation, permit.lease, flag[failure], flag[slow], answered=True
        )
        if answer is None:  # the fleet will not hear of it: this process's circuit counts it
            self.local.record(self.local.adopt(), failure=failure, duration=duration)
            return
        with self._lock:
            self._tally.count(failure=failure, slow=slow)

    def release(self, permit: Permit) -> Generator[Effect, object, None]:
        """Give back a permit whose call did not count (a trial's lease is freed at once)."""
        if not permit.shared:
            self.local.release(permit)
        elif permit.half_open:
            yield from self._ask("release", permit.generation, permit.lease, answered=True)

    def abandon(self, permit: Permit) -> None:
        """A permit whose flow was closed (cancelled): no store call; a lease lapses by itself."""
        if not permit.shared:
            self.local.release(permit)

    def _ask(
        self, operation: str, *arguments: str | int, answered: bool = False
    ) -> Generator[Effect, object, Any]:
        """Run the script; ``(granted, generation, number)``, or ``None`` if the store is away.

        Once the call has its response (``answered``), a :class:`~buttress.StoreError`
        (``on_store_error="raise"``) is logged instead of raised: it must not
        take the response's place.
        """
        with self._lock:
            sent, self._pending = self._pending, {}
        try:
            answer = yield from self._script(
                self._keys, self._arguments(operation, arguments, sent)
            )
        except StoreError as exc:
            if not answered:
                self._keep(sent)
                raise
            where = "this client" if self.name == "*" else self.name
            logger.warning("circuit breaker for %s: %s; counted by this process only", where, exc)
            answer = UNAVAILABLE
        if answer is UNAVAILABLE:
            self._keep(sent)
            return None
        return self._read(answer)

    def _arguments(
        self, operation: str, arguments: Sequence[str | int], sent: dict[int, int]
    ) -> list[str | int | float]:
        """The script's ARGV for ``operation``, carrying the successes ``sent``."""
        padded = [*arguments, *[""] * (4 - len(arguments))]
        successes = [value for pair in sent.items() for value in pair]
        return [operation, self.store.time_argument(), *self._settings, *padded, *successes]

    def _read(self, answer: Sequence[Any]) -> tuple[bool, int, int]:
        """Note what the script answered: ``(granted, generation, number)``."""
        granted, generation, number, state, forced, wait, consecutive, *changes = answer
        self._consecutive_failures = int(consecutive)
        self._saw(_state(decoded(state)), bool(decoded(forced)), int(wait), changes)
        return bool(granted), int(generation), int(number)

    def _keep(self, successes: dict[int, int]) -> None:
        """Successes the store did not take: sent with a later call, once it is back."""
        with self._lock:
            for generation, count in successes.items():
                self._pending[generation] = self._pending.get(generation, 0) + count

    def _saw(self, state: CircuitState, forced: bool, wait: int, changes: Sequence[object]) -> None:
        """Note the fleet's state; log and report the changes made, or seen made elsewhere."""
        at = self._clock.time()
        made = []
        for change in changes:
            before, after, reason = decoded(change).split(" ", 2)
            made.append(StateChange(_state(before), _state(after), at, reason))
        with self._lock:
            seen = made[0].from_state if made else state
            if seen != self._seen:  # a change made by another process since this one asked
                made.insert(0, StateChange(self._seen, seen, at, "changed by another process"))
            self._seen = state
            self._forced = forced
            self._half_open_at = None if wait < 0 else self._clock.monotonic() + wait / 1000
            self._tally.changes.extend(made)
        log_changes(self.config, self.name, made)

    # -- readings and manual controls -------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The fleet's state as last seen (the per-process one while the store is away)."""
        if self.store.degraded:
            return self.local.state
        with self._lock:
            due = self._half_open_at
            if self._seen == "open" and due is not None and self._clock.monotonic() >= due:
                return "half_open"
            return self._seen

    def open_for(self) -> float | None:
        """Seconds until the fleet's open circuit lets a call through, as last seen.

        ``None`` unless it is open; ``math.inf`` while forced open.
        """
        if self.store.degraded:
            return self.local.open_for()
        with self._lock:
            if self._seen != "open":
                return None
            if self._forced:
                return math.inf
            if self._half_open_at is None:  # as a rejection reads it: a trial may go now
                return None
            left = self._half_open_at - self._clock.monotonic()
        return left if left > 0 else None

    @property
    def metrics(self) -> CircuitMetrics:
        """The calls this process made through the circuit (shared or not), and the changes seen.

        ``consecutive_failures`` is the fleet's, as this process last saw it.
        """
        with self._lock:
            shared = self._tally.metrics(self._seen, self._consecutive_failures)
        return _sum_metrics(self.state, [shared, self.local.metrics])

    def force_open(self) -> None:
        """Open the circuit fleet-wide until :meth:`force_close` or :meth:`reset`."""
        self.local.force_open()
        call_at_once(self._ask("force", "open"))

    def force_close(self) -> None:
        """Close it fleet-wide; failures count but never trip it, until :meth:`reset`."""
        self.local.force_close()
        call_at_once(self._ask("force", "closed"))

    def reset(self) -> None:
        """Back to a fresh closed circuit fleet-wide, ending any forcing."""
        self.local.reset()
        with self._lock:
            self._pending.clear()
        call_at_once(self._ask("force", "reset"))

    def force_later(self, to: Literal["open", "closed"]) -> None:
        """Force the circuit fleet-wide with its next call (no store call now).

        For a host first seen by a breaker forced as a whole, from inside a flow.
        """
        {"open": self.local.force_open, "closed": self.local.force_close}[to]()
        with self._lock:
            self._forcing = to

    def is_fresh(self, now: float, forced: Literal["open", "closed"] | None = None) -> bool:
        """Whether forgetting this process's view changes nothing (the fleet's state stays)."""
        with self._lock:
            idle = not self._pending and self._seen == "closed"
        return idle and self.local.is_fresh(now, forced)

    def __repr__(self) -> str:
        return f"SharedCircuit({self.name!r}, state={self.state!r})"


def _state(text: str) -> CircuitState:
    assert text in ("closed", "open", "half_open"), text
    return cast("CircuitState", text)


class Acquisition:
    """A shared circuit's acquire step, ready to run: the script's keys and arguments.

    :meth:`SharedCircuit.acquire` runs it alone. A limiter sharing the circuit's
    store, beneath the breaker, runs it in one call with its own booking
    (:meth:`~buttress.RedisStore.gated_script`: one round trip for both) and
    hands the answer to :meth:`answered`; the breaker reads the :attr:`verdict`.

    Examples:
        >>> import buttress
        >>> store = buttress.RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
        >>> config = buttress.CircuitBreakerConfig(store=store)
        >>> circuit = buttress.CircuitBreaker(config).for_host("api.example.com")
        >>> acquisition = circuit.acquisition()
        >>> acquisition.keys
        ['buttress:{billing}:breaker:%2A', 'buttress:{billing}:breaker:%2A:leases', ...]
        >>> acquisition.verdict is None  # not run yet
        True
    """

    def __init__(
        self,
        circuit: SharedCircuit,
        arguments: list[str | int | float],
        forcing: str,
        sent: dict[int, int],
    ) -> None:
        self.circuit = circuit
        self.store = circuit.store
        self.keys = circuit._keys
        self.arguments = arguments
        self.forcing = forcing
        self.sent = sent
        #: The permit or the rejection, once run; ``None`` before.
        self.verdict: Permit | Rejection | None = None
        #: When the verdict came (the circuit's monotonic clock): a call's duration starts there.
        self.answered_at = 0.0

    def run(self) -> Generator[Effect, object, Permit | Rejection]:
        """Ask the circuit alone (a store call of its own): the verdict."""
        try:
            answer = yield from self.circuit._script(self.keys, self.arguments)
        except StoreError:
            self.failed()
            raise
        return self.answered(answer)

    def answered(self, answer: Any) -> Permit | Rejection:
        """The verdict from the script's reply (``UNAVAILABLE``: this process's circuit decides)."""
        self.verdict = self.circuit._acquired(self, answer)
        self.answered_at = self.circuit._clock.monotonic()
        return self.verdict

    def failed(self) -> None:
        """The call failed with a ``StoreError``: the successes it carried go with a later one."""
        self.circuit._keep(self.sent)

    def __repr__(self) -> str:
        return f"Acquisition({self.circuit!r}, verdict={self.verdict!r})"
