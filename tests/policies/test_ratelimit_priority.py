"""The rate limiter's queue by priority: higher first, first come first served within a level,
with ageing. Driven by hand and by the discrete-event simulation of the late wake-up tests."""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.policies.limits import Limit, Strategy, make_limit
from buttress.policies.priority import AGEING, Priority, level
from buttress.policies.ratelimit import Booking, RateLimitPolicy, Rule

from ..reliability.test_late_wakeups import simulate
from ..reliability.test_stateful import MODEST


def one_per_second() -> RateLimitPolicy:
    """One request a second, no burst; the first slot (t=0) already taken."""
    policy = RateLimitPolicy("token_bucket", 1, 1.0, burst_size=1)
    assert policy.book("GET", "api", "/", 0.0) == Booking(0.0, queued=False)
    return policy


def book(policy: RateLimitPolicy, now: float, priority: Priority | None = None) -> Booking:
    booking = policy.book("GET", "api", "/", now, priority=priority)
    assert isinstance(booking, Booking)
    assert booking.queued
    return booking


def test_a_higher_priority_goes_ahead_and_those_it_passes_move_one_slot_later() -> None:
    policy = one_per_second()
    first, second = book(policy, 0.0, "low"), book(policy, 0.0, "low")
    assert (first.delay, second.delay) == (1.0, 2.0)
    high = book(policy, 0.5, "high")
    assert high.delay == 0.5  # the first low's slot, at t=1
    # The first low and high wake together at t=1: the low sleeps on until its new slot.
    assert policy.admit("GET", "api", "/", 1.0, first) == 1.0
    assert policy.admit("GET", "api", "/", 1.0, high) == 0.0
    policy.done_waiting(high)
    assert policy.admit("GET", "api", "/", 2.0, second) == 1.0  # moved from t=2 to t=3
    assert policy.admit("GET", "api", "/", 2.0, first) == 0.0
    policy.done_waiting(first)
    assert policy.admit("GET", "api", "/", 3.0, second) == 0.0
    policy.done_waiting(second)
    assert policy.waiting == 0


def test_the_same_level_is_first_come_first_served() -> None:
    policy = one_per_second()
    delays = [book(policy, 0.0, priority).delay for priority in ("low", "low", 3, 3, 3)]
    assert delays == [1.0, 2.0, 1.0, 2.0, 3.0]  # the 3s pass both lows, in their order


def test_a_caller_that_leaves_takes_the_slot_it_held_and_the_rest_keep_theirs() -> None:
    policy = one_per_second()
    low = book(policy, 0.0, "low")  # t=1
    high = book(policy, 0.0, "high")  # takes t=1; the low moves to t=2
    last = book(policy, 0.0, "low")  # t=3
    policy.done_waiting(last)  # the newest slot: given back at once
    policy.done_waiting(high)  # t=1 goes with it; the low keeps t=2
    assert policy.admit("GET", "api", "/", 1.0, low) == 1.0
    assert policy.admit("GET", "api", "/", 2.0, low) == 0.0
    policy.done_waiting(low)
    assert book(policy, 2.0).delay == 1.0  # t=3 is free again


def test_ageing_a_low_caller_that_waited_long_enough_is_not_passed() -> None:
    policy = one_per_second()
    lows = [book(policy, 0.0, "low") for _ in range(30)]  # slots at 1..30 s
    for now, low in enumerate(lows[:19], start=1):  # the first 19 go on time
        assert policy.admit("GET", "api", "/", float(now), low) == 0.0
        policy.done_waiting(low)
    # A waiter gains a level every AGEING seconds: "high" passes "low" only if it comes
    # less than 2 * AGEING seconds after it. The lows came at t=0.
    just_in_time = book(policy, 2 * AGEING - 0.5, "high")
    too_late = book(policy, 2 * AGEING + 0.5, "high")
    assert just_in_time.delay == 0.5  # at t=20, ahead of every low left
    assert too_late.delay == 32.0 - (2 * AGEING + 0.5)  # behind all of them


def test_lines_are_per_set_of_limits() -> None:
    # Per-host budgets: a high-priority request to one host never takes another's slot.
    policy = RateLimitPolicy("token_bucket", 1, 1.0, burst_size=1, scope="host")
    for host in ("a", "b"):
        policy.book("GET", host, "/", 0.0)
    low = policy.book("GET", "a", "/", 0.0, priority="low")
    high = policy.book("GET", "b", "/", 0.0, priority="high")
    assert isinstance(low, Booking)
    assert isinstance(high, Booking)
    assert (low.delay, high.delay) == (1.0, 1.0)


def expected_order(arrivals: Sequence[tuple[float, Priority | None]], interval: float) -> list[int]:
    """Who a server of one request per ``interval`` serves, in turn: an independent model.

    At each send the waiting caller with the highest level, counting one level more per
    AGEING seconds waited, goes; among equals, the first to arrive.
    """
    order: list[int] = []
    waiting: list[int] = []
    arrived, now = 0, float("-inf")  # now: when the next request may go
    while len(order) < len(arrivals):
        if not waiting:
            now = max(now, arrivals[arrived][0])
        while arrived < len(arrivals) and arrivals[arrived][0] <= now:
            waiting.append(arrived)
            arrived += 1
        urgency = [
            (level(arrivals[caller][1]) + (now - arrivals[caller][0]) / AGEING, -caller)
            for caller in waiting
        ]
        best = -max(urgency)[1]
        waiting.remove(best)
        order.append(best)
        now += interval
    return order


