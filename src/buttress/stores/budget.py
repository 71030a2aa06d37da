"""A retry budget the whole fleet shares, in Redis.

``RetryConfig(store=RedisStore(...))`` makes the retry budget per host
fleet-wide: retries across every process may add at most ``ratio`` on top of
the first attempts of every process, plus the floor of ``min_per_second``, over
the last ``window`` seconds. The rule is the one of
:class:`~buttress.policies.budget.InMemoryRetryBudget`, run as an atomic script
timed by the Redis server's clock on a hash of one-second buckets per host
(which expires ``window`` seconds after its last use).

Cost: a first attempt is counted in the process and sent at most once a second
per host (with the next retry's script call, or on its own when a second has
passed), so most requests cost no round trip at all; a retry costs one. The
first attempts of the last second may therefore be missing from what another
process sees: the budget errs by at most one second of requests, towards
fewer retries.

While the store is away the budget is this process's own
(:attr:`RedisRetryBudget.local`), which counts every first attempt all along.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING

from .._exceptions import StoreError
from .._flow import Effect, call_at_once
from ..policies.budget import InMemoryRetryBudget, SharedRetryBudget
from ._lua import CLOCK, WINDOW_TOTALS
from .health import UNAVAILABLE

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = ["RedisRetryBudget"]

logger = logging.getLogger("buttress.retry")

# KEYS: the host's hash of buckets. ARGV: time (seconds, "" = the server's TIME),
# window, ratio, min_per_second, first attempts to add, "1" to take a retry.
_SCRIPT = (
    CLOCK
    + WINDOW_TOTALS
    + """
local budget = KEYS[1]
local second = math.floor(clock(ARGV[1]))
local window, ratio, floor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local requests = tonumber(ARGV[5])
if requests > 0 then redis.call('HINCRBY', budget, 'r' .. second, requests) end
local allowed = 1
if ARGV[6] == '1' then
  local totals = window_totals(budget, second - math.floor(window), {r = 0, t = 0})
  if totals.t + 1 > ratio * totals.r + floor * window then
    allowed = 0
  else
    redis.call('HINCRBY', budget, 't' .. second, 1)
  end
end
redis.call('PEXPIRE', budget, math.ceil((window + 1) * 1000))
return allowed
"""
)

_SEND_EVERY = 1.0  # seconds a process keeps a host's first attempts before sending them


class RedisRetryBudget(SharedRetryBudget):
    """A per-host retry budget shared by every process using the same store.

    Made by ``RetryConfig(store=...)``; ``client``'s retry layer asks it with
    flow steps (:meth:`record` and :meth:`withdraw`). :meth:`record_request`
    and :meth:`try_withdraw` are the plain :class:`~buttress.policies.budget.RetryBudget`
    methods, for use outside a flow (``try_withdraw`` makes one blocking store call).

    Examples:
        >>> import buttress
        >>> store = buttress.RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
        >>> config = buttress.RetryConfig(store=store)
        >>> config.budget.create(config.store)
        RedisRetryBudget(RedisStore('redis://127.0.0.1:6379/0', namespace='billing'), ratio=0.2)
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
    ) -> None:
        self.store = store
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self.local = InMemoryRetryBudget(ratio=ratio, min_per_second=min_per_second, window=window)
        self._script = store.script(_SCRIPT)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, float]] = {}  # host -> (first attempts, kept since)
        self._refused = 0
        self._next_prune = 0.0

    @property
    def exhausted_count(self) -> int:
        """How many retries this process was refused (by the fleet's budget or its own)."""
        return self._refused + self.local.exhausted_count

    def record_request(self, key: str, now: float) -> None:
        """Count a first attempt for ``key`` (a host), to be sent with the next store call."""
        self.local.record_request(key, now)
        with self._lock:
            count, since = self._pending.get(key, (0, now))
            self._pending[key] = (count + 1, since)

    def record(self, key: str, now: float) -> Generator[Effect, object, None]:
        """In a flow: :meth:`record_request`, sending the counts once a second has passed."""
        self.record_request(key, now)
        if now - self._pending.get(key, (0, now))[1] >= _SEND_EVERY:
            yield from self._ask(key, withdraw=False)
        if now >= self._next_prune:
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget the counts of hosts not called for a whole window: they count nowhere now.

        A host's counts are sent by its next call a second later, so counts kept
        since before the window are of a host no longer called. Once a window,
        so a client that meets many hosts keeps counts only for those in use.
        """
        with self._lock:
            self._next_prune = now + self.window
            horizon = now - self.window
            for key in [key for key, (_, since) in self._pending.items() if since <= horizon]:
                del self._pending[key]

    def withdraw(self, key: str, now: float) -> Generator[Effect, object, bool]:
        """In a flow: take one retry for ``key`` if the fleet's budget allows it.

        Asked once an attempt has its outcome, so a :class:`~buttress.StoreError`
        (``on_store_error="raise"``) is logged rather than raised in its place,
        and this process's own budget decides.
        """
        try:
            allowed = yield from self._ask(key, withdraw=True)
        except StoreError as exc:
            logger.warning("retry budget for %s: %s; this process's own budget decides", key, exc)
            allowed = None
        if allowed is None:
            return self.local.try_withdraw(key, now)
        if not allowed:
            with self._lock:
                self._refused += 1
        return allowed

    def try_withdraw(self, key: str, now: float) -> bool:
        """Take one retry for ``key`` if the fleet's budget allows it (a blocking store call)."""
        return call_at_once(self.withdraw(key, now))

    def _ask(self, key: str, *, withdraw: bool) -> Generator[Effect, object, bool | None]:
        """Send the kept first attempts (and take a retry); ``None`` if the store is away."""
        with self._lock:
            count, since = self._pending.pop(key, (0, 0.0))
        try:
            answer = yield from self._script(
                [self.store.key("retry-budget", key)],
                [
                    self.store.time_argument(),
                    self.window,
                    self.ratio,
                    self.min_per_second,
                    count,
                    "1" if withdraw else "0",
                ],
            )
        except StoreError:
            self._keep(key, count, since)
            raise
        if answer is UNAVAILABLE:
            self._keep(key, count, since)
            return None
        return bool(answer)

    def _keep(self, key: str, count: int, since: float) -> None:
        """First attempts the store did not take: sent with a later call, once it is back."""
        if not count:
            return
        with self._lock:
            kept, kept_since = self._pending.get(key, (0, since))
            self._pending[key] = (kept + count, min(since, kept_since))

    def __repr__(self) -> str:
        return f"RedisRetryBudget({self.store!r}, ratio={self.ratio})"
