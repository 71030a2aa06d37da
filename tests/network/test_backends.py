"""The ``backend=`` argument: choosing the network transport under every layer."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.http_exceptions import ContentLengthError, TransferEncodingError

import buttress
from buttress._network.aiohttp import _translated
from buttress._network.backends import check_backend_supports, network_factory
from buttress.testing import DemoServer
from buttress.transports.guard import BodyGuard
from tests.conftest import Either
from tests.servers import in_thread

pytestmark = pytest.mark.anyio

ASYNC_BACKENDS = ["httpx", "aiohttp"]


# -- choosing a backend -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["aiohttp", "requests"])
def test_sync_client_accepts_only_httpx(backend: str) -> None:
    with pytest.raises(buttress.ConfigurationError, match="Client backend must be 'httpx'"):
        buttress.Client(backend=backend)  # type: ignore[arg-type]


def test_sync_client_explains_aiohttp_is_async_only() -> None:
    with pytest.raises(buttress.ConfigurationError, match="async only: use AsyncClient"):
        buttress.Client(backend="aiohttp")


async def test_async_client_rejects_unknown_backend() -> None:
    with pytest.raises(buttress.ConfigurationError, match="'httpx' or 'aiohttp', not 'curl'"):
        buttress.AsyncClient(backend="curl")  # type: ignore[arg-type]


async def test_transport_and_backend_together_are_refused() -> None:
    with pytest.raises(buttress.ConfigurationError, match="either transport= or backend="):
        buttress.AsyncClient(transport=httpx.AsyncHTTPTransport(), backend="aiohttp")


async def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    monkeypatch.delitem(sys.modules, "buttress._network.aiohttp", raising=False)
    with pytest.raises(buttress.ConfigurationError, match=r"pip install 'buttress\[aiohttp\]'"):
        buttress.AsyncClient(backend="aiohttp")


def test_httpx_backend_supports_http2_and_socks() -> None:
    check_backend_supports("httpx", http2=True, proxy="socks5://127.0.0.1:1080")


def test_aiohttp_backend_refuses_http2() -> None:
    with pytest.raises(buttress.ConfigurationError, match=r"HTTP/1\.1 only"):
        check_backend_supports("aiohttp", http2=True)


@pytest.mark.parametrize(
    "proxy", ["socks5://127.0.0.1:1080", httpx.URL("socks4://h:1"), httpx.Proxy("socks5://h:1")]
)
def test_aiohttp_backend_refuses_socks(proxy: str | httpx.URL | httpx.Proxy) -> None:
    with pytest.raises(buttress.ConfigurationError, match="cannot use a SOCKS proxy"):
        check_backend_supports("aiohttp", proxy=proxy)


@pytest.mark.parametrize("installed", [True, False], ids=["httpx-socks", "no-httpx-socks"])
async def test_aiohttp_backend_refuses_a_socks4_proxy_from_a_call_or_the_environment(
    installed: bool, monkeypatch: pytest.MonkeyPatch, demo: DemoServer
) -> None:
    # SOCKS4 routes are made by httpx-socks, not the backend: they must not slip past it,
    # and without httpx-socks the error must not send the user off to install it.
    if not installed:
        monkeypatch.setitem(sys.modules, "httpx_socks", None)
    refused = "aiohttp backend cannot use a SOCKS"
    async with buttress.AsyncClient(backend="aiohttp", base_url=demo.url) as client:
        with pytest.raises(buttress.ConfigurationError, match=refused):  # a call's own proxy
            await client.get("/users/1", proxy="socks4://127.0.0.1:1080")
    monkeypatch.setenv("ALL_PROXY", "socks4://127.0.0.1:1080")
    with pytest.raises(buttress.ConfigurationError, match=refused):  # as the client is built
        buttress.AsyncClient(backend="aiohttp", base_url=demo.url)


async def test_aiohttp_backend_takes_an_http_proxy() -> None:
    check_backend_supports("aiohttp", proxy="http://127.0.0.1:3128")
    factory = network_factory("aiohttp", is_async=True, proxy="http://127.0.0.1:3128")
    transport = factory(proxy=httpx.Proxy("http://127.0.0.1:3128"))
    await transport.aclose()


async def test_network_factory_refuses_http2_on_aiohttp() -> None:
    with pytest.raises(buttress.ConfigurationError, match=r"HTTP/1\.1 only"):
        network_factory("aiohttp", is_async=True, http2=True)


# -- requests over each backend ---------------------------------------------------------


@pytest.fixture(params=ASYNC_BACKENDS)
async def make_async(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Either]]:
    made: list[buttress.AsyncClient] = []

    def factory(**kwargs: object) -> Either:
        client = buttress.AsyncClient(backend=request.param, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return Either(client)

    yield factory
    for client in made:
        await client.aclose()


async def test_aiohttp_backend_moves_the_bytes(
    make_client: Callable[..., Either], demo: DemoServer, mode: str
) -> None:
    client = make_client(base_url=demo.url)
    response = await client.get("/users/1")
    # httpcore reports the connection it used; aiohttp's transport does not.
    assert ("network_stream" in response.extensions) is (mode != "aiohttp")


async def test_many_concurrent_requests_share_a_small_pool(
    make_async: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_async(base_url=demo.url, max_connections=5)
    responses = await asyncio.gather(*(client.get(f"/users/{i % 3 + 1}") for i in range(60)))
    assert {r.json()["id"] for r in responses} == {1, 2, 3}


async def _raw_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with the request's path as it came on the wire."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["raw_path"]})


async def test_escaped_dots_in_the_path_are_sent_as_they_are(
    make_async: Callable[..., Either],
) -> None:
    # %2E%2E is data (a path parameter that is ".."), not a step up the path.
    with DemoServer(_raw_path) as server:
        client = make_async(base_url=server.url)
        response = await client.get("/files/%2E%2E/a%2Fb/%2E")
        assert response.text == "/files/%2E%2E/a%2Fb/%2E"


@pytest.mark.parametrize(
    "headers", [{"X-Key": "k3y-5d1e\r\nX-Injected: 1"}, {"X-Key": "k3y-5d1e\x00"}]
)
async def test_a_control_character_in_a_header_is_refused_alike(
    make_async: Callable[..., Either], demo: DemoServer, headers: dict[str, str]
) -> None:
    client = make_async(base_url=demo.url)
    with pytest.raises(buttress.ConnectionError, match="Illegal header value") as caught:
        await client.get("/users/1", headers=headers)
    assert isinstance(caught.value.__cause__, httpx.LocalProtocolError)
    assert "k3y-5d1e" not in str(caught.value)


async def test_streaming_download(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url)
    body = await client.stream_bytes("GET", "/download", params={"size": 300_000})
    assert len(body) == 300_000


async def test_post_json_body(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url)
    echoed = (await client.post("/echo", json={"name": "Ada"})).json()
    assert echoed["json"] == {"name": "Ada"}


async def test_credentials_in_the_url_become_basic_auth(
    make_async: Callable[..., Either], demo: DemoServer
) -> None:
    # Regression: aiohttp refused a URL with user info next to the Authorization
    # header httpx makes of it, with a raw ValueError.
    client = make_async()
    url = demo.url.replace("http://", "http://ada:S3CR3T@") + "/echo"
    echoed = (await client.get(url)).json()
    assert echoed["headers"]["authorization"] == "Basic YWRhOlMzQ1IzVA=="


async def _cookie_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app: ``/login`` sets a session cookie, any other path echoes the Cookie header."""
    if scope["path"] == "/login":
        headers = [(b"set-cookie", b"session=s3cr3t-5e55; Path=/")]
        body = b""
    else:
        headers = []
        body = dict(scope["headers"]).get(b"cookie", b"")
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_the_client_alone_keeps_cookies(make_async: Callable[..., Either]) -> None:
    # Regression: aiohttp's session kept its own cookie jar beside the client's, so a
    # cookie the client had dropped was still sent. "localhost": aiohttp's jar ignores
    # cookies from IP addresses.
    with DemoServer(_cookie_app, host="localhost") as server:
        client = make_async(base_url=server.url)
        await client.get("/login")
        assert (await client.get("/echo")).text == "session=s3cr3t-5e55"
        client.client.cookies.clear()
        assert (await client.get("/echo")).text == ""


