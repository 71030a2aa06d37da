"""CircuitBreakerTransport against the real demo API and under 100 concurrent callers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import anyio
import httpx
import pytest

import buttress
from buttress.policies.breaker import Permit
from buttress.testing import DemoServer, FakeClock
from buttress.transports import CircuitBreakerTransport, stack
from tests.conftest import Either
from tests.servers import free_port
from tests.transports.conftest import Plain

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too

_keys = count()


def breaking(config: buttress.CircuitBreakerConfig, clock: Any) -> Callable[[Any], Any]:
    return lambda inner: CircuitBreakerTransport(inner, config, clock=clock)


@pytest.mark.parametrize("mounted", [False, True], ids=["transport", "mounts"])
async def test_opens_fails_fast_and_recovers(
    plain: Callable[..., Plain], demo: DemoServer, mounted: bool
) -> None:
    clock = FakeClock()
    config = buttress.CircuitBreakerConfig(failure_threshold=2, reset_timeout=10)
    breaker = buttress.CircuitBreaker(config, clock=clock)
    client = plain(lambda inner: CircuitBreakerTransport(inner, breaker), mounted=mounted)
    name = f"breaker-{next(_keys)}"
    flaky = f"{demo.url}/flaky?key={name}&failures=2"
    assert (await client.get(flaky)).status_code == 503
    assert (await client.get(flaky)).status_code == 503
    hits = demo.app.hits["/flaky"]
    with pytest.raises(buttress.CircuitBreakerOpenError) as caught:
        await client.get(flaky)
    assert demo.app.hits["/flaky"] == hits  # no network call
    assert caught.value.host == "127.0.0.1"
    assert caught.value.retry_after == pytest.approx(10)
    assert isinstance(caught.value, httpx.TransportError)

    clock.advance(10)  # half-open: one trial call goes through
    assert (await client.get(flaky)).status_code == 200
    assert (await client.get(flaky)).status_code == 200
    assert breaker.state == "closed"
    changes = [(c.from_state, c.to_state) for c in breaker.metrics.state_changes]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_fallback_answers_while_open(plain: Callable[..., Plain], demo: DemoServer) -> None:
    def fallback(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"cached": True}, request=request)

    config = buttress.CircuitBreakerConfig(failure_threshold=1, fallback=fallback)
    client = plain(breaking(config, FakeClock()))
    assert (await client.get(f"{demo.url}/status/500")).status_code == 500
    assert (await client.get(f"{demo.url}/users/1")).json() == {"cached": True}


async def test_caller_mistakes_never_count(plain: Callable[..., Plain], demo: DemoServer) -> None:
    config = buttress.CircuitBreakerConfig(failure_threshold=1)
    transport: list[CircuitBreakerTransport] = []

    def layer(inner: Any) -> CircuitBreakerTransport:
        transport.append(CircuitBreakerTransport(inner, config, clock=FakeClock()))
        return transport[0]

    client = plain(layer)
    with pytest.raises(httpx.UnsupportedProtocol):
        await client.get("ftp://127.0.0.1/file")
    assert (await client.get(f"{demo.url}/status/404")).status_code == 404
    assert transport[0].breaker.state == "closed"
    assert transport[0].breaker.metrics.failure_count == 0


async def test_connection_errors_count(plain: Callable[..., Plain]) -> None:
    config = buttress.CircuitBreakerConfig(failure_threshold=1)
    client = plain(breaking(config, FakeClock()))
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get("http://127.0.0.1:1/")


async def test_slow_calls_to_the_slow_endpoint_open_the_circuit(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    config = buttress.CircuitBreakerConfig(
        slow_call_duration=0.05, slow_call_rate_threshold=1.0, minimum_calls=2
    )
    breaker = buttress.CircuitBreaker(config)  # the real clock: the server really is slow
    client = plain(lambda inner: CircuitBreakerTransport(inner, breaker))
    for _ in range(2):
        assert (await client.get(f"{demo.url}/slow?delay=0.1")).status_code == 200
    assert breaker.state == "open"
    assert breaker.metrics.slow_call_count == 2
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get(f"{demo.url}/users/1")


# -- through buttress.Client ---------------------------------------------------------------------


async def test_client_exposes_the_breaker(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    config = buttress.CircuitBreakerConfig(failure_threshold=3)
    client = make_client(base_url=demo.url, retry=False, circuit_breaker=config)
    breaker = client.client.circuit_breaker
    assert breaker is not None
    assert breaker.state == "closed"
    breaker.force_open()
    with pytest.raises(buttress.CircuitBreakerOpenError) as caught:
        await client.get("/users/1")
    assert caught.value.retry_after is None  # forced: no automatic recovery
    assert breaker.metrics.rejected_count == 1
    breaker.force_close()
    assert (await client.get("/users/1")).status_code == 200
    breaker.reset()
    assert breaker.state == "closed"


async def test_attempts_that_run_out_of_the_total_deadline_count_as_failures(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # The deadline ends a hung attempt with its read timeout, which the breaker beneath
    # the retry layer sees; cutting the attempt off above it would hide the failure.
    config = buttress.CircuitBreakerConfig(failure_threshold=2)
    client = make_client(base_url=demo.url, retry=False, circuit_breaker=config)
    total = buttress.TimeoutConfig(total=0.2)
    for _ in range(2):
        with pytest.raises(buttress.TimeoutError, match="ran out during attempt 1"):
            await client.get("/slow", params={"delay": 5}, timeout=total)
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get("/slow", params={"delay": 5}, timeout=total)


async def test_the_clients_clock_times_the_breakers_reset(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # Regression: the facade built its breaker on the system clock, so a client given
    # a FakeClock could not pass the reset timeout without really waiting.
    clock = FakeClock()
    config = buttress.CircuitBreakerConfig(failure_threshold=1, reset_timeout=30)
    client = make_client(base_url=demo.url, retry=False, circuit_breaker=config, clock=clock)
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    breaker = client.client.circuit_breaker
    assert breaker is not None
    states = [breaker.state]
    clock.advance(30)
    states.append(breaker.state)
    assert states == ["open", "half_open"]
    assert (await client.get("/users/1")).status_code == 200


async def test_client_without_a_breaker_has_none(client: Either) -> None:
    assert client.client.circuit_breaker is None


async def test_breaker_inside_retry_judges_each_attempt_and_is_not_retried(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # The second 503 opens the circuit for 60 s: the retry layer ends there with the
    # server's answer instead of sleeping its backoff for an attempt the circuit would
    # refuse unsent (it used to, then raised CircuitBreakerOpenError, the 503 lost).
    clock = FakeClock()
    retry = buttress.RetryConfig(max_attempts=5, backoff_factor=1, jitter="none")
    config = buttress.CircuitBreakerConfig(failure_threshold=2, reset_timeout=60)
    client = make_client(base_url=demo.url, retry=retry, circuit_breaker=config, clock=clock)
    hits = demo.app.hits["/status/503"]
    with pytest.raises(buttress.ServerError) as failed:
        await client.get("/status/503")
    assert demo.app.hits["/status/503"] - hits == 2  # two attempts opened it; no more were sent
    assert clock.sleeps == [1.0]  # the backoff between them, none after
    assert failed.value.response.extensions["buttress.attempts"] == 2
    assert failed.value.retry_after == pytest.approx(60)  # when the circuit lets a call through
    assert getattr(failed.value, "__notes__", None) == [
        "buttress: not retried: the circuit breaker opened; it lets a call through in 60s"
    ]
    breaker = client.client.circuit_breaker
    assert breaker is not None
    assert breaker.metrics.failure_count == 2
    with pytest.raises(buttress.CircuitBreakerOpenError):  # the next call fails fast
        await client.get("/status/503")


@pytest.mark.parametrize("backoff", [0.5, 61.0], ids=["shorter", "longer"])
async def test_retry_above_a_breaker_on_a_plain_client_returns_the_last_answer(
    plain: Callable[..., Plain], demo: DemoServer, backoff: float
) -> None:
    # Drop-in: a backoff shorter than the circuit's reset ends the retries with the
    # server's last answer; when every backoff outlasts it, each retry is a trial call.
    clock = FakeClock()
    retry = buttress.RetryConfig(
        max_attempts=3, backoff_factor=backoff, backoff_max=120, jitter="none"
    )
    breaker = buttress.CircuitBreakerConfig(failure_threshold=1, reset_timeout=60)
    client = plain(lambda inner: stack(inner, retry=retry, circuit_breaker=breaker, clock=clock))
    hits = demo.app.hits["/status/503"]
    response = await client.get(f"{demo.url}/status/503")
    assert response.status_code == 503
    sent = demo.app.hits["/status/503"] - hits
    assert (sent, response.extensions["buttress.attempts"]) == ((1, 1) if backoff < 60 else (3, 3))
    assert "buttress.circuit_open_for" not in response.request.extensions  # read by retry


async def test_retry_above_a_breaker_with_a_fallback_gets_the_fallbacks_answer(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    # An open circuit with a fallback still answers: the retry goes on to that answer.
    def fallback(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"cached": True}, request=request)

    clock = FakeClock()
    retry = buttress.RetryConfig(max_attempts=3, backoff_factor=0.5, jitter="none")
    breaker = buttress.CircuitBreakerConfig(failure_threshold=1, fallback=fallback)
    client = plain(lambda inner: stack(inner, retry=retry, circuit_breaker=breaker, clock=clock))
    response = await client.get(f"{demo.url}/status/503")
    assert (response.status_code, response.json()) == (200, {"cached": True})
    assert clock.sleeps == [0.5]


async def test_per_host_breakers(make_client: Callable[..., Either], demo: DemoServer) -> None:
    config = buttress.CircuitBreakerConfig(failure_threshold=1, per_host=True)
    client = make_client(base_url=demo.url, retry=False, circuit_breaker=config)
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    breaker = client.client.circuit_breaker
    assert breaker is not None
    assert breaker.for_host("127.0.0.1").state == "open"
    assert breaker.for_host("localhost").state == "closed"
    localhost = demo.url.replace("127.0.0.1", "localhost")
    assert (await client.get(f"{localhost}/users/1")).status_code == 200
    with pytest.raises(buttress.CircuitBreakerOpenError) as refused:
        await client.get("/users/1")
    assert str(refused.value).startswith("circuit breaker for 127.0.0.1 is open")


async def test_the_shared_circuit_says_it_is_every_hosts(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # Failures at 127.0.0.1 open the one circuit; a call to localhost is refused by it, and
    # the error must not blame localhost's circuit.
    config = buttress.CircuitBreakerConfig(failure_threshold=1)
    client = make_client(base_url=demo.url, retry=False, circuit_breaker=config)
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    localhost = demo.url.replace("127.0.0.1", "localhost")
    with pytest.raises(buttress.CircuitBreakerOpenError) as refused:
        await client.get(f"{localhost}/users/1")
    assert str(refused.value).startswith(
        f"every host's circuit breaker is open: GET {localhost}/users/1 was not sent"
    )
    assert refused.value.host == "localhost"  # where the refused request was going


# -- the half-open cap under 100 concurrent callers -------------------------------------------


def half_open_transport(
    handler: Any, clock: FakeClock, max_calls: int = 3
) -> CircuitBreakerTransport:
    config = buttress.CircuitBreakerConfig(
        failure_threshold=1, reset_timeout=5, half_open_max_calls=max_calls, success_threshold=3
    )
    transport = CircuitBreakerTransport(httpx.MockTransport(handler), config, clock=clock)
    circuit = transport.breaker.for_host("api.example.com")
    permit = circuit.acquire()
    assert isinstance(permit, Permit)
    circuit.record(permit, failure=True, duration=0.0)
    clock.advance(5)
    assert transport.breaker.state == "half_open"
    return transport


def test_half_open_cap_under_100_threads() -> None:
    release = threading.Event()
    admitted = count()
    rejected: list[buttress.CircuitBreakerOpenError] = []
    done = threading.Event()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        next(admitted)
        assert release.wait(timeout=10)
        return httpx.Response(200)

    transport = half_open_transport(handler, FakeClock())
    statuses: list[int] = []
    with httpx.Client(transport=transport) as client:

        def call() -> None:
            try:
                statuses.append(client.get("https://api.example.com/x").status_code)
            except buttress.CircuitBreakerOpenError as error:
                with lock:
                    rejected.append(error)
                    if len(rejected) == 97:
                        done.set()

        threads = [threading.Thread(target=call) for _ in range(100)]
        for thread in threads:
            thread.start()
        assert done.wait(timeout=10)  # 97 are turned away while 3 are in flight
        release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert next(admitted) == 3
    assert statuses == [200, 200, 200]
    assert transport.breaker.state == "closed"
    assert transport.breaker.metrics.rejected_count == 97


async def test_half_open_cap_under_100_tasks() -> None:
    release = anyio.Event()
    admitted = count()
    rejected: list[buttress.CircuitBreakerOpenError] = []
    statuses: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        next(admitted)
        await release.wait()
        return httpx.Response(200)

    transport = half_open_transport(handler, FakeClock())
    async with httpx.AsyncClient(transport=transport) as client:

        async def call() -> None:
            try:
                statuses.append((await client.get("https://api.example.com/x")).status_code)
            except buttress.CircuitBreakerOpenError as error:
                rejected.append(error)
                if len(rejected) == 97:
                    release.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(100):
                    tg.start_soon(call)
    assert next(admitted) == 3
    assert statuses == [200, 200, 200]
    assert transport.breaker.state == "closed"


async def test_a_cancelled_trial_call_gives_its_slot_back() -> None:
    clock = FakeClock()
    started = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    transport = half_open_transport(handler, clock, max_calls=1)
    async with httpx.AsyncClient(transport=transport) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.get, "https://api.example.com/x")
                await started.wait()
                tg.cancel_scope.cancel()
    circuit = transport.breaker.for_host("api.example.com")
    assert isinstance(circuit.acquire(), Permit)  # the slot is free again


# -- the retry layer above a circuit that opened: unit cases on a canned network -----------


def _retrying(
    answer: Callable[[httpx.Request], httpx.Response],
    breaker: buttress.CircuitBreakerConfig,
    clock: FakeClock,
    **retry: Any,
) -> httpx.Client:
    config = buttress.RetryConfig(jitter="none", budget=None, **retry)
    layers = stack(httpx.MockTransport(answer), retry=config, circuit_breaker=breaker, clock=clock)
    return httpx.Client(transport=layers)


def test_a_retried_status_the_breaker_does_not_count_still_ends_when_the_circuit_opened() -> None:
    # A slow 429 opens the circuit by its slow-call rate; 429 itself is no breaker failure.
    clock = FakeClock()

    def slow_429(request: httpx.Request) -> httpx.Response:
        clock.advance(5)
        return httpx.Response(429)

    breaker = buttress.CircuitBreakerConfig(
        slow_call_duration=1, slow_call_rate_threshold=1.0, minimum_calls=1, reset_timeout=60
    )
    with _retrying(slow_429, breaker, clock, max_attempts=3, backoff_factor=1) as client:
        response = client.get("https://api.test/")
    assert (response.status_code, response.extensions["buttress.attempts"]) == (429, 1)
    assert clock.sleeps == []


def test_the_circuit_is_judged_at_the_backoff_not_when_the_headers_came() -> None:
    # The body takes 50 s to read; the circuit (60 s) lets a trial call through 10 s after
    # it, within the 20 s backoff: the retry goes on.
    clock = FakeClock()
    answers = iter([503, 200])

    class SlowBody(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            clock.advance(50)
            yield b"x"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), stream=SlowBody())

    breaker = buttress.CircuitBreakerConfig(failure_threshold=1, reset_timeout=60)
    with _retrying(answer, breaker, clock, max_attempts=2, backoff_factor=20) as client:
        response = client.get("https://api.test/", extensions=buttress.options(streamed=False))
    assert (response.status_code, clock.sleeps) == (200, [20.0])


def test_the_breakers_note_does_not_outlive_the_attempt() -> None:
    # An attempt that runs out of the deadline leaves the retry layer by another path.
    clock = FakeClock()

    def timing_out(request: httpx.Request) -> httpx.Response:
        clock.advance(5)
        raise httpx.ReadTimeout("read timed out", request=request)

    breaker = buttress.CircuitBreakerConfig(failure_threshold=1, reset_timeout=60)
    with _retrying(timing_out, breaker, clock, max_attempts=3) as client:
        request = client.build_request(
            "GET", "https://api.test/", extensions=buttress.options(total_timeout=3)
        )
        with pytest.raises(buttress.TimeoutError):
            client.send(request)
    assert "buttress.circuit_open_for" not in request.extensions
