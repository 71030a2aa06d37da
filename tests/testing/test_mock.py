"""MockAPI: respx routes with REST answers, for buttress and plain httpx clients, sync and async."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

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