# -- failures come from the buttress tree, correctly classified ---------------------------


async def test_server_hanging_up_is_not_a_timeout(make_async: Callable[..., Either]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = make_async(base_url=f"http://127.0.0.1:{port}")
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.get("/")
        assert not isinstance(caught.value, buttress.TimeoutError | httpx.TimeoutException)
    finally:
        server.close()
        await server.wait_closed()


async def test_read_timeout_is_a_read_timeout(
    make_async: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_async(base_url=demo.url, timeout=buttress.TimeoutConfig(read=0.05))
    with pytest.raises(buttress.ReadTimeoutError):
        await client.get("/slow", params={"delay": 0.5})


@pytest.fixture
def truncating_server() -> Iterator[str]:
    """Promises 1000 bytes of body, sends 10 and hangs up (in a thread: sync clients block)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)

    with listener, in_thread(serve, stop.set):
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def test_body_cut_short_is_a_connection_error(
    make_client: Callable[..., Either], truncating_server: str
) -> None:
    client = make_client(base_url=truncating_server)
    with pytest.raises(buttress.ConnectionError):
        await client.get("/")
    with pytest.raises(buttress.ConnectionError):
        await client.stream_bytes("GET", "/")


# -- the aiohttp transport's own translation of aiohttp's errors -----------------------------


def _payload_error(cause: Exception) -> Exception:
    error = aiohttp.ClientPayloadError(f"Response payload is not completed: {cause!r}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.NetworkError),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError("Connection timeout"), httpx.ConnectTimeout),
        (aiohttp.ClientPayloadError("Can not decode content-encoding: br"), httpx.ReadError),
        (_payload_error(ContentLengthError("Not enough data")), httpx.RemoteProtocolError),
        (_payload_error(TransferEncodingError("Not enough data")), httpx.RemoteProtocolError),
    ],
)
def test_aiohttp_errors_become_httpx_errors(raised: Exception, expected: type[Exception]) -> None:
    translated = _translated(raised)
    assert type(translated) is expected
    assert str(translated)


def test_a_body_cut_short_reads_as_one_for_the_body_guard() -> None:
    translated = _translated(_payload_error(ContentLengthError("Not enough data")))
    guard = BodyGuard(httpx.Request("GET", "http://x.test"), httpx.Headers(), 200, limit=None)
    assert isinstance(guard.failed(translated), buttress.IncompleteResponseError)


def test_other_errors_pass_through_untranslated() -> None:
    error = ValueError("not aiohttp's")
    assert _translated(error) is error
