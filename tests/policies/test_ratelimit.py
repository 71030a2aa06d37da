"""The pure rate-limit bookkeeping, driven by hand with explicit times."""

from __future__ import annotations

import httpx
import pytest

from buttress.policies.limits import FixedWindow, Limit, SlidingWindow, TokenBucket
from buttress.policies.ratelimit import (
    Booking,
    Hold,
    RateLimitConfig,
    RateLimiter,
    RateLimitPolicy,
    Refusal,
    Rule,
)
from buttress.testing import FakeClock


def book_all(limit: Limit, times: list[float]) -> list[float]:
    """Book one slot at each arrival time; return the slot each got."""
    slots = []
    for now in times:
        at = limit.available_at(now)
        limit.take(at)
        slots.append(at)
    return slots


# --- token bucket ---------------------------------------------------------------------------


def test_token_bucket_paces_evenly_with_burst_one() -> None:
    bucket = TokenBucket(max_requests=4, time_window=1.0, burst_size=1)
    assert book_all(bucket, [0.0] * 5) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_token_bucket_allows_a_burst_then_the_steady_rate() -> None:
    bucket = TokenBucket(max_requests=2, time_window=1.0, burst_size=3)
    assert book_all(bucket, [0.0] * 5) == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_token_bucket_refills_while_idle_but_never_past_the_burst() -> None:
    bucket = TokenBucket(max_requests=1, time_window=1.0, burst_size=2)
    book_all(bucket, [0.0, 0.0])
    assert bucket.remaining(0.0) == 0
    assert bucket.remaining(1.0) == 1
    assert bucket.remaining(100.0) == 2
    assert book_all(bucket, [100.0] * 3) == [100.0, 100.0, 101.0]


def test_token_bucket_reports_its_reset() -> None:
    bucket = TokenBucket(max_requests=10, time_window=1.0, burst_size=10)
    assert bucket.reset_at(5.0) == 5.0
    book_all(bucket, [5.0] * 3)
    assert bucket.reset_at(5.0) == pytest.approx(5.3)
    assert bucket.remaining(5.0) == 7


# --- fixed window ---------------------------------------------------------------------------


def test_fixed_window_fills_each_window_then_moves_to_the_next() -> None:
    window = FixedWindow(max_requests=2, time_window=10.0)
    assert book_all(window, [0.0] * 5) == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_fixed_window_windows_are_aligned_to_the_first_request() -> None:
    window = FixedWindow(max_requests=1, time_window=10.0)
    assert book_all(window, [3.0, 4.0, 27.0, 28.0]) == [3.0, 13.0, 27.0, 33.0]
    assert window.remaining(28.0) == 0  # the slot at 33 is promised
    assert window.remaining(43.0) == 1
    assert window.reset_at(43.0) == 43.0


def test_fixed_window_allows_a_double_burst_at_a_boundary() -> None:
    # The known weakness of fixed windows, kept on purpose: it is what the strategy means.
    window = FixedWindow(max_requests=2, time_window=10.0)
    assert book_all(window, [9.0, 9.5, 10.0, 19.1, 19.2]) == [9.0, 9.5, 19.0, 19.1, 29.0]


# --- sliding window -------------------------------------------------------------------------


def test_sliding_window_holds_in_any_span() -> None:
    window = SlidingWindow(max_requests=2, time_window=10.0)
    assert book_all(window, [9.0, 9.5, 10.0, 19.1]) == [9.0, 9.5, 19.0, 19.5]


def test_sliding_window_remaining_and_reset() -> None:
    window = SlidingWindow(max_requests=3, time_window=10.0)
    assert window.reset_at(0.0) == 0.0
    book_all(window, [0.0, 1.0])
    assert window.remaining(2.0) == 1
    assert window.remaining(10.5) == 2
    assert window.reset_at(2.0) == 11.0


# --- the combined policy --------------------------------------------------------------------


