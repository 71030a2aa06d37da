"""No layer reads a body its caller may be streaming: the response comes back at its headers.

A transport cannot tell whether httpx's caller streams: ``httpx.Client.send`` reads
the body after the transport returns unless ``stream=True``. So a layer that looks
at a body (the logging layer's sample) watches it go by, and one that must read it
(retry's read inside the attempt, the cache's store) does so only where the
facade said the caller will not stream.

The server sends one chunk of an event stream and then nothing, until the client
hangs up: a layer that reads the body to its end waits for ever, so every request
here has a read timeout, and such a layer fails the test with a timeout instead
of hanging it. Each case is compared with bare httpx on the same feed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from buttress import CacheConfig, LoggingConfig, RetryConfig
from buttress.testing import DemoServer
from buttress.transports import LoggingTransport, stack
from tests.conftest import Either
from tests.transports.conftest import Plain

pytestmark = pytest.mark.anyio

FIRST = b"data: hello\n\n"
# storable for an hour: a cache that kept a body by reading it would read this one
HEADERS = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: max-age=3600\r\ntransfer-encoding: chunked\r\n\r\n"
)
TIMEOUT = httpx.Timeout(10.0, read=3.0)  # a layer that reads to the end fails in 3 s
BODIES = LoggingConfig(log_bodies=True, slow_threshold=None)


class Feed:
    """An endless event stream on 127.0.0.1: one chunk, then silence until the client hangs up.

    ``/gzip`` sends the chunk gzip-compressed (``Content-Encoding: gzip``), flushed
    so it decodes on its own.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self._open.append(conn)
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            body, headers = FIRST, HEADERS
            if head.startswith(b"GET /gzip "):
                encoder = zlib.compressobj(wbits=31)
                body = encoder.compress(FIRST) + encoder.flush(zlib.Z_SYNC_FLUSH)
                headers = headers.replace(b"\r\n\r\n", b"\r\ncontent-encoding: gzip\r\n\r\n")
            conn.sendall(headers + b"%x\r\n%s\r\n" % (len(body), body))
            while conn.recv(65536):  # never another byte: wait for the client to hang up
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self._listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def feed() -> Iterator[Feed]:
    server = Feed()
    yield server
    server.close()


