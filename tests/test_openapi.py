"""buttress.openapi against the OpenAPI document a real FastAPI app serves on 127.0.0.1.

One test body covers ``Client`` and ``AsyncClient`` (the ``make_client`` fixture).
The app counts the requests that reach it, so "refused before sending" is
checked on the server's side, not assumed.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import yaml
from fastapi import Body, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

import buttress
import buttress.openapi
from buttress.openapi import API, python_name
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio


class User(BaseModel):
    id: int
    name: str


class NewUser(BaseModel):
    name: str
    age: int = Field(ge=0)


class Problem(BaseModel):
    detail: str


EVENTS = [{"id": n} for n in range(1, 6)]
FORM_BODY = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
            }
        }
    },
    "required": True,
}


def make_app(hits: Counter[str]) -> FastAPI:
    """The API under test; ``hits`` counts the requests that reach each path."""
    app = FastAPI()
    flaky: Counter[str] = Counter()

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        hits[request.url.path] += 1
        return await call_next(request)

    @app.get(
        "/users/{user_id}",
        operation_id="get_user",
        response_model=User,
        responses={404: {"model": Problem}},
    )
    def get_user(user_id: int, x_trace: Annotated[str | None, Header()] = None) -> Any:
        if user_id == 404:
            return JSONResponse({"detail": "no such user"}, status_code=404)
        if user_id == 410:  # a 404 whose body is not the documented Problem
            return JSONResponse({"message": "gone"}, status_code=404)
        return JSONResponse({"id": user_id, "name": f"user {x_trace or user_id}"})

    @app.post("/users", operation_id="users.create", response_model=User, status_code=201)
    def create_user(user: NewUser) -> User:
        return User(id=7, name=user.name)

    @app.get("/broken", operation_id="get_broken", response_model=User)
    def broken() -> Any:
        return JSONResponse({"id": "seven"})  # off the documented User schema

    @app.get("/search/{term}", operation_id="search")
    def search(
        term: str,
        x_api_key: Annotated[int, Header()],
        tag: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        return {"term": term, "tag": tag or [], "limit": limit, "key": x_api_key}

    @app.get(
        "/events",
        operation_id="list_events",
        responses={200: {"headers": {"Link": {"schema": {"type": "string"}}}}},
    )
    def list_events(request: Request, response: Response, cursor: int = 0) -> list[Any]:
        page = EVENTS[cursor : cursor + 2]
        if cursor + 2 < len(EVENTS):
            response.headers["Link"] = f'<{request.url.path}?cursor={cursor + 2}>; rel="next"'
        return page

    @app.get("/people", operation_id="list_people")
    def list_people(offset: int = 0, limit: int = 2) -> dict[str, Any]:
        people = [{"id": n, "name": f"p{n}"} for n in range(1, 6)]
        return {"items": people[offset : offset + limit], "total": len(people)}

    @app.get("/flaky/{key}", operation_id="get_flaky")
    def get_flaky(key: str) -> Any:
        flaky[key] += 1
        if flaky[key] == 1:
            return JSONResponse({"detail": "try again"}, status_code=503)
        return {"attempt": flaky[key]}

    @app.post("/form", operation_id="post_form", openapi_extra={"requestBody": FORM_BODY})
    async def post_form(request: Request) -> dict[str, str]:
        return {"type": request.headers["content-type"], "body": (await request.body()).decode()}

    text_body = {"content": {"text/plain": {"schema": {"type": "string"}}}}

    @app.post("/note", operation_id="post_note", openapi_extra={"requestBody": text_body})
    async def post_note(request: Request) -> dict[str, str]:
        return {"type": request.headers["content-type"], "body": (await request.body()).decode()}

    @app.post("/echo-json", operation_id="echo_json")
    def echo_json(payload: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return payload

    @app.get("/echo-request")
    def echo_request(request: Request) -> dict[str, Any]:
        return {
            "query": request.url.query,
            "cookie": request.headers.get("cookie"),
            "trace": request.headers.get("x-trace-ids"),
        }

    @app.get("/files/{name:path}")
    def get_file(request: Request, name: str) -> dict[str, Any]:
        return {"name": name, "raw_path": request.scope["raw_path"].decode()}

    @app.get("/answers/{kind}", operation_id="get_answer", response_model=User)
    def get_answer(kind: str) -> Any:
        if kind == "text":
            return PlainTextResponse("hello")
        if kind == "empty":
            return Response(status_code=200)
        return Response(b"{oops", media_type="application/json")

    return app


class Served:
    def __init__(self, server: DemoServer, hits: Counter[str]) -> None:
        self.url = server.url
        self.hits = hits


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    hits: Counter[str] = Counter()
    root = FastAPI()
    root.mount("/v1", make_app(Counter()))  # served under a prefix: its document says so
    app = make_app(hits)
    app.mount("/mounted", root)
    with DemoServer(app) as server:
        yield Served(server, hits)


async def load(either: Either, source: Any) -> API:
    if either.is_async:
        assert isinstance(either.client, buttress.AsyncClient)
        return await buttress.openapi.aload(either.client, source)
    return buttress.openapi.load(either.client, source)


async def settle(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def collect(paginator: Any) -> list[Any]:
    if isinstance(paginator, buttress.AsyncPaginator):
        return [item async for item in paginator]
    return list(paginator)


@pytest.fixture
async def api(make_client: Callable[..., Either], served: Served) -> API:
    return await load(make_client(base_url=served.url, retry=False), "/openapi.json")


# --- operations as methods ------------------------------------------------------------------


async def test_operations_are_methods_named_by_operation_id(api: API) -> None:
    response = await settle(api.get_user(user_id=1))
    assert isinstance(response, buttress.Response)
    assert response.json() == {"id": 1, "name": "user 1"}

    user = await settle(api.get_user(user_id=2, x_trace="abc", response_model=User))
    assert user == User(id=2, name="user abc")  # x-trace reached the server as a header

    assert {"get_user", "users_create", "list_events"} <= set(dir(api))
    assert repr(api.get_user) == "<Operation get_user: GET /users/{user_id}>"
    assert api.get_user.parameters == ("user_id", "x_trace")
    assert api.get_user.__doc__ == "Get User"


async def test_an_async_client_gets_awaitables(api: API) -> None:
    result = api.get_user(user_id=1)
    assert inspect.isawaitable(result) is api.is_async
    assert (await settle(result)).status_code == 200


async def test_names_that_are_not_identifiers_are_mapped(api: API) -> None:
    created = await settle(api.users_create(body={"name": "Ada", "age": 36}, response_model=User))
    assert created == User(id=7, name="Ada")
    assert api.operations["users.create"] is api.users_create
    with pytest.raises(AttributeError, match="no operation 'nope'"):
        _ = api.nope


async def test_an_operation_named_like_an_attribute_of_the_api_gets_a_suffix(
    make_client: Callable[..., Either], served: Served
) -> None:
    document = {
        "openapi": "3.1.0",
        "paths": {
            "/users/{user_id}": {
                "get": {
                    "operationId": "server",
                    "parameters": [_parameter("user_id", "path", {"type": "integer"})],
                    "responses": {},
                }
            }
        },
    }
    api = await load(make_client(base_url=served.url, retry=False), document)
    assert api.server == ""  # still where operations are sent
    assert api.operations["server"] is api.server_
    assert (await settle(api.server_(user_id=3))).json()["id"] == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("get_user", "get_user"),
        ("getUser", "getUser"),
        ("users.get", "users_get"),
        ("X-Request-Id", "X_Request_Id"),
        ("page[size]", "page_size"),
        ("2fa", "_2fa"),
        ("import", "import_"),
        ("---", "_"),
    ],
)
def test_python_name(name: str, expected: str) -> None:
    assert python_name(name) == expected
    assert python_name(name).isidentifier()


async def test_parameters_are_written_in_their_style(api: API) -> None:
    answer = await settle(api.search(term="a b?c", tag=["x", "y"], x_api_key=5, limit=3))
    assert answer.json() == {"term": "a b?c", "tag": ["x", "y"], "limit": 3, "key": 5}
    assert answer.request.url.raw_path == b"/search/a%20b%3Fc?tag=x&tag=y&limit=3"
    assert answer.request.headers["x-api-key"] == "5"


async def test_the_request_goes_through_the_clients_layers(
    make_client: Callable[..., Either], served: Served
) -> None:
    either = make_client(base_url=served.url)  # default retries; the fake clock skips the wait
    api = await load(either, "/openapi.json")
    key = f"retry-{either.is_async}"
    response = await settle(api.get_flaky(key=key))
    assert response.json() == {"attempt": 2}
    assert response.attempts == 2


async def test_request_bodies_by_media_type(api: API) -> None:
    form = await settle(api.post_form(body={"name": "Ada"}))
    assert form.json() == {"type": "application/x-www-form-urlencoded", "body": "name=Ada"}
    note = await settle(api.post_note(body="hello"))
    assert note.json() == {"type": "text/plain", "body": "hello"}
    model = await settle(api.echo_json(body=NewUser(name="Ada", age=3)))
    assert model.json() == {"name": "Ada", "age": 3}


# --- the caller's side: refused before sending ----------------------------------------------


async def test_bad_arguments_are_refused_before_sending(api: API, served: Served) -> None:
    before = served.hits["/search/x"]
    with pytest.raises(buttress.SchemaValidationError) as caught:
        await settle(api.search(term="x", tag="not-a-list", limit=0, colour="red"))
    error = caught.value
    assert served.hits["/search/x"] == before  # nothing was sent
    assert error.response is None
    assert error.operation == "search"
    problems = {(e["loc"], e["type"]) for e in error.errors}
    assert problems == {
        (("arguments", "colour"), "unknown"),
        (("header", "x-api-key"), "missing"),
        (("query", "tag"), "anyOf"),  # list[str] | None
        (("query", "limit"), "minimum"),
    }
    message = str(error)
    assert message.startswith("search (GET /search/{term}) not sent")
    assert "4 error(s)" in message
    assert set(api.search.parameters) == {"term", "tag", "x_api_key", "limit"}
    takes = ", ".join(api.search.parameters)
    assert f"arguments.colour: unknown parameter (takes: {takes})" in message


async def test_a_header_value_is_never_quoted(api: API) -> None:
    with pytest.raises(buttress.SchemaValidationError) as caught:
        await settle(api.search(term="x", x_api_key="s3cret-key"))
    assert [e["loc"] for e in caught.value.errors] == [("header", "x-api-key")]
    assert caught.value.errors[0]["input"] == "[hidden]"
    assert "s3cret-key" not in str(caught.value)


async def test_a_body_off_its_schema_is_refused(api: API, served: Served) -> None:
    before = served.hits["/users"]
    with pytest.raises(buttress.SchemaValidationError) as caught:
        await settle(api.users_create(body={"name": 5, "age": -1, "secret": "pw"}))
    assert served.hits["/users"] == before
    assert {(e["loc"], e["type"]) for e in caught.value.errors} == {
        (("body", "name"), "type"),
        (("body", "age"), "minimum"),
    }
    assert "pw" not in str(caught.value)
    with pytest.raises(buttress.SchemaValidationError, match="request body required"):
        await settle(api.users_create())
    with pytest.raises(buttress.SchemaValidationError, match="takes no request body"):
        await settle(api.get_user(user_id=1, body={}))
    with pytest.raises(buttress.SchemaValidationError, match="text/plain takes bytes or str"):
        await settle(api.post_note(body={"a": 1}))
    with pytest.raises(buttress.SchemaValidationError, match="cannot be written as JSON"):
        await settle(api.echo_json(body={"when": object()}))
    assert served.hits["/users"] == before


def _parameter(name: str, where: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, **more}


ECHO = {
    "openapi": "3.1.0",
    "paths": {
        "/echo-request": {
            "parameters": [{"$ref": "#/components/parameters/Flag"}],
            "get": {
                "operationId": "echo",
                "parameters": [
                    _parameter("filter", "query", {"type": "object"}, style="deepObject"),
                    _parameter("ids", "query", {"type": "array"}, explode=False),
                    _parameter("point", "query", {"type": "object"}),
                    _parameter("body", "query", {"enum": ["a", "b"]}),
                    _parameter("kind", "query", {"const": "x"}),
                    _parameter("either", "query", {"anyOf": [{"type": "integer"}]}),
                    _parameter("session", "cookie", {"type": "string"}),
                    _parameter("X-Trace-Ids", "header", {"type": "array"}),
                    _parameter("Accept", "header", {"type": "string"}),  # the client's own
                ],
                "responses": {"200": {"description": "what arrived"}},
            },
        }
    },
    "components": {"parameters": {"Flag": _parameter("flag", "query", {"type": "boolean"})}},
}


async def test_parameter_styles_and_locations(
    make_client: Callable[..., Either], served: Served
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), ECHO)
    assert api.echo.parameters == (
        "flag",
        "filter",
        "ids",
        "point",
        "body_",
        "kind",
        "either",
        "session",
        "X_Trace_Ids",
    )
    answer = await settle(
        api.echo(
            flag=True,
            filter={"a": 1},
            ids=[1, 2],
            point={"x": 1, "y": 2},
            body_="a",
            session="s 1",
            X_Trace_Ids=["t1", "t2"],
        )
    )
    assert answer.json() == {
        "query": "flag=true&filter%5Ba%5D=1&ids=1%2C2&x=1&y=2&body=a",
        "cookie": "session=s%201",
        "trace": "t1,t2",
    }
    with pytest.raises(buttress.SchemaValidationError) as caught:
        await settle(api.echo(body_="c", kind="y", either="z", flag="yes", filter=None))
    assert [error["msg"] for error in caught.value.errors] == [
        'expected type "boolean"',  # the schema of a parameter given by $ref
        'expected one of ["a", "b"]',
        'expected "x"',
        "does not match anyOf of the schema",
    ]


FILES = {
    "openapi": "3.1.0",
    "paths": {
        "/files/{name}": {
            "get": {  # no operationId: named from its method and path
                "parameters": [_parameter("name", "path", {"type": "string"}, required=True)],
                "responses": {"200": {"description": "where the request arrived"}},
            }
        }
    },
}


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("a/b", "a%2Fb"),
        ("../admin", "..%2Fadmin"),
        ("..", "%2E%2E"),  # left as "..", the URL would lose "/files"
        (".", "%2E"),
        ("a?b=1#c", "a%3Fb%3D1%23c"),
    ],
)
async def test_a_path_parameter_stays_in_its_segment(
    make_client: Callable[..., Either], served: Served, name: str, sent: str
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), FILES)
    answer = await settle(api.get_files_name(name=name))
    assert answer.json() == {"name": name, "raw_path": f"/files/{sent}"}


@pytest.mark.parametrize("name", ["", []])
async def test_an_empty_path_parameter_is_refused(
    make_client: Callable[..., Either], served: Served, name: Any
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), FILES)
    with pytest.raises(buttress.SchemaValidationError, match=r"path\.name: empty") as caught:
        await settle(api.get_files_name(name=name))  # would be GET /files/, another resource
    assert caught.value.errors[0]["loc"] == ("path", "name")
    assert served.hits["/files/"] == 0


async def test_a_header_value_the_protocol_refuses_is_not_quoted(
    make_client: Callable[..., Either], served: Served
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), "/openapi.json")
    secret = "k3y-7f2e\r\nX-Injected: 1"
    with pytest.raises(buttress.ClientError) as caught:
        await settle(api.get_user(user_id=1, x_trace=secret))
    assert "k3y-7f2e" not in str(caught.value)
    assert "Illegal header value" in str(caught.value)


async def test_a_parameter_may_be_named_self(
    make_client: Callable[..., Either], served: Served
) -> None:
    document = {
        "openapi": "3.1.0",
        "paths": {
            "/echo-request": {
                "get": {
                    "operationId": "echo",
                    "parameters": [_parameter("self", "query", {"type": "string"})],
                    "responses": {"200": {"description": "what arrived"}},
                }
            }
        },
    }
    api = await load(make_client(base_url=served.url, retry=False), document)
    assert (await settle(api.echo(self="me"))).json()["query"] == "self=me"
    pages = api.echo.paginate(self="me")
    assert isinstance(pages, buttress.Paginator | buttress.AsyncPaginator)


async def test_a_header_value_that_is_not_ascii_is_refused_before_sending(
    api: API, served: Served
) -> None:
    before = served.hits["/users/1"]
    with pytest.raises(buttress.ConfigurationError, match="not ASCII") as caught:
        await settle(api.get_user(user_id=1, x_trace="café-k3y"))
    assert "k3y" not in str(caught.value)
    assert served.hits["/users/1"] == before


async def test_options_are_the_clients_request_arguments(api: API) -> None:
    response = await settle(api.get_user(user_id=1, options={"headers": {"X-Extra": "1"}}))
    assert response.request.headers["x-extra"] == "1"
    with pytest.raises(buttress.ConfigurationError, match="not params in options"):
        await settle(api.get_user(user_id=1, options={"params": {"a": 1}}))


# --- the server's side ----------------------------------------------------------------------


async def test_a_response_off_its_schema_raises(api: API) -> None:
    with pytest.raises(buttress.SchemaValidationError) as caught:
        await settle(api.get_broken())
    error = caught.value
    assert error.response is not None
    assert error.response.status_code == 200
    assert error.response.json() == {"id": "seven"}
    assert {(e["loc"], e["type"]) for e in error.errors} == {
        (("response",), "required"),
        (("response", "id"), "type"),
    }
    assert "does not match the 200 response documented for get_broken" in str(error)


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("text", buttress.SchemaValidationError, "content type 'text/plain' is not one documented"),
        ("empty", buttress.SchemaValidationError, "empty body where the document describes one"),
        ("broken", buttress.InvalidJSONError, "invalid JSON"),
    ],
)
async def test_an_answer_that_is_not_the_documented_json_raises(
    api: API, kind: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await settle(api.get_answer(kind=kind))


async def test_a_documented_error_raises_the_usual_error_with_its_body(api: API) -> None:
    with pytest.raises(buttress.NotFoundError) as caught:
        await settle(api.get_user(user_id=404))
    assert caught.value.details == {"detail": "no such user"}
    assert not getattr(caught.value, "__notes__", [])

    problem = await settle(api.get_user(user_id=404, response_model={200: User, 404: Problem}))
    assert problem == Problem(detail="no such user")


async def test_an_error_body_off_its_schema_is_noted_on_the_error(api: API) -> None:
    with pytest.raises(buttress.NotFoundError) as caught:
        await settle(api.get_user(user_id=410))
    assert caught.value.details == {"message": "gone"}
    [note] = caught.value.__notes__  # type: ignore[attr-defined]  # PEP 678 (3.10 too)
    assert note.startswith("its body does not match the 404 response documented for get_user")
    assert "'detail' is a required property" in note


# --- pagination -----------------------------------------------------------------------------


async def test_a_documented_link_header_means_link_pagination(api: API) -> None:
    strategy = api.list_events.pagination_strategy
    assert isinstance(strategy, buttress.LinkHeaderPagination)
    assert await collect(api.list_events.paginate()) == EVENTS


async def test_offset_and_limit_parameters_mean_offset_pagination(api: API) -> None:
    assert isinstance(api.list_people.pagination_strategy, buttress.OffsetLimitPagination)
    people = await collect(api.list_people.paginate(limit=2, response_model=User))
    assert [person.id for person in people] == [1, 2, 3, 4, 5]


async def test_pages_are_checked_against_the_document(api: API) -> None:
    with pytest.raises(buttress.SchemaValidationError):
        await collect(api.get_broken.paginate())
    with pytest.raises(buttress.ConfigurationError, match="only GET operations paginate"):
        api.users_create.paginate()


# --- where the document and the requests come from ------------------------------------------


async def test_the_documents_relative_server_without_a_base_url(
    make_client: Callable[..., Either], served: Served
) -> None:
    either = make_client(retry=False)
    api = await load(either, f"{served.url}/mounted/v1/openapi.json")
    assert api.server == f"{served.url}/mounted/v1"
    response = await settle(api.get_user(user_id=3))
    assert str(response.url) == f"{served.url}/mounted/v1/users/3"


async def test_a_yaml_file_with_a_templated_server(
    make_client: Callable[..., Either], served: Served, tmp_path: Path
) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    port = served.url.rsplit(":", 1)[1]
    document["servers"] = [
        {"url": "http://127.0.0.1:{port}/", "variables": {"port": {"default": port}}}
    ]
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(document))
    api = await load(make_client(retry=False), path)
    assert api.server == served.url
    assert (await settle(api.get_user(user_id=5))).json()["id"] == 5


async def test_a_yaml_file_written_by_hand(
    make_client: Callable[..., Either], served: Served, tmp_path: Path
) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(
        """
