"""The exception tree, the mapping of every httpx failure into it, and raising options."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress.testing import DemoServer
from tests.conftest import Either
from tests.servers import free_port

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too

TREE: dict[type[Exception], type[Exception]] = {
    buttress.HTTPError: buttress.ClientError,
    buttress.ClientResponseError: buttress.HTTPError,
    buttress.AuthenticationError: buttress.ClientResponseError,
    buttress.ForbiddenError: buttress.ClientResponseError,
    buttress.NotFoundError: buttress.ClientResponseError,
    buttress.RateLimitError: buttress.ClientResponseError,
    buttress.ServerError: buttress.HTTPError,
    buttress.ConnectionError: buttress.ClientError,
    buttress.TimeoutError: buttress.ClientError,
    buttress.ConnectTimeoutError: buttress.TimeoutError,
    buttress.ReadTimeoutError: buttress.TimeoutError,
    buttress.WriteTimeoutError: buttress.TimeoutError,
    buttress.PoolTimeoutError: buttress.TimeoutError,
    buttress.CircuitBreakerError: buttress.ClientError,
    buttress.CircuitBreakerOpenError: buttress.CircuitBreakerError,
    buttress.ValidationError: buttress.ClientError,
    buttress.ConfigurationError: buttress.ClientError,
    buttress.InvalidURLError: buttress.ConfigurationError,
    buttress.PaginationError: buttress.ClientError,
    buttress.GraphQLError: buttress.ClientError,
    buttress.TooManyRedirectsError: buttress.ClientError,
    buttress.DecodingError: buttress.ClientError,
    buttress.InvalidJSONError: buttress.DecodingError,
}

HTTPX_TWIN: dict[type[Exception], type[Exception]] = {
    buttress.HTTPError: httpx.HTTPStatusError,
    buttress.ConnectionError: httpx.TransportError,
    buttress.TimeoutError: httpx.TimeoutException,
    buttress.ConnectTimeoutError: httpx.ConnectTimeout,
    buttress.ReadTimeoutError: httpx.ReadTimeout,
    buttress.WriteTimeoutError: httpx.WriteTimeout,
    buttress.PoolTimeoutError: httpx.PoolTimeout,
    buttress.CircuitBreakerError: httpx.TransportError,
    buttress.TooManyRedirectsError: httpx.TooManyRedirects,
    buttress.DecodingError: httpx.DecodingError,
    buttress.InvalidJSONError: json.JSONDecodeError,
    buttress.InvalidURLError: httpx.InvalidURL,
}


@pytest.mark.parametrize(("child", "parent"), TREE.items())
def test_tree_is_the_spec_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert child.__bases__[0] is parent


@pytest.mark.parametrize(("ours", "theirs"), HTTPX_TWIN.items())
def test_each_exception_is_also_its_httpx_twin(
    ours: type[Exception], theirs: type[Exception]
) -> None:
    assert issubclass(ours, theirs)


def test_tree_is_drawn_in_the_module_docstring() -> None:
    from buttress import _exceptions

    doc = _exceptions.__doc__ or ""
    for cls in TREE:
        assert cls.__name__ in doc


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, buttress.ClientResponseError),
        (401, buttress.AuthenticationError),
        (403, buttress.ForbiddenError),
        (404, buttress.NotFoundError),
        (422, buttress.ClientResponseError),
        (429, buttress.RateLimitError),
        (500, buttress.ServerError),
        (503, buttress.ServerError),
    ],
)
async def test_error_statuses_raise_their_class(
    client: Either, status: int, expected: type[buttress.HTTPError]
) -> None:
    with pytest.raises(expected) as caught:
        await client.get(f"/status/{status}", params={"api_key": "sekrit-key"})
    error = caught.value
    assert type(error) is expected
    assert error.status_code == status
    assert error.headers["content-type"] == "application/json"
    assert f"demo error {status}" in error.text
    assert error.details == {"error": {"message": f"demo error {status}", "status": status}}
    assert error.request.method == "GET"
    assert "sekrit-key" not in str(error)
    assert "api_key=[REDACTED]" in str(error)


async def test_existing_httpx_except_clauses_still_catch(client: Either) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        await client.get("/status/500")
    with pytest.raises(httpx.HTTPError):
        await client.get("/status/404")


async def test_rate_limit_error_parses_delta_seconds(client: Either) -> None:
    with pytest.raises(buttress.RateLimitError) as caught:
        await client.get("/status/429", params={"retry_after": "7"})
    assert caught.value.retry_after == 7.0


async def test_rate_limit_error_parses_http_date(client: Either) -> None:
    with pytest.raises(buttress.RateLimitError) as caught:
        await client.get("/status/429", params={"retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert caught.value.retry_after == 0.0  # a date in the past means "now"


async def test_raising_off_per_client(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, raise_for_status=False)
    response = await client.get("/status/503")
    assert response.status_code == 503
    assert not response.ok


async def test_raising_off_per_call(client: Either) -> None:
    response = await client.get("/users/999", raise_for_status=False)
    assert response.status_code == 404


async def test_raising_off_for_chosen_statuses(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, expected_statuses={404})
    assert (await client.get("/users/999")).status_code == 404
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    with pytest.raises(buttress.NotFoundError):
        await client.get("/users/999", expected_statuses=())


async def test_per_call_raise_overrides_client(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, raise_for_status=False)
    with pytest.raises(buttress.NotFoundError):
        await client.get("/users/999", raise_for_status=True)


async def test_custom_error_parser(make_client: Callable[..., Either], demo: DemoServer) -> None:
    def parse(response: httpx.Response) -> tuple[str, Any]:
        body = response.json()
        return f"API says: {body['error']['message']}", {"code": body["error"]["status"]}

    client = make_client(base_url=demo.url, error_parser=parse)
    with pytest.raises(buttress.ClientResponseError) as caught:
        await client.get("/status/409", params={"message": "already exists"})
    assert "API says: already exists" in str(caught.value)
    assert caught.value.details == {"code": 409}


async def test_broken_error_parser_does_not_hide_the_error(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    def parse(response: httpx.Response) -> str:
        raise KeyError("oops")

    client = make_client(base_url=demo.url, error_parser=parse)
    with pytest.raises(buttress.ServerError, match="500 Internal Server Error"):
        await client.get("/status/500")


async def test_text_error_bodies_become_the_message(
    make_client: Callable[..., Either],
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="upstream down"))
    client = make_client(base_url="http://api.test", transport=transport)
    with pytest.raises(buttress.ServerError, match="upstream down"):
        await client.get("/x")


async def test_invalid_json_error_shows_context(client: Either) -> None:
    response = await client.get("/invalid-json")
    with pytest.raises(buttress.InvalidJSONError) as caught:
        response.json()
    error = caught.value
    assert error.status_code == 200
    assert error.content_type == "application/json"
    assert error.pos == 18
    assert "oops" in str(error)
    assert isinstance(error, ValueError)


async def test_too_many_redirects(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, max_redirects=2)
    loop = "/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/redirect"
    with pytest.raises(buttress.TooManyRedirectsError) as caught:
        await client.get(loop)
    assert isinstance(caught.value, httpx.TooManyRedirects)


async def test_redirects_followed_by_default_with_history(client: Either) -> None:
    response = await client.get("/redirect", params={"to": "/users/3"})
    assert response.json()["name"] == "Alan Turing"
    assert [r.status_code for r in response.history] == [302]
    assert all(isinstance(r, buttress.Response) for r in response.history)


async def test_connection_refused_is_a_connection_error(
    make_client: Callable[..., Either],
) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/")
    assert isinstance(caught.value, httpx.ConnectError)
    assert not isinstance(caught.value, buttress.TimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
async def test_a_body_shorter_than_its_content_length_is_a_mapped_error(
    demo: DemoServer, asynchronous: bool
) -> None:
    # httpcore lets h11's own LocalProtocolError escape (plain httpx shows it too): no
    # ClientError, no request. A file read part-way gets there as well, since httpx
    # declares the whole file's size. (httpx's transports only: aiohttp sends the short
    # body, and the server waits for the rest.)
    client = Either((buttress.AsyncClient if asynchronous else buttress.Client)(base_url=demo.url))
    try:
        with pytest.raises(buttress.ConnectionError) as caught:
            await client.put("/upload", content=b"abc", headers={"Content-Length": "10"})
    finally:
        await client.aclose()
    assert isinstance(caught.value, httpx.LocalProtocolError)
    assert caught.value.request.url.path == "/upload"
    assert "Content-Length" in str(caught.value)


async def test_read_timeout_is_mapped(make_client: Callable[..., Either], demo: DemoServer) -> None:
    client = make_client(base_url=demo.url, timeout=buttress.TimeoutConfig(read=0.05))
    with pytest.raises(buttress.ReadTimeoutError) as caught:
        await client.get("/slow", params={"delay": 2})
    assert isinstance(caught.value, httpx.ReadTimeout)


async def test_unsupported_scheme_is_a_configuration_error(client: Either) -> None:
    with pytest.raises(buttress.ConfigurationError) as caught:
        await client.get("ftp://example.com/file")
    assert isinstance(caught.value, httpx.UnsupportedProtocol)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://alice:pw-SECRET@[::1/users", "Invalid port: ':1'"),
        ("/users/\x00pw-SECRET", "Invalid non-printable ASCII character in URL"),
        ("//[::1/users", "Invalid port: ':1'"),
    ],
)
async def test_an_invalid_url_is_ours_and_httpx_s(client: Either, url: str, problem: str) -> None:
    with pytest.raises(buttress.InvalidURLError) as caught:
        await client.get(url)
    assert isinstance(caught.value, httpx.InvalidURL)
    assert isinstance(caught.value, buttress.ConfigurationError)
    assert str(caught.value).startswith(f"invalid URL for GET: {problem}")
    assert "pw-SECRET" not in str(caught.value)
    assert caught.value.__suppress_context__  # no httpx traceback chained to it
    assert (await client.get("/users/1")).status_code == 200  # the client still works


@pytest.mark.parametrize(
    ("raised", "expected", "twin"),
    [
        (httpx.ConnectTimeout("t"), buttress.ConnectTimeoutError, httpx.ConnectTimeout),
        (httpx.ReadTimeout("t"), buttress.ReadTimeoutError, httpx.ReadTimeout),
        (httpx.WriteTimeout("t"), buttress.WriteTimeoutError, httpx.WriteTimeout),
        (httpx.PoolTimeout("t"), buttress.PoolTimeoutError, httpx.PoolTimeout),
        (httpx.ConnectError("c"), buttress.ConnectionError, httpx.ConnectError),
        (httpx.ReadError("r"), buttress.ConnectionError, httpx.ReadError),
        (httpx.WriteError("w"), buttress.ConnectionError, httpx.WriteError),
        (httpx.RemoteProtocolError("p"), buttress.ConnectionError, httpx.RemoteProtocolError),
        (httpx.LocalProtocolError("p"), buttress.ConnectionError, httpx.LocalProtocolError),
        (httpx.ProxyError("p"), buttress.ConnectionError, httpx.ProxyError),
        (httpx.DecodingError("d"), buttress.DecodingError, httpx.DecodingError),
        (OSError("socket gone"), buttress.ConnectionError, OSError),
        (TimeoutError("slow"), buttress.TimeoutError, httpx.TimeoutException),
    ],
)
async def test_every_transport_failure_is_mapped(
    make_client: Callable[..., Either],
    raised: Exception,
    expected: type[Exception],
    twin: type[Exception],
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise raised

    client = make_client(base_url="http://api.test", transport=httpx.MockTransport(fail))
    with pytest.raises(expected) as caught:
        await client.get("/x")
    assert isinstance(caught.value, twin)
    assert caught.value.__cause__ is raised


async def test_a_bug_in_a_hook_is_not_disguised(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    def broken(request: httpx.Request) -> None:
        raise KeyError("bug")

    client = make_client(base_url=demo.url, event_hooks={"request": [broken]})
    with pytest.raises(KeyError):
        await client.get("/users/1")


async def test_failure_while_streaming_is_mapped(make_client: Callable[..., Either]) -> None:
    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            yield b"partial"
            raise httpx.ReadError("peer closed")

        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b"partial"
            raise httpx.ReadError("peer closed")

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Broken()))
    client = make_client(base_url="http://api.test", transport=transport)
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.get("/x")
    assert isinstance(caught.value, httpx.ReadError)
    with pytest.raises(buttress.ConnectionError):
        await client.stream_bytes("GET", "/x")


async def test_closed_client_refuses_with_a_buttress_error(client: Either) -> None:
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(buttress.ClientError, match="closed"):
        await client.get("/users/1")


# -- fixtures ---------------------------------------------------------------------------------


async def test_notes_survive_the_mapping(make_client: Callable[..., Either]) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        error = httpx.ConnectError("refused")
        error.__notes__ = ["buttress: not retried: the request body is a stream"]  # type: ignore[attr-defined]
        raise error

    client = make_client(base_url="http://api.test", transport=httpx.MockTransport(fail))
    with pytest.raises(buttress.ConnectionError) as caught:
        await client.post("/x", content=b"body")
    notes = getattr(caught.value, "__notes__", [])
    assert "buttress: not retried: the request body is a stream" in notes


async def test_client_level_raising_off_reaches_the_retry_layer(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # The server asks for longer than retry_after_max: the retry layer stops early and,
    # as the client does not raise, hands the 429 back instead of raising.
    client = make_client(
        base_url=demo.url,
        raise_for_status=False,
        retry=buttress.RetryConfig(retry_after_max=1.0),
    )
    response = await client.get("/status/429", params={"retry_after": "30"})
    assert response.status_code == 429
