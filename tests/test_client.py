"""The facade against the real demo API: one test body for sync and async."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import buttress
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the layer suite runs over the aiohttp backend too


class User(BaseModel):
    id: int
    name: str
    email: str


async def test_get_returns_buttress_response(client: Either) -> None:
    response = await client.get("/users/1")
    assert isinstance(response, buttress.Response)
    assert isinstance(response, httpx.Response)
    assert response.ok
    assert response.is_success
    assert response.json()["name"] == "Ada Lovelace"


async def test_response_model_parses(client: Either) -> None:
    user = await client.get("/users/2", response_model=User)
    assert user == User(id=2, name="Grace Hopper", email="grace.hopper@example.com")


async def test_not_found_raises(client: Either) -> None:
    with pytest.raises(buttress.NotFoundError) as caught:
        await client.get("/users/999")
    assert caught.value.status_code == 404
    assert "user 999 not found" in str(caught.value)


class Query(BaseModel):
    n: int


async def test_every_method(client: Either) -> None:
    assert (await client.post("/users", json={"name": "Jane"})).status_code == 201
    assert (await client.put("/users/1", json={"name": "Ada K."})).json()["name"] == "Ada K."
    assert (await client.patch("/users/1", json={"email": "a@k.io"})).json()["email"] == "a@k.io"
    assert (await client.delete("/users/1")).status_code == 204
    head = await client.head("/users/1")
    assert head.status_code == 200
    assert head.content == b""
    options = await client.options("/echo")
    assert options.json()["method"] == "OPTIONS"
    assert (await client.request("GET", "/users/4")).json()["id"] == 4


async def test_query_params_are_url_encoded(client: Either) -> None:
    echoed = (await client.get("/echo", params={"q": "a b&c", "tag": ["x", "y"]})).json()
    assert echoed["query"]["q"] == "a b&c"


async def test_json_body_from_a_model_uses_aliases(client: Either) -> None:
    from pydantic import Field

    class NewUser(BaseModel):
        display_name: str = Field(alias="displayName")

    echoed = (await client.post("/echo", json=NewUser(displayName="Jane"))).json()
    assert echoed["json"] == {"displayName": "Jane"}
    assert echoed["headers"]["content-type"] == "application/json"
    many = (await client.post("/echo", json=[NewUser(displayName="A"), {"x": 1}])).json()
    assert many["json"] == [{"displayName": "A"}, {"x": 1}]


async def test_json_body_from_a_dataclass_and_dates(client: Either) -> None:
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Event:
        name: str
        when: datetime.date

    echoed = (await client.post("/echo", json=Event("launch", datetime.date(2025, 1, 2)))).json()
    assert echoed["json"] == {"name": "launch", "when": "2025-01-02"}


async def test_unserializable_body_is_a_validation_error(client: Either) -> None:
    with pytest.raises(buttress.ValidationError, match="not JSON-serializable"):
        await client.post("/echo", json={"x": object()})


async def test_form_files_and_raw_bodies(client: Either) -> None:
    form = (await client.post("/echo", data={"a": "1"})).json()
    assert form["body"] == "a=1"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    files = (await client.post("/echo", files={"f": ("a.txt", b"hello")})).json()
    assert files["headers"]["content-type"].startswith("multipart/form-data")
    assert "hello" in files["body"]
    raw = (await client.post("/echo", content=b"\x00raw")).json()
    assert raw["body"] == "\x00raw"


async def test_list_response_model(client: Either) -> None:
    users = await client.get("/users/linked", response_model=list[User])
    assert [u.id for u in users][:3] == [1, 2, 3]


async def test_validation_error_carries_field_errors(client: Either) -> None:
    class Strict(BaseModel):
        id: str
        missing: int

    with pytest.raises(buttress.ValidationError) as caught:
        await client.get("/users/1", response_model=Strict)
    error = caught.value
    assert [e["loc"] for e in error.errors] == [("id",), ("missing",)]
    assert error.model is Strict
    assert error.response is not None
    assert error.response.status_code == 200
    assert "does not match Strict" in str(error)


async def test_invalid_json_with_a_model_is_invalid_json_error(client: Either) -> None:
    with pytest.raises(buttress.InvalidJSONError):
        await client.get("/invalid-json", response_model=User)


async def test_strict_or_lax_per_client_and_call(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    lax = make_client(base_url=demo.url)
    echoed = await lax.get("/echo", params={"n": "5"})
    assert Query.model_validate(echoed.json()["query"]).n == 5

    class Echo(BaseModel):
        query: Query

    assert (await lax.get("/echo", params={"n": "5"}, response_model=Echo)).query.n == 5
    with pytest.raises(buttress.ValidationError):
        await lax.get("/echo", params={"n": "5"}, response_model=Echo, strict=True)
    strict = make_client(base_url=demo.url, strict=True)
    with pytest.raises(buttress.ValidationError):
        await strict.get("/echo", params={"n": "5"}, response_model=Echo)
    assert (
        await strict.get("/echo", params={"n": "5"}, response_model=Echo, strict=False)
    ).query.n == 5


class ErrorBody(BaseModel):
    error: dict[str, Any]


async def test_a_single_response_model_is_for_2xx_answers_only(
    client: Either, make_client: Callable[..., Either], demo: DemoServer
) -> None:
    # An expected 404 is not parsed as the success model: no User comes from it.
    with pytest.raises(buttress.NotFoundError) as caught:
        await client.get("/status/404", response_model=User, expected_statuses={404})
    assert caught.value.details == {"error": {"message": "demo error 404", "status": 404}}
    assert caught.value.__notes__ == [  # type: ignore[attr-defined]  # PEP 678
        "not parsed: response_model=User is for 2xx answers; to parse a 404 too, "
        "map statuses to models: response_model={200: User, 404: ...}"
    ]
    unraised = make_client(base_url=demo.url, raise_for_status=False, retry=False)
    with pytest.raises(buttress.ServerError):
        await unraised.get("/status/500", response_model=User)
    with pytest.raises(buttress.ValidationError, match=r"is a 302; not parsed"):
        await client.get(
            "/redirect", params={"to": "/users/1"}, response_model=User, follow_redirects=False
        )


async def test_a_response_model_per_status(client: Either) -> None:
    by_status = {200: User, 404: ErrorBody}
    assert await client.get("/users/1", response_model=by_status) == User(
        id=1, name="Ada Lovelace", email="ada.lovelace@example.com"
    )
    missing = await client.get("/users/999999", response_model=by_status)
    assert isinstance(missing, ErrorBody)
    assert missing.error["status"] == 404
    with pytest.raises(buttress.ServerError) as caught:  # a status it does not map
        await client.get("/status/500", response_model=by_status, retry=False)
    assert caught.value.status_code == 500
    with pytest.raises(buttress.ValidationError, match="maps 404 only; add 200: Model"):
        await client.get("/users/1", response_model={404: ErrorBody})
    with pytest.raises(buttress.ConfigurationError, match="as keys, not str"):
        await client.get("/users/1", response_model={"200": User})


async def test_bad_response_model_is_a_configuration_error(client: Either) -> None:
    with pytest.raises(buttress.ConfigurationError):
        await client.get("/users/1", response_model=object())


async def test_non_utf8_json(make_client: Callable[..., Either]) -> None:
    body = '{"name": "Zoë"}'.encode("latin-1")
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=body, headers={"content-type": "application/json; charset=latin-1"}
        )
    )
    client = make_client(base_url="http://api.test", transport=transport)

    class Named(BaseModel):
        name: str

    assert (await client.get("/x", response_model=Named)).name == "Zoë"
    assert (await client.get("/x")).json() == {"name": "Zoë"}


async def test_event_hooks_run_sync_functions_on_both_clients(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    seen: list[str] = []

    def on_request(request: httpx.Request) -> None:
        request.headers["X-Correlation-ID"] = "corr-1"
        seen.append(f"request {request.method}")

    def on_response(response: httpx.Response) -> None:
        seen.append(f"response {response.status_code}")

    client = make_client(
        base_url=demo.url, event_hooks={"request": [on_request], "response": [on_response]}
    )
    echoed = (await client.get("/echo")).json()
    assert echoed["headers"]["x-correlation-id"] == "corr-1"
    assert seen == ["request GET", "response 200"]


async def test_mounts_route_to_their_transport(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    other = httpx.MockTransport(lambda request: httpx.Response(200, json={"mounted": True}))
    client = make_client(base_url=demo.url, mounts={"http://mounted.test": other})
    assert (await client.get("http://mounted.test/x")).json() == {"mounted": True}
    assert (await client.get("/users/1")).json()["id"] == 1


async def test_stream_reads_lazily(client: Either) -> None:
    body = await client.stream_bytes("GET", "/download", params={"size": 300_000})
    assert len(body) == 300_000
    assert body[:3] == b"\x00\x01\x02"


async def test_stream_raises_for_error_statuses_with_body(client: Either) -> None:
    with pytest.raises(buttress.NotFoundError) as caught:
        await client.stream_bytes("GET", "/users/999")
    assert "not found" in caught.value.text


async def test_send_a_built_request(client: Either) -> None:
    request = client.client.build_request("GET", "/users/5")
    response = await client.send(request)
    assert isinstance(response, buttress.Response)
    assert response.json()["name"] == "Edsger Dijkstra"


@pytest.mark.parametrize("cls", [buttress.Client, buttress.AsyncClient])
async def test_pool_limits_are_applied(
    cls: type[buttress.Client] | type[buttress.AsyncClient], demo: DemoServer
) -> None:
    client = Either(
        cls(base_url=demo.url, max_connections=7, max_keepalive_connections=3, keepalive_expiry=1)
    )
    await client.get("/users/1")  # connection pools are made on first use, one per route
    network: Any = client.client._transport
    while hasattr(network, "_inner"):  # under the buttress layers
        network = network._inner
    [route] = network._routes.values()
    pool = route._pool
    await client.aclose()
    assert pool._max_connections == 7
    assert pool._max_keepalive_connections == 3
    assert pool._keepalive_expiry == 1


async def test_context_manager(mode: str, demo: DemoServer) -> None:
    if mode == "sync":
        with buttress.Client(base_url=demo.url) as client:
            assert client.get("/users/1").status_code == 200
        assert client.is_closed
    else:
        async with buttress.AsyncClient(base_url=demo.url) as aclient:
            assert (await aclient.get("/users/1")).status_code == 200
        assert aclient.is_closed


def test_async_methods_are_coroutine_functions_where_httpxs_are() -> None:
    """Decorators that wrap sync and async callables differently (retrying, tracing) check
    ``inspect.iscoroutinefunction``: each httpx.AsyncClient method answers the same on ours."""
    import inspect

    import httpx

    from buttress import AsyncClient

    differing = [
        name
        for name, member in vars(httpx.AsyncClient).items()
        if not name.startswith("_")
        and callable(member)
        and inspect.iscoroutinefunction(member)
        != inspect.iscoroutinefunction(getattr(AsyncClient, name))
    ]
    assert differing == []


def test_async_feature_methods_returning_awaitables_are_coroutine_functions() -> None:
    """The same rule for buttress's own methods: those awaited are coroutine functions, and
    those used with ``async for`` / ``async with`` are not (they return the object at once)."""
    import inspect

    from buttress import AsyncClient

    awaited = {"graphql", "batch", "download", "request", "send", "get", "post"}
    at_once = {"graphql_paginate", "websocket", "paginate", "build_request"}
    assert {
        name
        for name in awaited | at_once
        if inspect.iscoroutinefunction(getattr(AsyncClient, name))
    } == awaited
