"""Streaming against the demo API: SSE, reconnection, downloads, uploads, limits, truncation."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import buttress
from buttress.streaming import EventStream, aiter_file, iter_file, iter_sse, track_upload
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # streaming, size limits and truncation over the aiohttp backend too

PATTERN = bytes(range(256)) * 256


async def events(stream: EventStream) -> list[buttress.ServerSentEvent]:
    if isinstance(stream._client, buttress.AsyncClient):
        return [event async for event in stream]
    return list(stream)


# --- SSE --------------------------------------------------------------------------------------

WIRE = (
    b": a comment\r\n"
    b"retry: 2500\n\n"
    b"id: 7\nevent: update\ndata: first line\ndata: second line\n\n"
    b"data: no id field, keeps the last\n\n"
    b'data:{"k": 1}\r\n\r\n'
)


def _sse(content: Any) -> buttress.Response:
    return buttress.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def test_iter_sse_follows_the_whatwg_rules() -> None:
    got = list(_sse(WIRE).iter_sse())
    assert [(e.event, e.data, e.id) for e in got] == [
        ("update", "first line\nsecond line", "7"),
        ("message", "no id field, keeps the last", "7"),
        ("message", '{"k": 1}', "7"),
    ]
    assert got[2].json() == {"k": 1}


async def test_aiter_sse_splits_across_chunks() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(WIRE), 3):
            yield WIRE[i : i + 3]

    got = [event.data async for event in _sse(chunks()).aiter_sse()]
    assert got == ["first line\nsecond line", "no id field, keeps the last", '{"k": 1}']


def test_iter_sse_refuses_other_content_types() -> None:
    with pytest.raises(buttress.DecodingError, match="text/event-stream"):
        list(iter_sse(buttress.Response(200, json={})))


async def test_sse_stream_from_the_demo(client: Either) -> None:
    stream = EventStream(client.client, "/events", params={"count": 3})
    assert [e.json()["n"] for e in await events(stream)] == [1, 2, 3]
    assert (stream.last_event_id, stream.reconnects, stream.retry) == ("3", 0, 0.1)


async def _not_json_events(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI: one event whose data is JSON, then one whose data is not."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/event-stream")]
    body = b'data: {"n": 1}\n\nid: 7\nevent: update\ndata: {"n": 2, oops}\n\n'
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_an_event_that_is_not_json_raises_our_error_naming_it(
    make_client: Any,
) -> None:
    with DemoServer(_not_json_events) as server:
        either = make_client(base_url=server.url)
        got = await events(EventStream(either.client, "/", max_reconnects=0))
    assert got[0].json() == {"n": 1}
    with pytest.raises(buttress.InvalidJSONError) as caught:
        got[1].json()
    error = caught.value
    assert str(error) == (
        "invalid JSON in server-sent event 'update' (id '7'): Expecting property name enclosed "
        "in double quotes at line 1 column 10 (char 9), near '{\"n\": 2, oops}'"
    )
    assert isinstance(error, buttress.DecodingError)
    assert isinstance(error, json.JSONDecodeError)  # what httpx-sse's json() raised
    assert (error.pos, error.doc) == (9, '{"n": 2, oops}')
    assert isinstance(got[1], buttress.ServerSentEvent)


def test_an_event_nested_too_deeply_raises_our_error() -> None:
    deep = buttress.ServerSentEvent(data="[" * 100_000)
    with pytest.raises(buttress.InvalidJSONError, match="server-sent event 'message': nested"):
        deep.json()


async def test_reconnects_with_last_event_id_and_honours_retry(make_client: Any) -> None:
    clock = FakeClock()
    with DemoServer() as server:
        either = make_client(base_url=server.url)
        stream = EventStream(
            either.client, "/events", params={"count": 6, "drop_after": 3}, clock=clock
        )
        got = await events(stream)
    assert [e.id for e in got] == ["1", "2", "3", "4", "5", "6"]  # no gap, no repeat
    assert stream.reconnects == 1
    assert clock.sleeps == [0.1]  # the demo's "retry: 100"
    assert server.app.hits["/events"] == 2


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"data:\n\n", [("message", "")]),  # one empty data line is an event
        (b"event: typed\ndata\n\n", [("typed", "")]),
        (b"event: ping\n\ndata: after\n\n", [("message", "after")]),  # no data: none
        (b"id: 1\n\ndata: a\n\n", [("message", "a")]),
    ],
)
def test_whatwg_dispatch_needs_a_data_line(wire: bytes, expected: list[tuple[str, str]]) -> None:
    # HTML 9.2.6, "dispatch the event": an empty data buffer dispatches nothing, whatever
    # the event type; one data line, even empty, is an event.
    assert [(e.event, e.data) for e in _sse(wire).iter_sse()] == expected


def test_a_retry_of_any_length_is_read() -> None:
    # Python's int() refuses 5,000 digits; past any int64 the value reads as a day.
    wire = b"retry: " + b"9" * 5000 + b"\ndata: a\n\nretry: 1500\ndata: b\n\n"
    assert [(e.data, e.retry) for e in _sse(wire).iter_sse()] == [("a", 86_400_000), ("b", 1500)]


class Scripted:
    """ASGI: connection ``n`` gets ``scripts[n]`` and, but for the last, is cut off there.

    ``last_ids`` keeps the raw ``Last-Event-ID`` each connection sent (``None``: none).
    """

    def __init__(self, *scripts: bytes) -> None:
        self.scripts = scripts
        self.last_ids: list[bytes | None] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.last_ids.append(dict(scope["headers"]).get(b"last-event-id"))
        script = self.scripts[len(self.last_ids) - 1]
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        cut = len(self.last_ids) < len(self.scripts)
        await send({"type": "http.response.body", "body": script, "more_body": cut})
        # returning with more_body set: the server closes the connection mid-response


@pytest.mark.parametrize(
    ("first", "sent", "last_event_id", "waits"),
    [
        # an empty id resets the last event id: no Last-Event-ID on reconnection
        pytest.param(b"id: 5\ndata: a\n\nid\ndata: b\n\n", None, "", [3.0], id="id-reset"),
        # any id without NUL is valid, and goes back as UTF-8
        pytest.param(
            "id: évé-1\ndata: a\n\n".encode(), "évé-1".encode(), "évé-1", [3.0], id="utf-8-id"
        ),
        # a retry line counts when read, though its block never ends
        pytest.param(b"id: 2\ndata: a\n\nretry: 250\n", b"2", "2", [0.25], id="retry-at-once"),
    ],
)
async def test_reconnection_follows_whatwg(
    make_client: Any, first: bytes, sent: bytes | None, last_event_id: str, waits: list[float]
) -> None:
    clock, app = FakeClock(), Scripted(first, b"data: done\n\n")
    with DemoServer(app) as server:
        either = make_client(base_url=server.url)
        stream = EventStream(either.client, "/", clock=clock)
        got = await events(stream)
    assert got[-1].data == "done"
    assert app.last_ids == [None, sent]
    assert stream.last_event_id == last_event_id
    assert clock.sleeps == waits


async def test_resumes_from_a_given_last_event_id(client: Either) -> None:
    stream = EventStream(client.client, "/events", params={"count": 4}, last_event_id="2")
    assert [e.id for e in await events(stream)] == ["3", "4"]


async def test_gives_up_after_max_reconnects(client: Either) -> None:
    stream = EventStream(
        client.client, "/status/503", max_reconnects=2, clock=FakeClock(), retry=1.5
    )
    with pytest.raises(buttress.ServerError):
        await events(stream)
    assert stream.reconnects == 2


async def test_a_204_ends_the_stream_without_reconnecting(make_client: Any) -> None:
    clock = FakeClock()
    with DemoServer() as server:
        either = make_client(base_url=server.url)
        stream = EventStream(either.client, "/status/204", clock=clock)
        assert await events(stream) == []
    assert (stream.reconnects, clock.sleeps) == (0, [])
    assert server.app.hits["/status/204"] == 1


async def test_event_stream_refuses_the_wrong_loop(demo: DemoServer) -> None:
    async with buttress.AsyncClient(base_url=demo.url) as async_client:
        with pytest.raises(TypeError, match="async for"):
            next(iter(EventStream(async_client, "/events")))
    with buttress.Client(base_url=demo.url) as sync_client, pytest.raises(TypeError, match="'for'"):
        await EventStream(sync_client, "/events").__aiter__().__anext__()


# --- response streaming ------------------------------------------------------------------------


async def test_iter_bytes_text_and_lines(client: Either) -> None:
    body = await client.stream_bytes("GET", "/download", params={"size": 200_000})
    assert body == (PATTERN * 4)[:200_000]
    if isinstance(client.client, buttress.Client):
        with client.client.stream("GET", "/download", params={"size": 100_000}) as response:
            sizes = {len(chunk) for chunk in response.iter_bytes(chunk_size=10_000)}
        assert sizes == {10_000}
        with client.client.stream("GET", "/events", params={"count": 2}) as response:
            lines = list(response.iter_lines())
        assert "event: tick" in lines


# --- downloads ---------------------------------------------------------------------------------


async def test_download_writes_the_file_with_progress(client: Either, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    target = tmp_path / "blob.bin"
    saved = await client.download(
        "/download",
        target,
        params={"size": 300_000},
        progress=lambda done, total: calls.append((done, total)),
        chunk_size=1000,  # several chunks per network read
    )
    assert saved == target
    assert target.read_bytes() == (PATTERN * 5)[:300_000]
    assert calls[0] == (0, 300_000)
    assert calls[-1] == (300_000, 300_000)
    done = [done for done, _ in calls]
    assert done == sorted(set(done)), "each call reports new bytes, so the final one comes once"
    assert list(tmp_path.iterdir()) == [target]


async def test_download_progress_counts_the_bytes_written(client: Either, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    target = tmp_path / "zeros.bin"
    await client.download(
        "/compressed",
        target,
        params={"size": 200_000},
        progress=lambda done, total: calls.append((done, total)),
    )
    assert target.stat().st_size == 200_000
    assert calls[-1] == (200_000, None)  # the file's bytes, not the compressed ones


async def test_download_of_unknown_size_reports_none(client: Either, tmp_path: Path) -> None:
    totals = set()
    await client.download(
        "/download",
        tmp_path / "c.bin",
        params={"size": 1000, "chunked": "1"},
        progress=lambda done, total: totals.add(total),
    )
    assert totals == {None}


@pytest.mark.parametrize(
    ("url", "params", "error"),
    [
        ("/truncated", {"size": 100_000, "send": 50_000}, buttress.IncompleteResponseError),
        ("/status/500", {}, buttress.ServerError),
    ],
)
async def test_failed_download_leaves_no_file(
    client: Either, tmp_path: Path, url: str, params: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.download(url, tmp_path / "x.bin", params=params)
    assert list(tmp_path.iterdir()) == []


async def test_download_keeps_an_existing_file_on_failure(client: Either, tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(done: int, total: int | None) -> None:
        if done:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        await client.download("/download", target, params={"size": 1000}, progress=boom)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


# --- uploads -----------------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "upload.bin"
    path.write_bytes(PATTERN * 48)  # 3 MiB
    return path


async def test_file_upload_streams_in_chunks_with_progress(client: Either, big_file: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    body = aiter_file(big_file) if client.is_async else iter_file(big_file)
    request = client.client.build_request("POST", "/upload", content=body)
    response = await client.send(track_upload(request, lambda d, t: calls.append((d, t))))
    data = big_file.read_bytes()
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert response.json()["transfer_encoding"] == "chunked"  # never held whole
    assert calls[-1] == (len(data), None)
    assert len(calls) == len(data) // (64 * 1024) + 1


async def test_multipart_upload_streams_the_file(client: Either, big_file: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    with big_file.open("rb") as handle:
        request = client.client.build_request("POST", "/upload", files={"file": handle})
        response = await client.send(track_upload(request, lambda d, t: calls.append((d, t))))
    result = response.json()
    assert result["content_type"].startswith("multipart/form-data; boundary=")
    assert result["size"] > big_file.stat().st_size
    assert calls[-1] == (result["size"], result["size"])
    assert len(calls) > 10  # the file went out chunk by chunk


async def test_generator_body(client: Either) -> None:
    if client.is_async:

        async def agen() -> AsyncIterator[bytes]:
            for part in (b"a", b"b", b"c"):
                yield part

        response = await client.post("/upload", content=agen())
    else:
        response = await client.post("/upload", content=iter([b"a", b"b", b"c"]))
    assert response.json()["size"] == 3


# --- size limit and truncation -----------------------------------------------------------------


async def test_size_limit_from_content_length(make_client: Any, demo: DemoServer) -> None:
    either = make_client(base_url=demo.url, max_response_size=1000)
    with pytest.raises(buttress.ResponseTooLargeError, match=r"max_response_size=1000") as info:
        await either.get("/download", params={"size": 5000})
    assert (info.value.limit, info.value.received) == (1000, 5000)
    assert "Client(max_response_size=...)" in str(info.value)


async def test_size_limit_while_a_chunked_body_arrives(make_client: Any, demo: DemoServer) -> None:
    either = make_client(base_url=demo.url, max_response_size=100_000)
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        await either.get("/download", params={"size": 10_000_000, "chunked": "1"})
    assert 100_000 < info.value.received <= 100_000 + len(PATTERN)  # stopped at the limit


async def test_size_limit_per_call_and_for_streams(make_client: Any, demo: DemoServer) -> None:
    either = make_client(base_url=demo.url, max_response_size=1000)
    response = await either.get("/download", params={"size": 5000}, max_response_size=10_000)
    assert len(response.content) == 5000
    assert len(await either.stream_bytes("GET", "/download", params={"size": 5000})) == 5000
    with pytest.raises(buttress.ResponseTooLargeError):
        await either.stream_bytes("GET", "/download", params={"size": 5000}, max_response_size=10)


async def test_default_limit_is_100_mb(demo: DemoServer) -> None:
    with (
        buttress.Client(base_url=demo.url) as sync_client,
        pytest.raises(buttress.ResponseTooLargeError, match="104857600"),
    ):
        sync_client.get("/download", params={"size": 100 * 1024 * 1024 + 1})


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_truncated_body_is_reported_with_the_bytes_received(
    client: Either, chunked: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="buttress")
    params = {"size": 10_000, "send": 4_000, "chunked": chunked}
    with pytest.raises(buttress.IncompleteResponseError) as info:
        await client.get("/truncated", params=params)
    error = info.value
    assert isinstance(error, httpx.RemoteProtocolError)
    assert isinstance(error, buttress.ConnectionError)
    assert (error.received, error.partial) == (4_000, b"x" * 4_000)
    assert error.expected == (None if chunked == "1" else 10_000)
    assert "cut off after 4000" in caplog.text


async def test_truncated_stream(client: Either) -> None:
    with pytest.raises(buttress.IncompleteResponseError) as info:
        await client.stream_bytes("GET", "/truncated", params={"size": 10_000, "send": 10})
    assert (info.value.received, info.value.partial) == (10, b"")


async def test_head_and_304_have_no_body_to_check(client: Either) -> None:
    response = await client.head("/download", params={"size": 5000})
    assert response.headers["content-length"] == "5000"
    first = await client.get("/cacheable", params={"key": "stream-304"})
    again = await client.get(
        "/cacheable",
        params={"key": "stream-304"},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304
