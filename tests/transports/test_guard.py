"""The body guard's decisions, driven by hand (no I/O)."""

from __future__ import annotations

import httpx
import pytest

import buttress
from buttress.streaming import _Reconnection
from buttress.transports.guard import BodyGuard

REQUEST = httpx.Request("GET", "https://user:secret@api.example.com/x?token=abc")


def guard(headers: dict[str, str], *, limit: int | None = None, status: int = 200) -> BodyGuard:
    return BodyGuard(REQUEST, httpx.Headers(headers), status, limit=limit, keep=True)


def test_limit_stops_before_keeping_the_chunk_that_crosses_it() -> None:
    g = guard({}, limit=10)
    g.chunk(b"12345")
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        g.chunk(b"123456")
    assert (info.value.limit, info.value.received) == (10, 11)
    assert "secret" not in str(info.value)


def test_short_body_without_a_transport_error_is_still_caught() -> None:
    g = guard({"content-length": "10"})
    g.chunk(b"1234")
    with pytest.raises(buttress.IncompleteResponseError) as info:
        g.finish()
    assert (info.value.received, info.value.expected, info.value.partial) == (4, 10, b"1234")


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 304), ("GET", 204)])
def test_bodiless_answers_are_not_checked(method: str, status: int) -> None:
    g = BodyGuard(
        httpx.Request(method, "https://x"), httpx.Headers({"content-length": "9"}), status, limit=1
    )
    g.check_declared()
    g.finish()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], None),
        ([(b"Content-Length", b"10")], 10),
        ([(b"CONTENT-LENGTH", b" 10 ")], 10),  # any case, padded: as httpx's get gives it
        ([(b"content-length", b"")], None),
        ([(b"content-length", b"ten")], None),
        ([(b"content-length", b"10"), (b"content-length", b"10")], None),  # "10, 10"
        ([(b"X-Content-Length", b"10")], None),
    ],
)
def test_the_declared_length_is_what_httpx_reads(
    raw: list[tuple[bytes, bytes]], expected: int | None
) -> None:
    headers = httpx.Headers(raw)
    assert BodyGuard(REQUEST, headers, 200, limit=None).expected == expected
    declared = headers.get("content-length")  # what the guard read before its one pass
    assert expected == (int(declared) if declared and declared.strip().isdigit() else None)


@pytest.mark.parametrize("name", [b"Content-Encoding", b"content-encoding"])
def test_an_encoded_body_is_measured_decoded_too(name: bytes) -> None:
    headers = httpx.Headers([(b"Content-Length", b"10"), (name, b"gzip")])
    assert BodyGuard(REQUEST, headers, 200, limit=100)._inflated is not None
    assert BodyGuard(REQUEST, headers, 200, limit=None)._inflated is None  # no limit to keep
    assert (
        BodyGuard(REQUEST, httpx.Headers({"content-length": "10"}), 200, limit=100)._inflated
        is None
    )


def test_other_protocol_errors_pass_through() -> None:
    error = httpx.RemoteProtocolError("illegal header")
    assert guard({}).failed(error) is error


def test_reconnection_state() -> None:
    state = _Reconnection(None, retry=3.0, max_reconnects=1)
    assert "last-event-id" not in state.headers(None)
    assert state.retry == 3.0  # the caller's, until the server says
    state.source.retry_ms = 250  # what a parser does on "retry: 250"
    assert state.retry == 0.25
    state.source.retry_ms = 10**12
    assert state.retry == 86_400.0  # a day at most
    state.source.retry_ms = 250
    state.source.last_event_id = "9"  # what a parser does at the end of a block with "id: 9"
    headers = state.headers({"X-A": "1"})
    assert (headers["last-event-id"], headers["x-a"]) == ("9", "1")

    def drop() -> None:
        raise buttress.ConnectionError("dropped")

    with state.connection():
        drop()
    assert (state.delay, state.reconnects) == (0.25, 1)
    with state.connection():
        pass
    assert state.delay is None  # a clean end: the stream is over
    with pytest.raises(buttress.ConnectionError), state.connection():  # past max_reconnects
        drop()
