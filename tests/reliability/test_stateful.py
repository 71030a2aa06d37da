"""Stateful property tests: random sequences of calls against the breaker and the rate limits.

Hypothesis drives each machine through random rule sequences (calls that
succeed or fail, time passing, manual control) and checks the invariants the
modules document after every step. Time is a :class:`FakeClock` (or plain
numbers for the rate limits), so nothing here sleeps.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from buttress.policies.breaker import Circuit, CircuitBreakerConfig, Permit, Rejection
from buttress.policies.limits import FixedWindow, Limit, SlidingWindow, TokenBucket
from buttress.testing import FakeClock

MODEST = settings(max_examples=60, stateful_step_count=40, deadline=None)
RESET_TIMEOUT = 10.0

# -- the circuit breaker (policies/breaker.py) ---------------------------------------------------


class CircuitMachine(RuleBasedStateMachine):
    """A :class:`Circuit` next to a small model of what its documented transitions imply.

    A permit is *live* while the circuit has neither changed state nor been
    reset since it was taken; results of other permits are counted but move
    nothing. ``epoch`` (transitions reported to ``on_state_change`` so far, plus
    resets) tells live from stale; the metrics' history is bounded, the hook is not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.circuit = Circuit(CircuitBreakerConfig(), self.clock)
        self.permits: list[tuple[Permit, tuple[int, int]]] = []
        self.successes = self.failures = self.rejections = 0
        self.resets = self.transitions = 0
        self.last_transition: tuple[str, str] | None = None
        self.forced: str | None = None
        self.trial_successes = 0
        self.consecutive_failures = 0
        self.seen_epoch = self.epoch
        self.opened_at: float | None = None

    @initialize(
        failure_threshold=st.integers(1, 3),
        success_threshold=st.integers(1, 3),
        half_open_max_calls=st.integers(1, 3),
    )
    def configure(
        self, failure_threshold: int, success_threshold: int, half_open_max_calls: int
    ) -> None:
        self.config = CircuitBreakerConfig(
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            half_open_max_calls=half_open_max_calls,
            reset_timeout=RESET_TIMEOUT,
            on_state_change=self._transitioned,
        )
        self.circuit = Circuit(self.config, self.clock)

    def _transitioned(self, name: str, old: str, new: str) -> None:
        self.transitions += 1
        self.last_transition = (old, new)

    @property
    def epoch(self) -> tuple[int, int]:
        return self.transitions, self.resets

    def _sync_epoch(self) -> None:
        """A state change or reset restarts the per-state counters, as the circuit does."""
        if self.epoch != self.seen_epoch:
            self.seen_epoch = self.epoch
            self.trial_successes = 0
            self.consecutive_failures = 0
            opened = self.last_transition is not None and self.last_transition[1] == "open"
            self.opened_at = self.clock.monotonic() if opened else None

    def _live_trials(self) -> int:
        return sum(1 for permit, epoch in self.permits if permit.half_open and epoch == self.epoch)

    @rule()
    def acquire(self) -> None:
        """Take a permit and hold it (the call is in flight until ``record``)."""
        self._acquire()

    def _acquire(self) -> Permit | Rejection:
        before = self.circuit.state
        live_trials = self._live_trials()
        result = self.circuit.acquire()
        self._sync_epoch()
        if isinstance(result, Rejection):
            self.rejections += 1
        if before == "open":
            assert isinstance(result, Rejection), "an open circuit let a call through"
        elif before == "closed":
            assert isinstance(result, Permit)
            assert not result.half_open
        elif live_trials < self.config.half_open_max_calls:
            assert isinstance(result, Permit)
            assert result.half_open
        else:
            assert isinstance(result, Rejection), "half-open let too many trial calls through"
        if isinstance(result, Permit):
            self.permits.append((result, self.epoch))
        return result

    @precondition(lambda self: bool(self.permits))
    @rule(index=st.integers(min_value=0), failure=st.booleans())
    def record(self, index: int, failure: bool) -> None:
        """Report the result of one of the calls in flight (any of them, in any order)."""
        self._record(index, failure)

    def _record(self, index: int, failure: bool) -> None:
        permit, taken_in = self.permits.pop(index % len(self.permits))
        live = taken_in == self.epoch
        self.circuit.record(permit, failure=failure, duration=0.01)
        if failure:
            self.failures += 1
        else:
            self.successes += 1
        state = self.circuit.state
        if live and permit.half_open:
            if failure:
                assert state == "open", "a failed trial call did not reopen the circuit"
            else:
                self.trial_successes += 1
                expected = (
                    "closed"
                    if self.trial_successes >= self.config.success_threshold
                    else "half_open"
                )
                assert state == expected
        elif live and self.forced is None:
            self.consecutive_failures = self.consecutive_failures + 1 if failure else 0
            tripped = self.consecutive_failures >= self.config.failure_threshold
            assert state == ("open" if tripped else "closed")
        elif self.forced == "closed":
            assert state == "closed", "a forced-closed circuit tripped"
        self._sync_epoch()

    @rule(seconds=st.sampled_from([0.5, 3.0, RESET_TIMEOUT - 0.5, RESET_TIMEOUT, 25.0]))
    def advance(self, seconds: float) -> None:
        before = self.circuit.state
        self.clock.advance(seconds)
        after = self.circuit.state
        if before == "closed" or self.forced == "open":
            assert after == before, "time alone moved a closed or forced-open circuit"

    @rule(failure=st.booleans())
    def call(self, failure: bool) -> None:
        """A whole call: take a permit and, if one was given, report its result at once."""
        if isinstance(self._acquire(), Permit):
            self._record(len(self.permits) - 1, failure)

    @rule()
    def fail_until_open(self) -> None:
        """A run of failing calls: enough to trip a closed circuit (and wait out the timeout)."""
        for _ in range(self.config.failure_threshold):
            self.call(failure=True)
        self.advance(RESET_TIMEOUT)

    @rule(action=st.sampled_from(["force_open", "force_close", "reset"]))
    def control(self, action: str) -> None:
        getattr(self.circuit, action)()
        if action == "reset":
            self.resets += 1
            self.forced = None
            assert self.circuit.state == "closed"
        else:
            self.forced = "open" if action == "force_open" else "closed"
        self._sync_epoch()

    @invariant()
    def state_is_known(self) -> None:
        assert self.circuit.state in ("closed", "open", "half_open")

    @invariant()
    def open_until_the_reset_timeout(self) -> None:
        if self.forced is None and self.opened_at is not None:
            waited = self.clock.monotonic() - self.opened_at
            assert self.circuit.state == ("open" if waited < RESET_TIMEOUT else "half_open")

    @invariant()
    def forcing_holds(self) -> None:
        if self.forced is not None:
            assert self.circuit.state == self.forced

    @invariant()
    def trials_are_bounded(self) -> None:
        assert self._live_trials() <= self.config.half_open_max_calls
        by_episode = Counter(epoch for permit, epoch in self.permits if permit.half_open)
        assert all(count <= self.config.half_open_max_calls for count in by_episode.values())

    @invariant()
    def metrics_count_every_call(self) -> None:
        metrics = self.circuit.metrics
        assert metrics.success_count == self.successes
        assert metrics.failure_count == self.failures
        assert metrics.rejected_count == self.rejections


