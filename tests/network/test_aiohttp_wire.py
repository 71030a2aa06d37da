"""The aiohttp backend on the wire: what it sends and what it raises, beside the httpx backend.

Each test runs on both backends of ``AsyncClient`` (the aiohttp backend is async
only) against raw-socket servers on 127.0.0.1, so what one backend does is the
reference for the other, and the httpx backend is httpx's own behaviour.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

import buttress
from buttress._network.aiohttp import _reraise, _translated

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One request as it came on the wire: head, then the body its framing announces."""
    head = await reader.readuntil(b"\r\n\r\n")
    fields = [line.partition(b":") for line in head.split(b"\r\n")[1:] if line]
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    if b"content-length" in headers:
        return head + await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return head + await reader.readuntil(b"0\r\n\r\n")
    return head


async def _serving(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server keeping each request's bytes, answering ``200`` with an empty body."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                received.append(await _read_request(reader))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server, url = await _serving(handle)
    async with server:
        yield url, received


def _client(backend: str, **options: Any) -> buttress.AsyncClient:
    options.setdefault("retry", False)
    return buttress.AsyncClient(backend=backend, tracing=False, **options)  # type: ignore[arg-type]


async def _pieces() -> AsyncIterator[bytes]:
    yield b"part1-"
    yield b"part2"


# -- 3: the request's headers and body go on the wire as httpx sends them ---------------------


WIRE_CASES: dict[str, dict[str, Any]] = {
    "case and repeats": {
        "method": "GET",
        "headers": [
            ("X-Custom-Case", "v"),
            ("X-Dup", "1"),
            ("X-Dup", "2"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ],
    },
    "bytes body": {"method": "POST", "content": b"abc"},
    "streamed body": {"method": "POST", "content": _pieces},
    "json body": {"method": "POST", "json": {"a": 1}},
    "own content type": {"method": "PUT", "content": b"x", "headers": {"content-TYPE": "a/b"}},
    "no default headers": {"method": "POST", "content": b"abc", "auth": "strip"},
    # httpx says nothing of a body a request does not have, but for POST, PUT and PATCH
    "bodiless DELETE": {"method": "DELETE"},
    "bodiless custom method": {"method": "PURGE"},
    "bodiless POST": {"method": "POST"},
    "empty PATCH": {"method": "PATCH", "content": b""},
}


def _strip_defaults(request: httpx.Request) -> httpx.Request:
    """The request without the headers aiohttp would add of its own."""
    for name in ("User-Agent", "Accept", "Accept-Encoding"):
        del request.headers[name]
    return request


@pytest.mark.parametrize("case", WIRE_CASES)
async def test_the_request_goes_on_the_wire_as_httpx_sends_it(
    case: str, recorder: tuple[str, list[bytes]]
) -> None:
    url, received = recorder
    for backend in ("httpx", "aiohttp"):
        options = dict(WIRE_CASES[case])
        if callable(options.get("content")):
            options["content"] = options["content"]()
        if options.get("auth") == "strip":
            options["auth"] = _strip_defaults
        async with _client(backend) as client:
            await client.request(url=f"{url}/x", **options)
    sent_by_httpx, sent_by_aiohttp = received
    assert sent_by_aiohttp == sent_by_httpx
    assert b"application/octet-stream" not in sent_by_aiohttp


# -- 1: a body must match its declared Content-Length ----------------------------------------


@pytest.mark.parametrize(
    ("content", "declared", "words"),
    [
        (b"abcdef", "2", "Too much data for declared Content-Length"),
        (b"abc", "10", "Too little data for declared Content-Length"),
        (b"", "3", "Too little data for declared Content-Length"),
        (_pieces, "3", "Too much data for declared Content-Length"),
        (_pieces, "20", "Too little data for declared Content-Length"),
        (b"abc", "three", "bad Content-Length"),
        (b"abc", "3, 4", "conflicting Content-Length headers"),
    ],
    ids=["more", "less", "none", "streamed-more", "streamed-less", "bad", "conflicting"],
)
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_a_body_that_breaks_its_content_length_is_refused(
    backend: str,
    content: Any,
    declared: str,
    words: str,
    recorder: tuple[str, list[bytes]],
) -> None:
    url, received = recorder
    body = content() if callable(content) else content
    async with _client(backend, timeout=10) as client:
        with pytest.raises(buttress.ConnectionError, match=words) as caught:
            await client.post(f"{url}/x", content=body, headers={"Content-Length": declared})
        assert isinstance(caught.value, httpx.LocalProtocolError)
        await client.get(f"{url}/after")  # the client goes on
    assert all(not request.startswith(b"POST") for request in received)


# -- 2: a malformed response is a protocol error --------------------------------------------


MALFORMED = {
    "status line": b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    "header line": b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n",
    "garbage": b"\x00\x01garbage\r\n\r\n",
    "content length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nxx",
    "chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("answer", MALFORMED)
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_a_malformed_response_is_a_protocol_error(backend: str, answer: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(MALFORMED[answer])
        await writer.drain()
        writer.close()

    server, url = await _serving(handle)
    async with server, _client(backend) as client:
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.get(url)
    assert isinstance(caught.value, httpx.RemoteProtocolError)
    assert "protocol error for GET" in str(caught.value)


def test_aiohttp_parser_errors_become_remote_protocol_errors() -> None:
    url = yarl.URL("http://x.test/")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    error = aiohttp.ClientResponseError(info, (), status=400, message="Bad status line")
    error.__cause__ = aiohttp.http_exceptions.BadStatusLine("HTTP/1.1 abc")
    translated = _translated(error)
    assert type(translated) is httpx.RemoteProtocolError
    assert "Bad status line" in str(translated)


# -- 7: no credential through the exception chain -------------------------------------------

PASSWORD = "pr0xy-s3cret"
TOKEN = base64.b64encode(f"user:{PASSWORD}".encode()).decode()


def _reachable(exc: BaseException) -> str:
    """What anyone holding ``exc`` can read through its chain: reprs, messages, attributes."""
    seen: set[int] = set()
    texts: list[str] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        texts += [repr(error), str(error), repr(error.args), repr(vars(error))]
        texts += getattr(error, "__notes__", [])
        pending += [error.__cause__, error.__context__]
    return "\n".join(texts)


@pytest.fixture
async def refusing_proxy() -> AsyncIterator[str]:
    """A proxy answering ``407`` to a tunnel and a malformed response to a forwarded request."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request.startswith(b"CONNECT"):
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n'
            )
        else:
            writer.write(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await _serving(handle)
    async with server:
        yield url.replace("http://", f"http://user:{PASSWORD}@")


# aiohttp 3.14 deprecates BasicAuth and proxy_auth, which the backend still sends credentials with.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'proxy_auth' parameter is deprecated:DeprecationWarning")
@pytest.mark.parametrize("target", ["https://127.0.0.1:1/", "http://127.0.0.1:1/"])
@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
async def test_no_proxy_credential_in_the_exception_chain(
    backend: str, target: str, refusing_proxy: str
) -> None:
    async with _client(backend, proxy=refusing_proxy) as client:
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.get(target, headers={"Authorization": "Bearer t0ken-in-request"})
    reachable = _reachable(caught.value)
    assert PASSWORD not in reachable
    assert TOKEN not in reachable


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
def test_a_connection_key_with_proxy_credentials_is_scrubbed() -> None:
    auth = aiohttp.BasicAuth("user", f"{PASSWORD})(")
    key = aiohttp.client_reqrep.ConnectionKey(
        "a.test", 80, False, True, yarl.URL("http://p.test:3128"), auth, None
    )
    refused = aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))
    failed = aiohttp.ClientConnectionError(f"Failed to send bytes into Connection<{key}>")
    failed.__context__ = refused
    for raised in (refused, failed):
        with pytest.raises(httpx.TransportError) as caught:
            _raise_as_the_transport_does(raised)
        reachable = _reachable(caught.value)
        assert PASSWORD not in reachable
        assert "host='a.test'" in reachable  # the rest of the key is still there to read


def _raise_as_the_transport_does(raised: Exception) -> None:
    try:
        raise raised
    except Exception as exc:  # the transport calls it in an except clause
        _reraise(exc)
