"""``client.batch``: input order, the concurrency bound, stopping, cancellation, every layer.

Against real servers on 127.0.0.1: the demo API, and a :class:`~tests.servers.Turnstile`
that holds each request until the test lets it through, so the order in which requests
finish and how many are on the way at once are the test's to choose, without timing.
One body covers ``Client`` (a thread pool) and ``AsyncClient`` (a task group) where
they behave alike; threads cannot be interrupted, so only the async client cancels
requests already on the wire.
"""

from __future__ import annotations

import contextvars
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from typing_extensions import assert_type

import buttress
from buttress import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    ClientError,
    ConfigurationError,
    NotFoundError,
    RateLimitConfig,
    ServerError,
)
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either
from tests.servers import Turnstile

pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Either]


@pytest.fixture
def turnstile() -> Iterator[tuple[Turnstile, DemoServer]]:
    app = Turnstile()
    with DemoServer(app) as server:
        yield app, server
        app.open()  # a failed test leaves no request waiting for the server to stop


@contextmanager
def controller(turnstile: Turnstile, script: Callable[[], None]) -> Iterator[None]:
    """Run ``script`` in a thread while the batch runs; then check it did not fail.

    Should the script fail, the turnstile opens, so that the failure shows as
    this assertion rather than as a batch waiting for ever.
    """
    failures: list[BaseException] = []

    def run() -> None:
        try:
            script()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
            turnstile.open()

    thread = threading.Thread(target=run, name="batch-test-controller", daemon=True)
    thread.start()
    yield
    thread.join(timeout=30)
    assert not failures, failures


def held_requests(either: Either, server: DemoServer, count: int) -> list[httpx.Request]:
    return [either.client.build_request("GET", f"{server.url}/turnstile/{n}") for n in range(count)]


def waiting(count: int) -> Callable[[Turnstile], bool]:
    return lambda turnstile: len(turnstile.waiting) == count


def answered(count: int) -> Callable[[Turnstile], bool]:
    return lambda turnstile: len(turnstile.answered) == count


def abandoned(count: int) -> Callable[[Turnstile], bool]:
    return lambda turnstile: len(turnstile.abandoned) == count


def connections_in_use(either: Either) -> list[Any]:
    """The connections of the client's pool (httpcore's) that a request still holds."""
    network: Any = either.client._transport
    while hasattr(network, "_inner"):
        network = network._inner
    return [
        connection
        for route in network._routes.values()
        for connection in route._pool.connections
        if not (connection.is_idle() or connection.is_closed())
    ]


# --- order, progress and the concurrency bound ---------------------------------------------