def policy(**kwargs: object) -> RateLimitPolicy:
    defaults: dict[str, object] = {"max_requests": 1, "time_window": 1.0, "burst_size": 1}
    return RateLimitPolicy(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_global_scope_shares_one_budget_between_hosts() -> None:
    limits = policy(scope="global")
    assert limits.book("GET", "a", "/", 0.0) == Booking(0.0, queued=False)
    assert limits.book("GET", "b", "/", 0.0) == Booking(1.0, queued=True)


def test_host_scope_gives_each_host_its_own_budget() -> None:
    limits = policy(scope="host")
    assert limits.book("GET", "a", "/", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "b", "/", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "a", "/", 0.0).delay == 1.0  # type: ignore[union-attr]


def test_endpoint_rules_combine_with_the_main_limit() -> None:
    slow_posts = Rule("POST", "/users*", "fixed_window", 1, 10.0, None)
    limits = policy(max_requests=100, burst_size=100, rules=(slow_posts,))
    assert limits.book("POST", "a", "/users", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "a", "/users", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("POST", "a", "/orders", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("POST", "a", "/users/7", 0.0).delay == 10.0  # type: ignore[union-attr]


def test_a_request_delayed_by_one_limit_holds_its_place_in_the_others() -> None:
    # No limit may be exceeded, so the main bucket is charged at the delayed request's slot;
    # requests booked after it may wait behind it, never past it.
    slow_posts = Rule("POST", "/users*", "fixed_window", 1, 10.0, None)
    limits = policy(max_requests=100, burst_size=100, rules=(slow_posts,))
    limits.book("POST", "a", "/users", 0.0)
    assert limits.book("POST", "a", "/users", 0.0).delay == 10.0  # type: ignore[union-attr]
    later = limits.book("GET", "a", "/orders", 0.0)
    assert isinstance(later, Booking)
    assert 0.0 < later.delay <= 10.0


def test_endpoint_rules_alone_limit_only_what_they_match() -> None:
    rule = Rule("*", "/search", "sliding_window", 1, 5.0, None)
    limits = RateLimitPolicy(rules=(rule,))
    assert limits.book("GET", "a", "/search", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "a", "/search", 0.0).delay == 5.0  # type: ignore[union-attr]
    assert limits.book("GET", "a", "/other", 0.0).delay == 0.0  # type: ignore[union-attr]


def test_endpoint_rules_are_per_host_with_host_scope() -> None:
    rule = Rule("GET", "/x", "token_bucket", 1, 1.0, 1)
    limits = RateLimitPolicy(rules=(rule,), scope="host")
    assert limits.book("GET", "a", "/x", 0.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "b", "/x", 0.0).delay == 0.0  # type: ignore[union-attr]


def test_refusals_book_nothing() -> None:
    limits = policy(queue_timeout=0.5)
    limits.book("GET", "a", "/", 0.0)
    refusal = limits.book("GET", "a", "/", 0.0)
    assert isinstance(refusal, Refusal)
    assert refusal.retry_after == 1.0
    assert "queue_timeout" in refusal.reason
    assert limits.book("GET", "a", "/", 0.0, wait=False) == Refusal(
        1.0, "client-side rate limit reached"
    )
    assert limits.waiting == 0
    assert limits.book("GET", "a", "/", 1.0) == Booking(0.0, queued=False)  # nothing was taken


def test_the_queue_holds_at_most_queue_size_waiters() -> None:
    limits = policy(queue_size=2)
    limits.book("GET", "a", "/", 0.0)
    assert limits.book("GET", "a", "/", 0.0) == Booking(1.0, queued=True)
    assert limits.book("GET", "a", "/", 0.0) == Booking(2.0, queued=True)
    full = limits.book("GET", "a", "/", 0.0)
    assert isinstance(full, Refusal)
    assert "queue is full" in full.reason
    limits.done_waiting()
    assert limits.book("GET", "a", "/", 0.0) == Booking(3.0, queued=True)


def test_bookings_are_first_come_first_served() -> None:
    limits = policy(max_requests=2, time_window=1.0, burst_size=1)
    delays = [limits.book("GET", "a", "/", 0.0).delay for _ in range(4)]  # type: ignore[union-attr]
    assert delays == [0.0, 0.5, 1.0, 1.5]


def test_a_server_with_nothing_remaining_pauses_only_its_host() -> None:
    limits = RateLimitPolicy()
    limits.observe("a", 0.0, limit=10, remaining=0, reset_after=30.0)
    assert limits.book("GET", "a", "/", 5.0).delay == 25.0  # type: ignore[union-attr]
    assert limits.book("GET", "b", "/", 5.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.book("GET", "a", "/", 31.0).delay == 0.0  # type: ignore[union-attr]
    assert limits.server_status() == {"a": (10, 0, 30.0, None)}


def test_retry_after_pauses_the_host() -> None:
    limits = RateLimitPolicy()
    limits.observe("a", 0.0, retry_after=7.0)
    assert limits.book("GET", "a", "/", 0.0).delay == 7.0  # type: ignore[union-attr]
    limits.observe("a", 1.0, remaining=5, limit=10)  # good news does not cancel a pause
    assert limits.book("GET", "a", "/", 2.0).delay == 5.0  # type: ignore[union-attr]


def test_client_status_without_a_main_limit_is_empty() -> None:
    assert RateLimitPolicy().client_status("a", 0.0) == (None, None, None)
    limits = policy(max_requests=5, burst_size=5)
    assert limits.client_status("a", 0.0) == (5, 5, 0.0)
    limits.book("GET", "a", "/", 0.0)
    assert limits.client_status("a", 0.0) == (5, 4, 0.2)


# --- hostile servers, callers who leave, deadlines ------------------------------------------


def test_a_whole_burst_goes_at_once_despite_float_rounding() -> None:
    # 19 intervals of 0.05 s add up to a hair over 0.95 s: the 20th request of a burst
    # of 20 used to wait 2e-16 s, which queued it.
    bucket = TokenBucket(max_requests=20, time_window=1.0, burst_size=20)
    assert book_all(bucket, [0.0] * 21) == [0.0] * 20 + [pytest.approx(0.05)]


@pytest.mark.parametrize(
    "limit",
    [
        TokenBucket(max_requests=2, time_window=1.0, burst_size=2),
        FixedWindow(max_requests=2, time_window=1.0),
        SlidingWindow(max_requests=2, time_window=1.0),
    ],
    ids=["token_bucket", "fixed_window", "sliding_window"],
)
def test_takes_are_undone_newest_first_back_to_the_same_schedule(limit: Limit) -> None:
    book_all(limit, [0.0, 0.0, 0.5])  # the window is full, then one more
    before = [limit.available_at(t) for t in (0.0, 0.7, 1.2, 3.0)]
    undos = []
    for _ in range(3):  # three more queued behind, then all given back
        at = limit.available_at(0.0)
        undos.append(limit.take(at))
    for undo in reversed(undos):
        limit.untake(undo)
    assert [limit.available_at(t) for t in (0.0, 0.7, 1.2, 3.0)] == before


def test_a_waiter_that_leaves_from_the_end_frees_its_slot_at_once() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 1.0, 1)
    policy.book("GET", "api", "/", 0.0)
    _first, second = (policy.book("GET", "api", "/", 0.0) for _ in range(2))
    assert isinstance(second, Booking)
    assert second.delay == 2.0
    policy.done_waiting(second)
    assert policy.waiting == 1
    again = policy.book("GET", "api", "/", 0.0)
    assert isinstance(again, Booking)
    assert again.delay == 2.0  # the slot second gave back, behind first


def test_a_waiter_that_leaves_from_the_middle_leaves_the_others_in_place() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 1.0, 1)
    policy.book("GET", "api", "/", 0.0)
    first, second, third = (policy.book("GET", "api", "/", 0.0) for _ in range(3))
    assert [b.delay for b in (first, second, third) if isinstance(b, Booking)] == [1.0, 2.0, 3.0]
    assert isinstance(second, Booking)
    policy.done_waiting(second)
    newcomer = policy.book("GET", "api", "/", 0.0)
    assert isinstance(newcomer, Booking)
    assert newcomer.delay == 4.0  # nobody jumps the queue into the gap
    assert isinstance(third, Booking)
    policy.done_waiting(newcomer)
    policy.done_waiting(third)  # the last two left: the gap closes with them
    latecomer = policy.book("GET", "api", "/", 0.0)
    assert isinstance(latecomer, Booking)
    assert latecomer.delay == 2.0


def test_an_admitted_request_keeps_its_slot_when_done_waiting() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 1.0, 1)
    policy.book("GET", "api", "/", 0.0)
    queued = policy.book("GET", "api", "/", 0.0)
    assert isinstance(queued, Booking)
    assert policy.admit("GET", "api", "/", 1.0, queued) == 0.0
    policy.done_waiting(queued)
    after = policy.book("GET", "api", "/", 1.0)
    assert isinstance(after, Booking)
    assert after.delay == 1.0


# --- sent later than booked (a pool gate between) -------------------------------------------


def test_a_request_booked_to_be_sent_later_counts_as_sent_only_when_admitted() -> None:
    policy = RateLimitPolicy("sliding_window", 2, 10.0, scope="global")
    held = [policy.book("GET", "api", "/", 0.0, send_now=False) for _ in range(2)]
    assert held == [Booking(0.0, queued=False)] * 2  # booked, then waiting for a connection
    later = policy.book("GET", "api", "/", 10.0, send_now=False)
    assert later == Booking(0.0, queued=False)  # the slots booked at 0 are past: its turn
    assert isinstance(held[0], Booking)
    assert isinstance(held[1], Booking)
    # The held two get their connections at 10 s and leave: they keep the limit...
    assert policy.admit("GET", "api", "/", 10.0, held[0]) == 0.0
    assert policy.admit("GET", "api", "/", 10.0, held[1]) == 0.0
    # ...and the third, sent with them, would not: it waits until the window has room.
    assert isinstance(later, Booking)
    assert policy.admit("GET", "api", "/", 10.0, later) == 10.0
    assert policy.admit("GET", "api", "/", 20.0, later) == 0.0


def test_a_queued_request_leaves_the_line_at_its_turn_and_is_sent_when_admitted() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 1.0, 1)
    first = policy.book("GET", "api", "/", 0.0, send_now=False)
    queued = policy.book("GET", "api", "/", 0.0, send_now=False)
    assert isinstance(first, Booking)
    assert isinstance(queued, Booking)
    assert queued.delay == 1.0
    turn = policy.take_turn("GET", "api", "/", 1.0, queued)
    assert turn == Booking(0.0, queued=False)
    policy.done_waiting(queued)
    assert policy.waiting == 0  # it waits for a connection now, not in the rate-limit queue
    after = policy.book("GET", "api", "/", 1.0, send_now=False)
    assert isinstance(after, Booking)
    assert after.delay == 1.0  # its slot stays booked: the next one comes after it
    # first waited for a connection until 1.5 s: sent then, the limit holds turn back.
    assert policy.admit("GET", "api", "/", 1.5, first) == 0.0
    assert policy.admit("GET", "api", "/", 1.5, turn) == pytest.approx(1.0)
    assert policy.admit("GET", "api", "/", 2.5, turn) == 0.0


