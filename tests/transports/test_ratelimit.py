"""RateLimitTransport: pacing, scopes, the queue, server headers; sync and async alike.

Unit tests put an ``httpx.MockTransport`` beneath the layer and a fake clock
beside it. The FIFO and queue-size tests need callers that really wait at the
same time, so they use :class:`ManualClock`, whose sleeps block until the test
moves time on. Integration tests at the end use the demo API's ``/rate-limited``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress import EndpointLimit, RateLimitConfig, RateLimitError
from buttress._flow import Send, Sleep
from buttress.policies.ratelimit import Hold, Refusal
from buttress.testing import DemoServer, FakeClock
from buttress.transports import RateLimiter, RateLimitTransport

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """The network: answers with ``respond`` and records the path of every request it gets."""

    def __init__(self, respond: Handler | None = None) -> None:
        self.respond = respond or (lambda request: httpx.Response(200))
        self.seen: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.changed:
            self.seen.append(request.url.path + ("?" + request.url.query.decode()).rstrip("?"))
            self.changed.notify_all()
        return self.respond(request)

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.seen) >= count, timeout=10)


class Plain:
    """A plain httpx client (sync or async) over a RateLimitTransport; one awaitable API."""

    def __init__(self, mode: str, transport: RateLimitTransport) -> None:
        self.is_async = mode == "async"
        self.client: httpx.Client | httpx.AsyncClient = (
            httpx.AsyncClient(transport=transport)
            if self.is_async
            else httpx.Client(transport=transport)
        )

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        if isinstance(self.client, httpx.AsyncClient):
            return await self.client.get(url, **kwargs)
        return self.client.get(url, **kwargs)

    async def aclose(self) -> None:
        if isinstance(self.client, httpx.AsyncClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def limited(mode: str) -> AsyncIterator[Callable[..., tuple[Plain, Recorder, FakeClock]]]:
    """``limited(config, respond=...)``: a client, its network recorder and its fake clock."""
    made: list[Plain] = []

    def factory(
        config: RateLimitConfig | None = None, respond: Handler | None = None
    ) -> tuple[Plain, Recorder, FakeClock]:
        recorder, clock = Recorder(respond), FakeClock()
        transport = RateLimitTransport(httpx.MockTransport(recorder), config, clock=clock)
        plain = Plain(mode, transport)
        made.append(plain)
        return plain, recorder, clock

    yield factory
    for plain in made:
        await plain.aclose()


# --- client-side pacing, every strategy ---------------------------------------------------


@pytest.mark.parametrize(
    ("config", "sleeps"),
    [
        (RateLimitConfig(max_requests=4, time_window=1.0, burst_size=1), [0.25, 0.25, 0.25, 0.25]),
        (RateLimitConfig(max_requests=4, time_window=1.0, burst_size=2), [0.25, 0.25, 0.25]),
        (RateLimitConfig(strategy="fixed_window", max_requests=2, time_window=10.0), [10.0, 10.0]),
        (
            RateLimitConfig(strategy="sliding_window", max_requests=2, time_window=10.0),
            [10.0, 10.0],
        ),
    ],
    ids=["token_bucket", "token_bucket_burst", "fixed_window", "sliding_window"],
)
async def test_every_strategy_paces_requests(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
    config: RateLimitConfig,
    sleeps: list[float],
) -> None:
    client, network, clock = limited(config)
    for n in range(5):
        assert (await client.get(f"https://api.example.com/items?n={n}")).status_code == 200
    assert clock.sleeps == pytest.approx(sleeps)
    assert len(network.seen) == 5


async def test_every_network_attempt_takes_a_token(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(max_requests=1, time_window=2.0))
    await client.get("https://api.example.com/a")
    response = await client.get("https://api.example.com/a", follow_redirects=True)
    assert response.status_code == 200
    assert clock.sleeps == [2.0]


# --- scopes -------------------------------------------------------------------------------


async def test_global_scope_is_one_budget_for_every_host(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(max_requests=1, time_window=1.0))
    await client.get("https://a.example.com/")
    await client.get("https://b.example.com/")
    assert clock.sleeps == [1.0]


async def test_host_scope_is_one_budget_per_host(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(max_requests=1, time_window=1.0, scope="host"))
    await client.get("https://a.example.com/")
    await client.get("https://b.example.com/")
    assert clock.sleeps == []
    await client.get("https://a.example.com/")
    assert clock.sleeps == [1.0]


async def test_endpoint_rules_limit_matching_requests_only(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    searches = EndpointLimit(method="GET", path="/search*", max_requests=1, time_window=5.0)
    client, _, clock = limited(RateLimitConfig(max_requests=100, endpoints=(searches,)))
    await client.get("https://api.example.com/search?q=a")
    await client.get("https://api.example.com/users")
    assert clock.sleeps == []
    await client.get("https://api.example.com/search?q=b")
    assert clock.sleeps == [5.0]


# --- when limited: wait, raise, return ------------------------------------------------------


async def test_a_wait_past_queue_timeout_raises_without_sending(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, clock = limited(
        RateLimitConfig(max_requests=1, time_window=10.0, queue_timeout=5.0)
    )
    await client.get("https://api.example.com/first")
    with pytest.raises(RateLimitError) as caught:
        await client.get("https://api.example.com/second")
    assert caught.value.retry_after == pytest.approx(10.0)
    assert caught.value.limited_by_client
    assert isinstance(caught.value, httpx.HTTPStatusError)
    assert "queue_timeout" in str(caught.value)
    assert network.seen == ["/first"]
    assert clock.sleeps == []


async def test_on_limit_raise_raises_at_once(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, _ = limited(RateLimitConfig(max_requests=1, time_window=3.0, on_limit="raise"))
    await client.get("https://api.example.com/first")
    with pytest.raises(RateLimitError) as caught:
        await client.get("https://api.example.com/second")
    assert caught.value.retry_after == pytest.approx(3.0)
    assert caught.value.status_code == 429
    assert network.seen == ["/first"]


async def test_on_limit_return_gives_a_recognisable_sentinel(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, _ = limited(
        RateLimitConfig(max_requests=1, time_window=3.0, on_limit="return")
    )
    await client.get("https://api.example.com/first")
    sentinel = await client.get("https://api.example.com/second")
    assert sentinel.status_code == 429
    assert sentinel.headers["Retry-After"] == "3"
    assert sentinel.extensions["buttress.client_rate_limited"] is True
    assert isinstance(sentinel, buttress.Response)
    assert sentinel.limited_by_client
    assert network.seen == ["/first"]


async def test_on_limit_return_is_answered_not_retried_nor_judged(
    make_client: Callable[..., Any], demo: DemoServer
) -> None:
    # The caller chose the refusal over a wait: the retry layer above turned it back into
    # one (it slept the window and sent the request), and a breaker counted it as the
    # server's answer (here, one failure would have opened the circuit).
    clock = FakeClock()
    client = make_client(
        base_url=demo.url,
        clock=clock,
        rate_limit=RateLimitConfig(max_requests=1, time_window=10.0, on_limit="return"),
        circuit_breaker=buttress.CircuitBreakerConfig(
            failure_threshold=1, included_status_codes={429}
        ),
    )
    await client.get("/users/1")
    with pytest.raises(RateLimitError) as caught:
        await client.get("/users/2")
    assert caught.value.limited_by_client
    returned = await client.get("/users/3", raise_for_status=False)
    assert (returned.status_code, returned.limited_by_client) == (429, True)
    assert returned.extensions["buttress.attempts"] == 1
    assert clock.sleeps == []
    clock.advance(10.0)
    assert (await client.get("/users/4")).status_code == 200  # the circuit stayed closed


async def test_one_request_may_choose_its_own_behaviour(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, clock = limited(RateLimitConfig(max_requests=1, time_window=3.0))
    await client.get("https://api.example.com/first")
    with pytest.raises(RateLimitError):
        await client.get(
            "https://api.example.com/x", extensions=buttress.options(rate_limit="raise")
        )
    returned = await client.get(
        "https://api.example.com/x", extensions=buttress.options(rate_limit="return")
    )
    assert returned.status_code == 429
    await client.get("https://api.example.com/waited")
    assert clock.sleeps == [3.0]
    assert network.seen == ["/first", "/waited"]


# --- servers' headers -----------------------------------------------------------------------


def exhausted(request: httpx.Request) -> httpx.Response:
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    return httpx.Response(200, headers=headers)


async def test_zero_remaining_pauses_that_host_until_the_reset(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, clock = limited(RateLimitConfig(), respond=exhausted)
    response = await client.get("https://a.example.com/x")
    assert response.extensions["buttress.rate_limit"].remaining == 0
    await client.get("https://b.example.com/x")  # another host: not paused
    assert clock.sleeps == []
    await client.get("https://a.example.com/x")
    assert clock.sleeps == [30.0]
    assert len(network.seen) == 3


async def test_a_paused_host_holds_no_slot_of_a_global_limit(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    config = RateLimitConfig(max_requests=10, time_window=1.0, burst_size=1)
    client, network, clock = limited(config, respond=too_many)
    await client.get("https://a.example.com/x")  # a 429: host a paused for 7 s
    clock.advance(1.0)
    await client.get("https://b.example.com/y")
    assert clock.sleeps == []  # b did not queue behind a's paused request
    await client.get("https://a.example.com/x")
    assert clock.sleeps == [6.0]
    assert network.seen == ["/x", "/y", "/x"]


async def test_queue_timeout_counts_the_pause_and_the_slot_together() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        RateLimitConfig(max_requests=1, time_window=8.0, queue_timeout=5.0), clock=clock
    )
    request = httpx.Request("GET", "https://a.example.com/")
    limiter.book(request, wait=True)
    limiter.observe(request, httpx.Response(429, headers={"Retry-After": "2"}))
    hold = limiter.book(request, wait=True)
    assert hold == Hold(2.0)
    limiter.done_waiting()
    clock.advance(2.0)
    refusal = limiter.book(request, wait=True, waited=2.0)
    assert isinstance(refusal, Refusal)  # 2 s held + 6 s more for the slot > 5 s
    assert "queue_timeout" in refusal.reason


async def test_a_pause_longer_than_queue_timeout_raises(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, network, _ = limited(RateLimitConfig(queue_timeout=10.0), respond=exhausted)
    await client.get("https://a.example.com/x")
    with pytest.raises(RateLimitError) as caught:
        await client.get("https://a.example.com/x")
    assert caught.value.retry_after == pytest.approx(30.0)
    assert len(network.seen) == 1


def too_many(request: httpx.Request) -> httpx.Response:
    # The body's bytes as given: httpx's json= spacing differs between releases.
    headers = {"Retry-After": "7", "Content-Type": "application/json"}
    return httpx.Response(429, headers=headers, content=b'{"error":"slow down"}')


async def test_a_429_is_returned_and_pauses_the_host(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(), respond=too_many)
    assert (await client.get("https://a.example.com/x")).status_code == 429
    await client.get("https://a.example.com/x")
    assert clock.sleeps == [7.0]


async def test_a_retry_layer_that_waited_for_retry_after_is_not_made_to_wait_again(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(), respond=too_many)
    await client.get("https://a.example.com/x")
    clock.advance(7.0)  # what the retry layer above does before re-sending
    await client.get("https://a.example.com/x")
    assert clock.sleeps == []


async def test_a_429_raises_with_retry_after_when_configured(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, _ = limited(RateLimitConfig(on_limit="raise"), respond=too_many)
    with pytest.raises(RateLimitError) as caught:
        await client.get("https://a.example.com/x")
    assert caught.value.retry_after == 7.0
    assert not caught.value.limited_by_client
    assert caught.value.text == '{"error":"slow down"}'


async def test_retry_after_can_be_ignored(
    limited: Callable[..., tuple[Plain, Recorder, FakeClock]],
) -> None:
    client, _, clock = limited(RateLimitConfig(respect_retry_after=False), respond=too_many)
    await client.get("https://a.example.com/x")
    await client.get("https://a.example.com/x")
    assert clock.sleeps == []


async def test_status_reports_the_budget_and_each_server() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(max_requests=5, time_window=10.0), clock=clock)
    transport = RateLimitTransport(httpx.MockTransport(exhausted), limiter, clock=clock)
    with httpx.Client(transport=transport) as client:
        client.get("https://a.example.com/x")
    status = limiter.status()
    assert (status.limit, status.remaining, status.queued) == (5, 4, 0)
    assert status.reset_at is not None
    assert status.reset_at.timestamp() == pytest.approx(clock.time() + 2.0)
    server = status.servers["a.example.com"]
    assert (server.limit, server.remaining, server.reset_after) == (10, 0, 30.0)


async def test_without_a_client_limit_status_shows_the_server_figures() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(), clock=clock)
    transport = RateLimitTransport(httpx.MockTransport(exhausted), limiter, clock=clock)
    with httpx.Client(transport=transport) as client:
        client.get("https://a.example.com/x")
    status = limiter.status("a.example.com")
    assert (status.limit, status.remaining) == (10, 0)
    assert limiter.status("elsewhere").limit is None


# --- the queue: FIFO order and size, with real concurrency ------------------------------------


class ManualClock(FakeClock):
    """A fake clock whose sleeps block until the test moves time past their end."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.sleepers = 0
        self._wakeups: list[tuple[float, anyio.Event]] = []

    def sleep(self, seconds: float) -> None:
        with self.cond:
            deadline = self.monotonic() + seconds
            self.sleepers += 1
            self.cond.notify_all()
            assert self.cond.wait_for(lambda: self.monotonic() >= deadline, timeout=10)
            self.sleepers -= 1

    async def asleep(self, seconds: float) -> None:
        event = anyio.Event()
        self._wakeups.append((self.monotonic() + seconds, event))
        self.sleepers += 1
        try:
            await event.wait()
        finally:
            self.sleepers -= 1

    def advance(self, seconds: float) -> None:
        with self.cond:
            super().advance(seconds)
            self.cond.notify_all()
        for deadline, event in list(self._wakeups):
            if self.monotonic() >= deadline:
                event.set()
                self._wakeups.remove((deadline, event))

    def wait_for_sleepers(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.sleepers >= count, timeout=10)


