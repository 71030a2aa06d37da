"""MockAPI: respx routes with REST answers, for buttress and plain httpx clients, sync and async."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import buttress
from buttress.testing import MockAPI, error_response, json_response

from .kinds import KINDS, Caller, client_of

pytestmark = pytest.mark.anyio


@pytest.fixture(params=KINDS)
async def api_and_caller(request: pytest.FixtureRequest) -> AsyncIterator[tuple[MockAPI, Caller]]:
    api = MockAPI()
    caller = client_of(str(request.param), api.transport, api.base_url)
    yield api, caller
    await caller.aclose()


async def test_json_answers_and_records_calls(api_and_caller: tuple[MockAPI, Caller]) -> None:
    api, caller = api_and_caller
    route = api.json("GET", "/users/1", {"id": 1, "name": "Ada"}, headers={"X-Trace": "t1"})
    created = api.json("POST", "/users", {"id": 101}, status=201)

    response = await caller.get("/users/1")
    assert response.json() == {"id": 1, "name": "Ada"}
    assert response.headers["x-trace"] == "t1"
    assert (await caller.request("POST", "/users", json={"name": "Jane"})).status_code == 201
    assert route.call_count == 1
    assert json.loads(created.calls.last.request.content) == {"name": "Jane"}
    assert [call.request.url.path for call in api.calls] == ["/users/1", "/users"]


async def test_rate_limited_then_success(api_and_caller: tuple[MockAPI, Caller]) -> None:
    api, caller = api_and_caller
    api.rate_limited("GET", "/search", retry_after=3, times=2, then={"hits": []})
    for _ in range(2):
        if caller.is_buttress:
            with pytest.raises(buttress.RateLimitError) as caught:
                await caller.get("/search")
            assert caught.value.retry_after == 3.0
        else:
            response = await caller.get("/search")
            assert response.status_code == 429
            assert response.headers["retry-after"] == "3"
            assert response.json()["error"]["status"] == 429
    assert (await caller.get("/search")).json() == {"hits": []}
    assert (await caller.get("/search")).json() == {"hits": []}  # the last answer repeats


async def test_unavailable_keeps_failing_without_then(
    api_and_caller: tuple[MockAPI, Caller],
) -> None:
    api, caller = api_and_caller
    api.unavailable("GET", "/report", retry_after=1.5)
    for _ in range(3):
        if caller.is_buttress:
            with pytest.raises(buttress.ServerError) as caught:
                await caller.get("/report")
            assert caught.value.status_code == 503
            assert caught.value.retry_after == 1.5
        else:
            response = await caller.get("/report")
            assert (response.status_code, response.headers["retry-after"]) == (503, "1.5")


async def test_errors_and_exceptions_in_sequence(api_and_caller: tuple[MockAPI, Caller]) -> None:
    api, caller = api_and_caller
    api.error("GET", "/users/999", 404, "no such user")
    api.route("GET", "/ping", httpx.ConnectError, httpx.ReadTimeout("slow"), {"ok": True})

    if caller.is_buttress:
        with pytest.raises(buttress.NotFoundError, match="no such user"):
            await caller.get("/users/999")
        with pytest.raises(buttress.ConnectionError):
            await caller.get("/ping")
        with pytest.raises(buttress.ReadTimeoutError):
            await caller.get("/ping")
    else:
        assert (await caller.get("/users/999")).json()["error"]["message"] == "no such user"
        with pytest.raises(httpx.ConnectError):
            await caller.get("/ping")
        with pytest.raises(httpx.ReadTimeout):
            await caller.get("/ping")
    assert (await caller.get("/ping")).json() == {"ok": True}


async def test_unknown_requests_are_refused(api_and_caller: tuple[MockAPI, Caller]) -> None:
    _, caller = api_and_caller
    with pytest.raises(Exception, match="not mocked"):
        await caller.get("/nothing-here")


def test_as_a_context_manager_it_intercepts_every_client() -> None:
    with MockAPI("https://billing.example.test", assert_all_called=True) as api:
        api.json("GET", "/invoices", [{"id": 1}])
        with buttress.Client(base_url="https://billing.example.test") as client:
            assert client.get("/invoices").json() == [{"id": 1}]
        assert httpx.get("https://billing.example.test/invoices").json() == [{"id": 1}]
    assert "billing.example.test" in repr(api)


def test_assert_all_called_reports_unused_routes() -> None:
    with pytest.raises(AssertionError), MockAPI(assert_all_called=True) as api:
        api.json("GET", "/never", {})


def test_non_httpx_exceptions_are_raised_as_given() -> None:
    api = MockAPI()
    api.route("GET", "/boom", KeyError)
    with httpx.Client(transport=api.transport) as client, pytest.raises(KeyError):
        client.get(f"{api.base_url}/boom")


def test_a_route_needs_an_answer() -> None:
    with pytest.raises(buttress.ConfigurationError):
        MockAPI().route("GET", "/x")


def test_response_helpers() -> None:
    assert json_response([1, 2], 202).status_code == 202
    assert error_response(500).json()["error"]["message"] == "Internal Server Error"
    assert error_response(503, "down", headers={"X-Why": "maintenance"}).headers["x-why"] == (
        "maintenance"
    )
    assert "retry-after" not in error_response(429).headers


async def test_a_response_answer_goes_out_encoded_as_a_server_sends_it(
    api_and_caller: tuple[MockAPI, Caller],
) -> None:
    api, caller = api_and_caller
    packed = gzip.compress(b'{"a": 1}')
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    api.route("GET", "/packed", httpx.Response(200, content=packed, headers=headers))
    for _ in range(2):  # the answer repeats: its bytes are not used up
        response = await caller.get("/packed")
        assert response.json() == {"a": 1}  # the client undoes the coding, as on the wire
        assert response.headers["content-length"] == str(len(packed))
        assert response.headers["content-encoding"] == "gzip"


def _streamed(chunks: list[bytes], *, is_async: bool, pulled: list[bytes]) -> httpx.Response:
    """A response streaming ``chunks``, noting in ``pulled`` each one the client takes."""

    def sync_body() -> Iterator[bytes]:
        for chunk in chunks:
            pulled.append(chunk)
            yield chunk

    async def async_body() -> AsyncIterator[bytes]:
        for chunk in sync_body():
            yield chunk

    return httpx.Response(200, content=async_body() if is_async else sync_body())


async def test_a_streamed_answer_is_streamed_and_replayed(
    api_and_caller: tuple[MockAPI, Caller],
) -> None:
    api, caller = api_and_caller
    pulled: list[bytes] = []
    api.route("GET", "/events", _streamed([b"ab", b"cd"], is_async=caller.is_async, pulled=pulled))
    assert (await caller.get("/events")).content == b"abcd"
    assert pulled == [b"ab", b"cd"]
    # Played again (the last answer repeats) from what the first play streamed.
    assert await caller.stream_bytes("GET", "/events") == b"abcd"
    assert pulled == [b"ab", b"cd"]


def test_a_streamed_answer_reaches_the_client_before_its_body() -> None:
    api = MockAPI()
    pulled: list[bytes] = []
    api.route("GET", "/events", _streamed([b"ab", b"cd"], is_async=False, pulled=pulled))
    with httpx.Client(transport=api.transport, base_url=api.base_url) as client:
        with client.stream("GET", "/events") as response:
            assert (response.status_code, pulled) == (200, [])  # headers first, body later
            assert response.headers["transfer-encoding"] == "chunked"
            chunks = response.iter_raw()
            assert next(chunks) == b"ab"
            assert pulled == [b"ab"]
            # A second play while the first is still streaming has nothing to replay.
            with pytest.raises(buttress.ConfigurationError, match="read to the end"):
                client.get("/events")
            assert list(chunks) == [b"cd"]
        assert client.get("/events").content == b"abcd"


def test_a_streamed_answer_already_read_is_refused() -> None:
    answer = httpx.Response(200, content=iter([b"x"]))
    answer.read()
    with pytest.raises(buttress.ConfigurationError, match="already read"):
        MockAPI().route("GET", "/x", answer)


async def test_head_gets_the_headers_without_the_body(
    api_and_caller: tuple[MockAPI, Caller],
) -> None:
    api, caller = api_and_caller
    api.json("HEAD", "/users/1", {"id": 1})
    pulled: list[bytes] = []
    api.route("HEAD", "/events", _streamed([b"ab"], is_async=caller.is_async, pulled=pulled))
    response = await caller.head("/users/1")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-length"] == str(len(json_response({"id": 1}).content))
    assert response.headers["content-type"] == "application/json"
    assert (await caller.head("/events")).content == b""
    assert pulled == []  # a HEAD does not even start the stream


async def test_no_content_answers_have_no_body_nor_length(
    api_and_caller: tuple[MockAPI, Caller],
) -> None:
    api, caller = api_and_caller
    api.route("DELETE", "/users/1", httpx.Response(204, content=b""))  # httpx adds a length 0
    api.route("GET", "/users/1", httpx.Response(304, headers={"ETag": '"v1"'}))
    deleted = await caller.delete("/users/1")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert "content-length" not in deleted.headers  # RFC 9110 8.6
    assert (await caller.get("/users/1")).status_code == 304


def test_a_no_content_answer_with_a_body_is_refused() -> None:
    api = MockAPI()
    with pytest.raises(buttress.ConfigurationError, match="204 answer has no body"):
        api.json("DELETE", "/users/1", {"deleted": True}, status=204)
    with pytest.raises(buttress.ConfigurationError, match="304 answer has no body"):
        api.route("GET", "/users/1", httpx.Response(304, content=b"stale"))
    with pytest.raises(buttress.ConfigurationError, match="204 answer has no body"):
        api.route("GET", "/users/1", httpx.Response(204, content=iter([b"x"])))
    api.json("DELETE", "/users/2", None, status=204)  # json=None: no body, accepted


@pytest.mark.parametrize("kind", ["httpx-sync", "httpx-async"])
async def test_a_stream_of_the_other_kind_fails_as_httpx_fails_it(kind: str) -> None:
    api = MockAPI()
    caller = client_of(kind, api.transport, api.base_url)
    answer = _streamed([b"ab"], is_async=not caller.is_async, pulled=[])
    api.route("GET", "/events", answer)
    wrong = "an async iterator on a sync" if caller.is_async else "a sync iterator on an async"
    with pytest.raises(RuntimeError, match=f"Attempted to call {wrong} stream"):
        await caller.get("/events")
    await caller.aclose()