openapi: 3.0.3
paths:
  /users/{user_id}:
    get:
      operationId: get_user
      parameters: [{name: user_id, in: path, required: true, schema: {type: integer}}]
      responses:
        200:  # an int to YAML
          description: a user
          content:
            application/json:
              schema:
                type: object
                required: [id, name]
                properties:
                  id: {type: integer}
                  name: {type: string, enum: [user 1, user 2]}
                  since: {type: string, format: date, default: 2020-01-01}
        404: {description: no such user}
"""
    )
    client = make_client(base_url=served.url, retry=False)
    for source in (path, yaml.safe_load(path.read_text())):  # read by us, or by the caller
        api = await load(client, source)
        assert (await settle(api.get_user(user_id=1))).json() == {"id": 1, "name": "user 1"}
        with pytest.raises(buttress.SchemaValidationError, match=r"response\.name: expected"):
            await settle(api.get_user(user_id=3))


async def test_a_base_url_wins_over_the_documents_servers(
    make_client: Callable[..., Either], served: Served
) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    document["servers"] = [{"url": "http://127.0.0.1:1/elsewhere"}]
    api = await load(make_client(base_url=served.url, retry=False), document)
    assert api.server == ""
    assert (await settle(api.get_user(user_id=6))).json()["id"] == 6


OAS30 = {
    "openapi": "3.0.3",
    "paths": {
        "/echo-json": {
            "post": {
                "operationId": "echo",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/P"}}}
                },
                "responses": {
                    "200": {
                        "description": "the body",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/P"}}
                        },
                    }
                },
            }
        }
    },
    "components": {
        "schemas": {
            "P": {
                "type": "object",
                "required": ["nick"],
                "properties": {"nick": {"type": "string", "nullable": True}},
            }
        }
    },
}


async def test_openapi_3_0_documents_use_their_dialect(
    make_client: Callable[..., Either], served: Served
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), OAS30)
    assert (await settle(api.echo(body={"nick": None}))).json() == {"nick": None}  # nullable
    with pytest.raises(buttress.SchemaValidationError, match=r"body\.nick: expected type"):
        await settle(api.echo(body={"nick": 1}))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"swagger": "2.0", "paths": {}}, "not an OpenAPI 3 document"),
        (
            {
                "openapi": "3.1.0",
                "paths": {"/a": {"get": {"operationId": "a.b"}, "put": {"operationId": "a_b"}}},
            },
            "two operations are named 'a_b'",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"$ref": "#/nowhere"}]}}}},
            "points to nothing",
        ),
        (
            {
                "openapi": "3.1.0",
                "paths": {
                    "/a": {
                        "get": {
                            "parameters": [
                                {"name": "a-b", "in": "query"},
                                {"name": "a_b", "in": "header"},
                            ]
                        }
                    }
                },
            },
            "parameters query 'a-b' and header 'a_b' are both named 'a_b'",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"in": "query"}]}}}},
            "has no name or no 'in'",
        ),
        (
            {
                "openapi": "3.1.0",
                "paths": {"/a": {"get": {"parameters": [{"$ref": "other.json#/x"}]}}},
            },
            "only references inside the document",
        ),
        ({"openapi": "3.1.0", "paths": ["/a"]}, "paths is a list, not an object"),
        ({"openapi": "3.1.0", "paths": {"/a": {"get": "x"}}}, r"/paths/~1a/get is a str"),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": ["200"]}}}},
            r"/paths/~1a/get/responses is a list",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"get": {"responses": {"200": None}}}}},
            r"/paths/~1a/get/responses/200 is a NoneType",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": "x"}}}},
            r"/paths/~1a/post/requestBody is a str",
        ),
    ],
)
async def test_documents_that_cannot_work_are_refused(
    make_client: Callable[..., Either], document: dict[str, Any], message: str
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        await load(make_client(base_url="http://127.0.0.1:1"), document)


def _echo_body(schema: dict[str, Any], **schemas: Any) -> dict[str, Any]:
    content = {"application/json": {"schema": schema}}
    operation = {"operationId": "echo_json", "requestBody": {"content": content}}
    return {
        "openapi": "3.1.0",
        "paths": {"/echo-json": {"post": {**operation, "responses": {}}}},
        "components": {"schemas": schemas},
    }


@pytest.mark.parametrize(
    "document",
    [
        _echo_body({"type": "colour"}),
        _echo_body({"type": "string", "pattern": "(["}),
        _echo_body(
            {"$ref": "#/components/schemas/A"},
            A={"$ref": "#/components/schemas/B"},
            B={"$ref": "#/components/schemas/A"},
        ),
    ],
    ids=["unknown type", "bad pattern", "reference loop"],
)
async def test_a_broken_schema_is_a_configuration_error(
    make_client: Callable[..., Either], served: Served, document: dict[str, Any]
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), document)
    before = served.hits["/echo-json"]
    with pytest.raises(buttress.ConfigurationError, match=r"schema at /paths\S* is broken"):
        await settle(api.echo_json(body="x"))
    assert served.hits["/echo-json"] == before


async def test_sources_that_cannot_work_are_refused(
    make_client: Callable[..., Either], served: Served, tmp_path: Path
) -> None:
    either = make_client(retry=False)
    relative = {"openapi": "3.1.0", "servers": [{"url": "/v2"}], "paths": {}}
    with pytest.raises(
        buttress.ConfigurationError, match="relative and the client has no base_url"
    ):
        await load(either, relative)
    for source in (5, None):
        with pytest.raises(buttress.ConfigurationError, match=r"a URL, a pathlib\.Path or"):
            await load(either, source)
    with pytest.raises(buttress.ConfigurationError, match="cannot read the OpenAPI document"):
        await load(either, tmp_path / "missing.json")
    with pytest.raises(buttress.ConfigurationError, match=r"pass a pathlib\.Path"):
        await load(either, "openapi.json")  # a file name, given as a string
    path = tmp_path / "not.json"
    path.write_text("{[")
    with pytest.raises(buttress.ConfigurationError, match="neither JSON nor YAML"):
        await load(either, path)
    path.write_text(json.dumps(["a list"]))
    with pytest.raises(buttress.ConfigurationError, match="not a mapping"):
        await load(either, path)
    with pytest.raises(buttress.ConfigurationError, match="not Client"):
        API(httpx.Client(), relative)  # type: ignore[arg-type]
    with pytest.raises(buttress.ConfigurationError, match="a mapping, not list"):
        API(either.client, [])  # type: ignore[arg-type]
    with pytest.raises(buttress.ConfigurationError, match="variable 'port' has no default"):
        await load(either, {"openapi": "3.1.0", "servers": [{"url": "http://h:{port}"}]})
    url = f"{served.url}/openapi.json"
    if either.is_async:
        with pytest.raises(buttress.ConfigurationError, match=r"await buttress\.openapi\.aload"):
            buttress.openapi.load(either.client, url)
    else:
        with pytest.raises(buttress.ConfigurationError, match="aload is for an AsyncClient"):
            await buttress.openapi.aload(either.client, url)  # type: ignore[arg-type]