def test_a_turn_waits_while_the_sends_leave_no_room() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 1.0, 1)
    first = policy.book("GET", "api", "/", 0.0, send_now=False)
    queued = policy.book("GET", "api", "/", 0.0, send_now=False)
    assert isinstance(first, Booking)
    assert isinstance(queued, Booking)
    assert policy.admit("GET", "api", "/", 0.9, first) == 0.0  # it left late, at 0.9 s
    wait_on = policy.take_turn("GET", "api", "/", 1.0, queued)
    assert wait_on.queued  # still in line: going now would bunch with the late one
    assert wait_on.delay == pytest.approx(0.9)
    turn = policy.take_turn("GET", "api", "/", 1.9, queued)
    assert not turn.queued


def test_a_wait_past_the_deadline_is_refused_and_books_nothing() -> None:
    policy = RateLimitPolicy("token_bucket", 1, 10.0, 1)
    policy.book("GET", "api", "/", 0.0)
    refusal = policy.book("GET", "api", "/", 0.0, deadline=1.0)
    assert isinstance(refusal, Refusal)
    assert refusal.past_deadline
    assert refusal.retry_after == 10.0
    assert "deadline" in refusal.reason
    assert policy.waiting == 0
    within = policy.book("GET", "api", "/", 0.0, deadline=10.0)
    assert within == Booking(10.0, queued=True)


