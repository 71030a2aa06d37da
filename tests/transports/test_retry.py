"""RetryTransport on the demo API: plain httpx, mounts and buttress.Client, sync and async."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import count
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.testing import DemoServer, FakeClock
from buttress.transports import RetryTransport
from tests.conftest import Either
from tests.servers import free_port
from tests.transports.conftest import Plain

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too

_keys = count()
FAST = buttress.RetryConfig(backoff_factor=0.001, jitter="none")


def key() -> str:
    return f"retry-{next(_keys)}"


def retrying(config: buttress.RetryConfig = FAST, clock: Any = None) -> Callable[[Any], Any]:
    return lambda inner: RetryTransport(inner, config, clock=clock or FakeClock())


# -- three ways in -----------------------------------------------------------------------------


@pytest.mark.parametrize("mounted", [False, True], ids=["transport", "mounts"])
async def test_plain_httpx_client_recovers_from_flaky(
    plain: Callable[..., Plain], demo: DemoServer, mounted: bool
) -> None:
    clock = FakeClock()
    client = plain(retrying(clock=clock), mounted=mounted)
    response = await client.get(f"{demo.url}/flaky?key={key()}&failures=2")
    assert response.json()["attempts"] == 3
    assert response.extensions["buttress.attempts"] == 3
    assert clock.sleeps == [0.001, 0.002]


async def test_buttress_client_recovers_and_reports_attempts(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    response = await client.get("/flaky", params={"key": key(), "failures": 2})
    assert response.attempts == 3
    assert response.json() == {"ok": True, "attempts": 3}


async def test_buttress_client_retries_by_default(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url)
    response = await client.get("/flaky", params={"key": key(), "failures": 1, "retry_after": 0})
    assert response.attempts == 2


async def test_buttress_client_raises_the_last_status_when_attempts_run_out(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    with pytest.raises(buttress.ServerError) as caught:
        await client.get("/flaky", params={"key": key(), "failures": 5})
    assert caught.value.status_code == 503
    assert "failure 3 of 5" in str(caught.value)


async def test_buttress_client_under_mounts(mode: str, demo: DemoServer) -> None:
    network: Any = httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()
    cls: Any = buttress.AsyncClient if mode == "async" else buttress.Client
    either = Either(cls(base_url=demo.url, retry=FAST, mounts={"http://127.0.0.1": network}))
    try:
        response = await either.get("/flaky", params={"key": key(), "failures": 2})
        assert response.attempts == 3
    finally:
        await either.aclose()


async def test_connection_errors_are_retried_then_raised_with_a_note(
    make_client: Callable[..., Either],
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}", retry=FAST)
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/users/1")
    assert isinstance(caught.value, httpx.ConnectError)
    assert any("3 attempts" in note for note in getattr(caught.value.__cause__, "__notes__", []))


# -- switching it off ----------------------------------------------------------------------------


async def test_retry_false_on_the_client_and_per_call(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    off = make_client(base_url=demo.url, retry=False)
    with pytest.raises(buttress.ServerError):
        await off.get("/flaky", params={"key": key(), "failures": 1})
    on = make_client(base_url=demo.url, retry=FAST)
    with pytest.raises(buttress.ServerError):
        await on.get("/flaky", params={"key": key(), "failures": 1}, retry=False)
    response = await off.get("/flaky", params={"key": key(), "failures": 1}, retry=FAST)
    assert response.attempts == 2


async def test_plain_client_per_request_override(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(retrying())
    url = f"{demo.url}/flaky?key={key()}&failures=1"
    response = await client.get(url, extensions=buttress.options(retry=False))
    assert response.status_code == 503


# -- what plain httpx retry transports cannot do -----------------------------------------------


async def test_a_body_that_breaks_mid_way_is_retried(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    response = await client.get("/flaky-body", params={"key": key(), "failures": 1})
    assert response.attempts == 2
    assert response.json()["attempts"] == 2


async def test_plain_client_reads_the_body_inside_when_told_it_is_not_streamed(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(retrying())
    url = f"{demo.url}/flaky-body?key={key()}&failures=1"
    response = await client.get(url, extensions=buttress.options(streamed=False))
    assert response.json()["attempts"] == 2


async def test_a_streamed_response_is_not_read_by_the_layer(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    body = await client.stream_bytes("GET", "/download", params={"size": 200_000})
    assert len(body) == 200_000


# -- Retry-After and the deadline ----------------------------------------------------------------


async def test_retry_after_from_the_server_is_waited_for(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    clock = FakeClock()
    client = plain(retrying(clock=clock))
    url = f"{demo.url}/flaky?key={key()}&failures=1&status=429&retry_after=2"
    assert (await client.get(url)).status_code == 200
    assert clock.sleeps == [2.0]


async def test_retry_after_longer_than_allowed_raises_rate_limit_error(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST.model_copy(update={"retry_after_max": 5}))
    params = {"key": key(), "failures": 1, "status": 429, "retry_after": 120}
    with pytest.raises(buttress.RateLimitError) as caught:
        await client.get("/flaky", params=params)
    assert caught.value.retry_after == 120
    assert any("retry_after_max" in note for note in getattr(caught.value, "__notes__", []))


async def test_a_stream_stopped_early_raises_with_its_body_and_why(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST.model_copy(update={"retry_after_max": 5}))
    params = {"key": key(), "failures": 1, "status": 429, "retry_after": 120}
    with pytest.raises(buttress.RateLimitError) as caught:
        await client.stream_bytes("GET", "/flaky", params=params)
    assert caught.value.retry_after == 120
    assert caught.value.response.extensions["buttress.attempts"] == 1
    assert "failure 1 of 1" in str(caught.value)  # the body was read for the message
    assert any("retry_after_max" in note for note in getattr(caught.value, "__notes__", []))


async def test_retry_after_past_the_deadline_raises_at_once(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST, timeout=buttress.TimeoutConfig(total=10))
    params = {"key": key(), "failures": 1, "retry_after": 20}
    with pytest.raises(buttress.ServerError) as caught:
        await client.get("/flaky", params=params)
    assert caught.value.retry_after == 20
    assert caught.value.response.extensions["buttress.attempts"] == 1
    assert any("total timeout" in note for note in getattr(caught.value, "__notes__", []))


async def test_a_streamed_answer_dropped_at_the_deadline_gives_its_connection_back(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # The next backoff would end past the deadline, so the layer raises at once; the
    # unread streamed 503 it held kept the only connection (the next call ran out of pool).
    slow_backoff = FAST.model_copy(update={"backoff_factor": 10.0})
    client = make_client(
        base_url=demo.url,
        max_connections=1,
        retry=slow_backoff,
        timeout=buttress.TimeoutConfig(total=5, pool=2),
    )
    with pytest.raises(buttress.TimeoutError, match="total timeout of 5s"):
        await client.stream_bytes("GET", "/flaky", params={"key": key(), "failures": 1})
    assert (await client.get("/users/1")).status_code == 200


async def test_total_timeout_is_one_deadline_for_the_request(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, timeout=buttress.TimeoutConfig(total=0.3))
    with pytest.raises(buttress.TimeoutError, match=r"total timeout of 0\.3s") as caught:
        await client.get("/slow", params={"delay": 5})
    assert isinstance(caught.value, httpx.TimeoutException)


async def _hops(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/hop/<n>`` redirects to ``/hop/<n - 1>``; ``/hop/0`` answers 200."""
    left = int(scope["path"].rpartition("/")[2])
    if left:
        headers = [(b"location", f"/hop/{left - 1}".encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_total_timeout_is_one_deadline_across_redirects(
    make_client: Callable[..., Either], mode: str
) -> None:
    # httpx sends each redirect hop through the layers anew; each hop started its own
    # deadline, so five hops of 0.4 s passed a 1 s total. The fake clock moves 0.4 s
    # as each hop's response arrives.
    clock = FakeClock()

    def hop(response: httpx.Response) -> None:
        clock.advance(0.4)

    async def ahop(response: httpx.Response) -> None:
        hop(response)

    with DemoServer(_hops) as server:
        client = make_client(
            base_url=server.url,
            clock=clock,
            timeout=buttress.TimeoutConfig(total=1.0),
            event_hooks={"response": [hop] if mode == "sync" else [ahop]},
        )
        with pytest.raises(buttress.TimeoutError, match="total timeout of 1s"):
            await client.get("/hop/5")
        assert clock.monotonic() == pytest.approx(1.2)  # three hops, then no fourth
        clock.advance(10)
        assert (await client.get("/hop/2")).status_code == 200  # a new call, a new deadline


async def test_per_call_timeout_total_overrides_the_client(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=False)
    with pytest.raises(buttress.TimeoutError, match="total timeout"):
        await client.get("/slow", params={"delay": 5}, timeout=buttress.TimeoutConfig(total=0.2))


async def _unavailable_then_drips(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A 503 asking to come back in 2.5 s, whose 100-byte body takes 5 s to arrive."""
    headers = [(b"retry-after", b"2.5"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    for index in range(100):
        await send({"type": "http.response.body", "body": b"x", "more_body": index < 99})
        await anyio.sleep(0.05)


async def test_no_backoff_sleep_after_draining_a_streamed_answer_ran_out_the_deadline(
    make_client: Callable[..., Either],
) -> None:
    # A streamed response is drained before the retry; the drain stops at the 3 s
    # deadline, and the 2.5 s wait the server asked for must not be slept after it.
    # Tolerance: the call ends at the deadline, 3 s; sleeping too would end it at 5.5 s.
    with DemoServer(_unavailable_then_drips) as server:
        client = make_client(base_url=server.url, clock=buttress.SystemClock())
        started = time.monotonic()
        with pytest.raises(buttress.TimeoutError, match="ran out before attempt 2"):
            await client.stream_bytes("GET", "/", timeout=buttress.TimeoutConfig(total=3))
        assert time.monotonic() - started < 4.25


async def test_a_streamed_error_read_for_its_message_stops_at_the_total_deadline(
    make_client: Callable[..., Either],
) -> None:
    # The client reads the body of a streamed error that raises, for the error's message;
    # that read counts against the deadline too. Tolerance: the call ends at the 1 s
    # deadline; reading the whole body would take 5 s.
    with DemoServer(_unavailable_then_drips) as server:
        client = make_client(base_url=server.url, retry=False)
        started = time.monotonic()
        with pytest.raises(buttress.TimeoutError, match="ran out reading the error body") as caught:
            await client.stream_bytes("GET", "/", timeout=buttress.TimeoutConfig(total=1))
        assert time.monotonic() - started < 3.0
        assert caught.value.request.url.path == "/"


async def test_plain_client_deadline_via_options(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(lambda inner: RetryTransport(inner, FAST))
    with pytest.raises(buttress.TimeoutError):
        await client.get(f"{demo.url}/slow?delay=5", extensions=buttress.options(total_timeout=0.2))


@pytest.mark.parametrize(
    "extensions", [None, buttress.options(total_timeout=30)], ids=["bare", "options"]
)
async def test_plain_client_gets_the_response_when_retry_after_is_too_long(
    plain: Callable[..., Plain], demo: DemoServer, extensions: Any
) -> None:
    clock = FakeClock()
    client = plain(retrying(FAST.model_copy(update={"retry_after_max": 5}), clock=clock))
    url = f"{demo.url}/flaky?key={key()}&failures=1&status=503&retry_after=120"
    response = await client.get(url, extensions=extensions)
    assert (response.status_code, response.headers["retry-after"]) == (503, "120")
    assert clock.sleeps == []


async def test_plain_client_gets_the_response_when_the_body_cannot_be_replayed(
    plain: Callable[..., Plain], demo: DemoServer, mode: str
) -> None:
    client = plain(retrying())
    name = key()

    def chunks() -> Iterator[bytes]:
        yield b"once"

    async def achunks() -> AsyncIterator[bytes]:
        yield b"once"

    body: Any = achunks() if mode == "async" else chunks()
    response = await client.request("PUT", f"{demo.url}/flaky?key={name}&failures=1", content=body)
    assert response.status_code == 503
    after = await client.get(f"{demo.url}/flaky?key={name}&failures=1")
    assert after.json()["attempts"] == 2  # the server saw exactly one PUT


async def test_plain_client_gets_the_last_response_when_attempts_run_out(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(retrying())
    response = await client.get(f"{demo.url}/flaky?key={key()}&failures=5")
    assert response.status_code == 503
    assert response.extensions["buttress.attempts"] == 3


# -- bodies and idempotency --------------------------------------------------------------------


async def test_a_generator_body_is_sent_once_and_the_error_says_why(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    name = key()

    def chunks() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    async def achunks() -> AsyncIterator[bytes]:
        yield b'{"a": 1}'

    body: Any = achunks() if client.is_async else chunks()
    with pytest.raises(buttress.ServerError) as caught:
        await client.put("/flaky", params={"key": name, "failures": 1}, content=body, retry=FAST)
    assert any("cannot be sent twice" in note for note in getattr(caught.value, "__notes__", []))
    after = await client.get("/flaky", params={"key": name, "failures": 1})
    assert after.json()["attempts"] == 2  # the server saw exactly one PUT


async def test_post_is_retried_with_generated_idempotency_keys(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    config = FAST.model_copy(update={"idempotency_keys": True})
    network = KeyRecorder()
    client = make_client(base_url=demo.url, retry=config, transport=network)
    response = await client.post("/flaky", params={"key": key(), "failures": 2}, json={"a": 1})
    assert response.attempts == 3
    assert len(network.keys) == 3
    assert len(set(network.keys)) == 1
    assert network.keys[0] is not None


class KeyRecorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A network transport that notes the Idempotency-Key each attempt carried."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self._sync, self._async = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()


async def test_post_without_a_key_is_not_retried(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, retry=FAST)
    with pytest.raises(buttress.ServerError):
        await client.post("/flaky", params={"key": key(), "failures": 1}, json={"a": 1})


# -- the budget under concurrency --------------------------------------------------------------


def test_budget_accounting_under_100_threads() -> None:
    budget_config = buttress.RetryBudgetConfig(ratio=0.2, min_per_second=0)
    config = buttress.RetryConfig(max_attempts=2, budget=budget_config, jitter="none")
    barrier = threading.Barrier(100, timeout=10)
    seen: set[int] = set()
    lock = threading.Lock()
    sends = count()

    def handler(request: httpx.Request) -> httpx.Response:
        next(sends)
        with lock:
            first = id(request) not in seen
            seen.add(id(request))
        if first:
            barrier.wait()  # every first attempt is counted before anyone retries
        return httpx.Response(503)

    transport = RetryTransport(httpx.MockTransport(handler), config, clock=FakeClock())
    results: list[int] = []
    with httpx.Client(transport=transport) as client:

        def call() -> None:
            results.append(client.get("https://api.example.com/x").status_code)

        threads = [threading.Thread(target=call) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert results == [503] * 100
    assert next(sends) == 120  # 100 first attempts + 20% retries
    assert transport.budget is not None
    assert transport.budget.exhausted_count == 80


async def test_budget_accounting_under_100_tasks() -> None:
    budget_config = buttress.RetryBudgetConfig(ratio=0.2, min_per_second=0)
    config = buttress.RetryConfig(max_attempts=2, budget=budget_config, jitter="none")
    seen: set[int] = set()
    all_in = anyio.Event()
    sends = count()

    async def handler(request: httpx.Request) -> httpx.Response:
        next(sends)
        if id(request) not in seen:
            seen.add(id(request))
            if len(seen) == 100:
                all_in.set()
            await all_in.wait()
        return httpx.Response(503)

    transport = RetryTransport(httpx.MockTransport(handler), config, clock=FakeClock())
    async with httpx.AsyncClient(transport=transport) as client:

        async def call() -> None:
            assert (await client.get("https://api.example.com/x")).status_code == 503

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(call)
    assert next(sends) == 120
    assert transport.budget is not None
    assert transport.budget.exhausted_count == 80