def test_threads_sharing_a_client_are_served_first_in_first_out() -> None:
    clock, network = ManualClock(), Recorder()
    config = RateLimitConfig(max_requests=1, time_window=1.0)
    transport = RateLimitTransport(httpx.MockTransport(network), config, clock=clock)
    with httpx.Client(transport=transport) as client:
        threads = []
        for n in range(6):
            thread = threading.Thread(target=client.get, args=(f"https://api.example.com/{n}",))
            thread.start()
            threads.append(thread)
            if n == 0:
                network.wait_for(1)
            else:
                clock.wait_for_sleepers(n)  # caller n has booked its slot and is waiting
        assert transport.limiter.status().queued == 5  # the lock is free while they wait
        for n in range(2, 7):
            clock.advance(1.0)
            network.wait_for(n)
        for thread in threads:
            thread.join(timeout=10)
    assert network.seen == [f"/{n}" for n in range(6)]


async def test_tasks_sharing_a_client_are_served_first_in_first_out() -> None:
    clock, network = ManualClock(), Recorder()
    config = RateLimitConfig(max_requests=1, time_window=1.0)
    transport = RateLimitTransport(httpx.MockTransport(network), config, clock=clock)
    async with httpx.AsyncClient(transport=transport) as client, anyio.create_task_group() as tg:
        for n in range(6):
            tg.start_soon(client.get, f"https://api.example.com/{n}")
            while clock.sleepers < n or len(network.seen) < 1:
                await anyio.sleep(0)  # let the task book its slot (no time passes)
        assert transport.limiter.status().queued == 5
        for n in range(2, 7):
            clock.advance(1.0)
            while len(network.seen) < n:
                await anyio.sleep(0)
    assert network.seen == [f"/{n}" for n in range(6)]


