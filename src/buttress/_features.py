"""The clients' API-level features: GraphQL, batches, WebSockets and downloads, written once.

Each method is a thin entry point to its feature's module (``graphql.py``,
``_batch.py``, ``websocket.py``, ``streaming.py``), imported on first use, which
has a sync and an async implementation: the method picks its client's. The
features send through the client's own ``send``, so every layer applies to
them. On an ``AsyncClient``, ``graphql``, ``batch`` and ``download`` are
coroutine functions (as :class:`~buttress._calls.AsyncVerbs` makes the verbs);
``graphql_paginate`` and ``websocket`` return objects used with ``async for``
and ``async with``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar, overload

import httpx

from ._calls import coroutine_method
from ._client_config import UNSET

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._batch import BatchProgress
    from ._calls import RequestKwargs
    from .pagination import AsyncPaginator, Paginator
    from .streaming import ProgressCallback
    from .websocket import AsyncWebSocket, AsyncWebSocketKwargs, WebSocket, WebSocketKwargs

__all__ = ["AsyncFeatures", "Features"]

if TYPE_CHECKING:
    _Done = TypeVar("_Done", covariant=True)
    _Settled = TypeVar("_Settled", covariant=True)
    _Result = TypeVar("_Result")
    _Params = ParamSpec("_Params")

    class Batch(Protocol[_Done, _Settled]):
        """``batch``'s call: what it returns, with ``return_exceptions=False`` or not."""

        @overload
        def __call__(
            self,
            requests: Iterable[httpx.Request],
            *,
            concurrency: int = 8,
            return_exceptions: Literal[False],
            on_progress: BatchProgress | None = None,
        ) -> _Done: ...
        @overload
        def __call__(
            self,
            requests: Iterable[httpx.Request],
            *,
            concurrency: int = 8,
            return_exceptions: bool = True,
            on_progress: BatchProgress | None = None,
        ) -> _Settled: ...

    def _returning(
        method: Callable[_Params, object], result: type[_Result]
    ) -> Callable[_Params, _Result]:
        """``method``'s parameters, returning ``result`` (for checkers only)."""
        ...


class Features:
    """The clients' GraphQL, batch, WebSocket and download methods (typed as ``Client``'s)."""

    if TYPE_CHECKING:

        @property
        def _asynchronous(self) -> bool:  # the client's: which implementation to use
            ...

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
        twice. Other arguments are ``post``'s. Await it on an ``AsyncClient``.

        Examples:
            >>> def user_name(client: Client, user_id: int) -> str:
            ...     query = "query User($id: Int!) { user(id: $id) { name } }"
            ...     data = client.graphql(query, variables={"id": user_id}, idempotent=True)
            ...     return str(data["user"]["name"])
        """
        from .graphql import execute

        return execute(
            self,  # type: ignore[arg-type]
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
        bound the walk as in :meth:`paginate`. See :mod:`buttress.graphql`. On an
        ``AsyncClient``, iterate with ``async for``.

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

        return paginator(  # type: ignore[return-value]
            self,  # type: ignore[arg-type]
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

    def batch(
        self,
        requests: Iterable[httpx.Request],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        on_progress: BatchProgress | None = None,
    ) -> Any:
        """Send ``requests``, at most ``concurrency`` at once; the results in input order.

        Each result is the response, or the exception that sending it raised
        (``return_exceptions=True``); with ``return_exceptions=False`` the first
        failure stops the batch and is raised. ``on_progress(done, total)`` is
        called in the caller's thread after each result. Every request goes
        through :meth:`send`, so every layer of the client applies. The threads
        are the call's own and have ended when it returns: after a stop (a
        failure, ``KeyboardInterrupt``) no request starts, and the call waits for
        those already sent. See the "Batches" page of the docs.

        On an ``AsyncClient``, await it: the requests are tasks of one task
        group, and cancelling the call cancels those still running and starts
        no other.

        Examples:
            >>> from buttress import Client
            >>> from buttress.testing import DemoServer
            >>> with DemoServer() as server, Client(base_url=server.url) as client:
            ...     requests = [client.build_request("GET", f"/users/{n}") for n in (1, 2, 404)]
            ...     [type(result).__name__ for result in client.batch(requests)]
            ['Response', 'Response', 'NotFoundError']
        """
        from . import _batch

        batch = _batch.Batch(self, requests, concurrency, return_exceptions, on_progress)  # type: ignore[arg-type]
        return (_batch.arun if self._asynchronous else _batch.run)(self, batch)  # type: ignore[arg-type]

    def websocket(self, url: httpx.URL | str, **kwargs: Unpack[WebSocketKwargs]) -> WebSocket:
        """A WebSocket whose handshake goes through this client's stack (:mod:`buttress.websocket`).

        On an ``AsyncClient``, an async one: ``async with`` and ``await`` its methods.

        Examples:
            >>> def chat(client: Client) -> str:
            ...     with client.websocket("/chat", reconnect=True) as ws:
            ...         ws.send_json({"say": "hello"})
            ...         return ws.receive_text()
        """
        from .websocket import AsyncWebSocket, WebSocket

        return (AsyncWebSocket if self._asynchronous else WebSocket)(self, url, **kwargs)  # type: ignore[arg-type, return-value]

    def download(
        self,
        url: httpx.URL | str,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        chunk_size: int = 64 * 1024,
        **kwargs: Unpack[RequestKwargs],
    ) -> pathlib.Path:
        """Stream ``url`` into the file ``path`` (see :func:`buttress.streaming.download`).

        Await it on an ``AsyncClient`` (:func:`buttress.streaming.adownload`).

        Examples:
            >>> def save(client: Client) -> None:
            ...     client.download("/download", "blob.bin", progress=lambda done, total: None)
        """
        from .streaming import adownload, download

        return (adownload if self._asynchronous else download)(  # type: ignore[return-value]
            self,  # type: ignore[arg-type]
            url,
            path,
            progress=progress,
            chunk_size=chunk_size,
            **kwargs,
        )


class AsyncFeatures(Features):
    """``AsyncClient``'s: the same methods, those awaited as coroutine functions."""

    graphql = coroutine_method(Features.graphql)
    batch = coroutine_method(Features.batch)
    download = coroutine_method(Features.download)  # type: ignore[assignment]

    if TYPE_CHECKING:  # what ``graphql_paginate`` and ``websocket`` return on an AsyncClient
        _async_paginate = _returning(Features.graphql_paginate, AsyncPaginator[Any])
        graphql_paginate = _async_paginate  # type: ignore[assignment]

        def websocket(  # type: ignore[override]
            self, url: httpx.URL | str, **kwargs: Unpack[AsyncWebSocketKwargs]
        ) -> AsyncWebSocket: ...
