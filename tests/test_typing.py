"""Static checks of the public API, run by mypy (strict) and basedpyright in CI.

``assert_type`` calls pin what the checkers infer. Lines ending in
``# type: ignore[code]`` are *expected errors*: both checkers are set to report
an ignore comment that suppresses nothing (mypy's ``warn_unused_ignores``, part
of strict; pyright's ``reportUnnecessaryTypeIgnoreComment``, switched on below),
so if a wrong call ever stops being an error, the type check fails.

Only the ``test_`` function runs under pytest (against the demo API); the
``_``-prefixed functions are read by the checkers and never called.
"""
# pyright: reportUnnecessaryTypeIgnoreComment=true

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel
from typing_extensions import assert_type

import buttress
from buttress.testing import (
    Cassette,
    CassetteTransport,
    DemoServer,
    Fail,
    FakeClock,
    MockAPI,
    Reply,
    ScriptedTransport,
)


class User(BaseModel):
    id: int
    name: str


class ErrorBody(BaseModel):
    error: dict[str, object]


def test_response_model_overloads_are_typed(demo: DemoServer) -> None:
    with buttress.Client(base_url=demo.url) as client:
        assert_type(client.get("/users/1"), buttress.Response)
        assert_type(client.get("/users/1", response_model=User), User)
        users = client.get("/users/linked", response_model=list[User])
        assert_type(users, list[User])
        assert_type(client.post("/users", json={"name": "x"}, response_model=dict), dict[Any, Any])
        assert users[0].name == "Ada Lovelace"
        # A model per status: the result is one of them (mypy needs the mapping annotated).
        by_status: dict[int, type[User] | type[ErrorBody]] = {200: User, 404: ErrorBody}
        found = client.get("/users/1", response_model=by_status)
        assert_type(found, User | ErrorBody)
        assert isinstance(found, User)
        missing = client.get("/users/999999", response_model=by_status)
        assert_type(missing, User | ErrorBody)
        assert isinstance(missing, ErrorBody)
        assert_type(client.get("/users/1", response_model={200: User}), User)


def _sync_usage(client: buttress.Client) -> None:
    assert_type(client.request("GET", "/users/1"), buttress.Response)
    assert_type(client.request("GET", "/users/1", response_model=User), User)
    assert_type(client.head("/users/1"), buttress.Response)
    assert_type(client.options("/users"), buttress.Response)
    assert_type(client.delete("/users/1", response_model=dict[str, int]), dict[str, int])
    assert_type(client.put("/users/1", json={}, response_model=User), User)
    assert_type(client.patch("/users/1", json={}, response_model=int), int)
    assert_type(client.send(client.build_request("GET", "/")), buttress.Response)
    with client.stream("GET", "/download") as response:
        assert_type(response, buttress.Response)
    requests = [client.build_request("GET", "/users/1")]
    assert_type(client.batch(requests), list[buttress.Response | Exception])
    assert_type(client.batch(requests, return_exceptions=False), list[buttress.Response])
    assert_type(client.paginate("/users"), buttress.Paginator[Any])
    assert_type(client.paginate("/users", response_model=User), buttress.Paginator[User])
    assert_type(client.paginate("/users", response_model=None), buttress.Paginator[Any])
    client.paginate("/users", max_items="3")  # type: ignore[arg-type]
    # A buttress client is an httpx client: code typed for httpx accepts it.
    plain: httpx.Client = client
    assert plain is client


async def _async_usage(client: buttress.AsyncClient) -> None:
    assert_type(await client.get("/users/1"), buttress.Response)
    assert_type(await client.get("/users/1", response_model=User), User)
    assert_type(await client.patch("/users/1", json={}, response_model=list[User]), list[User])
    assert_type(await client.request("POST", "/users", response_model=User), User)
    by_status: dict[int, type[User] | type[ErrorBody]] = {201: User, 409: ErrorBody}
    assert_type(await client.post("/users", response_model=by_status), User | ErrorBody)
    assert_type(await client.delete("/users/1"), buttress.Response)
    assert_type(await client.send(client.build_request("GET", "/")), buttress.Response)
    # The verbs return coroutines, as async methods do: tasks can be made of them.
    task = asyncio.create_task(client.get("/users/1", response_model=User))
    assert_type(await task, User)
    async with client.stream("GET", "/download") as response:
        assert_type(response, buttress.Response)
    requests = [client.build_request("GET", "/users/1")]
    assert_type(await client.batch(requests), list[buttress.Response | Exception])
    assert_type(await client.batch(requests, return_exceptions=False), list[buttress.Response])
    assert_type(client.paginate("/users"), buttress.AsyncPaginator[Any])
    assert_type(client.paginate("/users", response_model=User), buttress.AsyncPaginator[User])
    plain: httpx.AsyncClient = client
    assert plain is client


def _wrong_calls_are_rejected(client: buttress.Client) -> None:
    # Each line must be an error for both checkers (see the module docstring).
    client.get("/users", timeout="soon")  # type: ignore[call-overload]
    client.get("/users", params=object())  # type: ignore[call-overload]
    client.post("/users", raise_for_status="yes")  # type: ignore[call-overload]
    client.get("/users", retries=3)  # type: ignore[call-overload]


def _config_objects_reject_wrong_types() -> None:
    buttress.TimeoutConfig(read="soon")  # type: ignore[arg-type]
    buttress.TimeoutConfig(total=[1])  # type: ignore[arg-type]
    buttress.APIVersion(version="v1", location="query")  # type: ignore[arg-type]
    buttress.Client(timeout="soon")  # type: ignore[arg-type]
    buttress.Client(api_version=3)  # type: ignore[arg-type]
    buttress.Client(expected_statuses=404)  # type: ignore[arg-type]
    buttress.Client(retries=3)  # type: ignore[arg-type]
    buttress.AsyncClient(ratelimit=None)  # type: ignore[arg-type]
    buttress.BearerAuth(123)  # type: ignore[arg-type]
    buttress.RequestOptions(total_timeout="5")  # type: ignore[arg-type]
    options = buttress.RequestOptions()
    options.total_timeout = 1.0  # type: ignore[misc]


def _config_objects_accept_what_they_document() -> None:
    assert_type(buttress.TimeoutConfig(read=10), buttress.TimeoutConfig)
    assert_type(buttress.TimeoutConfig.coerce(httpx.Timeout(3.0)), buttress.TimeoutConfig)
    assert_type(buttress.options(total_timeout=3.0), dict[str, Any])
    buttress.Client(timeout=(1.0, 2.0, None, 4.0), api_version=buttress.APIVersion(version="2"))


def _testing_helpers_are_typed(tmp: Path, clock: FakeClock) -> None:
    transport = ScriptedTransport(Fail(httpx.ConnectTimeout), Reply(204), clock=clock)
    assert_type(transport.requests, list[httpx.Request])
    api = MockAPI()
    assert_type(api.transport, httpx.MockTransport)
    cassette = Cassette(tmp / "c.json", mode="once")
    assert_type(cassette.transport(), CassetteTransport)
    buttress.Client(transport=cassette.transport(api.transport))
    buttress.AsyncClient(transport=transport)

    Fail(ValueError)  # type: ignore[arg-type]
    Reply("200")  # type: ignore[arg-type]
    Cassette(tmp / "c.json", mode="sometimes")  # type: ignore[arg-type]
    ScriptedTransport(Reply(), clock=not_a_clock)  # type: ignore[arg-type]


not_a_clock: Callable[[], float] = FakeClock().monotonic
