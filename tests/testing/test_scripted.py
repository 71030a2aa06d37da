"""ScriptedTransport: faults and answers in order, on a fake clock, for every kind of client."""

from __future__ import annotations

import json
import time

import httpx
import pytest

import buttress
from buttress.testing import Delay, Fail, FakeClock, Reply, Reset, ScriptedTransport, Step, Truncate

from .kinds import KINDS, client_of

pytestmark = pytest.mark.anyio

BASE = "https://api.example.test"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_fails_n_times_then_succeeds_and_records_requests(kind: str) -> None:
    transport = ScriptedTransport(Fail(httpx.ConnectError, times=2), Reply(json={"ok": True}))
    caller = client_of(kind, transport, BASE)
    expected = buttress.ConnectionError if caller.is_buttress else httpx.ConnectError
    for _ in range(2):
        with pytest.raises(expected) as caught:
            await caller.request("POST", "/orders", json={"qty": 1})
        assert isinstance(caught.value, httpx.ConnectError)
    assert (await caller.request("POST", "/orders", json={"qty": 1})).json() == {"ok": True}
    assert (await caller.get("/orders")).json() == {"ok": True}  # the last step repeats
    await caller.aclose()

    assert [r.method for r in transport.requests] == ["POST", "POST", "POST", "GET"]
    assert json.loads(transport.requests[0].content) == {"qty": 1}  # spacing: httpx's own
    assert "received=4" in repr(transport)


async def test_delays_move_the_injected_clock_not_real_time(kind: str) -> None:
    clock = FakeClock()
    transport = ScriptedTransport(Delay(30.0, then=Delay(5.0, then=Reply(204))), clock=clock)
    caller = client_of(kind, transport, BASE, timeout=httpx.Timeout(60.0))
    started = time.monotonic()
    assert (await caller.get("/slow")).status_code == 204
    await caller.aclose()
    assert clock.sleeps == [30.0, 5.0]
    assert time.monotonic() - started < 5  # nowhere near 35 s: nothing slept for real


async def test_a_delay_longer_than_the_read_timeout_times_out(kind: str) -> None:
    clock = FakeClock()
    transport = ScriptedTransport(Delay(10.0), clock=clock)
    caller = client_of(kind, transport, BASE, timeout=httpx.Timeout(5.0, read=2.0))
    expected = buttress.ReadTimeoutError if caller.is_buttress else httpx.ReadTimeout
    with pytest.raises(expected):
        await caller.get("/slow")
    await caller.aclose()
    assert clock.monotonic() == 2.0


async def test_status_answers_with_retry_after(kind: str) -> None:
    transport = ScriptedTransport(
        Reply.error(429, retry_after=2, headers={"X-RateLimit-Remaining": "0"}),
        Reply.error(503, "maintenance", retry_after=0.5),
        Reply(200, content=b"plain", headers={"Content-Type": "text/plain"}),
    )
    caller = client_of(kind, transport, BASE)
    if caller.is_buttress:
        with pytest.raises(buttress.RateLimitError) as limited:
            await caller.get("/x")
        assert limited.value.retry_after == 2.0
        with pytest.raises(buttress.ServerError, match="maintenance") as down:
            await caller.get("/x")
        assert down.value.retry_after == 0.5
    else:
        first = await caller.get("/x")
        assert (first.status_code, first.headers["retry-after"]) == (429, "2")
        assert first.headers["x-ratelimit-remaining"] == "0"
        second = await caller.get("/x")
        assert second.status_code == 503
        assert second.json()["error"]["message"] == "maintenance"
    assert (await caller.get("/x")).text == "plain"
    await caller.aclose()


async def test_connection_reset(kind: str) -> None:
    caller = client_of(kind, ScriptedTransport(Reset(), Reply(json=1)), BASE)
    expected = buttress.ConnectionError if caller.is_buttress else httpx.ReadError
    with pytest.raises(expected, match="reset"):
        await caller.get("/x")
    assert (await caller.get("/x")).json() == 1
    await caller.aclose()


async def test_truncated_body_breaks_mid_stream(kind: str) -> None:
    body = Reply(json={"name": "Ada Lovelace"})
    caller = client_of(kind, ScriptedTransport(Truncate(body, keep=5), Truncate(keep=0)), BASE)
    expected = buttress.ConnectionError if caller.is_buttress else httpx.RemoteProtocolError
    with pytest.raises(expected, match="complete message body"):
        await caller.get("/users/1")
    with pytest.raises(expected):
        await caller.stream_bytes("GET", "/users/1")
    await caller.aclose()


def test_truncate_keeps_the_promised_length_and_first_bytes() -> None:
    transport = ScriptedTransport(Truncate(Reply(content=b"0123456789"), keep=4))
    with httpx.Client(transport=transport) as client, client.stream("GET", BASE) as response:
        assert response.headers["content-length"] == "10"
        chunks = response.iter_raw()
        assert next(chunks) == b"0123"
        with pytest.raises(httpx.RemoteProtocolError):
            next(chunks)


def test_fail_with_an_exception_instance() -> None:
    error = httpx.ProxyError("proxy said no")
    with httpx.Client(transport=ScriptedTransport(Fail(error))) as client:
        with pytest.raises(httpx.ProxyError) as caught:
            client.get(BASE)
        assert caught.value is error


def test_a_script_needs_a_step() -> None:
    with pytest.raises(buttress.ConfigurationError):
        ScriptedTransport()


def test_a_step_alone_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Step().answer(httpx.Request("GET", BASE))


async def test_head_gets_the_headers_without_the_body(kind: str) -> None:
    transport = ScriptedTransport(
        Reply(json={"a": 1}), Truncate(Reply(content=b"0123456789"), keep=3), Reply(json={"a": 1})
    )
    caller = client_of(kind, transport, BASE)
    answered = await caller.head("/users/1")
    assert (answered.status_code, answered.content) == (200, b"")
    assert answered.headers["content-length"] == str(len(Reply(json={"a": 1}).body()))
    assert answered.headers["content-type"] == "application/json"
    cut = await caller.head("/users/1")  # no body to cut short: the headers are all there is
    assert (cut.content, cut.headers["content-length"]) == (b"", "10")
    assert (await caller.get("/users/1")).json() == {"a": 1}
    await caller.aclose()


async def test_no_content_answers_have_no_body_nor_length(kind: str) -> None:
    transport = ScriptedTransport(Reply(204), Reply(304, headers={"ETag": '"v1"'}))
    caller = client_of(kind, transport, BASE)
    deleted = await caller.delete("/users/1")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-length" not in deleted.headers  # RFC 9110 8.6
    unchanged = await caller.get("/users/1")
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert "content-length" not in unchanged.headers
    await caller.aclose()


def test_a_no_content_reply_with_a_body_is_refused() -> None:
    with pytest.raises(buttress.ConfigurationError, match="204 answer has no body"):
        Reply(204, json={"deleted": True})
    with pytest.raises(buttress.ConfigurationError, match="304 answer has no body"):
        Reply(304, content=b"stale")
    with pytest.raises(buttress.ConfigurationError, match="204 answer has no body"):
        Reply.error(204)
