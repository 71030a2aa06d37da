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
from fastapi import Body, FastAPI, File, Form, Header, Query, Request, Response, UploadFile
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

    @app.post("/upload", operation_id="upload")
    async def upload(
        request: Request,
        file: Annotated[UploadFile, File()],
        note: Annotated[str | None, Form()] = None,
        tags: Annotated[list[str] | None, Form()] = None,
        meta: Annotated[str | None, Form()] = None,
    ) -> dict[str, Any]:
        return {
            "name": file.filename,
            "type": file.content_type,
            "body": (await file.read()).decode(),
            "note": note,
            "tags": tags,
            "meta": meta,
            "content_types": request.headers.getlist("content-type"),
        }

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
        "query": "flag=true&filter%5Ba%5D=1&ids=1,2&x=1&y=2&body=a",  # the delimiter kept
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
async def test_a_broken_schema_is_refused_when_the_document_is_loaded(
    make_client: Callable[..., Either], document: dict[str, Any]
) -> None:
    where = r"schema at /paths/~1echo-json/post/requestBody/content/application~1json/schema"
    with pytest.raises(buttress.ConfigurationError, match=rf"{where}\S* is broken|without cycles"):
        await load(make_client(base_url="http://127.0.0.1:1"), document)


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


# --- malformed documents: refused by load, saying where -------------------------------------

OK = {"200": {"description": "ok"}}
SERVER = [{"url": "http://127.0.0.1:1"}]


def _document(paths: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"openapi": "3.1.0", "servers": SERVER, "paths": paths, **more}


def _get(path: str, **operation: Any) -> dict[str, Any]:
    return _document({path: {"get": {"operationId": "op", "responses": OK, **operation}}})


ID = _parameter("id", "path", {"type": "string"}, required=True)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_get("/a", parameters=None), r"/paths/~1a/get/parameters is a NoneType, not a list"),
        (
            _document({"/a": {"parameters": None, "get": {"responses": OK}}}),
            r"/paths/~1a/parameters is a NoneType, not a list",
        ),
        (
            _document({"/a": {"post": {"requestBody": {"content": {"application/json": None}}}}}),
            r"/paths/~1a/post/requestBody/content/application~1json is a NoneType, not an object",
        ),
        (
            _get("/a", responses={"200": {"content": {"application/json": {"schema": None}}}}),
            r"schema at /paths/~1a/get/responses/200/content/application~1json/schema is broken",
        ),
        (
            _get("/a", responses={"200": {"content": {"application/json": None}}}),
            r"/paths/~1a/get/responses/200/content/application~1json is a NoneType",
        ),
        (
            _get("/a", responses={"200": {"description": "x", "headers": ["Link"]}}),
            r"/paths/~1a/get/responses/200/headers is a list, not an object",
        ),
        (
            _get("/a/{id}", parameters=[{**ID, "schema": "string"}]),
            r"schema at /paths/~1a~1\{id\}/get/parameters/0/schema is broken: 'string' is not",
        ),
        (
            _get("/a/{id}", parameters=[{**ID, "style": 5}]),
            r"/paths/~1a~1\{id\}/get/parameters/0/style is a int, not a string",
        ),
        (
            _get("/a", parameters=[{"name": "q", "in": "query", "explode": "yes"}]),
            r"/paths/~1a/get/parameters/0/explode is a str, not a boolean",
        ),
        (_get("/a", operationId=5), r"/paths/~1a/get/operationId is a int, not a string"),
        (
            _document({}, components={"schemas": {"User": {"type": "colour"}}}),
            r"schema at /components/schemas/User/type is broken",
        ),
        ({"openapi": "3.1.0", "servers": {"url": "http://a"}}, r"/servers is a dict, not a list"),
        ({"openapi": "3.1.0", "servers": ["http://a"]}, r"/servers/0 is a str, not an object"),
        (
            {"openapi": "3.1.0", "servers": [{"url": "http://{h}", "variables": ["h"]}]},
            r"/servers/0/variables is a list, not an object",
        ),
    ],
)
async def test_a_malformed_document_is_refused_saying_where(
    make_client: Callable[..., Either], document: dict[str, Any], message: str
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        await load(make_client(retry=False), document)  # no base_url: the servers are read


# --- parameters that would be dropped: refused by load --------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _get("/a", parameters=[_parameter("x", "Query", {"type": "string"})]),
            r"parameters/0 is in: 'Query'; a parameter is in 'path', 'query', 'header' or",
        ),
        (
            _get(
                "/a",
                parameters=[
                    {
                        "name": "filter",
                        "in": "querystring",
                        "content": {"application/x-www-form-urlencoded": {"schema": {}}},
                    }
                ],
            ),
            r"is in: querystring \(OpenAPI 3\.2\), which buttress\.openapi does not support",
        ),
        (_get("/a/{id}"), r"GET /a/\{id\} .*: no path parameter for the template\(s\) id"),
        (
            _document({"/a/{id}": {"parameters": [ID], "get": {"responses": OK}}, "/b": {}}),
            None,  # a path parameter shared by the path item serves its operations
        ),
        (
            _get("/a", parameters=[ID]),
            r"GET /a .*: path parameter\(s\) id not in the path",
        ),
        (
            _get("/a/{id}", parameters=[{**ID, "style": "form"}]),
            r"parameters/0/style is 'form', not a style of path values \(simple, label, matrix\)",
        ),
    ],
)
async def test_a_parameter_that_would_be_dropped_is_refused(
    make_client: Callable[..., Either], document: dict[str, Any], message: str | None
) -> None:
    either = make_client(base_url="http://127.0.0.1:1")
    if message is None:
        assert (await load(either, document)).get_a_id.parameters == ("id",)
        return
    with pytest.raises(buttress.ConfigurationError, match=message):
        await load(either, document)


