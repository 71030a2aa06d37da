"""The retry flow, driven with a scripted inner transport and a fake clock (no real sleeping).

Every test runs the one flow through both drivers: ``drive`` (sync) and ``adrive`` (async).
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import tenacity

import buttress
from buttress._extensions import DEADLINE_KEY, METRICS_EXTENSION
from buttress._flow import adrive, drive
from buttress._response import raise_for_status
from buttress.policies.budget import InMemoryRetryBudget
from buttress.policies.retry import (
    Attempt,
    RetryConfig,
    RetryPolicy,
    body_is_replayable,
    retry_flow,
)
from buttress.testing import FakeClock

pytestmark = pytest.mark.anyio

URL = "https://api.example.com/things"
NO_JITTER = RetryConfig(jitter="none", budget=None)

Step = int | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """An inner transport's answers, in order: a status, an exception to raise, or a factory."""

    def __init__(self, *steps: Step, headers: dict[str, str] | None = None) -> None:
        self.steps = list(steps)
        self.headers = headers or {}
        self.sent: list[httpx.Request] = []
        self.timeouts: list[dict[str, float | None]] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        self.timeouts.append(dict(request.extensions.get("timeout", {})))
        if isinstance(request.stream, httpx.SyncByteStream):
            self.bodies.append(b"".join(request.stream))
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, int):
            return httpx.Response(
                step, headers=self.headers, json={"status": step}, request=request
            )
        return step(request)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run(
    mode: str,
    script: Script,
    request: httpx.Request | None = None,
    config: RetryConfig = NO_JITTER,
    clock: FakeClock | None = None,
    budget: InMemoryRetryBudget | None = None,
) -> httpx.Response:
    request = request or get()
    clock = clock or FakeClock()
    policy = RetryPolicy(config, budget, rng=lambda: 0.5)
    flow = retry_flow(policy, request, clock)
    inner = httpx.MockTransport(script)
    if mode == "sync":
        return drive(flow, inner, clock)
    return await adrive(flow, inner, clock)


def raised(response: httpx.Response, kind: type[buttress.HTTPError]) -> buttress.HTTPError:
    """The error the facade raises for ``response`` (it alone raises for status)."""
    with pytest.raises(kind) as caught:
        raise_for_status(response)
    return caught.value


def get(**options: Any) -> httpx.Request:
    """A request as the facade sends it: raising for status unless told otherwise."""
    options.setdefault("raise_for_status", True)
    return httpx.Request("GET", URL, extensions=buttress.options(**options))


# -- what is retried -------------------------------------------------------------------------


async def test_retry_statuses_are_retried_with_exponential_backoff(mode: str) -> None:
    clock = FakeClock()
    script = Script(503, 502, 200)
    response = await run(mode, script, clock=clock)
    assert response.status_code == 200
    assert response.extensions["buttress.attempts"] == 3
    assert clock.sleeps == [0.5, 1.0]


async def test_max_attempts_counts_the_first_attempt(mode: str) -> None:
    script = Script(503)
    response = await run(mode, script, config=NO_JITTER.model_copy(update={"max_attempts": 4}))
    assert len(script.sent) == 4
    assert response.status_code == 503  # the final response is returned as usual
    assert response.extensions["buttress.attempts"] == 4


async def test_statuses_outside_the_list_are_not_retried(mode: str) -> None:
    script = Script(404, 200)
    response = await run(mode, script)
    assert response.status_code == 404
    assert len(script.sent) == 1


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
)
async def test_connection_errors_and_timeouts_are_retried(mode: str, error: Exception) -> None:
    script = Script(error, 200)
    response = await run(mode, script)
    assert response.status_code == 200
    assert len(script.sent) == 2


@pytest.mark.parametrize(
    "error",
    [httpx.PoolTimeout("pool full"), httpx.UnsupportedProtocol("ftp"), httpx.InvalidURL("bad")],
)
async def test_caller_mistakes_are_not_retried(mode: str, error: Exception) -> None:
    script = Script(error, 200)
    with pytest.raises(type(error)):
        await run(mode, script)
    assert len(script.sent) == 1