CircuitMachine.TestCase.settings = MODEST
TestCircuit = CircuitMachine.TestCase


# -- the rate limits (policies/ratelimit.py) -----------------------------------------------------

# Powers of two keep every interval and window boundary exact in binary floating point,
# so the checks below compare times with == and < without tolerances.
WINDOWS = [1.0, 2.0, 4.0]
COUNTS = [1, 2, 4, 8]
STEPS = [0.0, 0.125, 0.25, 0.5, 1.0, 3.0, 8.0]


class LimitMachine(RuleBasedStateMachine):
    """One limit, taken at the earliest time it allows, while time moves forward."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.takes: list[float] = []

    @initialize(
        kind=st.sampled_from(["token_bucket", "fixed_window", "sliding_window"]),
        max_requests=st.sampled_from(COUNTS),
        time_window=st.sampled_from(WINDOWS),
        burst_size=st.sampled_from(COUNTS),
    )
    def configure(self, kind: str, max_requests: int, time_window: float, burst_size: int) -> None:
        self.kind = kind
        self.max_requests = max_requests
        self.time_window = time_window
        self.limit: Limit
        if kind == "token_bucket":
            self.limit = TokenBucket(max_requests, time_window, burst_size)
            self.capacity = burst_size
            # A full bucket of burst_size, then one more per time_window / max_requests:
            # in any half-open span of time_window that is burst_size + max_requests - 1.
            self.per_window = burst_size + max_requests - 1
        elif kind == "fixed_window":
            self.limit = FixedWindow(max_requests, time_window)
            self.capacity = max_requests
            # Two adjacent windows can both be full around their shared edge.
            self.per_window = 2 * max_requests
        else:
            self.limit = SlidingWindow(max_requests, time_window)
            self.capacity = max_requests
            self.per_window = max_requests

    @rule()
    def take(self) -> None:
        at = self.limit.available_at(self.now)
        assert at >= self.now
        assert self.limit.available_at(at) == at, "the slot offered is not free at its own time"
        self.limit.take(at)
        self.takes.append(at)

    @rule(count=st.integers(1, 12))
    def take_a_burst(self, count: int) -> None:
        for _ in range(count):
            self.take()

    @rule(seconds=st.sampled_from(STEPS))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @invariant()
    def available_is_never_in_the_past(self) -> None:
        assert self.limit.available_at(self.now) >= self.now
        assert self.limit.reset_at(self.now) >= self.now

    @invariant()
    def remaining_is_within_capacity(self) -> None:
        assert 0 <= self.limit.remaining(self.now) <= self.capacity

    @invariant()
    def no_window_holds_too_many(self) -> None:
        times = sorted(self.takes)
        for first, start in enumerate(times):
            inside = sum(1 for t in times[first:] if t < start + self.time_window)
            assert inside <= self.per_window, (self.kind, start, times)

    @invariant()
    def fixed_windows_hold_at_most_max_requests(self) -> None:
        if self.kind != "fixed_window" or not self.takes:
            return
        origin = min(self.takes)
        windows = Counter((t - origin) // self.time_window for t in self.takes)
        assert max(windows.values()) <= self.max_requests


LimitMachine.TestCase.settings = MODEST
TestLimit = LimitMachine.TestCase