def test_a_servers_pause_is_capped_and_the_request_reported() -> None:
    policy = RateLimitPolicy("token_bucket", None, max_pause=300.0)
    assert policy.observe("api", 0.0, retry_after=1e9) == 1e9
    assert policy.book("GET", "api", "/", 0.0) == Hold(300.0)
    policy.done_waiting()
    assert policy.observe("other", 0.0, remaining=0, reset_after=3.2e7) == 3.2e7
    assert policy.observe("short", 0.0, retry_after=30.0) is None
    assert policy.book("GET", "short", "/", 0.0) == Hold(30.0)


def test_reset_ends_one_hosts_pause_or_all() -> None:
    policy = RateLimitPolicy("token_bucket", None)
    for host in ("a", "b", "c"):
        policy.observe(host, 0.0, retry_after=60.0)
    policy.reset("a")
    assert policy.book("GET", "a", "/", 0.0) == Booking(0.0, queued=False)
    assert policy.book("GET", "b", "/", 0.0) == Hold(60.0)
    policy.reset()
    assert policy.book("GET", "c", "/", 0.0) == Booking(0.0, queued=False)
    assert policy.server_status() == {}


def test_a_hosts_status_is_found_whatever_the_case_it_is_asked_in() -> None:
    limiter = RateLimiter(RateLimitConfig(max_requests=10, scope="host"), clock=FakeClock())
    request = httpx.Request("GET", "https://API.Example.com/x")  # httpx lower-cases hosts
    limiter.book(request, wait=False)
    said = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4"}
    limiter.observe(request, httpx.Response(200, headers=said))
    for asked in ("api.example.com", "API.EXAMPLE.COM"):
        status = limiter.status(asked)
        assert (status.limit, status.remaining) == (10, 9)
        assert status.servers["api.example.com"].remaining == 4