def test_a_thousand_callers_go_by_priority_then_arrival_with_ageing() -> None:
    rng = random.Random(23)
    # Arrivals every 0.1 s on average for ~100 s, served one a second: the line grows to
    # ~900, and waits (up to ~1,000 s) reach far past the ageing of every level.
    moments = sorted(rng.uniform(0.0, 100.0) for _ in range(1000))
    priorities: list[Priority] = [rng.choice(["high", "normal", "low", -4, 5]) for _ in moments]
    policy = RateLimitPolicy("token_bucket", 1, 1.0, burst_size=1)
    run = simulate(policy, moments, max_lag=0.0, priorities=priorities)
    assert run.senders == expected_order(list(zip(moments, priorities, strict=True)), 1.0)
    assert policy.waiting == 0
    # Reordering the line loses no slot: one request a second from the first on.
    assert run.sends == [pytest.approx(moments[0] + n) for n in range(1000)]
    lows = [c for c, p in enumerate(priorities) if p == -4]
    highs = [c for c, p in enumerate(priorities) if p == 5]
    # Ageing bounds the overtaking: no caller is passed by a level-5 caller that arrived
    # more than (5 - its level) * AGEING seconds after it.
    position = {caller: n for n, caller in enumerate(run.senders)}
    for low in lows:
        for high in highs:
            if moments[high] - moments[low] > (5 + 4) * AGEING:
                assert position[low] < position[high]


def test_without_priorities_the_queue_is_first_come_first_served() -> None:
    moments = sorted(random.Random(5).uniform(0.0, 50.0) for _ in range(300))
    policy = RateLimitPolicy("token_bucket", 1, 1.0, burst_size=1)
    run = simulate(policy, moments, max_lag=0.0)
    assert run.senders == list(range(300))
    assert not run.refusals  # woken on time, nobody is told to sleep on


Caller = tuple[float, str, str, str, "Priority | None", "float | None"]


@given(
    strategy=st.sampled_from(["token_bucket", "fixed_window", "sliding_window"]),
    max_requests=st.sampled_from([1, 2, 4]),
    scope=st.sampled_from(["global", "host"]),
    callers=st.lists(
        st.tuples(
            st.floats(0.0, 20.0),
            st.sampled_from(["GET", "POST"]),
            st.sampled_from(["a", "b"]),
            st.sampled_from(["/", "/write", "/slow"]),
            st.sampled_from(["high", "low", None, 7, -7]),
            st.none() | st.floats(0.0, 5.0),  # gives up this long after coming, if waiting
        ),
        min_size=1,
        max_size=60,
    ),
    lag=st.sampled_from([0.0, 0.2, 1.0]),
    seed=st.integers(0, 2**16),
)
@MODEST
def test_priorities_keep_every_limit_across_hosts_and_endpoint_rules(
    strategy: Strategy,
    max_requests: int,
    scope: Literal["global", "host"],
    callers: list[Caller],
    lag: float,
    seed: int,
) -> None:
    rules = (
        Rule("POST", "/write", "token_bucket", 1, 1.0, None),
        Rule("*", "/slow", "sliding_window", 2, 3.0, None),
    )
    policy = RateLimitPolicy(strategy, max_requests, 1.0, scope=scope, rules=rules)
    callers.sort(key=lambda caller: caller[0])
    rng = random.Random(seed)
    # (moment, rank, order, caller, booking or "leave"): at one moment wake-ups go first
    events: list[tuple[float, int, int, int, Booking | str | None]] = []
    for n, (moment, *_, gives_up) in enumerate(callers):
        events.append((moment, 1, n, n, None))
        if gives_up is not None:
            events.append((moment + gives_up, 1, len(callers) + n, n, "leave"))
    heapq.heapify(events)
    order = 2 * len(callers)
    waiting: dict[int, Booking] = {}
    sends: list[tuple[float, int]] = []
    gone: set[int] = set()
    while events:
        now, _, _, n, event = heapq.heappop(events)
        _, method, host, path, priority, _ = callers[n]
        if event == "leave":
            if n in waiting:
                policy.done_waiting(waiting.pop(n))
                gone.add(n)
            continue
        if n in gone:
            continue
        if event is None:
            booking = policy.book(method, host, path, now, priority=priority)
            assert isinstance(booking, Booking)
            wait = booking.delay
            if not booking.queued:
                sends.append((now, n))
                continue
            waiting[n] = booking
        else:
            assert isinstance(event, Booking)
            wait = policy.admit(method, host, path, now, event)
            if not wait:
                policy.done_waiting(waiting.pop(n))
                sends.append((now, n))
                continue
        order += 1
        heapq.heappush(
            events, (now + max(wait, 0.0) + rng.uniform(0, lag), 0, order, n, waiting[n])
        )
    assert sorted([*(n for _, n in sends), *gone]) == list(range(len(callers)))
    assert policy.waiting == 0
    assert not policy._lines  # an empty line is dropped: per-host lines do not pile up
    # Every limit, replayed over the moments its requests really went, holds.
    replays: dict[tuple[object, ...], Limit] = {}
    for moment, n in sorted(sends):
        _, method, host, path, _, _ = callers[n]
        where = host if scope == "host" else ""
        matched: list[tuple[tuple[object, ...], Rule]] = [
            (("main", where), Rule("*", "*", strategy, max_requests, 1.0, None))
        ]
        matched += [
            ((i, where), rule) for i, rule in enumerate(rules) if rule.matches(method, path)
        ]
        for key, rule in matched:
            replay = replays.setdefault(
                key, make_limit(rule.strategy, rule.max_requests, rule.time_window, rule.burst_size)
            )
            assert replay.available_at(moment) <= moment + 1e-9, (key, moment)
            replay.take(moment)