async def test_last_error_is_raised_with_a_note_after_the_last_attempt(mode: str) -> None:
    script = Script(httpx.ConnectError("refused"))
    with pytest.raises(httpx.ConnectError) as caught:
        await run(mode, script)
    assert len(script.sent) == 3
    assert any("3 attempts" in note for note in getattr(caught.value, "__notes__", []))


# -- idempotency -------------------------------------------------------------------------------


async def test_post_is_not_retried_by_default(mode: str) -> None:
    script = Script(503, 200)
    request = httpx.Request("POST", URL, json={"a": 1}, extensions=buttress.options())
    response = await run(mode, script, request)
    assert response.status_code == 503
    assert len(script.sent) == 1


async def test_post_with_an_idempotency_key_is_retried(mode: str) -> None:
    script = Script(503, 200)
    request = httpx.Request(
        "POST", URL, json={"a": 1}, headers={"Idempotency-Key": "k1"}, extensions=buttress.options()
    )
    assert (await run(mode, script, request)).status_code == 200


async def test_post_declared_idempotent_is_retried(mode: str) -> None:
    script = Script(503, 200)
    options = buttress.options(idempotent=True)
    request = httpx.Request("POST", URL, json={"query": "{ a }"}, extensions=options)
    assert (await run(mode, script, request)).status_code == 200
    assert len(script.sent) == 2


async def test_post_is_retried_when_configured(mode: str) -> None:
    config = NO_JITTER.model_copy(update={"retry_methods": frozenset({"POST"})})
    script = Script(503, 200)
    request = httpx.Request("POST", URL, json={"a": 1}, extensions=buttress.options())
    assert (await run(mode, script, request, config=config)).status_code == 200


async def test_post_is_retried_when_the_connection_failed_before_sending(mode: str) -> None:
    script = Script(httpx.ConnectError("refused"), 200)
    request = httpx.Request("POST", URL, json={"a": 1}, extensions=buttress.options())
    assert (await run(mode, script, request)).status_code == 200


async def test_idempotency_keys_are_generated_once_and_reused(mode: str) -> None:
    config = NO_JITTER.model_copy(update={"idempotency_keys": True})
    script = Script(503, 503, 201)
    request = httpx.Request("POST", URL, json={"a": 1}, extensions=buttress.options())
    response = await run(mode, script, request, config=config)
    assert response.status_code == 201
    keys = {sent.headers["Idempotency-Key"] for sent in script.sent}
    assert len(keys) == 1
    assert len(keys.pop()) == 36  # a UUID4


# -- bodies ----------------------------------------------------------------------------------


def test_which_bodies_can_be_replayed(tmp_path: Any) -> None:
    def gen() -> Iterator[bytes]:
        yield b"x"

    async def agen() -> AsyncIterator[bytes]:
        yield b"x"

    path = tmp_path / "upload.bin"
    path.write_bytes(b"data")
    with path.open("rb") as file:
        assert body_is_replayable(httpx.Request("PUT", URL, content=file))
        assert body_is_replayable(httpx.Request("PUT", URL, files={"f": file}))
    assert body_is_replayable(httpx.Request("PUT", URL, content=b"abc"))
    assert body_is_replayable(httpx.Request("PUT", URL, content=[b"a", b"b"]))
    assert body_is_replayable(httpx.Request("PUT", URL, data={"a": "b"}))
    assert not body_is_replayable(httpx.Request("PUT", URL, content=gen()))
    assert not body_is_replayable(httpx.Request("PUT", URL, content=agen()))


async def test_a_generator_body_is_never_sent_twice() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"part one, "
        yield b"part two"

    script = Script(httpx.ReadError("reset"), 200)
    request = httpx.Request(
        "PUT", URL, content=chunks(), extensions=buttress.options(raise_for_status=True)
    )
    with pytest.raises(httpx.ReadError) as caught:
        await run("sync", script, request)  # a sync generator only goes to a sync transport
    assert len(script.sent) == 1
    assert any("cannot be sent twice" in note for note in getattr(caught.value, "__notes__", []))


async def test_an_async_generator_body_is_never_sent_twice() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"part"

    script = Script(503, 200)
    request = httpx.Request(
        "PUT", URL, content=chunks(), extensions=buttress.options(raise_for_status=True)
    )
    error = raised(await run("async", script, request), buttress.ServerError)
    assert len(script.sent) == 1
    assert any("cannot be sent twice" in note for note in getattr(error, "__notes__", []))