def test_a_full_queue_raises_at_once_without_sending() -> None:
    clock, network = ManualClock(), Recorder()
    config = RateLimitConfig(max_requests=1, time_window=1.0, queue_size=1)
    transport = RateLimitTransport(httpx.MockTransport(network), config, clock=clock)
    with httpx.Client(transport=transport) as client:
        client.get("https://api.example.com/first")
        waiter = threading.Thread(target=client.get, args=("https://api.example.com/queued",))
        waiter.start()
        clock.wait_for_sleepers(1)
        with pytest.raises(RateLimitError, match="queue is full") as caught:
            client.get("https://api.example.com/refused")
        assert caught.value.retry_after == pytest.approx(2.0)
        clock.advance(1.0)
        waiter.join(timeout=10)
        assert transport.limiter.status().queued == 0
    assert network.seen == ["/first", "/queued"]


async def test_a_full_queue_raises_for_tasks_too() -> None:
    clock, network = ManualClock(), Recorder()
    config = RateLimitConfig(max_requests=1, time_window=1.0, queue_size=1)
    transport = RateLimitTransport(httpx.MockTransport(network), config, clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/first")
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "https://api.example.com/queued")
            while clock.sleepers < 1:
                await anyio.sleep(0)
            with pytest.raises(RateLimitError, match="queue is full"):
                await client.get("https://api.example.com/refused")
            clock.advance(1.0)
    assert network.seen == ["/first", "/queued"]


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    clock, network = ManualClock(), Recorder()
    config = RateLimitConfig(max_requests=1, time_window=1.0, queue_size=1)
    transport = RateLimitTransport(httpx.MockTransport(network), config, clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/first")
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "https://api.example.com/cancelled")
            while clock.sleepers < 1:
                await anyio.sleep(0)
            tg.cancel_scope.cancel()
        assert transport.limiter.status().queued == 0
    assert network.seen == ["/first"]


