"""Per-host state is forgotten once idle and fresh; state that still means something is kept."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from buttress.policies._idle import _REVIEWS_PER_CALL, IDLE_AFTER, IdleStates
from buttress.policies.breaker import Circuit, CircuitBreaker, CircuitBreakerConfig, Permit
from buttress.policies.budget import InMemoryRetryBudget
from buttress.policies.ratelimit import Booking, RateLimitConfig, RateLimiter, Refusal
from buttress.stores.breaker import SharedCircuit
from buttress.testing import FakeClock

HOSTS = [f"h{i}.example" for i in range(10_000)]


# -- the mechanism -------------------------------------------------------------------------------


def test_nothing_is_reviewed_before_the_first_state_has_been_idle_long_enough() -> None:
    states: IdleStates[str, int] = IdleStates(lambda value, now: True)
    states.add("a", 0, now=0.0)
    assert not states.due(IDLE_AFTER - 1)
    assert states.tidy(IDLE_AFTER - 1) == []
    assert list(states) == ["a"]


def test_one_call_reviews_a_bounded_number_of_states() -> None:
    reviewed: list[int] = []

    def is_fresh(value: int, now: float) -> bool:
        reviewed.append(value)
        return True

    states: IdleStates[int, int] = IdleStates(is_fresh)
    for key in range(10_000):
        states.add(key, key, now=0.0)
    forgotten = states.tidy(IDLE_AFTER)
    assert len(reviewed) == len(forgotten) == _REVIEWS_PER_CALL
    assert len(states) == 10_000 - _REVIEWS_PER_CALL


def test_a_state_used_lately_or_not_fresh_goes_to_the_back_of_the_line() -> None:
    states: IdleStates[str, int] = IdleStates(lambda value, now: value == 0)
    for key, value in (("used", 0), ("spent", 1), ("idle", 0)):
        states.add(key, value, now=0.0)
    states.get("used", now=30.0)
    assert states.tidy(IDLE_AFTER) == [0]  # only "idle"
    assert list(states) == ["used", "spent"]
    assert not states.due(IDLE_AFTER + 1)  # both were just reviewed
    assert states.tidy(2 * IDLE_AFTER) == [0]  # "used" is idle now; "spent" never fresh
    assert list(states) == ["spent"]


# -- the circuit breaker ---------------------------------------------------------------------------


def call(circuit: Circuit | SharedCircuit, *, failure: bool) -> None:
    assert isinstance(circuit, Circuit)  # no store here: the per-process circuit
    permit = circuit.acquire()
    assert isinstance(permit, Permit)
    circuit.record(permit, failure=failure, duration=0.01)


def breaker(clock: FakeClock) -> CircuitBreaker:
    config = CircuitBreakerConfig(per_host=True, failure_threshold=2, reset_timeout=1000)
    return CircuitBreaker(config, clock=clock)


def drain(touch: Callable[[], object], calls: int = len(HOSTS)) -> None:
    """Go on with one busy host long enough for the idle ones to be reviewed."""
    for _ in range(calls):
        touch()


def test_10000_idle_circuits_are_forgotten_and_the_open_one_is_kept() -> None:
    clock = FakeClock()
    circuits = breaker(clock)
    for host in HOSTS:
        circuit = circuits.for_host(host)
        call(circuit, failure=False)
    opened = circuits.for_host("down.example")
    for _ in range(2):
        call(opened, failure=True)
    spent = circuits.for_host("flaky.example")
    call(spent, failure=True)  # one failure short of opening
    slow = circuits.for_host("slow.example")
    in_flight = slow.acquire()
    assert isinstance(in_flight, Permit)
    assert len(circuits.circuits) == 10_003
    clock.advance(IDLE_AFTER)
    drain(lambda: circuits.for_host("busy.example"))
    kept = {"busy.example", "down.example", "flaky.example", "slow.example"}
    assert set(circuits.circuits) == kept
    assert circuits.for_host("down.example") is opened
    assert opened.state == "open"
    call(spent, failure=True)
    assert spent.state == "open"  # its first failure was remembered
    assert circuits.metrics.success_count == 10_000  # forgotten circuits still count
    assert circuits.for_host("slow.example") is slow
    slow.record(in_flight, failure=False, duration=0.01)
    assert slow.metrics.success_count == 1


def test_a_forced_open_circuit_is_kept_and_forced_closed_ones_come_back_forced() -> None:
    clock = FakeClock()
    circuits = breaker(clock)
    circuits.for_host("a.example").force_open()
    circuits.force_close()
    circuits.for_host("b.example")
    clock.advance(IDLE_AFTER)
    drain(lambda: circuits.for_host("busy.example"), calls=10)
    assert "b.example" not in circuits.circuits
    assert circuits.for_host("b.example").state == "closed"
    circuits.reset()
    circuits.for_host("a.example").force_open()
    clock.advance(IDLE_AFTER)
    drain(lambda: circuits.for_host("busy.example"), calls=10)
    assert circuits.for_host("a.example").state == "open"


# -- the rate limiter ------------------------------------------------------------------------------


def request(host: str, path: str = "/") -> httpx.Request:
    return httpx.Request("GET", f"https://{host}{path}")


def test_10000_whole_budgets_are_forgotten_and_spent_or_paused_ones_kept() -> None:
    clock = FakeClock()
    window = IDLE_AFTER * 100  # one request's share of the budget comes back in 10 idle periods
    limiter = RateLimiter(
        RateLimitConfig(max_requests=10, time_window=window, scope="host"), clock=clock
    )
    policy = limiter._policy
    for host in HOSTS:
        assert limiter.book(request(host), wait=False) == Booking(0.0, queued=False)
    assert len(policy._budgets) == 10_000
    clock.advance(window)  # every budget whole again
    assert limiter.book(request("spent.example"), wait=False) == Booking(0.0, queued=False)
    said = {"Retry-After": "900", "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0"}
    limiter.observe(request("paused.example"), httpx.Response(429, headers=said))
    assert len(policy._hosts) == 1
    clock.advance(IDLE_AFTER)
    drain(lambda: limiter.book(request("busy.example"), wait=False))  # refused after 10: fine
    assert set(policy._budgets) == {("main", "spent.example"), ("main", "busy.example")}
    assert limiter.status("spent.example").remaining == 9
    paused = limiter.book(request("paused.example"), wait=False)
    assert paused == Refusal(300.0 - IDLE_AFTER, "the server asked to wait")
    assert limiter.status().servers["paused.example"].limit == 5


def test_a_host_with_callers_in_line_keeps_its_budget() -> None:
    clock = FakeClock()
    config = RateLimitConfig(max_requests=1, time_window=1.0, scope="host")
    limiter = RateLimiter(config, clock=clock)
    assert limiter.book(request("a.example"), wait=True) == Booking(0.0, queued=False)
    queued = limiter.book(request("a.example"), wait=True)
    assert isinstance(queued, Booking)
    assert queued.queued
    clock.advance(IDLE_AFTER * 3)  # the caller slept far past its slot, and its budget is whole
    for index in range(_REVIEWS_PER_CALL * 4):
        limiter.book(request(f"other{index}.example"), wait=False)
    assert ("main", "a.example") in limiter._policy._budgets
    assert limiter.admit(request("a.example"), queued) == 0.0
    limiter.done_waiting(queued)


# -- the retry budget ------------------------------------------------------------------------------


def test_10000_full_retry_budgets_are_forgotten_and_a_spent_one_kept() -> None:
    budget = InMemoryRetryBudget(ratio=0.0, min_per_second=0.1, window=IDLE_AFTER * 2)
    for host in HOSTS:
        budget.record_request(host, now=0.0)
    assert budget.try_withdraw("spent.example", now=IDLE_AFTER * 2)
    now = IDLE_AFTER * 3
    for _ in range(len(HOSTS)):
        budget.record_request("busy.example", now=now)
    assert set(budget._windows) == {"spent.example", "busy.example"}
    allowed = int(0.1 * IDLE_AFTER * 2)
    granted = sum(budget.try_withdraw("spent.example", now=now) for _ in range(allowed))
    assert granted == allowed - 1  # the retry taken before is still counted


@pytest.mark.parametrize("hosts", [10, 10_000])
def test_a_lookup_reviews_at_most_a_few_states_however_many_hosts(hosts: int) -> None:
    reviews: list[str] = []

    def is_fresh(value: str, now: float) -> bool:
        reviews.append(value)
        return False

    states: IdleStates[str, str] = IdleStates(is_fresh)
    for host in HOSTS[:hosts]:
        states.add(host, host, now=0.0)
    for second in range(1, 3 * int(IDLE_AFTER)):
        before = len(reviews)
        states.get("h0.example", now=float(second))
        if states.due(float(second)):
            states.tidy(float(second))
        assert len(reviews) - before <= _REVIEWS_PER_CALL
    assert len(states) == hosts  # none was fresh: all kept
