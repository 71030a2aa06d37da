"""GraphQL over HTTP: ``client.graphql(...)`` and Relay-style cursor pagination.

``client.graphql(query, variables=..., operation_name=..., response_model=...)``
POSTs ``{"query", "variables", "operationName"}`` as JSON, as the GraphQL-over-HTTP
specification describes, through the client's ordinary ``post``: retries, rate
limits, the breaker, the cache, logging, redaction and tracing all apply. It
returns the response's ``data`` (validated against ``response_model`` when given).

What comes back is read as the specification says:

- ``Accept: application/graphql-response+json, application/json;q=0.9`` is sent
  (a caller's own ``Accept`` header wins).
- A body with ``errors`` raises :class:`~buttress.GraphQLError`, which keeps the
  partial ``data`` and each error's message, locations, path and extensions.
- An ``application/graphql-response+json`` body is the server's own word at
  any status: a 4xx carrying GraphQL errors raises :class:`~buttress.GraphQLError`
  (its ``__cause__`` is the status error). An ``application/json`` body with an
  error status may come from a proxy on the way, so it raises the usual
  :class:`~buttress.HTTPError` subclass.
- A body that is not JSON raises :class:`~buttress.InvalidJSONError`; JSON that
  is not a GraphQL response (no ``data``, no ``errors``) a
  :class:`~buttress.ValidationError`.

A GraphQL request is a POST, which the retry layer does not retry: a mutation is
never sent twice. A query that is safe to repeat says so with ``idempotent=True``
and is retried as a GET would be.

``client.graphql_paginate(query, connection="users", ...)`` walks a Relay
connection (``edges { node }`` or ``nodes``, ``pageInfo { hasNextPage endCursor }``)
with the client's paginators, passing ``endCursor`` back as the ``$after`` variable.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx
import pydantic

from ._client_config import UNSET
from ._exceptions import (
    ConfigurationError,
    GraphQLError,
    HTTPError,
    InvalidJSONError,
    ValidationError,
    describe,
    scrub,
)
from ._flow import Effect, Outcome, call
from ._parsing import mismatch
from ._redact import Redactor
from .pagination import (
    AsyncPaginator,
    PageRequest,
    PaginationStrategy,
    Paginator,
    _body,
    _Pages,
    _PaginatorBase,
    get_path,
    make_pages,
)

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = ["GraphQLErrorDetail", "RelayPagination"]

_Answer = TypeVar("_Answer")

GRAPHQL_RESPONSE = "application/graphql-response+json"
"""The media type of a GraphQL response whose status code the server stands by."""

ACCEPT = f"{GRAPHQL_RESPONSE}, application/json;q=0.9"
"""The ``Accept`` header ``client.graphql`` sends: the specification's recommendation."""


@dataclass(frozen=True)
class GraphQLErrorDetail:
    """One entry of a GraphQL response's ``errors``.

    ``locations`` are ``(line, column)`` pairs in the query document; ``path``
    names the field that failed (``("user", "friends", 0, "name")``), or is
    ``None`` for an error that is not about one field (the query did not
    validate); ``extensions`` is whatever the server added (often a ``code``).

    Examples:
        >>> detail = GraphQLErrorDetail.from_json(
        ...     {"message": "no access", "locations": [{"line": 1, "column": 9}],
        ...      "path": ["user", "email"], "extensions": {"code": "FORBIDDEN"}}
        ... )
        >>> (detail.message, detail.locations, detail.path, detail.extensions["code"])
        ('no access', ((1, 9),), ('user', 'email'), 'FORBIDDEN')
    """

    message: str
    locations: tuple[tuple[int, int], ...] = ()
    path: tuple[str | int, ...] | None = None
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, entry: Any) -> GraphQLErrorDetail:
        """Read one decoded error; what does not fit the specification's shape is left out."""
        if not isinstance(entry, Mapping):
            return cls(message=str(entry))
        locations = tuple(
            (place["line"], place["column"])
            for place in entry.get("locations") or ()
            if isinstance(place, Mapping)
            and isinstance(place.get("line"), int)
            and isinstance(place.get("column"), int)
        )
        path = entry.get("path")
        extensions = entry.get("extensions")
        return cls(
            message=str(entry.get("message", "")),
            locations=locations,
            path=tuple(path) if isinstance(path, list) else None,
            extensions=dict(extensions) if isinstance(extensions, Mapping) else {},
        )

    def __str__(self) -> str:
        where = [".".join(map(str, self.path))] if self.path else []
        where += [f"line {line} column {column}" for line, column in self.locations[:1]]
        return f"{self.message} (at {', '.join(where)})" if where else self.message


