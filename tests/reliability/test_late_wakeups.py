"""Callers sharing one rate limit whose wake-ups come late, as on a busy event loop.

A discrete-event simulation drives :class:`RateLimitPolicy` the way the rate-limit
layer does (book, sleep, ask to be admitted, sleep again if refused) while every
sleep overshoots by a random lag and the scheduler sometimes stalls outright. The
moments requests are really sent must keep the limit, every caller must get
through, and refused callers must not stampede. Some callers give up while they
wait (cancelled, timed out): those who stay keep their order, and what the
leavers booked is given back.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.policies.limits import Strategy, make_limit
from buttress.policies.priority import Priority
from buttress.policies.ratelimit import Booking, RateLimitPolicy

from .test_stateful import COUNTS, MODEST, WINDOWS


@dataclass
class Run:
    """What a simulation did: when requests really went, how often each caller was refused."""

    sends: list[float] = field(default_factory=list)
    refusals: Counter[int] = field(default_factory=Counter)
    senders: list[int] = field(default_factory=list)  # who sent, in the order they did
    left: set[int] = field(default_factory=set)  # who gave up waiting


LEAVE = "leave"


def simulate(
    policy: RateLimitPolicy,
    arrivals: list[float],
    *,
    max_lag: float,
    stalls: tuple[tuple[float, float], ...] = (),
    seed: int = 0,
    leave_at: dict[int, float] | None = None,
    priorities: list[Priority] | None = None,
) -> Run:
    """Callers arrive at ``arrivals``; every wake-up is late by up to ``max_lag``.

    During a stall ``(start, end)`` nothing wakes before ``end``, as when an event
    loop is busy: then every sleeper due meanwhile wakes at once. Caller ``c``
    gives up at ``leave_at[c]`` if it is still waiting then, and books with
    ``priorities[c]`` when given.
    """
    rng = random.Random(seed)
    run = Run()
    # (moment, rank, order, caller, event): at one moment a sleeper whose wake-up is due
    # runs first (rank 0), as an event loop fires a timer set earlier before it serves a
    # newcomer; arrivals and leavers (rank 1) then go in the order given.
    queue: list[tuple[float, int, int, int, Booking | str | None]] = [
        (at, 1, caller, caller, None) for caller, at in enumerate(arrivals)
    ]
    order = len(queue)
    waiting: dict[int, Booking] = {}
    for caller, at in (leave_at or {}).items():
        order += 1
        queue.append((at, 1, order, caller, LEAVE))
    heapq.heapify(queue)

    def woken(due: float) -> float:
        moment = due + rng.uniform(0.0, max_lag)
        for start, end in stalls:
            if start <= moment < end:
                moment = end
        return moment

    while queue:
        now, _, _, caller, event = heapq.heappop(queue)
        if event == LEAVE:
            if caller in waiting:
                policy.done_waiting(waiting.pop(caller))
                run.left.add(caller)
            continue
        if caller in run.left:  # the sleep of a caller that has gone
            continue
        if event is None:  # arriving: book a slot
            priority = None if priorities is None else priorities[caller]
            outcome = policy.book("GET", "api", "/", now, priority=priority)
            assert isinstance(outcome, Booking)
            booking, wait = outcome, outcome.delay
            if not booking.queued:
                run.sends.append(now)
                run.senders.append(caller)
                continue
            waiting[caller] = booking
        else:  # waking: ask to go
            assert isinstance(event, Booking)
            booking = event
            wait = policy.admit("GET", "api", "/", now, booking)
            if not wait:
                policy.done_waiting(waiting.pop(caller))
                run.sends.append(now)
                run.senders.append(caller)
                continue
            run.refusals[caller] += 1
        order += 1
        heapq.heappush(queue, (woken(now + wait), 0, order, caller, booking))
    return run


def assert_sends_keep(
    strategy: Strategy, max_requests: int, time_window: float, burst_size: int, sends: list[float]
) -> None:
    """The real send times, replayed on a fresh limit, each fit; no window holds too many."""
    replay = make_limit(strategy, max_requests, time_window, burst_size)
    for moment in sends:
        assert replay.available_at(moment) <= moment, (strategy, moment, sends)
        replay.take(moment)
    # Independent of the limit classes: the most any half-open span of time_window allows.
    if strategy == "sliding_window":
        for first in range(len(sends) - max_requests):
            assert sends[first + max_requests] >= sends[first] + time_window
    elif strategy == "token_bucket":
        most = burst_size + max_requests - 1
        for first in range(len(sends) - most):
            assert sends[first + most] >= sends[first] + time_window


@given(
    strategy=st.sampled_from(["token_bucket", "fixed_window", "sliding_window"]),
    max_requests=st.sampled_from(COUNTS),
    time_window=st.sampled_from(WINDOWS),
    burst_size=st.sampled_from(COUNTS),
    arrivals=st.lists(st.sampled_from([0.0, 0.125, 0.5, 1.0, 3.0]), min_size=1, max_size=60),
    lag=st.sampled_from([0.0, 0.001, 0.05, 0.5, 2.0]),
    stall=st.sampled_from([0.0, 0.25, 1.0, 5.0]),
    seed=st.integers(0, 2**16),
)
@MODEST
def test_requests_woken_late_never_exceed_the_limit(
    strategy: Strategy,
    max_requests: int,
    time_window: float,
    burst_size: int,
    arrivals: list[float],
    lag: float,
    stall: float,
    seed: int,
) -> None:
    policy = RateLimitPolicy(strategy, max_requests, time_window, burst_size)
    if strategy != "token_bucket":
        policy = RateLimitPolicy(strategy, max_requests, time_window)
    moments = sorted(arrivals)
    run = simulate(policy, moments, max_lag=lag, stalls=((0.5, 0.5 + stall),), seed=seed)
    assert len(run.sends) == len(arrivals)  # everyone got through
    assert policy.waiting == 0
    assert_sends_keep(strategy, max_requests, time_window, burst_size, sorted(run.sends))


def test_sleepers_woken_late_together_do_not_go_out_in_a_bunch() -> None:
    # Regression: three sleepers due at 1 s and 2 s and 3 s, all woken at once at 3.5 s by a
    # stalled event loop, used to go out together - three requests in an instant under
    # a limit of one per second.
    policy = RateLimitPolicy("token_bucket", 1, 1.0, burst_size=1)
    first = policy.book("GET", "api", "/", 0.0)
    bookings = [policy.book("GET", "api", "/", 0.0) for _ in range(3)]
    assert first == Booking(0.0, queued=False)
    assert [b.delay for b in bookings if isinstance(b, Booking)] == [1.0, 2.0, 3.0]
    queued = [b for b in bookings if isinstance(b, Booking)]
    waits = [policy.admit("GET", "api", "/", 3.5, booking) for booking in queued]
    assert waits[0] == 0.0  # the first goes
    assert waits[1] >= 1.0  # the others keep their order, a second apart
    assert waits[2] >= waits[1] + 1.0
    assert policy.admit("GET", "api", "/", 3.5 + waits[1], queued[1]) == 0.0


def test_refused_callers_wait_their_turn_instead_of_stampeding() -> None:
    # 2,000 callers flood a strict pace of 100 per second on a loop whose wake-ups lag by
    # up to a millisecond and which stalls twice. Callers refused together are spread out
    # along the schedule rather than all retrying at the first free moment (which cost
    # 16 retries per request and one caller 132 before this was fixed).
    policy = RateLimitPolicy("token_bucket", 100, 1.0, burst_size=1)
    run = simulate(policy, [0.0] * 2000, max_lag=0.001, stalls=((1.0, 1.05), (5.0, 5.03)))
    assert len(run.sends) == 2000
    assert_sends_keep("token_bucket", 100, 1.0, 1, sorted(run.sends))
    assert sum(run.refusals.values()) / 2000 < 4
    assert max(run.refusals.values()) < 20


def test_a_burst_allowance_lets_late_requests_catch_up() -> None:
    # With burst_size=1 every late wake-up delays all later sends; a burst of two lets a
    # late request's successor go on time, so a lagging loop still gets the full rate.
    policy = RateLimitPolicy("token_bucket", 100, 1.0, burst_size=2)
    run = simulate(policy, [0.0] * 2000, max_lag=0.001)
    sends = sorted(run.sends)
    assert_sends_keep("token_bucket", 100, 1.0, 2, sends)
    rate = (len(sends) - 1) / (sends[-1] - sends[0])
    assert rate > 98


def test_callers_that_wake_on_time_are_never_refused() -> None:
    for strategy in ("token_bucket", "fixed_window", "sliding_window"):
        policy = RateLimitPolicy(strategy, 10, 1.0)
        run = simulate(policy, [0.0] * 100, max_lag=0.0)
        assert not run.refusals, strategy
        assert max(run.sends) == pytest.approx(9.0)  # ten per second, on schedule


@given(
    strategy=st.sampled_from(["token_bucket", "fixed_window", "sliding_window"]),
    max_requests=st.sampled_from(COUNTS),
    time_window=st.sampled_from(WINDOWS),
    arrivals=st.lists(st.sampled_from([0.0, 0.125, 0.5, 1.0, 3.0]), min_size=1, max_size=40),
    leavers=st.dictionaries(st.integers(0, 39), st.sampled_from([0.0, 0.25, 1.0, 2.5, 6.0])),
    lag=st.sampled_from([0.0, 0.05, 0.5]),
    seed=st.integers(0, 2**16),
)
@MODEST
def test_callers_who_leave_free_their_slots_and_the_rest_keep_their_order(
    strategy: Strategy,
    max_requests: int,
    time_window: float,
    arrivals: list[float],
    leavers: dict[int, float],
    lag: float,
    seed: int,
) -> None:
    policy = RateLimitPolicy(strategy, max_requests, time_window)
    moments = sorted(arrivals)
    leave_at = {c: moments[c] + after for c, after in leavers.items() if c < len(moments)}
    run = simulate(policy, moments, max_lag=lag, leave_at=leave_at, seed=seed)
    assert sorted(run.senders + sorted(run.left)) == list(range(len(moments)))
    assert policy.waiting == 0
    assert_sends_keep(strategy, max_requests, time_window, max_requests, sorted(run.sends))
    if lag == 0.0:  # woken on time, those who stayed went in the order they came
        assert run.senders == sorted(run.senders)
    # Nothing is kept for callers who have gone: once all are done, the next one waits
    # a window at most (not behind every slot the leavers had booked).
    end = max([*run.sends, *leave_at.values()])
    booked = policy.book("GET", "api", "/", end)
    assert isinstance(booked, Booking)
    assert booked.delay <= time_window + 1e-9  # float sums: 1.0000000000000002 is a window


@given(
    strategy=st.sampled_from(["token_bucket", "fixed_window", "sliding_window"]),
    max_requests=st.sampled_from(COUNTS),
    time_window=st.sampled_from(WINDOWS),
    callers=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.125, 0.5, 1.0, 3.0, 30.0]),
            st.sampled_from(["high", "normal", "low", None, 10, -10]),
        ),
        min_size=1,
        max_size=40,
    ),
    leavers=st.dictionaries(st.integers(0, 39), st.sampled_from([0.0, 0.25, 1.0, 2.5, 6.0])),
    lag=st.sampled_from([0.0, 0.05, 0.5]),
    stall=st.sampled_from([0.0, 1.0]),
    seed=st.integers(0, 2**16),
)
@MODEST
def test_priorities_reorder_the_queue_but_never_exceed_the_limit(
    strategy: Strategy,
    max_requests: int,
    time_window: float,
    callers: list[tuple[float, Priority]],
    leavers: dict[int, float],
    lag: float,
    stall: float,
    seed: int,
) -> None:
    policy = RateLimitPolicy(strategy, max_requests, time_window)
    callers.sort(key=lambda caller: caller[0])
    moments = [moment for moment, _ in callers]
    leave_at = {c: moments[c] + after for c, after in leavers.items() if c < len(moments)}
    run = simulate(
        policy,
        moments,
        max_lag=lag,
        stalls=((0.5, 0.5 + stall),),
        seed=seed,
        leave_at=leave_at,
        priorities=[priority for _, priority in callers],
    )
    assert sorted(run.senders + sorted(run.left)) == list(range(len(moments)))
    assert policy.waiting == 0
    assert_sends_keep(strategy, max_requests, time_window, max_requests, sorted(run.sends))
    # Nothing is kept for callers who have gone: the next one waits a window at most.
    end = max([*run.sends, *leave_at.values(), 0.5 + stall])
    booked = policy.book("GET", "api", "/", end)
    assert isinstance(booked, Booking)
    assert booked.delay <= time_window + 1e-9


@pytest.mark.parametrize("strategy", ["token_bucket", "fixed_window", "sliding_window"])
@pytest.mark.parametrize("leaving", ["first booked first", "last booked first", "shuffled"])
def test_when_every_waiter_leaves_the_next_caller_waits_as_if_they_never_came(
    strategy: Strategy, leaving: str
) -> None:
    # Regression: 500 callers at 20/s that all timed out left their slots booked, and
    # the next request waited ~24 s.
    policy, alone = RateLimitPolicy(strategy, 20, 1.0), RateLimitPolicy(strategy, 20, 1.0)
    for each in (policy, alone):
        for _ in range(20):
            assert each.book("GET", "api", "/", 0.0) == Booking(0.0, queued=False)
    bookings = [policy.book("GET", "api", "/", 0.0) for _ in range(480)]
    if leaving == "last booked first":
        bookings.reverse()
    elif leaving == "shuffled":
        random.Random(7).shuffle(bookings)
    for booking in bookings:
        assert isinstance(booking, Booking)
        assert booking.queued
        policy.done_waiting(booking)
    assert policy.waiting == 0
    assert policy.book("GET", "api", "/", 0.5) == alone.book("GET", "api", "/", 0.5)
