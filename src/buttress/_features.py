"""The clients' API-level features: GraphQL, batches and WebSockets.

Each method is a thin entry point to its feature's module (``graphql.py``,
``_batch.py``, ``websocket.py``), imported on first use; the features send
through the client's own ``send``, so every layer applies to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, cast, overload

import httpx

from ._client_config import UNSET

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._batch import BatchProgress
    from ._calls import RequestKwargs
    from ._client import AsyncClient, Client
    from ._response import Response
    from .pagination import AsyncPaginator, Paginator
    from .websocket import AsyncWebSocket, AsyncWebSocketKwargs, WebSocket, WebSocketKwargs

__all__ = ["AsyncFeatures", "Features"]


class Features:
    """``Client``'s GraphQL, batch and WebSocket methods."""

    def graphql(
        self,
        query: str,
        *,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        **kwargs: Unpack[RequestKwargs],
    ) -> Any:
        """Run a GraphQL operation and return its ``data`` (see :mod:`buttress.graphql`).

        POSTs ``query``, ``variables`` and ``operation_name`` as JSON to ``path``.
        ``errors`` in the answer raise :class:`GraphQLError`, which keeps the
        partial ``data``; ``response_model`` validates ``data``. A POST is not
        retried: pass ``idempotent=True`` for a query that is safe to send
        twice. Other arguments are ``post``'s.

        Examples:
            >>> def user_name(client: Client, user_id: int) -> str:
            ...     query = "query User($id: Int!) { user(id: $id) { name } }"
            ...     data = client.graphql(query, variables={"id": user_id}, idempotent=True)
            ...     return str(data["user"]["name"])
        """
        from .graphql import execute

        return execute(
            cast("Client", self),
            query,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            kwargs=kwargs,
        )

    def graphql_paginate(
        self,
        query: str,
        *,
        connection: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        cursor_variable: str = "after",
        max_pages: int | None = UNSET,
        max_items: int | None = None,
        **kwargs: Unpack[RequestKwargs],
    ) -> Paginator[Any]:
        """Iterate over the nodes of a Relay connection, page by page (``$after`` cursors).

        ``connection`` is the connection's dotted path in ``data``; each page
        passes the last ``pageInfo.endCursor`` as ``cursor_variable``.
        ``response_model`` parses each node; ``max_pages`` and ``max_items``
        bound the walk as in :meth:`paginate`. See :mod:`buttress.graphql`.

        Examples:
            >>> QUERY = (
            ...     "query Users($after: String) { users(first: 50, after: $after) {"
            ...     " edges { node { login } } pageInfo { hasNextPage endCursor } } }"
            ... )
            >>> def logins(client: Client) -> list[str]:
            ...     users = client.graphql_paginate(QUERY, connection="users")
            ...     return [user["login"] for user in users]
        """
        from .graphql import paginator

        return paginator(
            cast("Client", self),
            query,
            connection=connection,
            cursor_variable=cursor_variable,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            max_pages=max_pages,
            max_items=max_items,
            kwargs=kwargs,
        )

    @overload
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[False],
        on_progress: BatchProgress | None = None,
    ) -> list[Response]: ...
    @overload
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Response | Exception]: ...
    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Any]:
        """Send ``requests``, at most ``concurrency`` at once; the results in input order.

        Each result is the response, or the exception that sending it raised
        (``return_exceptions=True``); with ``return_exceptions=False`` the first
        failure stops the batch and is raised. ``on_progress(done, total)`` is
        called in the caller's thread after each result. Every request goes
        through :meth:`send`, so every layer of the client applies. The threads
        are the call's own and have ended when it returns: after a stop (a
        failure, ``KeyboardInterrupt``) no request starts, and the call waits for
        those already sent. See the "Batches" page of the docs.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2, 404)]
            ...     [type(result).__name__ for result in client.batch(requests)]
            ['Response', 'Response', 'NotFoundError']
        """
        from ._batch import run

        return run(
            cast("Client", self),
            requests,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
        )

    def websocket(self, url: httpx.URL | str, **kwargs: Unpack[WebSocketKwargs]) -> WebSocket:
        """A WebSocket whose handshake goes through this client's stack (:mod:`buttress.websocket`).

        Examples:
            >>> def chat(client: Client) -> str:
            ...     with client.websocket("/chat", reconnect=True) as ws:
            ...         ws.send_json({"say": "hello"})
            ...         return ws.receive_text()
        """
        from .websocket import WebSocket

        return WebSocket(cast("Client", self), url, **kwargs)


class AsyncFeatures:
    """``AsyncClient``'s GraphQL, batch and WebSocket methods."""

    async def graphql(
        self,
        query: str,
        *,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        **kwargs: Unpack[RequestKwargs],
    ) -> Any:
        """Run a GraphQL operation and return its ``data`` (see :meth:`Client.graphql`).

        Examples:
            >>> async def user_name(client: AsyncClient, user_id: int) -> str:
            ...     query = "query User($id: Int!) { user(id: $id) { name } }"
            ...     data = await client.graphql(query, variables={"id": user_id})
            ...     return str(data["user"]["name"])
        """
        from .graphql import aexecute

        return await aexecute(
            cast("AsyncClient", self),
            query,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            kwargs=kwargs,
        )

    def graphql_paginate(
        self,
        query: str,
        *,
        connection: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        response_model: Any = None,
        path: httpx.URL | str = "/graphql",
        cursor_variable: str = "after",
        max_pages: int | None = UNSET,
        max_items: int | None = None,
        **kwargs: Unpack[RequestKwargs],
    ) -> AsyncPaginator[Any]:
        """Iterate with ``async for`` over a Relay connection's nodes (see
        :meth:`Client.graphql_paginate`).

        Examples:
            >>> async def logins(client: AsyncClient, query: str) -> list[str]:
            ...     users = client.graphql_paginate(query, connection="users")
            ...     return [user["login"] async for user in users]
        """
        from .graphql import async_paginator

        return async_paginator(
            cast("AsyncClient", self),
            query,
            connection=connection,
            cursor_variable=cursor_variable,
            variables=variables,
            operation_name=operation_name,
            response_model=response_model,
            path=path,
            max_pages=max_pages,
            max_items=max_items,
            kwargs=kwargs,
        )

    @overload
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[False],
        on_progress: BatchProgress | None = None,
    ) -> list[Response]: ...
    @overload
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Response | Exception]: ...
    async def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> list[Any]:
        """Send ``requests`` as tasks, at most ``concurrency`` at once (see :meth:`Client.batch`).

        The tasks belong to one task group: cancelling the call cancels the
        requests still running, and starts no other.

        Examples:
            >>> async def names(client: AsyncClient) -> list[str]:
            ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2)]
            ...     responses = await client.batch(requests, return_exceptions=False)
            ...     return [response.json()["name"] for response in responses]
        """
        from ._batch import arun

        return await arun(
            cast("AsyncClient", self),
            requests,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            on_progress=on_progress,
        )

    def websocket(
        self, url: httpx.URL | str, **kwargs: Unpack[AsyncWebSocketKwargs]
    ) -> AsyncWebSocket:
        """An async WebSocket through this client's stack (see :mod:`buttress.websocket`).

        Examples:
            >>> async def chat(client: AsyncClient) -> str:
            ...     async with client.websocket("/chat", reconnect=True) as ws:
            ...         await ws.send_json({"say": "hello"})
            ...         return await ws.receive_text()
        """
        from .websocket import AsyncWebSocket

        return AsyncWebSocket(cast("AsyncClient", self), url, **kwargs)