# --- styles: OAS 3.1 4.8.12.4.2's table, as a real server receives it -----------------------

STRING, ARRAY, OBJECT = "blue", ["blue", "black", "brown"], {"R": 100, "G": 200, "B": 150}
SCHEMAS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "array": {"type": "array", "items": {"type": "string"}},
    "object": {"type": "object"},
}


def _styled(where: str, kind: str, style: str, explode: bool, **more: Any) -> dict[str, Any]:
    path = "/files/{color}" if where == "path" else "/echo-request"
    color = _parameter("color", where, SCHEMAS[kind], style=style, explode=explode, **more)
    operation = {"operationId": "styled", "parameters": [color], "responses": OK}
    return {"openapi": "3.1.0", "paths": {path: {"get": operation}}}


PATH_STYLES = [
    ("matrix", False, ";color=blue", ";color=blue,black,brown", ";color=R,100,G,200,B,150"),
    ("matrix", True, ";color=blue", ";color=blue;color=black;color=brown", ";R=100;G=200;B=150"),
    ("label", False, ".blue", ".blue,black,brown", ".R,100,G,200,B,150"),
    ("label", True, ".blue", ".blue.black.brown", ".R=100.G=200.B=150"),
    ("simple", False, "blue", "blue,black,brown", "R,100,G,200,B,150"),
    ("simple", True, "blue", "blue,black,brown", "R=100,G=200,B=150"),
]


@pytest.mark.parametrize(("style", "explode", "string", "array", "object_"), PATH_STYLES)
async def test_path_styles_follow_the_specs_table(
    make_client: Callable[..., Either],
    served: Served,
    style: str,
    explode: bool,
    string: str,
    array: str,
    object_: str,
) -> None:
    client = make_client(base_url=served.url, retry=False)
    for kind, value, sent in (("string", STRING, string), ("array", ARRAY, array)):
        api = await load(client, _styled("path", kind, style, explode))
        answer = await settle(api.styled(color=value))
        assert answer.json()["raw_path"] == f"/files/{sent}"
    api = await load(client, _styled("path", "object", style, explode))
    assert (await settle(api.styled(color=OBJECT))).json()["raw_path"] == f"/files/{object_}"


async def test_path_values_are_encoded_one_by_one_and_delimiters_kept(
    make_client: Callable[..., Either], served: Served
) -> None:
    client = make_client(base_url=served.url, retry=False)
    api = await load(client, _styled("path", "array", "simple", False))
    answer = await settle(api.styled(color=["a,b", "c/d", "e f"]))
    assert answer.json() == {"name": "a,b,c/d,e f", "raw_path": "/files/a%2Cb,c%2Fd,e%20f"}
    api = await load(client, _styled("path", "string", "matrix", False))
    answer = await settle(api.styled(color=";x=1"))  # cannot pose as another matrix parameter
    assert answer.json()["raw_path"] == "/files/;color=%3Bx%3D1"


QUERY_STYLES = [
    ("form", False, "color=blue,black,brown", "color=R,100,G,200,B,150"),
    ("form", True, "color=blue&color=black&color=brown", "R=100&G=200&B=150"),
    ("spaceDelimited", False, "color=blue%20black%20brown", "color=R%20100%20G%20200%20B%20150"),
    ("pipeDelimited", False, "color=blue%7Cblack%7Cbrown", "color=R%7C100%7CG%7C200%7CB%7C150"),
    ("deepObject", True, None, "color%5BR%5D=100&color%5BG%5D=200&color%5BB%5D=150"),
]


@pytest.mark.parametrize(("style", "explode", "array", "object_"), QUERY_STYLES)
async def test_query_styles_follow_the_specs_table(
    make_client: Callable[..., Either],
    served: Served,
    style: str,
    explode: bool,
    array: str | None,
    object_: str,
) -> None:
    client = make_client(base_url=served.url, retry=False)
    if array is not None:
        api = await load(client, _styled("query", "array", style, explode))
        assert (await settle(api.styled(color=ARRAY))).json()["query"] == array
    api = await load(client, _styled("query", "object", style, explode))
    assert (await settle(api.styled(color=OBJECT))).json()["query"] == object_