def done_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The ``buttress.request`` records of finished requests."""
    return [r for r in caplog.records if r.name == "buttress.request" and "->" in r.getMessage()]


async def first_chunk(response: httpx.Response, *, is_async: bool) -> bytes:
    """The first decoded chunk of ``response``, then the response closed."""
    if is_async:
        try:
            return await response.aiter_bytes().__anext__()
        finally:
            await response.aclose()
    try:
        return next(response.iter_bytes())
    finally:
        response.close()


async def streamed(either: Either[Any], url: str, **kwargs: Any) -> tuple[int, bytes]:
    """``client.stream(GET url)``: the status and the first chunk, the stream closed early."""
    client = either.client
    if isinstance(client, httpx.AsyncClient):
        async with client.stream("GET", url, timeout=TIMEOUT, **kwargs) as response:
            return response.status_code, await first_chunk(response, is_async=True)
    with client.stream("GET", url, timeout=TIMEOUT, **kwargs) as response:
        return response.status_code, await first_chunk(response, is_async=False)


async def sent_streamed(either: Either[Any], url: str) -> tuple[int, bytes]:
    """``client.send(request, stream=True)``: the status and the first chunk."""
    request = either.client.build_request("GET", url, timeout=TIMEOUT)
    response = await either.send(request, stream=True)
    return response.status_code, await first_chunk(response, is_async=either.is_async)


# -- a plain httpx client with our transports ---------------------------------------------------

Layer = Callable[[Any], Any]
LAYERS: dict[str, Layer] = {
    "logging": lambda network: LoggingTransport(network, BODIES),
    "stack": lambda network: stack(
        network, logging=BODIES, retry=RetryConfig(), cache=CacheConfig(), guard=True
    ),
}


@pytest.mark.parametrize("mounted", [False, True], ids=["transport", "mounted"])
@pytest.mark.parametrize("layer", list(LAYERS))
async def test_a_plain_httpx_stream_gets_its_response_at_the_headers(
    plain: Callable[..., Plain],
    feed: Feed,
    caplog: pytest.LogCaptureFixture,
    layer: str,
    mounted: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    bare = await streamed(plain(lambda network: network), f"{feed.url}/feed")
    assert bare == (200, FIRST)
    layered = await streamed(plain(LAYERS[layer], mounted=mounted), f"{feed.url}/feed")
    assert layered == bare
    # closed early: one record, with what the caller read
    [record] = done_records(caplog)
    assert record.response_body == FIRST.decode()  # type: ignore[attr-defined]


async def test_a_sample_of_a_compressed_stream_is_decoded(
    plain: Callable[..., Plain], feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    for limit, sample in ((2048, FIRST.decode()), (5, "data:... (13 bytes)")):
        config = LoggingConfig(log_bodies=True, body_limit=limit)
        client = plain(lambda network, config=config: LoggingTransport(network, config))
        assert await streamed(client, f"{feed.url}/gzip") == (200, FIRST)
        record = done_records(caplog)[-1]
        assert record.response_body == sample  # type: ignore[attr-defined]


async def test_a_body_read_whole_is_logged_once_with_its_sample(
    plain: Callable[..., Plain], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    config = LoggingConfig(log_bodies=True, body_limit=10)
    client = plain(lambda network: LoggingTransport(network, config))
    response = await client.get(f"{demo.url}/download", params={"size": 5000, "chunked": 1})
    assert len(response.content) == 5000
    [record] = done_records(caplog)  # written before httpx's send returned
    assert record.response_body == f"{response.text[:10]}... (5000 bytes)"  # type: ignore[attr-defined]
    assert len(await client.stream_bytes("GET", f"{demo.url}/download?size=3")) == 3
    assert len(done_records(caplog)) == 2  # read to its end in a stream: one more record


async def test_a_body_that_breaks_off_is_logged_once_with_the_error(
    plain: Callable[..., Plain], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    url = f"{demo.url}/truncated?size=100&send=10"
    with pytest.raises(httpx.RemoteProtocolError) as bare:
        await plain(lambda network: network).get(url)
    client = plain(lambda network: LoggingTransport(network, BODIES))
    with pytest.raises(httpx.RemoteProtocolError) as layered:
        await client.get(url)
    assert str(layered.value) == str(bare.value)
    [record] = done_records(caplog)
    assert record.error.startswith("RemoteProtocolError: ")  # type: ignore[attr-defined]
    assert len(record.response_body) == 10  # type: ignore[attr-defined]


# -- buttress's clients ------------------------------------------------------------------------

FACADES: dict[str, dict[str, Any]] = {
    "logging bodies": {"logging": BODIES},
    "retry, no logging": {"logging": False, "max_response_size": None},
    "cache": {"cache": CacheConfig(), "max_response_size": None},
    "response hook": {"event_hooks": {"response": [lambda response: None]}},
}


@pytest.mark.parametrize("options", list(FACADES))
async def test_the_facade_streams_what_it_is_asked_to(
    make_client: Callable[..., Either], feed: Feed, options: str
) -> None:
    client = make_client(base_url=feed.url, retry=RetryConfig(max_attempts=1), **FACADES[options])
    assert await sent_streamed(client, "/feed") == (200, FIRST)
    assert await streamed(client, "/feed") == (200, FIRST)


async def test_the_facades_mounts_stream_too(
    make_client: Callable[..., Either], mode: str, feed: Feed
) -> None:
    network = httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()
    client = make_client(mounts={f"{feed.url}/": network}, logging=BODIES)
    assert await sent_streamed(client, f"{feed.url}/feed") == (200, FIRST)


async def test_send_leaves_the_requests_options_as_they_were(
    make_client: Callable[..., Either], feed: Feed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    client = make_client(base_url=feed.url, logging=BODIES)
    request = client.client.build_request("GET", "/feed", timeout=TIMEOUT)
    given = request.extensions["buttress"]
    response = await client.send(request, stream=True)
    assert request.extensions["buttress"] is given  # marked streamed only while it was sent
    assert not given.streamed
    assert await first_chunk(response, is_async=client.is_async) == FIRST
    [record] = done_records(caplog)
    assert record.response_body == FIRST.decode()  # type: ignore[attr-defined]