# --- against the demo API: plain client, mounts, buttress.Client ----------------------------


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A demo-API rate-limit key of this test's own."""
    return str(request.node.name).replace("[", "-").replace("]", "")


def _network(mode: str) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()


async def exhaust(get: Callable[[str], Any], url: str) -> list[Any]:
    """Three allowed requests, then what the fourth gave or raised."""
    outcomes: list[Any] = []
    for _ in range(4):
        try:
            result = get(url)
            outcomes.append(await result if hasattr(result, "__await__") else result)
        except RateLimitError as exc:
            outcomes.append(exc)
    return outcomes


async def test_plain_httpx_client_obeys_the_demo_api(mode: str, demo: DemoServer, key: str) -> None:
    transport = RateLimitTransport(_network(mode), RateLimitConfig(queue_timeout=5.0))
    plain = Plain(mode, transport)
    url = f"{demo.url}/rate-limited?key={key}&limit=3&window=60"
    try:
        *allowed, refused = await exhaust(plain.get, url)
    finally:
        await plain.aclose()
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.extensions["buttress.rate_limit"].remaining for r in allowed] == [2, 1, 0]
    assert isinstance(refused, RateLimitError)
    assert refused.limited_by_client  # the server's "0 remaining" was believed: nothing sent
    assert refused.retry_after is not None
    assert refused.retry_after > 5.0