def test_a_global_limit_obeys_every_servers_pause_before_and_after_a_reset() -> None:
    # One limit for every host looks no host up until a server has said something.
    limiter = RateLimiter(RateLimitConfig(max_requests=100), clock=FakeClock())
    request = httpx.Request("GET", "https://api.example.com/users")
    other = httpx.Request("GET", "https://other.example.com/users")
    assert limiter.book(request, wait=True) == Booking(0.0, queued=False)
    limiter.observe(request, httpx.Response(429, headers={"Retry-After": "30"}))
    assert limiter.book(request, wait=True) == Hold(30.0)
    limiter.done_waiting()
    assert limiter.book(other, wait=True) == Booking(0.0, queued=False)
    limiter.reset()
    assert limiter.book(request, wait=True) == Booking(0.0, queued=False)
    used_up = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}
    limiter.observe(other, httpx.Response(200, headers=used_up))
    assert limiter.book(other, wait=True) == Hold(5.0)
    limiter.done_waiting()
    assert limiter.book(request, wait=True) == Booking(0.0, queued=False)


def test_observe_reads_only_what_an_answer_holds() -> None:
    clock = FakeClock()
    request = httpx.Request("GET", "https://api.example.com/users")
    limiter = RateLimiter(RateLimitConfig(max_requests=100), clock=clock)
    assert limiter.observe(request, httpx.Response(200, headers={"Retry-After": "9"})) is None
    assert limiter.book(request, wait=True) == Booking(0.0, queued=False)  # only 429 and 503
    assert limiter.observe(request, httpx.Response(503, headers={"Retry-After": "9"})) is None
    assert limiter.book(request, wait=True) == Hold(9.0)
    limiter.done_waiting()
    deaf = RateLimiter(RateLimitConfig(max_requests=100, respect_retry_after=False), clock=clock)
    said = {"Retry-After": "9", "x-ratelimit-remaining": "7"}
    info = deaf.observe(request, httpx.Response(429, headers=said))
    assert info is not None
    assert info.remaining == 7
    assert deaf.book(request, wait=True) == Booking(0.0, queued=False)
