"""Transport failures say which request failed (method, redacted URL) and, for timeouts, which
timeout ran out; on real sockets on 127.0.0.1, for both clients."""

from __future__ import annotations

import ssl
import traceback
from collections.abc import Callable, Iterator

import httpx
import pytest

import buttress
from buttress._exceptions import map_exception
from buttress.testing import Fault, FaultServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

PASSWORD = "pw-SECRET-1a"
API_KEY = "key-SECRET-2b"
SHORT = 0.1  # seconds: the timeout a test trips on purpose


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def _texts(error: BaseException) -> list[str]:
    """Everything a user may print or log about ``error`` (its causes too)."""
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    exc: BaseException | None = error
    while exc is not None:
        texts += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__
    return texts


async def test_refused_connection_names_the_request(
    make_client: Callable[..., Either], server: FaultServer
) -> None:
    client = make_client(base_url=server.refused_url, retry=False)
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/users", params={"page": 2})
    error = caught.value
    assert str(error).startswith(f"could not connect for GET {server.refused_url}/users?page=2: ")
    assert isinstance(error, httpx.ConnectError)
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert error.request.url == f"{server.refused_url}/users?page=2"


async def test_connect_timeout_names_the_request_and_the_timeout(
    make_client: Callable[..., Either], server: FaultServer
) -> None:
    timeout = buttress.TimeoutConfig(connect=SHORT)
    client = make_client(base_url=server.blackhole_url, retry=False, timeout=timeout)
    with pytest.raises(buttress.ConnectTimeoutError) as caught:
        await client.post("/orders", json={"id": 1})
    error = caught.value
    assert str(error) == (
        f"timed out connecting for POST {server.blackhole_url}/orders (connect timeout {SHORT}s)"
    )
    assert isinstance(error.__cause__, httpx.ConnectTimeout)
    assert error.request.method == "POST"


async def test_read_timeout_names_the_request_and_the_timeout(
    make_client: Callable[..., Either], server: FaultServer
) -> None:
    server.enqueue(Fault.delay_first_byte())  # until released: slower than any read timeout
    timeout = buttress.TimeoutConfig(read=SHORT)
    client = make_client(base_url=server.url, retry=False, timeout=timeout)
    with pytest.raises(buttress.ReadTimeoutError) as caught:
        await client.get("/slow")
    assert str(caught.value) == (
        f"timed out reading the response for GET {server.url}/slow (read timeout {SHORT}s)"
    )
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_read_timeout_mid_stream_names_the_request(
    make_client: Callable[..., Either], server: FaultServer
) -> None:
    server.enqueue(Fault.drip(size=8, interval=1.0))  # headers at once, then a byte a second
    timeout = buttress.TimeoutConfig(read=SHORT)
    client = make_client(base_url=server.url, retry=False, timeout=timeout)
    with pytest.raises(buttress.ReadTimeoutError) as caught:
        await client.stream_bytes("GET", "/download")
    assert str(caught.value) == (
        f"timed out reading the response for GET {server.url}/download (read timeout {SHORT}s)"
    )
    assert caught.value.request.url.path == "/download"
    server.release()


async def test_protocol_error_keeps_httpx_words(
    make_client: Callable[..., Either], server: FaultServer
) -> None:
    server.enqueue(Fault.close())
    client = make_client(base_url=server.url, retry=False)
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.delete("/users/1")
    assert str(caught.value) == (
        f"protocol error for DELETE {server.url}/users/1: "
        "Server disconnected without sending a response."
    )
    assert isinstance(caught.value, httpx.RemoteProtocolError)


@pytest.mark.parametrize("where", ["refused", "blackhole"])
async def test_credentials_in_the_url_never_reach_the_message(
    make_client: Callable[..., Either], server: FaultServer, where: str
) -> None:
    base = server.refused_url if where == "refused" else server.blackhole_url
    url = base.replace("://", f"://alice:{PASSWORD}@") + f"/users?api_key={API_KEY}&page=2"
    timeout = buttress.TimeoutConfig(connect=SHORT)
    client = make_client(retry=False, timeout=timeout)
    with pytest.raises((buttress.ConnectionError, buttress.TimeoutError)) as caught:
        await client.get(url)
    redacted = base.replace("://", "://alice:[REDACTED]@") + "/users?api_key=[REDACTED]&page=2"
    assert f"GET {redacted}" in str(caught.value)
    for text in _texts(caught.value):
        assert PASSWORD not in text
        assert API_KEY not in text


async def test_a_backend_message_quoting_the_url_is_redacted(
    make_client: Callable[..., Either],
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:  # as aiohttp words its timeouts
        raise httpx.ConnectTimeout(f"Connection timeout to host {request.url}", request=request)

    transport = httpx.MockTransport(fail)
    client = make_client(base_url="http://api.test", transport=transport, retry=False)
    with pytest.raises(buttress.ConnectTimeoutError) as caught:
        await client.get("/x", params={"api_key": API_KEY})
    assert str(caught.value).endswith(
        ": Connection timeout to host http://api.test/x?api_key=[REDACTED]"
    )
    assert API_KEY not in str(caught.value)


def test_a_failure_without_a_request_keeps_its_message() -> None:
    error = map_exception(httpx.ConnectError("refused"))
    assert str(error) == "refused"
    assert isinstance(error, buttress.ConnectionError)


def test_a_socket_level_failure_reads_as_text() -> None:
    request = httpx.Request("GET", "http://api.test/x")
    error = map_exception(ssl.SSLCertVerificationError(1, "certificate verify failed"), request)
    assert str(error) == "TLS error for GET http://api.test/x: certificate verify failed"
    assert isinstance(error, buttress.ConnectionError)
    assert isinstance(error, ssl.SSLError)
