"""The rate limiter against servers that ask too much and callers that do not wait.

A server's pause is capped (``max_server_pause``) and can be cleared; a caller
that leaves the queue (cancelled, timed out, interrupted, failed) gives its
slot back; and the total deadline covers the wait for a slot. Every test goes
through the demo API on 127.0.0.1, sync and async, with time on a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import anyio
import httpx
import pytest

import buttress
from buttress import RateLimitConfig, RateLimitError, TimeoutConfig
from buttress._extensions import DEADLINE_KEY
from buttress._flow import Send, Sleep
from buttress.testing import DemoServer, FakeClock
from buttress.transports import RateLimiter, RateLimitTransport

from ..conftest import Either
from .conftest import Plain
from .test_ratelimit import ManualClock

pytestmark = pytest.mark.anyio

_ids = count(700_000)


PATH = "/users/7"


def hit_counter(demo: DemoServer) -> Callable[[], int]:
    """How many requests for ``PATH`` the demo API has had since this call."""
    start = demo.app.hits[PATH]
    return lambda: demo.app.hits[PATH] - start


# --- item: a server cannot pause a host for ever ----------------------------------------------


async def test_a_huge_retry_after_pauses_the_host_for_max_server_pause_only(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: one 503 with Retry-After: 1000000000 paused the host for ~3.15e7 s
    # (the parser's one-year clamp); every later request failed at once.
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, retry=False, raise_for_status=False,
        rate_limit=RateLimitConfig(queue_timeout=60.0),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="buttress.ratelimit"):
        answer = await client.get("/status/503?retry_after=1000000000&api_key=s3cr3t")
    assert answer.status_code == 503
    [record] = [r for r in caplog.records if r.name == "buttress.ratelimit"]
    assert record.levelno == logging.WARNING
    assert "3.1536e+07s" in record.getMessage()  # the header parser's one-year clamp
    assert "max_server_pause=300s" in record.getMessage()
    assert "s3cr3t" not in record.getMessage()

    with pytest.raises(RateLimitError) as caught:  # 300 s > queue_timeout: refused at once
        await client.get(PATH)
    assert caught.value.retry_after == pytest.approx(300.0)
    clock.advance(300.0)
    hits = hit_counter(demo)
    assert (await client.get(PATH)).status_code == 200
    assert hits() == 1
    assert clock.sleeps == []


async def test_zero_remaining_with_a_far_reset_waits_max_server_pause_only(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, retry=False, raise_for_status=False,
        rate_limit=RateLimitConfig(max_server_pause=5.0),
    )  # fmt: skip
    key = f"far-reset-{next(_ids)}"
    with caplog.at_level(logging.WARNING, logger="buttress.ratelimit"):
        first = await client.get(f"/rate-limited?key={key}&limit=1&window=30000000")
    assert first.rate_limit.remaining == 0
    assert first.rate_limit.reset_after == pytest.approx(30_000_000)
    assert [r.levelno for r in caplog.records if r.name == "buttress.ratelimit"] == [
        logging.WARNING
    ]
    hits = hit_counter(demo)
    await client.get(PATH)
    assert clock.sleeps == [5.0]  # not 30,000,000
    assert hits() == 1


@pytest.mark.parametrize("which", ["host", "url", "every host"])
async def test_reset_ends_a_hosts_pause(
    make_client: Callable[..., Either], demo: DemoServer, which: str
) -> None:
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, retry=False, raise_for_status=False,
        rate_limit=RateLimitConfig(),
    )  # fmt: skip
    limiter = client.client.rate_limiter
    assert isinstance(limiter, RateLimiter)
    key = f"reset-{next(_ids)}"
    await client.get(f"/rate-limited?key={key}&limit=1&window=100")  # 0 remaining for 100 s
    host = demo.url.removeprefix("http://")
    assert limiter.status().servers[host].remaining == 0
    limiter.reset({"host": host, "url": demo.url + "/users", "every host": None}[which])
    assert host not in limiter.status().servers
    hits = hit_counter(demo)
    assert (await client.get(PATH)).status_code == 200
    assert hits() == 1
    assert clock.sleeps == []


async def test_resetting_another_host_leaves_the_pause(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, retry=False, raise_for_status=False,
        rate_limit=RateLimitConfig(),
    )  # fmt: skip
    await client.get("/status/429?retry_after=7")
    limiter = client.client.rate_limiter
    assert isinstance(limiter, RateLimiter)
    limiter.reset("elsewhere.example.com")
    await client.get(PATH)
    assert clock.sleeps == [7.0]


# --- item: a caller that leaves gives its slot back ------------------------------------------


class GateClock(FakeClock):
    """A fake clock whose async sleeps block while it is closed and pass at once while open."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: anyio.Event | None = None  # None: open
        self.blocked = 0  # sleeps that started while closed

    async def asleep(self, seconds: float) -> None:
        if self.opened is not None:
            self.blocked += 1
            await self.opened.wait()  # time does not move: the sleeper never wakes on its own
            return
        await super().asleep(seconds)

    def close(self) -> None:
        self.opened = anyio.Event()

    def open(self) -> None:
        assert self.opened is not None
        self.opened.set()
        self.opened = None