@dataclass(frozen=True, kw_only=True)
class RelayPagination(PaginationStrategy):
    """A Relay connection: items under ``edges { node }`` (or ``nodes``), next page by cursor.

    ``connection`` is the dotted path of the connection inside ``data``
    (``"repository.issues"``). The next page is asked for with the
    connection's ``pageInfo.endCursor`` in the variable ``cursor_variable``
    (``$after``) while ``pageInfo.hasNextPage`` is true. ``totalCount``, when
    the query asks for it, becomes the paginator's ``total_count``.

    Examples:
        >>> import httpx
        >>> page = httpx.Response(200, json={"data": {"users": {
        ...     "edges": [{"node": {"id": 1}}, {"node": {"id": 2}}],
        ...     "pageInfo": {"hasNextPage": True, "endCursor": "Mg=="}}}})
        >>> relay = RelayPagination(connection="users")
        >>> (relay.extract_items(page), relay.get_next_request(page, {"first": 2}))
        ([{'id': 1}, {'id': 2}], {'after': 'Mg=='})
    """

    connection: str
    cursor_variable: str = "after"
    max_pages: int | None = None

    def _connection(self, response: httpx.Response) -> Mapping[str, Any]:
        found = get_path(_body(response), f"data.{self.connection}")
        if not isinstance(found, Mapping):
            data = get_path(_body(response), "data")
            keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise ValidationError(
                f"page {describe(response.request)} has no connection at "
                f"data.{self.connection} (data: {keys})",
                response=response,
            )
        return found

    def extract_items(self, response: httpx.Response) -> list[Any]:
        connection = self._connection(response)
        edges = connection.get("edges")
        if isinstance(edges, list):
            return [edge.get("node") if isinstance(edge, Mapping) else None for edge in edges]
        nodes = connection.get("nodes")
        if isinstance(nodes, list):
            return nodes
        raise ValidationError(
            f"page {describe(response.request)} has neither edges nor nodes in its "
            f"connection at data.{self.connection} (keys: {sorted(connection)}); "
            "ask for edges { node { ... } } or nodes { ... }",
            response=response,
        )

    def get_next_request(
        self, response: httpx.Response, current_params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        info = self._connection(response).get("pageInfo")
        if not isinstance(info, Mapping) or "hasNextPage" not in info:
            raise ValidationError(
                f"page {describe(response.request)} has no pageInfo {{ hasNextPage endCursor }} "
                f"in its connection at data.{self.connection}; ask for it to paginate",
                response=response,
            )
        if info["hasNextPage"] is not True:
            return None
        cursor = info.get("endCursor")
        if cursor in (None, ""):  # more pages, and no way to ask for them: not the end
            raise ValidationError(
                f"page {describe(response.request)} says hasNextPage but gives no endCursor "
                f"in its connection at data.{self.connection}; the pages after it cannot be "
                "asked for",
                response=response,
            )
        return {self.cursor_variable: cursor}

    def total_count(self, response: httpx.Response) -> int | None:
        total = self._connection(response).get("totalCount")
        return total if isinstance(total, int) and not isinstance(total, bool) else None


# -- one GraphQL request, without I/O (shared by both clients) ---------------------------------


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower()


class _Operation:
    """A GraphQL document sent to ``path``: the POST's arguments, and how to read the answer."""

    def __init__(
        self,
        query: str,
        operation_name: str | None,
        path: str | httpx.URL,
        kwargs: dict[str, Any],
        strict: bool,
    ) -> None:
        if not isinstance(query, str) or not query.strip():
            got = "an empty string" if isinstance(query, str) else type(query).__name__
            raise ConfigurationError(f"graphql() takes the query document as a string, not {got}")
        if operation_name is not None and not isinstance(operation_name, str):
            raise ConfigurationError(
                "graphql() takes operation_name as a string or None, "
                f"not {type(operation_name).__name__}"
            )
        self.query, self.operation_name, self.path = query, operation_name, path
        for name in ("json", "content", "data", "files"):
            if name in kwargs:
                raise ConfigurationError(
                    f"graphql() builds the request body itself; {name}= cannot be given"
                )
        headers = httpx.Headers(kwargs.pop("headers", None))
        headers.setdefault("Accept", ACCEPT)
        self.kwargs = {**kwargs, "headers": headers}
        self.strict = strict

    def arguments(self, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        """Keyword arguments for ``client.post(self.path, ...)`` with ``variables``."""
        payload: dict[str, Any] = {"query": self.query}
        if self.operation_name is not None:
            payload["operationName"] = self.operation_name
        if variables:
            payload["variables"] = dict(variables)
        return {"json": payload, **self.kwargs}

    def result(
        self, response: httpx.Response, variables: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """The GraphQL response in ``response`` (a 2xx, or one the caller did not raise for).

        Raises:
            GraphQLError: the response lists errors.
            InvalidJSONError: the body is not JSON.
            ValidationError: the body is JSON, but neither ``data`` nor ``errors``.
        """
        body = response.json()
        if not (isinstance(body, Mapping) and ("data" in body or "errors" in body)):
            shape = f"keys {sorted(body)}" if isinstance(body, Mapping) else type(body).__name__
            raise ValidationError(
                f"response to {describe(response.request)} is not a GraphQL response: "
                f"a JSON object with data or errors was expected, not {shape}",
                response=response,
            )
        if body.get("errors"):
            raise self.error(body, response, variables)
        return body

    def refused(self, error: HTTPError, variables: Mapping[str, Any] | None) -> NoReturn:
        """Raise for an error status: the server's GraphQL errors when it vouches for them.

        Only an ``application/graphql-response+json`` body is known to come from
        the GraphQL server; anything else could be a proxy's page, and the
        status error stands.
        """
        response = error.response
        if _media_type(response) == GRAPHQL_RESPONSE:
            try:
                body = response.json()
            except InvalidJSONError:
                raise error from None
            if isinstance(body, Mapping) and body.get("errors"):
                raise self.error(body, response, variables) from error
        raise error

    def error(
        self,
        body: Mapping[str, Any],
        response: httpx.Response,
        variables: Mapping[str, Any] | None,
    ) -> GraphQLError:
        """The :class:`GraphQLError` for a response ``body`` that lists errors."""
        listed = body["errors"]
        entries: list[Any] = listed if isinstance(listed, list) else [listed]
        errors = tuple(map(GraphQLErrorDetail.from_json, entries))
        # Servers echo what they were sent: no secret of the request's goes into the message
        # (scrubbed before it is shortened, so that no cut hides a secret from the scrubber).
        first = scrub(response.request, str(errors[0]))
        # ... nor a variable with a secret's name ("Variable '$password' got invalid value ...").
        first = Redactor(values=_secret_values(response.request, variables)).text(first)
        first = first if len(first) <= 500 else first[:500] + "..."
        operation = f" in operation {self.operation_name!r}" if self.operation_name else ""
        status = "" if response.is_success else f", {response.status_code}"
        others = len(errors) - 1
        more = f" (and {others} more)" if others else ""
        noun = "errors" if others else "error"
        message = f"GraphQL {noun}{operation} ({describe(response.request)}{status}): {first}{more}"
        return GraphQLError(
            scrub(response.request, message),
            errors=errors,
            data=body.get("data"),
            response=response,
        )

    def data(self, body: Mapping[str, Any], response: httpx.Response, response_model: Any) -> Any:
        """``body``'s ``data``, validated against ``response_model`` when one is given."""
        data = body.get("data")
        if response_model is None:
            return data
        try:
            return pydantic.TypeAdapter(response_model).validate_python(data, strict=self.strict)
        except pydantic.ValidationError as exc:
            what = f"data of the GraphQL response to {describe(response.request)}"
            name = getattr(response_model, "__name__", repr(response_model))
            raise mismatch(exc, what, name, response_model, response) from None


def _secret_values(request: httpx.Request, variables: Any) -> list[str]:
    """The text in ``variables`` under a name that holds a secret (``password``, ``token``)."""
    redactor = Redactor.for_request(request)
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for name, value in node.items():
                if isinstance(value, str) and redactor.is_sensitive_field(str(name)):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(variables)
    return found


def _operation(
    client: Client | AsyncClient,
    query: str,
    operation_name: str | None,
    path: str | httpx.URL,
    kwargs: Mapping[str, Any],
) -> _Operation:
    arguments = dict(kwargs)
    strict = arguments.pop("strict", None)
    client._check_call_names(arguments)  # now, not when a paginator fetches its first page
    # A call's strict= wins over the client's, as for get(..., response_model=...).
    return _Operation(
        query, operation_name, path, arguments, client._config.strict if strict is None else strict
    )


def _checked(variables: Any) -> Mapping[str, Any] | None:
    if variables is not None and not isinstance(variables, Mapping):
        raise ConfigurationError(
            f"graphql() takes variables as a mapping or None, not {type(variables).__name__}"
        )
    return variables


def _posting(
    client: Client | AsyncClient,
    operation: _Operation,
    variables: Mapping[str, Any] | None,
    answer: Callable[[Mapping[str, Any], httpx.Response], _Answer],
) -> Generator[Effect, Outcome, _Answer]:
    """POST the operation and answer from its result: a flow each client runs its own way."""
    post: Any = partial(client.post, operation.path, **operation.arguments(variables))
    try:
        response: httpx.Response = yield from call(post, post)  # called, or awaited
    except HTTPError as error:
        operation.refused(error, variables)
    return answer(operation.result(response, variables), response)


def _response(body: Mapping[str, Any], response: httpx.Response) -> httpx.Response:
    return response


def execute(
    client: Client | AsyncClient,
    query: str,
    *,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    response_model: Any,
    path: str | httpx.URL,
    kwargs: Mapping[str, Any],
) -> Any:
    """``graphql``: send the operation, return its ``data`` (a coroutine on an ``AsyncClient``)."""
    operation = _operation(client, query, operation_name, path, kwargs)

    def data(body: Mapping[str, Any], response: httpx.Response) -> Any:
        return operation.data(body, response, response_model)

    return client._run(_posting(client, operation, _checked(variables), data))


class _GraphQLPages(_PaginatorBase[Any, Any]):
    """Each page POSTs the same operation; a page's ``params`` are its variables."""

    def __init__(self, client: Any, operation: _Operation, pages: _Pages[Any]) -> None:
        super().__init__(client, pages, {})
        self._operation = operation

    def _fetch(self, page: PageRequest) -> Any:
        return self._client._run(_posting(self._client, self._operation, page.params, _response))


class _GraphQLPaginator(_GraphQLPages, Paginator[Any]):
    pass


class _AsyncGraphQLPaginator(_GraphQLPages, AsyncPaginator[Any]):
    pass


def _pages(
    connection: str,
    cursor_variable: str,
    variables: Any,
    response_model: Any,
    path: str | httpx.URL,
    max_pages: int | None,
    max_items: int | None,
) -> _Pages[Any]:
    # Left out, max_pages is the default cap, which raises when reached (see pagination).
    capped: dict[str, Any] = {} if max_pages is UNSET else {"max_pages": max_pages}
    return make_pages(
        str(path),
        response_model=response_model,
        pagination=RelayPagination(connection=connection, cursor_variable=cursor_variable),
        params=_checked(variables),
        max_items=max_items,
        **capped,
    )


def paginator(
    client: Client | AsyncClient,
    query: str,
    *,
    connection: str,
    cursor_variable: str,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    response_model: Any,
    path: str | httpx.URL,
    max_pages: int | None,
    max_items: int | None,
    kwargs: Mapping[str, Any],
) -> Paginator[Any] | AsyncPaginator[Any]:
    """``graphql_paginate``: a paginator over the connection's nodes (``async for`` on an
    ``AsyncClient``)."""
    operation = _operation(client, query, operation_name, path, kwargs)
    pages = _pages(
        connection, cursor_variable, variables, response_model, path, max_pages, max_items
    )
    if isinstance(client, httpx.AsyncClient):
        return _AsyncGraphQLPaginator(client, operation, pages)
    return _GraphQLPaginator(client, operation, pages)