async def test_a_file_body_is_re_read_from_its_start() -> None:
    file = io.BytesIO(b"0123456789")
    file.seek(2)
    script = Script(503, 200)
    request = httpx.Request("PUT", URL, content=file, extensions=buttress.options())
    assert (await run("sync", script, request)).status_code == 200  # sync-only body in httpx
    assert script.bodies == [b"23456789", b"23456789"]


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": formatdate(1_700_000_000 + 12, usegmt=True)}, 12.0),
        # no Retry-After, a rate limit used up: wait for its reset (GitHub's rule)
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000020"}, 20.0),
        ({"RateLimit": '"default";r=0;t=15'}, 15.0),
        ({"Retry-After": "3", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "50"}, 3.0),
    ],
)
async def test_retry_after_is_honoured(mode: str, headers: dict[str, str], expected: float) -> None:
    clock = FakeClock()
    script = Script(429, 200, headers=headers)
    assert (await run(mode, script, clock=clock)).status_code == 200
    assert clock.sleeps == [pytest.approx(expected)]


async def test_a_rate_limit_not_used_up_is_no_reason_to_wait_for_its_reset(mode: str) -> None:
    clock = FakeClock()
    said = {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1700000040"}
    script = Script(429, 200, headers=said)
    assert (await run(mode, script, clock=clock)).status_code == 200
    assert clock.sleeps[0] < 40  # the backoff, not the reset


async def test_retry_after_longer_than_the_cap_stops_at_once(mode: str) -> None:
    clock = FakeClock()
    script = Script(429, 200, headers={"Retry-After": "600"})
    response = await run(mode, script, clock=clock)
    assert response.status_code == 429  # handed back: only the facade raises for status
    assert clock.sleeps == []
    assert len(script.sent) == 1
    error = raised(response, buttress.RateLimitError)
    assert error.retry_after == 600
    assert any("retry_after_max" in note for note in getattr(error, "__notes__", []))


async def test_retry_after_past_the_deadline_stops_at_once(mode: str) -> None:
    script = Script(503, 200, headers={"Retry-After": "20"})
    response = await run(mode, script, get(total_timeout=10))
    assert len(script.sent) == 1
    assert raised(response, buttress.ServerError).retry_after == 20


async def test_a_response_the_policy_did_not_stop_early_on_carries_no_stop(mode: str) -> None:
    response = await run(mode, Script(503), config=NO_JITTER.model_copy(update={"max_attempts": 2}))
    assert response.extensions["buttress.attempts"] == 2
    assert "buttress.retry_stop" not in response.extensions
    assert not getattr(raised(response, buttress.ServerError), "__notes__", [])


async def test_stopping_early_respects_expected_statuses(mode: str) -> None:
    script = Script(429, 200, headers={"Retry-After": "600"})
    response = await run(mode, script, get(raise_for_status=False))
    assert response.status_code == 429


# -- the deadline ------------------------------------------------------------------------------


async def test_each_attempt_gets_only_the_time_left(mode: str) -> None:
    clock = FakeClock()
    script = Script(503, 503, 200)
    timeout = httpx.Timeout(5.0).as_dict()
    request = httpx.Request(
        "GET", URL, extensions={**buttress.options(total_timeout=3.0), "timeout": timeout}
    )
    assert (await run(mode, script, request, clock=clock)).status_code == 200
    assert script.timeouts[0] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}
    assert script.timeouts[1]["read"] == pytest.approx(2.5)  # after the 0.5s backoff
    assert script.timeouts[2]["read"] == pytest.approx(1.5)  # after a further 1s


async def test_a_backoff_that_would_pass_the_deadline_raises_timeout_at_once(mode: str) -> None:
    clock = FakeClock()
    config = NO_JITTER.model_copy(update={"backoff_factor": 5.0})
    with pytest.raises(buttress.TimeoutError, match="total timeout"):
        await run(mode, Script(503), get(total_timeout=3.0), config=config, clock=clock)
    assert clock.sleeps == []