async def test_mounted_transport_obeys_the_demo_api(mode: str, demo: DemoServer, key: str) -> None:
    transport = RateLimitTransport(_network(mode), RateLimitConfig(on_limit="return"))
    client: httpx.Client | httpx.AsyncClient = (
        httpx.AsyncClient(mounts={demo.url: transport})
        if mode == "async"
        else httpx.Client(mounts={demo.url: transport})
    )
    url = f"{demo.url}/rate-limited?key={key}&limit=3&window=60"
    try:
        *allowed, sentinel = await exhaust(client.get, url)
    finally:
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()
        else:
            client.close()
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert sentinel.status_code == 429
    assert sentinel.extensions["buttress.client_rate_limited"]


async def test_buttress_client_reads_and_obeys_the_demo_api(
    make_client: Callable[..., Any], demo: DemoServer, key: str
) -> None:
    limit = RateLimitConfig(max_requests=100, time_window=3600, queue_timeout=5.0)
    client = make_client(base_url=demo.url, rate_limit=limit)
    url = f"/rate-limited?key={key}&limit=3&window=60"
    *allowed, refused = await exhaust(client.get, url)
    info = allowed[0].rate_limit
    assert (info.limit, info.remaining, info.policy, info.window) == (3, 2, "default", 60.0)
    assert allowed[-1].rate_limit.exhausted
    assert isinstance(refused, RateLimitError)
    assert refused.limited_by_client
    status = client.client.get_rate_limit_status()
    assert (status.limit, status.remaining) == (100, 97)
    host = demo.url.removeprefix("http://")
    assert status.servers[host].remaining == 0
    assert status.servers[host].reset_at is not None


