"""GraphQL over HTTP against a real strawberry-graphql server on 127.0.0.1 (uvicorn).

The server follows the GraphQL-over-HTTP specification: it answers
``application/graphql-response+json`` when the client accepts it, with a 400
for a request that does not validate, and ``application/json`` with a 200
otherwise. Around it, :class:`Endpoints` offers what a client meets instead
of a GraphQL server now and then: a busy server (503), a proxy's error page,
an HTML page with a 200, JSON that is not a GraphQL response, and an older
server's 400 in ``application/json``. Every test runs on both clients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
import strawberry
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

import buttress
from buttress.graphql import GraphQLErrorDetail
from buttress.testing import DemoServer

from .conftest import Either

pytestmark = pytest.mark.anyio

GRAPHQL_RESPONSE = "application/graphql-response+json"
NAMES = ["Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Niklaus"]
TOKEN = "tok-3f9a1c"  # a test credential the server echoes back


# -- the schema ---------------------------------------------------------------------------------


@strawberry.type
class User:
    id: int
    name: str

    @strawberry.field
    def email(self) -> str | None:
        if self.id != 1:
            raise PermissionError(f"no access to the email of user {self.id}")
        return "ada@example.com"


@strawberry.type
class UserEdge:
    cursor: str
    node: User


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    nodes: list[User]
    page_info: PageInfo
    total_count: int


def _connection(start: int, first: int) -> UserConnection:
    users = [User(id=i + 1, name=NAMES[i]) for i in range(start, min(start + first, len(NAMES)))]
    edges = [UserEdge(cursor=str(user.id), node=user) for user in users]
    more = start + first < len(NAMES)
    return UserConnection(
        edges=edges,
        nodes=users,
        page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
        total_count=len(NAMES),
    )


@strawberry.type
class Query:
    @strawberry.field
    def user(self, id: int) -> User | None:
        return User(id=id, name=NAMES[id - 1]) if 1 <= id <= len(NAMES) else None

    @strawberry.field
    def users(self, first: int = 3, after: str | None = None) -> UserConnection:
        return _connection(int(after) if after else 0, first)

    @strawberry.field
    def stuck(self, after: str | None = None) -> UserConnection:
        """A connection whose next page is always the same cursor."""
        connection = _connection(0, 1)
        connection.page_info = PageInfo(has_next_page=True, end_cursor="same")
        return connection

    @strawberry.field
    def cursorless(self, after: str | None = None) -> UserConnection:
        """A connection that says there is more but gives no cursor to ask for it."""
        connection = _connection(0, 1)
        connection.page_info = PageInfo(has_next_page=True, end_cursor=None)
        return connection

    @strawberry.field
    def whoami(self, info: strawberry.Info) -> str:
        token = info.context["request"].headers.get("authorization", "").removeprefix("Bearer ")
        raise PermissionError(f"token {token} has expired")


@strawberry.type
class Mutation:
    @strawberry.mutation
    def rename(self, id: int, name: str) -> User:
        return User(id=id, name=name)


class QuietSchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """The errors are what the tests ask for: no traceback in the log for each."""


class SpecGraphQL(GraphQL[Any, Any]):
    """strawberry's ASGI app, answering as the GraphQL-over-HTTP specification says.

    ``application/graphql-response+json`` when the client accepts it; then a
    request error (no error names a field: nothing was executed) has no
    ``data`` and a 400. ``application/json`` is always a 200.
    """

    async def get_sub_response(self, request: Any) -> Response:
        sub_response = await super().get_sub_response(request)
        accepted = GRAPHQL_RESPONSE in request.headers.get("accept", "")
        sub_response.media_type = GRAPHQL_RESPONSE if accepted else "application/json"
        return sub_response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        body: dict[str, Any] = dict(response_data)  # type: ignore[arg-type]  # never a batch here
        status = 200
        errors = body.get("errors") or []
        request_error = errors and all("path" not in error for error in errors)
        if sub_response.media_type == GRAPHQL_RESPONSE and request_error:
            del body["data"]
            status = 400
        return Response(self.encode_json(body), status, media_type=sub_response.media_type)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


class Endpoints:
    """ASGI: the GraphQL server at ``/graphql`` (and ``/flaky``), and what may stand in for it.

    ``/flaky`` answers 503 while ``failures`` is above zero (counting down),
    then serves GraphQL. Every request is recorded in ``seen``.
    """

    CANNED: dict[str, tuple[int, str, bytes]] = {  # noqa: RUF012
        "/gateway": (502, "text/html", b"<html><h1>502 Bad Gateway</h1></html>"),
        "/html": (200, "text/html", b"<html>Please sign in</html>"),
        "/not-graphql": (200, "application/json", b'{"status": "ok"}'),
        "/legacy": (400, "application/json", b'{"errors": [{"message": "Must provide query"}]}'),
        "/overloaded": (503, GRAPHQL_RESPONSE, b"overloaded"),
        "/failed": (500, GRAPHQL_RESPONSE, b'{"data": null}'),
        "/bare-errors": (200, "application/json", b'{"errors": ["out of quota"]}'),
    }

    def __init__(self) -> None:
        self.graphql = SpecGraphQL(QuietSchema(query=Query, mutation=Mutation))
        self.failures = 0
        self.seen: list[Seen] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append(Seen(scope["path"], headers, json.loads(body) if body else None))
        canned = self.CANNED.get(scope["path"])
        if scope["path"] == "/flaky" and self.failures > 0:
            self.failures -= 1
            canned = (503, "text/plain", b"busy, try again")
        if canned is not None:
            status, media_type, content = canned
            await Response(content, status, media_type=media_type)(scope, receive, send)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return dict(await receive())
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.graphql(scope, replay, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[DemoServer, Endpoints]]:
    endpoints = Endpoints()
    with DemoServer(endpoints) as running:
        yield running, endpoints


@pytest.fixture
def endpoints(server: tuple[DemoServer, Endpoints]) -> Endpoints:
    """The running endpoints, with nothing seen and no failure pending."""
    endpoints = server[1]
    endpoints.seen.clear()
    endpoints.failures = 0
    return endpoints


@pytest.fixture
def client(
    make_client: Callable[..., Either], server: tuple[DemoServer, Endpoints], endpoints: Endpoints
) -> Either:
    return make_client(base_url=server[0].url)


async def collect(paginator: Any) -> list[Any]:
    if isinstance(paginator, buttress.AsyncPaginator):
        return [item async for item in paginator]
    return list(paginator)


# -- queries ------------------------------------------------------------------------------------


async def test_a_query_returns_its_data_sent_as_the_specification_says(
    client: Either, endpoints: Endpoints
) -> None:
    query = "query User($id: Int!) { user(id: $id) { id name } }"
    data = await client.graphql(query, variables={"id": 2}, operation_name="User")
    assert data == {"user": {"id": 2, "name": "Grace"}}
    [seen] = endpoints.seen
    assert seen.path == "/graphql"
    assert seen.body == {"query": query, "variables": {"id": 2}, "operationName": "User"}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["accept"] == f"{GRAPHQL_RESPONSE}, application/json;q=0.9"


async def test_the_operation_name_picks_the_operation_to_run(client: Either) -> None:
    document = "query First { user(id: 1) { name } } query Second { user(id: 3) { name } }"
    assert await client.graphql(document, operation_name="Second") == {"user": {"name": "Edsger"}}
    assert await client.graphql(document, operation_name="First") == {"user": {"name": "Ada"}}


async def test_response_model_validates_the_data(client: Either) -> None:
    class Person(pydantic.BaseModel):
        id: int
        name: str

    class UserData(pydantic.BaseModel):
        user: Person

    query = "query($id: Int!) { user(id: $id) { id name } }"
    data = await client.graphql(query, variables={"id": 4}, response_model=UserData)
    assert data == UserData(user=Person(id=4, name="Barbara"))

    with pytest.raises(buttress.ValidationError, match=r"does not match UserData.*user") as caught:
        await client.graphql(query, variables={"id": 99}, response_model=UserData)
    assert caught.value.response is not None
    assert caught.value.response.json() == {"data": {"user": None}}


async def test_a_mutation_runs_and_returns_its_data(client: Either) -> None:
    mutation = (
        "mutation Rename($id: Int!, $name: String!) { rename(id: $id, name: $name) { name } }"
    )
    data = await client.graphql(mutation, variables={"id": 1, "name": "Countess"})
    assert data == {"rename": {"name": "Countess"}}


# -- errors -------------------------------------------------------------------------------------


async def test_field_errors_raise_with_the_partial_data_kept(client: Either) -> None:
    query = "query Emails { a: user(id: 1) { name email } b: user(id: 2) { name email } }"
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql(query, operation_name="Emails")
    error = caught.value
    assert error.data == {
        "a": {"name": "Ada", "email": "ada@example.com"},
        "b": {"name": "Grace", "email": None},
    }
    column = query.rindex("email") + 1  # where b's email is asked for
    assert error.errors == (
        GraphQLErrorDetail(
            message="no access to the email of user 2",
            locations=((1, column),),
            path=("b", "email"),
        ),
    )
    assert error.messages == ["no access to the email of user 2"]
    assert error.status_code == 200
    assert "operation 'Emails'" in str(error)
    assert f"no access to the email of user 2 (at b.email, line 1 column {column})" in str(error)


async def test_every_error_is_kept_and_the_message_counts_the_others(client: Either) -> None:
    query = "{ a: user(id: 2) { email } b: user(id: 3) { email } }"
    with pytest.raises(
        buttress.GraphQLError, match=r"user 2 \(at a\.email.*\(and 1 more\)$"
    ) as caught:
        await client.graphql(query)
    assert caught.value.messages == [
        "no access to the email of user 2",
        "no access to the email of user 3",
    ]
    assert [error.path for error in caught.value.errors] == [("a", "email"), ("b", "email")]
    assert caught.value.data == {"a": {"email": None}, "b": {"email": None}}


async def test_a_request_error_is_a_400_in_graphql_response_json_and_raises_graphql_error(
    client: Either,
) -> None:
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql("{ user(id: 1) { nickname } }")
    error = caught.value
    assert error.status_code == 400
    assert error.response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert error.data is None
    assert error.messages == ["Cannot query field 'nickname' on type 'User'. Did you mean 'name'?"]
    assert error.errors[0].path is None
    assert error.errors[0].locations == ((1, 17),)
    # The status error the facade raised first is kept as the cause.
    assert isinstance(error.__cause__, buttress.ClientResponseError)
    assert ", 400)" in str(error)


async def test_the_same_error_in_plain_json_is_a_200_and_raises_graphql_error(
    client: Either,
) -> None:
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql("{ user(id: 1) { nickname } }", headers={"Accept": "application/json"})
    assert caught.value.status_code == 200
    assert caught.value.messages == [
        "Cannot query field 'nickname' on type 'User'. Did you mean 'name'?"
    ]


async def test_a_4xx_in_plain_json_is_the_status_error(client: Either) -> None:
    """application/json with an error status may come from anything on the way: not trusted."""
    with pytest.raises(buttress.ClientResponseError) as caught:
        await client.graphql("{ user(id: 1) { name } }", path="/legacy")
    assert not isinstance(caught.value, buttress.GraphQLError)
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("path", "status"),
    [("/gateway", 502), ("/overloaded", 503), ("/failed", 500)],
    ids=["html-page", "graphql-response-not-json", "graphql-response-without-errors"],
)
async def test_an_error_status_without_graphql_errors_is_the_status_error(
    client: Either, path: str, status: int
) -> None:
    with pytest.raises(buttress.ServerError) as caught:
        await client.graphql("{ user(id: 1) { name } }", path=path)
    assert not isinstance(caught.value, buttress.GraphQLError)
    assert caught.value.status_code == status


async def test_errors_that_are_bare_strings_still_raise_graphql_error(client: Either) -> None:
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql("{ user(id: 1) { name } }", path="/bare-errors")
    assert caught.value.errors == (GraphQLErrorDetail(message="out of quota"),)
    assert caught.value.data is None


async def test_a_body_that_is_not_json_raises_invalid_json(client: Either) -> None:
    with pytest.raises(buttress.InvalidJSONError) as caught:
        await client.graphql("{ user(id: 1) { name } }", path="/html")
    assert caught.value.content_type == "text/html; charset=utf-8"
    assert "<html>" in str(caught.value)


async def test_json_that_is_not_a_graphql_response_raises_validation_error(client: Either) -> None:
    with pytest.raises(buttress.ValidationError, match=r"not a GraphQL response.*\['status'\]"):
        await client.graphql("{ user(id: 1) { name } }", path="/not-graphql")


async def test_an_echoed_credential_never_reaches_the_message(
    make_client: Callable[..., Either], server: tuple[DemoServer, Endpoints]
) -> None:
    client = make_client(base_url=server[0].url, auth=("bearer", TOKEN))
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql("{ whoami }")
    assert caught.value.messages == [f"token {TOKEN} has expired"]  # the server's own words
    assert TOKEN not in str(caught.value)
    assert "token [REDACTED] has expired" in str(caught.value)


@pytest.mark.parametrize(
    "variables",
    [
        {"password": "pw-8c1e5d0b"},
        {"login": {"name": "ada", "password": "pw-8c1e5d0b"}},
        {"privateKey": "pw-8c1e5d0b"},
        {"authorization": "pw-8c1e5d0b"},
        {"clientAssertion": "pw-8c1e5d0b"},
        {"codeVerifier": "pw-8c1e5d0b"},
    ],
    ids=lambda variables: "inside an input" if "login" in variables else next(iter(variables)),
)
async def test_a_secret_variable_the_server_echoes_never_reaches_the_message(
    client: Either, variables: dict[str, Any]
) -> None:
    (name,) = variables
    query = f"query Who(${name}: Int!) {{ user(id: ${name}) {{ name }} }}"
    with pytest.raises(buttress.GraphQLError) as caught:
        await client.graphql(query, variables=variables)
    assert "pw-8c1e5d0b" in caught.value.messages[0]  # the server quotes the value it refused
    assert "pw-8c1e5d0b" not in str(caught.value)
    assert f"Variable '${name}' has invalid value" in str(caught.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"query": b"{ a }"}, "query document as a string, not bytes"),
        ({"query": "  "}, "query document as a string, not an empty string"),
        ({"query": "{ a }", "variables": [1]}, "variables as a mapping or None, not list"),
        ({"query": "{ a }", "operation_name": 1}, "operation_name as a string or None, not int"),
        ({"query": "{ a }", "json": {}}, "builds the request body itself; json="),
    ],
)
async def test_bad_arguments_raise_configuration_error_before_sending(
    client: Either, endpoints: Endpoints, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(buttress.ConfigurationError, match=message):
        await client.graphql(**arguments)
    assert endpoints.seen == []


# -- retries ------------------------------------------------------------------------------------


async def test_a_mutation_is_not_retried_on_503(client: Either, endpoints: Endpoints) -> None:
    endpoints.failures = 1
    with pytest.raises(buttress.ServerError) as caught:
        await client.graphql('mutation { rename(id: 1, name: "Twice?") { name } }', path="/flaky")
    assert caught.value.status_code == 503
    assert len(endpoints.seen) == 1


async def test_a_query_is_not_retried_unless_declared_idempotent(
    client: Either, endpoints: Endpoints
) -> None:
    query = "{ user(id: 1) { name } }"
    endpoints.failures = 1
    with pytest.raises(buttress.ServerError):
        await client.graphql(query, path="/flaky")
    assert len(endpoints.seen) == 1

    endpoints.seen.clear()
    endpoints.failures = 1
    assert await client.graphql(query, path="/flaky", idempotent=True) == {"user": {"name": "Ada"}}
    assert [seen.body for seen in endpoints.seen] == [{"query": query}, {"query": query}]


# -- Relay pagination ---------------------------------------------------------------------------

USERS_EDGES = """query Users($first: Int!, $after: String) {
  users(first: $first, after: $after) {
    totalCount
    edges { node { id name } }
    pageInfo { hasNextPage endCursor }
  }
}"""
USERS_NODES = USERS_EDGES.replace("edges { node { id name } }", "nodes { id name }")


@pytest.mark.parametrize("query", [USERS_EDGES, USERS_NODES], ids=["edges", "nodes"])
async def test_pagination_walks_every_page_by_cursor(
    client: Either, endpoints: Endpoints, query: str
) -> None:
    paginator = client.client.graphql_paginate(query, connection="users", variables={"first": 3})
    users = await collect(paginator)
    assert [user["name"] for user in users] == NAMES
    assert paginator.pages_fetched == 3
    assert paginator.total_count == 7
    assert paginator.next_request is None
    assert [seen.body["variables"] for seen in endpoints.seen] == [
        {"first": 3},
        {"first": 3, "after": "3"},
        {"first": 3, "after": "6"},
    ]


async def test_pagination_parses_nodes_and_stops_at_max_items(client: Either) -> None:
    class Person(pydantic.BaseModel):
        id: int
        name: str

    paginator = client.client.graphql_paginate(
        USERS_EDGES,
        connection="users",
        variables={"first": 2},
        response_model=Person,
        max_items=3,
    )
    assert await collect(paginator) == [
        Person(id=1, name="Ada"),
        Person(id=2, name="Grace"),
        Person(id=3, name="Edsger"),
    ]
    assert paginator.pages_fetched == 2
    # Where to go on from: the variables of the next page.
    assert paginator.next_request == buttress.pagination.PageRequest(
        "/graphql", {"first": 2, "after": "4"}
    )


async def test_max_pages_ends_the_walk_quietly(client: Either) -> None:
    paginator = client.client.graphql_paginate(
        USERS_NODES, connection="users", variables={"first": 3}, max_pages=2
    )
    assert [user["id"] for user in await collect(paginator)] == [1, 2, 3, 4, 5, 6]
    assert paginator.pages_fetched == 2


async def test_a_cursor_that_does_not_move_raises_pagination_error(client: Either) -> None:
    query = (
        "query($after: String) { stuck(after: $after) {"
        " nodes { id } pageInfo { hasNextPage endCursor } } }"
    )
    paginator = client.client.graphql_paginate(query, connection="stuck")
    with pytest.raises(buttress.PaginationError, match=r"page 3 \(POST .*/graphql\) is page 2"):
        await collect(paginator)
    assert paginator.pages_fetched == 2


async def test_a_page_without_the_connection_raises_validation_error(client: Either) -> None:
    paginator = client.client.graphql_paginate(
        USERS_EDGES, connection="people", variables={"first": 3}
    )
    with pytest.raises(
        buttress.ValidationError, match=r"no connection at data.people \(data: \['users'\]\)"
    ):
        await collect(paginator)


async def test_a_page_without_page_info_raises_validation_error(client: Either) -> None:
    query = "query($after: String) { users(after: $after) { nodes { id } } }"
    paginator = client.client.graphql_paginate(query, connection="users")
    with pytest.raises(buttress.ValidationError, match=r"no pageInfo \{ hasNextPage endCursor \}"):
        await collect(paginator)


async def test_more_pages_without_a_cursor_raise_instead_of_ending_quietly(
    client: Either,
) -> None:
    query = (
        "query($after: String) { cursorless(after: $after) {"
        " nodes { id } pageInfo { hasNextPage endCursor } } }"
    )
    paginator = client.client.graphql_paginate(query, connection="cursorless")
    with pytest.raises(buttress.ValidationError, match="says hasNextPage but gives no endCursor"):
        await collect(paginator)
    assert paginator.pages_fetched == 1


async def test_graphql_errors_on_a_page_raise(client: Either) -> None:
    query = (
        "query($after: String) { users(after: $after) {"
        " nodes { id email } pageInfo { hasNextPage endCursor } } }"
    )
    with pytest.raises(buttress.GraphQLError, match="no access to the email of user 2") as caught:
        await collect(client.client.graphql_paginate(query, connection="users"))
    assert caught.value.data["users"]["nodes"][0] == {"id": 1, "email": "ada@example.com"}