async def test_results_keep_the_input_order_whatever_order_requests_finish_in(
    make_client: MakeClient, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    either = make_client()
    finishing = list(range(8))
    random.Random(23).shuffle(finishing)

    def answer_in_shuffled_order() -> None:
        app.wait_until(waiting(8))  # all on the way at once
        for count, number in enumerate(finishing, 1):
            app.let_through(number)
            app.wait_until(answered(count))

    progress: list[tuple[int, int]] = []
    with controller(app, answer_in_shuffled_order):
        results = await either.batch(
            held_requests(either, server, 8),
            concurrency=8,
            on_progress=lambda *p: progress.append(p),
        )
    assert app.answered == finishing != sorted(finishing)
    assert [response.json()["n"] for response in results] == list(range(8))
    assert progress == [(done, 8) for done in range(1, 9)]


async def test_no_more_than_concurrency_requests_are_on_the_way_at_once(
    make_client: MakeClient, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    either = make_client()
    total, concurrency = 12, 3
    pick = random.Random(23)

    def let_one_through_whenever_every_slot_is_taken() -> None:
        for done in range(total):
            # The batch refills a freed slot at once: wait until all are taken again.
            app.wait_until(waiting(min(concurrency, total - done)))
            app.let_through(pick.choice(app.waiting))
            app.wait_until(answered(done + 1))

    with controller(app, let_one_through_whenever_every_slot_is_taken):
        results = await either.batch(held_requests(either, server, total), concurrency=concurrency)
    assert app.most == concurrency
    assert app.answered != sorted(app.answered)
    assert [response.json()["n"] for response in results] == list(range(total))


async def test_an_empty_batch_sends_nothing_and_reports_no_progress(
    make_client: MakeClient,
) -> None:
    progress: list[tuple[int, int]] = []
    assert await make_client().batch([], on_progress=lambda *p: progress.append(p)) == []
    assert progress == []


async def test_each_request_sees_the_callers_context(
    make_client: MakeClient, demo: DemoServer
) -> None:
    caller = contextvars.ContextVar("caller", default="nobody")
    seen: list[str] = []
    hooks = {"request": [lambda request: seen.append(caller.get())]}
    either = make_client(base_url=demo.url, event_hooks=hooks)
    requests = [either.client.build_request("GET", f"/users/{n}") for n in range(1, 5)]
    token = caller.set("the batch's caller")
    try:
        await either.batch(requests, concurrency=4)
    finally:
        caller.reset(token)
    assert seen == ["the batch's caller"] * 4  # in the sync client's threads too


# --- failures and stopping ------------------------------------------------------------------


async def test_failures_are_returned_in_place_by_default(
    make_client: MakeClient, demo: DemoServer
) -> None:
    either = make_client(base_url=demo.url, retry=False)
    requests = [either.client.build_request("GET", f"/users/{n}") for n in (1, 404, 2)]
    first, missing, second = await either.batch(requests)
    assert isinstance(missing, NotFoundError)
    assert missing.request is requests[1]
    assert (first.json()["id"], second.json()["id"]) == (1, 2)


async def test_the_first_failure_stops_the_batch_and_is_raised(make_client: MakeClient) -> None:
    with DemoServer() as server:  # its own, to count what reached it
        either = make_client(base_url=server.url, retry=False)
        paths = ["/users/1", "/users/404", "/users/2", "/users/3"]
        requests = [either.client.build_request("GET", path) for path in paths]
        with pytest.raises(NotFoundError) as raised:
            await either.batch(requests, concurrency=1, return_exceptions=False)
        assert raised.value.request is requests[1]
        assert [server.app.hits[path] for path in paths] == [1, 1, 0, 0]


async def test_an_interrupt_starts_nothing_more_and_leaves_no_connection_in_use(
    make_client: MakeClient, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    either = make_client()

    def answer_the_first_once_all_wait() -> None:
        app.wait_until(waiting(3))
        app.let_through(0)

    def interrupt(done: int, total: int) -> None:
        app.open()  # the sync client waits for requests already sent: let them end
        raise KeyboardInterrupt  # as Ctrl-C would, in the caller's thread

    with controller(app, answer_the_first_once_all_wait), pytest.raises(KeyboardInterrupt):
        await either.batch(held_requests(either, server, 6), concurrency=3, on_progress=interrupt)
    assert sorted(app.arrived) == [0, 1, 2]
    assert connections_in_use(either) == []


async def test_an_error_in_on_progress_stops_the_batch_and_is_raised(
    make_client: MakeClient, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    app.open()
    either = make_client()

    def fail(done: int, total: int) -> None:
        raise LookupError(f"progress {done}/{total}")

    with pytest.raises(LookupError, match="progress 1/4"):
        await either.batch(held_requests(either, server, 4), concurrency=1, on_progress=fail)
    assert app.arrived == [0]


# --- async: cancellation reaches the requests on the wire --------------------------------


@pytest.fixture
async def async_client() -> AsyncIterator[Either]:
    """A client of 4 connections whose requests wait for an answer until cancelled.

    No read timeout: only cancellation can end a request the turnstile holds.
    Waiting for a connection stays limited (10 s), so a place that a cancelled
    request kept would fail the next request rather than hang it.
    """
    timeout = buttress.TimeoutConfig(read=None, pool=10.0)
    async with buttress.AsyncClient(
        retry=False, clock=FakeClock(), timeout=timeout, max_connections=4
    ) as client:
        yield Either(client)


async def test_cancelling_the_batch_cancels_what_runs_and_leaks_no_connection(
    async_client: Either, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    requests = held_requests(async_client, server, 8)
    app.let_through(0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: async_client.batch(requests, concurrency=4))
        # 0 answered, 1-4 on the way: cancel a batch with a result in and requests out
        await anyio.to_thread.run_sync(app.wait_until, lambda t: answered(1)(t) and waiting(4)(t))
        tasks.cancel_scope.cancel()
    await anyio.to_thread.run_sync(app.wait_until, abandoned(4))
    assert sorted(app.abandoned) == [1, 2, 3, 4]
    assert sorted(app.arrived) == [0, 1, 2, 3, 4]
    assert connections_in_use(async_client) == []
    app.open()  # every connection is free again: 4 at once get through the pool
    responses = await async_client.batch(held_requests(async_client, server, 4))
    assert [response.json()["n"] for response in responses] == [0, 1, 2, 3]


async def test_the_first_failure_cancels_the_requests_still_on_the_way(
    async_client: Either, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    requests = held_requests(async_client, server, 3)
    failing = async_client.client.build_request("GET", f"{server.url}/turnstile/3?status=404")

    def fail_once_all_wait() -> None:
        app.wait_until(waiting(4))
        app.let_through(3)
        app.wait_until(abandoned(3))  # the batch hung up on them

    with controller(app, fail_once_all_wait), pytest.raises(NotFoundError):
        await async_client.batch([*requests, failing], concurrency=4, return_exceptions=False)
    assert sorted(app.abandoned) == [0, 1, 2]
    assert connections_in_use(async_client) == []


# --- every layer applies ---------------------------------------------------------------------


class Timed(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network transport, noting the clock's time as each request reaches it."""

    def __init__(self, inner: Any, clock: FakeClock) -> None:
        self._inner, self._clock = inner, clock
        self.times: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self._clock.monotonic())
        response: httpx.Response = self._inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(self._clock.monotonic())
        response: httpx.Response = await self._inner.handle_async_request(request)
        return response

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_the_rate_limit_paces_a_batch(
    make_client: MakeClient, demo: DemoServer, mode: str
) -> None:
    clock = FakeClock()
    network = Timed(httpx.HTTPTransport() if mode == "sync" else httpx.AsyncHTTPTransport(), clock)
    limit = RateLimitConfig(strategy="fixed_window", max_requests=2, time_window=10.0)
    either = make_client(base_url=demo.url, transport=network, rate_limit=limit, clock=clock)
    requests = [either.client.build_request("GET", f"/users/{n}") for n in range(1, 7)]
    responses = await either.batch(requests, concurrency=6, return_exceptions=False)
    assert [response.status_code for response in responses] == [200] * 6
    per_window = Counter(int(time // 10.0) for time in network.times)
    assert len(network.times) == 6
    assert max(per_window.values()) == 2, network.times  # never more than the window allows


async def test_each_request_of_a_batch_is_retried_on_its_own(
    make_client: MakeClient, demo: DemoServer, mode: str
) -> None:
    either = make_client(base_url=demo.url)  # retries on; backoff on the fake clock
    keys = [f"batch-retry-{mode}-{n}" for n in range(3)]
    requests = [
        either.client.build_request("GET", "/flaky", params={"key": key, "failures": n})
        for n, key in enumerate(keys)
    ]
    responses = await either.batch(requests, concurrency=3, return_exceptions=False)
    assert [response.json()["attempts"] for response in responses] == [1, 2, 3]


async def test_an_open_circuit_fails_the_rest_of_a_batch_fast(make_client: MakeClient) -> None:
    with DemoServer() as server:  # its own, to count what reached it
        breaker = CircuitBreakerConfig(failure_threshold=2)
        either = make_client(base_url=server.url, retry=False, circuit_breaker=breaker)
        paths = ["/status/503", "/status/503", "/users/1", "/users/2"]
        requests = [either.client.build_request("GET", path) for path in paths]
        results = await either.batch(requests, concurrency=1)
        assert [type(result) for result in results] == [
            ServerError,
            ServerError,
            CircuitBreakerOpenError,
            CircuitBreakerOpenError,
        ]
        assert server.app.hits["/users/1"] == server.app.hits["/users/2"] == 0


async def test_each_request_of_a_batch_keeps_the_total_deadline(
    make_client: MakeClient, demo: DemoServer, mode: str
) -> None:
    # A Retry-After of 20 s cannot fit a total timeout of 10 s: the request fails at once
    # with the deadline named, instead of waiting; the request beside it is unaffected.
    either = make_client(base_url=demo.url, timeout=buttress.TimeoutConfig(total=10))
    late: dict[str, str | int] = {"key": f"batch-deadline-{mode}", "failures": 1, "retry_after": 20}
    requests = [
        either.client.build_request("GET", "/flaky", params=late),
        either.client.build_request("GET", "/users/1"),
    ]
    failed, answered = await either.batch(requests, concurrency=2)
    assert isinstance(failed, ServerError)
    assert failed.response.extensions["buttress.attempts"] == 1
    assert any("total timeout" in note for note in getattr(failed, "__notes__", []))
    assert isinstance(answered, httpx.Response)
    assert answered.status_code == 200


# --- bad arguments ------------------------------------------------------------------------


async def _show_progress(done: int, total: int) -> None:
    """An async callback: a batch would call it and drop the coroutine, never running it."""
    print(f"{done}/{total}")


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"concurrency": 0},
            ConfigurationError,
            r"batch\(concurrency=...\) takes an int >= 1, not 0",
        ),
        ({"concurrency": "8"}, TypeError, r"takes an int >= 1, not str"),
        ({"concurrency": True}, TypeError, r"takes an int >= 1, not bool"),
        ({"return_exceptions": "no"}, TypeError, r"takes True or False, not str"),
        ({"on_progress": 1}, TypeError, r"takes a callable or None, not int"),
        ({"on_progress": _show_progress}, TypeError, r"is called, not awaited: pass a plain"),
    ],
)
async def test_bad_options_raise_before_anything_is_sent(
    make_client: MakeClient,
    turnstile: tuple[Turnstile, DemoServer],
    arguments: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    app, server = turnstile
    either = make_client()
    with pytest.raises(error, match=message) as raised:
        await either.batch(held_requests(either, server, 2), **arguments)
    assert isinstance(raised.value, ConfigurationError)
    assert app.arrived == []


async def test_only_requests_are_accepted_and_the_wrong_item_is_named_not_shown(
    make_client: MakeClient, turnstile: tuple[Turnstile, DemoServer]
) -> None:
    app, server = turnstile
    either = make_client()
    owner = type(either.client).__name__
    request = either.client.build_request("GET", f"{server.url}/turnstile/0")
    secret = ("GET", "https://user:hunter2@api.example.com/")
    with pytest.raises(TypeError) as raised:
        await either.batch([request, secret])
    assert isinstance(raised.value, ConfigurationError)
    assert str(raised.value) == (
        f"{owner}.batch() takes httpx.Request objects (build them with client.build_request),"
        " not tuple (item 1)"
    )
    with pytest.raises(
        TypeError, match=r"takes an iterable of httpx\.Request, not a single Request"
    ):
        await either.batch(request)
    with pytest.raises(ConfigurationError, match="the same Request object twice"):
        await either.batch([request, request])
    assert app.arrived == []


async def test_a_closed_client_refuses_a_batch(make_client: MakeClient, demo: DemoServer) -> None:
    either = make_client(base_url=demo.url)
    request = either.client.build_request("GET", "/users/1")
    await either.aclose()
    with pytest.raises(ClientError, match="has been closed"):
        await either.batch([request])


async def test_the_result_types_follow_return_exceptions(demo: DemoServer) -> None:
    """Pinned for type checkers (mypy runs on the tests), and run."""
    with buttress.Client(base_url=demo.url) as client:
        request = client.build_request("GET", "/users/1")
        assert_type(client.batch([request]), list[buttress.Response | Exception])
        assert_type(client.batch([request], return_exceptions=False), list[buttress.Response])
        with pytest.raises(TypeError):
            client.batch([("GET", "/users/1")])  # type: ignore[list-item]
    async with buttress.AsyncClient(base_url=demo.url) as aclient:
        request = aclient.build_request("GET", "/users/1")
        assert_type(await aclient.batch([request]), list[buttress.Response | Exception])
        responses = await aclient.batch([request], return_exceptions=False)
        assert_type(responses, list[buttress.Response])
        assert responses[0].json()["id"] == 1
