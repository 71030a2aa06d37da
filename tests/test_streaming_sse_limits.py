"""Server-sent events are bounded: a line or an event past ``max_event_size`` raises.

Hostile streams come from an ASGI app on 127.0.0.1: a line that never ends,
an event whose data lines never stop. Both facades and the aiohttp backend read
them; peak memory is measured with tracemalloc.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

import buttress
from buttress.streaming import MAX_EVENT_SIZE, EventStream, iter_sse
from buttress.testing import DemoServer, FakeClock
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True

PIECE = 64 * 1024  # what the hostile server writes at a time
HOSTILE = 16 << 20  # what it would send in all, were the client to keep reading
# One line up to the limit, the decoded chunk that crosses it and the server's
# pieces: far below the 16 MiB an unbounded reader would hold.
PEAK_BOUND = 4 * MAX_EVENT_SIZE


class HostileEvents:
    """``GET /line``: ``data: xxx...`` never ending; ``GET /event``: data lines, no blank one.

    ``?size=`` caps what is sent (default 16 MiB); ``/event`` takes ``width=`` per line.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        size = int(query.get("size", HOSTILE))
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if scope["path"] == "/line":
            pieces = [b"data: "] + [b"x" * PIECE] * (size // PIECE)
        else:
            width = int(query["width"])
            line = b"data: " + b"y" * width + b"\n"
            pieces = [line * max(1, PIECE // len(line))] * max(1, size // PIECE)
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"\n\n", "more_body": False})


@pytest.fixture(scope="module")
def hostile() -> Iterator[DemoServer]:
    with DemoServer(HostileEvents()) as server:
        yield server


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


async def events(either: Either, url: str, **sse: Any) -> list[buttress.ServerSentEvent]:
    """The events of ``GET url``, read with ``response.iter_sse`` / ``aiter_sse``."""
    if isinstance(either.client, buttress.AsyncClient):
        async with either.client.stream("GET", url) as response:
            return [event async for event in response.aiter_sse(**sse)]
    with either.client.stream("GET", url) as response:
        return list(response.iter_sse(**sse))


async def drain(stream: EventStream) -> list[buttress.ServerSentEvent]:
    if isinstance(stream._client, buttress.AsyncClient):
        return [event async for event in stream]
    return list(stream)


async def test_a_line_that_never_ends_stops_at_the_default_bound(
    make_client: Callable[..., Either], hostile: DemoServer
) -> None:
    either = make_client(base_url=hostile.url)
    with peak_memory() as peak, pytest.raises(buttress.ResponseTooLargeError) as info:
        await events(either, "/line")
    assert info.value.limit == MAX_EVENT_SIZE == 1 << 20
    assert MAX_EVENT_SIZE < info.value.received <= MAX_EVENT_SIZE + PIECE
    assert "a line of the event stream from GET http://127.0.0.1" in str(info.value)
    assert "max_event_size=1048576" in str(info.value)
    assert peak[0] < PEAK_BOUND, f"peak {peak[0]:,} bytes for a {MAX_EVENT_SIZE:,}-byte bound"


async def test_an_event_that_never_ends_stops_at_the_bound(
    make_client: Callable[..., Either], hostile: DemoServer
) -> None:
    either = make_client(base_url=hostile.url)
    with peak_memory() as peak, pytest.raises(buttress.ResponseTooLargeError) as info:
        await events(either, "/event?width=1000")
    assert MAX_EVENT_SIZE < info.value.received <= MAX_EVENT_SIZE + 1001
    assert "an event's data" in str(info.value)
    assert peak[0] < PEAK_BOUND, f"peak {peak[0]:,} bytes for a {MAX_EVENT_SIZE:,}-byte bound"


async def test_the_bound_is_configurable_and_can_be_lifted(
    make_client: Callable[..., Either], hostile: DemoServer
) -> None:
    either = make_client(base_url=hostile.url)
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        await events(either, "/event?width=100&size=100000", max_event_size=5000)
    assert (info.value.limit, info.value.received) == (5000, 5050)  # 50 lines of 101 bytes
    got = await events(either, f"/event?width=1000&size={2 << 20}", max_event_size=None)
    assert len(got) == 1
    assert len(got[0].data) > MAX_EVENT_SIZE


async def test_event_stream_raises_instead_of_reconnecting(
    make_client: Callable[..., Either], hostile: DemoServer
) -> None:
    either = make_client(base_url=hostile.url)
    clock = FakeClock()
    stream = EventStream(either.client, "/line", max_event_size=10_000, clock=clock)
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        await drain(stream)
    assert info.value.limit == 10_000
    assert (stream.reconnects, clock.sleeps) == (0, [])


# --- the parser, fed by hand -------------------------------------------------------------------


def _sse(chunks: list[bytes]) -> buttress.Response:
    return buttress.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )


WIRE = (
    b"\xef\xbb\xbf: a byte order mark opens the stream\r\n"
    b"retry: 2500\r\r"
    b"retry: soon\nid: 7\nevent: update\ndata: first line\rdata:second line\r\n\r\n"
    b"id: with\x00nul\ndata: the id with a NUL is ignored\n\n"
    b"data: caf\xc3\xa9\n\n"
    b"data: never finished"
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, len(WIRE)])
def test_lines_split_anywhere_read_the_same(step: int) -> None:
    chunks = [WIRE[i : i + step] for i in range(0, len(WIRE), step)]
    got = [(e.event, e.data, e.id, e.retry) for e in iter_sse(_sse(chunks))]
    assert got == [
        ("update", "first line\nsecond line", "7", None),
        ("message", "the id with a NUL is ignored", "7", None),
        ("message", "café", "7", None),
    ]


@pytest.mark.parametrize("step", [1, 4096])
def test_a_line_and_an_event_of_exactly_the_bound_pass(step: int) -> None:
    line = b"data: " + b"z" * 994  # 1000 bytes
    wire = line + b"\n\n"
    chunks = [wire[i : i + step] for i in range(0, len(wire), step)]
    assert [len(e.data) for e in iter_sse(_sse(chunks), max_event_size=1000)] == [994]
    with pytest.raises(buttress.ResponseTooLargeError, match="a line of the event stream"):
        list(iter_sse(_sse(chunks), max_event_size=999))
    event = b"data: " + b"z" * 498 + b"\ndata: " + b"z" * 499 + b"\n\n"  # 499 + 500 data bytes
    assert [len(e.data) for e in iter_sse(_sse([event]), max_event_size=999)] == [998]
    with pytest.raises(buttress.ResponseTooLargeError, match="an event's data"):
        list(iter_sse(_sse([event]), max_event_size=998))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1MB"])
def test_a_bad_bound_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(buttress.ConfigurationError, match="max_event_size"):
        iter_sse(_sse([b""]), max_event_size=bad)
    with buttress.Client() as client, pytest.raises(buttress.ConfigurationError):
        EventStream(client, "/events", max_event_size=bad)


def test_the_response_methods_share_the_default() -> None:
    import inspect

    for method in (buttress.Response.iter_sse, buttress.Response.aiter_sse):
        default = inspect.signature(method).parameters["max_event_size"].default
        assert default == MAX_EVENT_SIZE