async def test_a_timeout_cut_short_by_the_deadline_is_a_buttress_timeout(mode: str) -> None:
    with pytest.raises(buttress.TimeoutError, match="ran out during attempt 1") as caught:
        await run(mode, Script(httpx.ReadTimeout("slow")), get(total_timeout=1.0))
    assert isinstance(caught.value, httpx.TimeoutException)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_a_timeout_the_deadline_did_not_shorten_is_retried(mode: str) -> None:
    timeout = {"connect": 1.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    request = httpx.Request(
        "GET", URL, extensions={**buttress.options(total_timeout=10.0), "timeout": timeout}
    )
    script = Script(httpx.ConnectTimeout("slow handshake"), 200)
    assert (await run(mode, script, request)).status_code == 200
    assert request.extensions["timeout"] == timeout  # the request is left as it came


async def test_a_request_without_a_deadline_is_left_as_it_came(mode: str) -> None:
    timeout = httpx.Timeout(5.0).as_dict()
    request = httpx.Request("GET", URL, extensions={**buttress.options(), "timeout": timeout})
    script = Script(503, 200)
    assert (await run(mode, script, request)).status_code == 200
    assert script.timeouts == [timeout, timeout]  # no deadline: every attempt as given
    assert request.extensions["timeout"] is timeout
    assert DEADLINE_KEY not in request.extensions


async def test_elapsed_and_the_reported_duration_span_the_attempt_and_its_body(
    mode: str,
) -> None:
    clock = FakeClock()

    durations: list[float] = []

    class Collector:
        def attempt_finished(self, **fields: Any) -> None:
            durations.append(fields["duration"])

    class SlowBody(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            clock.advance(2.0)
            yield b"{}"

        async def __aiter__(self) -> AsyncIterator[bytes]:
            clock.advance(2.0)
            yield b"{}"

    def answer(request: httpx.Request) -> httpx.Response:
        clock.advance(1.0)
        return httpx.Response(200, stream=SlowBody(), request=request)

    request = get()
    request.extensions[METRICS_EXTENSION] = Collector()
    response = await run(mode, Script(answer), request, clock=clock)
    assert response.elapsed.total_seconds() == 3.0
    assert durations == [3.0]


async def test_a_failed_attempt_whose_backoff_passes_the_deadline_raises_timeout(
    mode: str,
) -> None:
    config = NO_JITTER.model_copy(update={"backoff_factor": 5.0})
    with pytest.raises(buttress.TimeoutError, match="would pass") as caught:
        await run(
            mode, Script(httpx.ConnectError("refused")), get(total_timeout=3.0), config=config
        )
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


class OversleepingClock(FakeClock):
    """A clock whose sleeps run long, as real ones under load do."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds * 3)


async def test_an_attempt_never_starts_once_the_deadline_has_passed(mode: str) -> None:
    clock = OversleepingClock()
    script = Script(503, 200)
    with pytest.raises(buttress.TimeoutError, match="before attempt 2"):
        await run(mode, script, get(total_timeout=1.0), clock=clock)
    assert len(script.sent) == 1


async def test_stopping_early_on_a_stream_says_why_on_the_response(mode: str) -> None:
    script = Script(429, headers={"Retry-After": "600"})
    response = await run(mode, script, get(streamed=True))
    assert response.extensions["buttress.retry_stop"].retry_after == 600
    assert raised(response, buttress.RateLimitError).response.json() == {"status": 429}


async def test_no_attempt_starts_after_the_deadline(mode: str) -> None:
    clock = FakeClock()

    def slow_503(request: httpx.Request) -> httpx.Response:
        clock.advance(5.0)  # this attempt used up the whole deadline
        return httpx.Response(503)

    with pytest.raises(buttress.TimeoutError):
        await run(mode, Script(slow_503), get(total_timeout=5.0), clock=clock)


# -- switches, budget, tenacity ----------------------------------------------------------------


async def test_retry_false_per_request_sends_once(mode: str) -> None:
    script = Script(503, 200)
    assert (await run(mode, script, get(retry=False))).status_code == 503
    assert len(script.sent) == 1


async def test_a_retry_config_per_request_replaces_the_layers(mode: str) -> None:
    script = Script(503)
    await run(mode, script, get(retry=RetryConfig(max_attempts=5, jitter="none", budget=None)))
    assert len(script.sent) == 5


async def test_an_empty_budget_stops_retries_and_logs(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    budget = InMemoryRetryBudget(ratio=0.0, min_per_second=0.0)
    script = Script(503, 200)
    with caplog.at_level(logging.WARNING, logger="buttress.retry"):
        response = await run(mode, script, budget=budget)
    assert response.status_code == 503
    assert budget.exhausted_count == 1
    assert "retry budget" in caplog.text


async def test_every_retry_logs_a_warning_with_reason_and_delay(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="buttress.retry"):
        await run(mode, Script(503, 200))
    assert "in 0.50s" in caplog.text
    assert "503 Service Unavailable" in caplog.text


async def test_tenacity_wait_and_stop_strategies_are_accepted(mode: str) -> None:
    clock = FakeClock()
    config = RetryConfig(
        wait=tenacity.wait_fixed(3), stop=tenacity.stop_after_attempt(4), budget=None
    )
    script = Script(503)
    await run(mode, script, config=config, clock=clock)
    assert len(script.sent) == 4
    assert clock.sleeps == [3, 3, 3]


async def test_tenacity_strategies_see_exceptions_too(mode: str) -> None:
    def wait(state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        assert isinstance(state.outcome.exception(), httpx.ConnectError)
        return 1.5

    clock = FakeClock()
    config = RetryConfig(wait=wait, budget=None)
    await run(mode, Script(httpx.ConnectError("refused"), 200), config=config, clock=clock)
    assert clock.sleeps == [1.5]


def test_tenacity_stop_after_delay_sees_the_fake_clock() -> None:
    policy = RetryPolicy(RetryConfig(stop=tenacity.stop_after_delay(10), budget=None))
    request = httpx.Request("GET", URL)
    response = httpx.Response(503, request=request)
    early = Attempt(1, response, now=5.0, epoch=0.0, started=0.0, deadline=None, replayable=True)
    late = Attempt(2, response, now=11.0, epoch=0.0, started=0.0, deadline=None, replayable=True)
    assert policy.decide(request, early).action == "retry"
    assert policy.decide(request, late).action == "done"


def test_next_delay_applies_only_the_backoff_and_the_stop_rule() -> None:
    lost = ConnectionResetError("the connection was lost")  # not an httpx failure: still judged

    def attempt(number: int, now: float) -> Attempt:
        return Attempt(number, lost, now, epoch=0.0, started=0.0, deadline=None, replayable=True)

    built_in = RetryPolicy(RetryConfig(max_attempts=3, backoff_factor=1.0, jitter="none"))
    assert [built_in.next_delay(attempt(n, 0.0)) for n in (1, 2, 3)] == [1.0, 2.0, None]
    config = RetryConfig(wait=tenacity.wait_fixed(4), stop=tenacity.stop_after_delay(10))
    strategies = RetryPolicy(config)
    assert strategies.next_delay(attempt(5, now=9.0)) == 4.0
    assert strategies.next_delay(attempt(6, now=10.0)) is None


def test_config_validation() -> None:
    with pytest.raises(buttress.ConfigurationError, match="max_attempts"):
        RetryConfig(max_attempts=0)
    with pytest.raises(buttress.ConfigurationError, match="tenacity strategy"):
        RetryConfig(wait="soon")
    assert RetryConfig(retry_methods=frozenset({"post"})).retry_methods == frozenset({"POST"})


# -- reading the body inside the attempt ----------------------------------------------------


class BrokenBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that fails halfway."""

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"half'
        raise httpx.ReadError("peer closed the connection")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"half'
        raise httpx.ReadError("peer closed the connection")


def broken(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=BrokenBody())


async def test_a_failure_while_reading_the_body_is_retried(mode: str) -> None:
    script = Script(broken, 200)
    response = await run(mode, script)
    assert response.json() == {"status": 200}
    assert len(script.sent) == 2


async def test_streamed_requests_are_handed_back_unread(mode: str) -> None:
    script = Script(broken)
    response = await run(mode, script, get(streamed=True))
    assert not response.is_stream_consumed
    response = await run(mode, Script(broken), httpx.Request("GET", URL))  # plain httpx
    assert not response.is_stream_consumed