@pytest.mark.parametrize(
    ("allow_reserved", "sent"),
    [
        (True, "color=a/b?c:d@e,f;g%26h%3Di%23j%2Bk%25%41"),
        (False, "color=a%2Fb%3Fc%3Ad%40e%2Cf%3Bg%26h%3Di%23j%2Bk%25%2541"),
    ],
)
async def test_allow_reserved_lets_reserved_characters_through(
    make_client: Callable[..., Either], served: Served, allow_reserved: bool, sent: str
) -> None:
    document = _styled("query", "string", "form", True, allowReserved=allow_reserved)
    api = await load(make_client(base_url=served.url, retry=False), document)
    # & = # + stay escaped (they would end or split the value); so does a % not starting %XX
    answer = await settle(api.styled(color="a/b?c:d@e,f;g&h=i#j+k%%41"))
    assert answer.json()["query"] == sent


async def test_a_nested_parameter_value_is_refused(
    make_client: Callable[..., Either], served: Served
) -> None:
    api = await load(
        make_client(base_url=served.url, retry=False), _styled("query", "array", "form", True)
    )
    before = served.hits["/echo-request"]
    with pytest.raises(buttress.SchemaValidationError, match="cannot hold nested lists"):
        await settle(api.styled(color=[["a"], {"b": 1}]))
    assert served.hits["/echo-request"] == before


# --- bodies that are not JSON ---------------------------------------------------------------


async def test_a_multipart_upload_reaches_fastapi(
    make_client: Callable[..., Either], served: Served
) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    [form] = [s for name, s in document["components"]["schemas"].items() if "upload" in name]
    form["properties"]["meta"] = {"type": "object"}  # the app reads it as text: what arrives
    api = await load(make_client(base_url=served.url, retry=False), document)
    answer = await settle(
        api.upload(body={"file": b"hello", "note": "hi", "tags": ["a", "b"], "meta": {"k": 1}})
    )
    assert answer.json() == {
        "name": "upload",
        "type": "application/octet-stream",
        "body": "hello",
        "note": "hi",
        "tags": ["a", "b"],  # a list is one part per item
        "meta": '{"k":1}',  # an object is an application/json part
        "content_types": [answer.request.headers["content-type"]],
    }
    assert answer.request.headers["content-type"].startswith("multipart/form-data; boundary=")
    named = await settle(api.upload(body={"file": ("a.txt", b"hey", "text/plain")}))
    assert named.json()["name"] == "a.txt"
    assert named.json()["type"] == "text/plain"

    before = served.hits["/upload"]
    with pytest.raises(buttress.SchemaValidationError, match="'file' is a required property"):
        await settle(api.upload(body={"note": "no file"}))
    with pytest.raises(buttress.ConfigurationError, match="needs its boundary"):
        await settle(api.upload(body=b"--X--\r\n"))
    assert served.hits["/upload"] == before


async def test_the_callers_headers_replace_ours_whatever_their_case(api: API) -> None:
    part = b'Content-Disposition: form-data; name="file"; filename="r.txt"'
    raw = b"--X\r\n" + part + b"\r\n\r\nraw\r\n--X--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=X"}
    answer = await settle(api.upload(body=raw, options={"headers": headers}))
    assert answer.json()["body"] == "raw"
    assert answer.json()["content_types"] == ["multipart/form-data; boundary=X"]  # one, not two
    headers = {"x-TRACE": "given"}
    answer = await settle(api.get_user(user_id=2, x_trace="ours", options={"headers": headers}))
    assert answer.json()["name"] == "user given"


FORM_DOCUMENT = {
    "openapi": "3.1.0",
    "paths": {
        "/form": {
            "post": {
                "operationId": "post_form",
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {"type": "object"},
                            "encoding": {
                                "filter": {"style": "deepObject", "explode": True},
                                "ids": {"style": "form", "explode": False},
                                "raw": {"contentType": "application/json"},
                            },
                        }
                    }
                },
                "responses": OK,
            }
        }
    },
}


async def test_a_form_body_follows_its_encoding_object(
    make_client: Callable[..., Either], served: Served
) -> None:
    api = await load(make_client(base_url=served.url, retry=False), FORM_DOCUMENT)
    body = {
        "name": "Ada L",
        "address": {"city": "Somewhere", "zip": "9+1"},  # no encoding: an object is JSON
        "tags": ["a", "b"],  # no encoding: one pair per item
        "filter": {"x": 1},
        "ids": [1, 2],
        "raw": "x",
        "none": None,
    }
    answer = await settle(api.post_form(body=body))
    assert answer.json()["body"] == (
        "name=Ada+L&address=%7B%22city%22%3A%22Somewhere%22%2C%22zip%22%3A%229%2B1%22%7D"
        "&tags=a&tags=b&filter%5Bx%5D=1&ids=1,2&raw=%22x%22"
    )
    with pytest.raises(buttress.SchemaValidationError, match="deepObject style cannot write"):
        await settle(api.post_form(body={"filter": {"x": {"y": 1}}}))