async def test_buttress_client_raises_for_a_real_429(
    make_client: Callable[..., Any], demo: DemoServer, key: str
) -> None:
    url = f"/rate-limited?key={key}&limit=1&window=60"
    first = make_client(base_url=demo.url)
    await first.get(url)  # uses up the server's budget; this client has no limiter
    second = make_client(base_url=demo.url, rate_limit=RateLimitConfig(on_limit="raise"))
    with pytest.raises(RateLimitError) as caught:
        await second.get(url)
    assert not caught.value.limited_by_client
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0
    response = caught.value.response
    assert isinstance(response, buttress.Response)
    assert response.rate_limit is not None
    assert response.rate_limit.remaining == 0
    assert first.client.get_rate_limit_status().limit is None


async def test_buttress_clients_can_share_one_limiter(make_client: Callable[..., Any]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitConfig(max_requests=1, time_window=4.0), clock=clock)
    network = Recorder()
    one = make_client(transport=httpx.MockTransport(network), rate_limit=limiter)
    two = make_client(transport=httpx.MockTransport(network), rate_limit=limiter)
    await one.get("https://api.example.com/a")
    await two.get("https://api.example.com/b")
    assert clock.sleeps == [4.0]
    assert network.seen == ["/a", "/b"]


def test_response_rate_limit_is_parsed_lazily_without_the_layer() -> None:
    response = buttress.Response(200, headers={"RateLimit-Limit": "9", "RateLimit-Remaining": "8"})
    assert response.rate_limit is not None
    assert (response.rate_limit.limit, response.rate_limit.remaining) == (9, 8)
    assert response.rate_limit is response.rate_limit  # parsed once
    assert not response.limited_by_client


def test_status_is_empty_without_a_limiter() -> None:
    with buttress.Client(base_url="https://api.example.com") as client:
        assert client.get_rate_limit_status() == buttress.RateLimitStatus()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="burst_size"):
        RateLimitConfig(strategy="fixed_window", max_requests=1, burst_size=2)
    with pytest.raises(ValueError, match="greater than 0"):
        RateLimitConfig(max_requests=0)


def test_requests_woken_late_together_go_out_one_slot_apart() -> None:
    # Regression (found by the 1000-task stress test): sleepers that a busy event loop
    # wakes late all at once used to go out together, past the limit. Each flow is
    # stepped by hand, as the drivers would, to wake them at the same late moment.
    clock = FakeClock()
    config = RateLimitConfig(max_requests=1, time_window=1.0, burst_size=1)
    transport = RateLimitTransport(httpx.MockTransport(exhausted), config, clock=clock)
    flows = [transport._flow(httpx.Request("GET", "https://api.example.com/")) for _ in range(3)]
    assert [next(flow) for flow in flows][1:] == [Sleep(1.0), Sleep(2.0)]
    clock.advance(3.5)  # a stalled loop: both sleepers wake now
    assert isinstance(flows[1].send(None), Send)
    again = flows[2].send(None)
    assert isinstance(again, Sleep)  # not sent: admitted a slot later
    assert again.seconds >= 1.0
    clock.advance(again.seconds)
    assert isinstance(flows[2].send(None), Send)
    assert transport.limiter.status().queued == 0