async def test_tasks_that_time_out_waiting_give_their_slots_back(demo: DemoServer) -> None:
    # Regression: 500 tasks wrapped in asyncio.wait_for at 20/s all timed out, and the
    # next request still waited ~24 s behind the slots they had booked.
    clock = GateClock()
    limiter = RateLimiter(RateLimitConfig(max_requests=20, time_window=1.0), clock=clock)
    async with buttress.AsyncClient(
        base_url=demo.url, rate_limit=limiter, clock=clock, retry=False
    ) as client:
        for _ in range(20):  # the burst
            await client.get("/users/1")
        clock.close()

        async def impatient(n: int) -> bool:
            try:
                await asyncio.wait_for(client.get("/users/1"), 0.01)
            except asyncio.TimeoutError:
                return True
            return False

        # The clock never moves while closed, so every one of them times out waiting.
        timed_out = await asyncio.gather(*(impatient(n) for n in range(480)))
        assert all(timed_out)
        assert clock.blocked > 0  # they did book slots and wait
        assert limiter.status().queued == 0
        clock.open()
        clock.sleeps.clear()
        await client.get("/users/1")
    assert sum(clock.sleeps) <= 0.05 + 1e-9  # at most one slot at 20/s


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks (and the demo server) run until ``condition`` holds."""
    with anyio.fail_after(30):  # only so that a regression fails instead of hanging
        while not condition():
            await anyio.sleep(0.001)


async def test_cancelled_tasks_give_their_slots_back_and_the_rest_keep_their_order(
    demo: DemoServer,
) -> None:
    clock = ManualClock()
    limiter = RateLimiter(RateLimitConfig(max_requests=1, time_window=1.0), clock=clock)
    sent: list[tuple[int, float]] = []
    async with buttress.AsyncClient(
        base_url=demo.url, rate_limit=limiter, clock=clock, retry=False
    ) as client:

        async def fetch(n: int, scope: anyio.CancelScope) -> None:
            with scope:
                await client.get(f"/users/{n + 1}")
                sent.append((n, clock.monotonic()))

        scopes = {n: anyio.CancelScope() for n in range(7)}
        async with anyio.create_task_group() as tg:
            await fetch(0, scopes[0])  # takes the only token
            for n in range(1, 6):  # booked for t = 1 .. 5
                tg.start_soon(fetch, n, scopes[n])
                await until(lambda n=n: clock.sleepers == n)  # type: ignore[misc]
            for n in (2, 4, 5):  # one from the middle, two from the end
                scopes[n].cancel()
            await until(lambda: clock.sleepers == 2)
            assert limiter.status().queued == 2
            tg.start_soon(fetch, 6, scopes[6])  # behind 3, in the slot 4 and 5 gave back
            await until(lambda: clock.sleepers == 3)
            for sent_by_now in (2, 2, 3, 4):  # at t = 1, 2 (the hole 2 left), 3, 4
                clock.advance(1.0)
                await until(lambda due=sent_by_now: len(sent) >= due)  # type: ignore[misc]
    assert sent == [(0, 0.0), (1, 1.0), (3, 3.0), (6, 4.0)]
    assert limiter.status().queued == 0


class InterruptingClock(FakeClock):
    """A fake clock whose sleeps raise ``error`` until it is set to ``None``."""

    def __init__(self, error: BaseException | None) -> None:
        super().__init__()
        self.error = error

    def sleep(self, seconds: float) -> None:
        if self.error is not None:
            raise self.error
        super().sleep(seconds)


def test_callers_interrupted_while_waiting_give_their_slots_back(demo: DemoServer) -> None:
    # Regression: at one request per 2 s, three waiters that left made the next
    # request wait 8 s instead of 2 s.
    clock = InterruptingClock(KeyboardInterrupt())
    limiter = RateLimiter(RateLimitConfig(max_requests=1, time_window=2.0), clock=clock)
    with buttress.Client(base_url=demo.url, rate_limit=limiter, clock=clock, retry=False) as client:
        client.get("/users/1")
        for _ in range(3):
            with pytest.raises(KeyboardInterrupt):
                client.get("/users/2")
        assert limiter.status().queued == 0
        clock.error = None
        hits = hit_counter(demo)
        client.get(PATH)
    assert clock.sleeps == [2.0]
    assert hits() == 1


def test_threads_that_fail_while_waiting_give_their_slots_back(demo: DemoServer) -> None:
    clock = InterruptingClock(RuntimeError("worker stopped"))
    limiter = RateLimiter(RateLimitConfig(max_requests=1, time_window=2.0), clock=clock)
    with buttress.Client(base_url=demo.url, rate_limit=limiter, clock=clock, retry=False) as client:
        client.get("/users/1")
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(client.get, "/users/2") for _ in range(4)]
            for future in futures:
                with pytest.raises(RuntimeError, match="worker stopped"):
                    future.result(timeout=30)
        assert limiter.status().queued == 0
        clock.error = None
        client.get("/users/1")
    assert clock.sleeps == [2.0]


# --- item: the total deadline covers the wait for a slot ----------------------------------


async def test_a_slot_past_the_total_deadline_fails_at_once(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # Regression: with TimeoutConfig(total=1) and one request per 10 s, the second
    # request slept the full 10 s and was then sent.
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, timeout=TimeoutConfig(total=1.0),
        rate_limit=RateLimitConfig(max_requests=1, time_window=10.0),
    )  # fmt: skip
    await client.get("/users/1")
    hits = hit_counter(demo)
    with pytest.raises(buttress.TimeoutError, match="total timeout") as caught:
        await client.get(PATH)
    assert "10s" in str(caught.value)
    assert isinstance(caught.value, httpx.TimeoutException)
    assert not isinstance(caught.value, RateLimitError)
    assert clock.sleeps == []
    assert hits() == 0
    # Nothing was booked: a request with time enough waits for the first free slot only.
    await client.get(PATH, timeout=TimeoutConfig(total=30.0))
    assert clock.sleeps == [10.0]
    assert hits() == 1


async def test_a_slot_within_the_total_deadline_is_waited_for(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, timeout=TimeoutConfig(total=10.5),
        rate_limit=RateLimitConfig(max_requests=1, time_window=10.0),
    )  # fmt: skip
    await client.get("/users/1")
    assert (await client.get("/users/1")).status_code == 200
    assert clock.sleeps == [10.0]


async def test_the_deadline_counts_a_servers_pause_too(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    clock = FakeClock()
    client = make_client(
        base_url=demo.url, clock=clock, retry=False, raise_for_status=False,
        timeout=TimeoutConfig(total=5.0), rate_limit=RateLimitConfig(),
    )  # fmt: skip
    await client.get("/status/429?retry_after=20")
    with pytest.raises(buttress.TimeoutError, match="server asked to wait"):
        await client.get(PATH)
    assert clock.sleeps == []


async def test_a_plain_client_total_timeout_option_covers_the_wait(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    clock = FakeClock()
    config = RateLimitConfig(max_requests=1, time_window=10.0)
    client = plain(lambda network: RateLimitTransport(network, config, clock=clock))
    hits = hit_counter(demo)
    await client.get(demo.url + "/users/1")
    with pytest.raises(buttress.TimeoutError):
        await client.get(demo.url + PATH, extensions=buttress.options(total_timeout=2))
    assert clock.sleeps == []
    assert hits() == 0


def test_a_waiter_whose_slot_moves_past_its_deadline_gives_up() -> None:
    # Stepped by hand, as the drivers would: a stalled loop wakes two sleepers late
    # together; the second may go only a slot later, after its deadline.
    clock = FakeClock()
    config = RateLimitConfig(max_requests=1, time_window=1.0, burst_size=1)
    transport = RateLimitTransport(
        httpx.MockTransport(lambda _: httpx.Response(200)), config, clock=clock
    )
    requests = [httpx.Request("GET", "https://api.example.com/") for _ in range(3)]
    requests[2].extensions[DEADLINE_KEY] = 3.6
    flows = [transport._flow(request) for request in requests]
    assert [next(flow) for flow in flows][1:] == [Sleep(1.0), Sleep(2.0)]
    clock.advance(3.5)
    assert isinstance(flows[1].send(None), Send)
    with pytest.raises(buttress.TimeoutError, match="too late"):
        flows[2].send(None)
    assert transport.limiter.status().queued == 0


async def test_after_a_wait_the_request_gets_only_the_time_the_deadline_leaves(
    make_client: Callable[..., Either],
) -> None:
    # Unit test (a mock network): what timeouts each attempt was sent with.
    seen: list[dict[str, float | None]] = []

    def network(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    clock = FakeClock()
    client = make_client(
        transport=httpx.MockTransport(network), clock=clock,
        timeout=TimeoutConfig(connect=5.0, read=30.0, write=30.0, pool=10.0, total=16.0),
        rate_limit=RateLimitConfig(max_requests=1, time_window=10.0),
    )  # fmt: skip
    await client.get("https://api.example.com/first")
    await client.get("https://api.example.com/second")
    assert clock.sleeps == [10.0]
    assert seen[0] == {"connect": 5.0, "read": 16.0, "write": 16.0, "pool": 10.0}
    assert seen[1] == {"connect": 5.0, "read": 6.0, "write": 6.0, "pool": 6.0}


async def test_a_plain_request_is_left_as_it_came_after_a_shortened_send(mode: str) -> None:
    seen: list[dict[str, float | None]] = []

    def network(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.extensions["timeout"]))
        return httpx.Response(200)

    clock = FakeClock()
    transport = RateLimitTransport(
        httpx.MockTransport(network), RateLimitConfig(max_requests=1, time_window=10.0), clock=clock
    )
    timeouts = {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 10.0}
    extensions = {**buttress.options(total_timeout=20), "timeout": timeouts}
    first = httpx.Request("GET", "https://api.example.com/", extensions=dict(extensions))
    second = httpx.Request("GET", "https://api.example.com/", extensions=dict(extensions))
    if mode == "async":
        await transport.handle_async_request(first)
        await transport.handle_async_request(second)
    else:
        transport.handle_request(first)
        transport.handle_request(second)
    assert clock.sleeps == [10.0]
    assert seen == [timeouts, {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}]
    assert second.extensions["timeout"] is timeouts
