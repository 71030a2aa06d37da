"""The middleware layer: runs a chain of :class:`~buttress.Middleware` around the stack.

A middleware is ``async def __call__(self, request, call_next) -> response``
(or a plain ``def`` with the same arguments). Requests pass the chain in list
order, responses come back in reverse; a middleware may answer without calling
``call_next`` and may catch or transform exceptions.

How one middleware object serves both clients:

- On ``AsyncClient`` an async middleware is awaited as usual.
- On ``Client`` there is no event loop. The coroutine is driven by hand
  (``coroutine.send(None)``): ``call_next`` returns an awaitable that performs
  the blocking call and completes at once, so ``await call_next(request)``
  never suspends. That ``call_next`` has ``is_async = False``, so a middleware
  that must wait can tell it has to block (``clock.sleep``) rather than
  ``await`` (read it as ``getattr(call_next, "is_async", True)``: the
  ``call_next`` of ``AsyncClient`` is an ordinary async callable).
  A middleware that awaits anything else that really suspends
  (``asyncio.sleep``, an async database call) cannot run there; it fails with
  a :class:`~buttress.ConfigurationError` that says so.
- A plain synchronous middleware gets a blocking ``call_next`` that returns the
  response. On ``Client`` it is called directly; on ``AsyncClient`` it runs in a
  worker thread (``anyio.to_thread``) and its ``call_next`` hops back to the
  event loop for the rest of the chain, so it never blocks the loop.

Per-call middleware (``middleware=[...]`` on a request, or
``extensions=buttress.options(middleware=[...])``) runs after (inside) the
client's middleware.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeAlias, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx

from .._exceptions import ConfigurationError
from .._options import RequestOptions
from ._layer import Wrapper

__all__ = ["CallNext", "MiddlewareTransport", "MiddlewareTypes", "is_async_middleware"]

CallNext: TypeAlias = Callable[[httpx.Request], Awaitable[httpx.Response]]
"""What an async middleware receives: ``await call_next(request)`` gives the response.

On the synchronous ``Client`` it has ``is_async = False``: awaiting it blocks.
"""

MiddlewareTypes: TypeAlias = Callable[[httpx.Request, Any], Any]
"""An async or sync middleware: ``(request, call_next) -> response``."""


def is_async_middleware(middleware: MiddlewareTypes) -> bool:
    """True when ``middleware`` is a coroutine function (or an object whose ``__call__`` is).

    Examples:
        >>> async def timing(request, call_next):
        ...     return await call_next(request)
        >>> is_async_middleware(timing), is_async_middleware(lambda r, n: n(r))
        (True, False)
    """
    if inspect.iscoroutinefunction(middleware):
        return True
    call = getattr(middleware, "__call__", None)  # noqa: B004 - objects define __call__
    return inspect.iscoroutinefunction(call)


async def _immediately(
    call: Callable[[httpx.Request], httpx.Response], request: httpx.Request
) -> httpx.Response:
    """Awaiting this runs the blocking call and never suspends."""
    return call(request)


class _BlockingNext:
    """``call_next`` on the sync client: ``is_async`` is False, awaiting it never suspends."""

    __slots__ = ("_call",)
    is_async = False

    def __init__(self, call: Callable[[httpx.Request], httpx.Response]) -> None:
        self._call = call

    def __call__(self, request: httpx.Request) -> Coroutine[Any, Any, httpx.Response]:
        return _immediately(self._call, request)


def _run_without_loop(coroutine: Coroutine[Any, Any, httpx.Response], name: str) -> httpx.Response:
    """Drive ``coroutine`` on the sync client: it must finish without suspending."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast(httpx.Response, done.value)
    except RuntimeError as exc:
        if "event loop" in str(exc) or type(exc).__name__ == "AsyncLibraryNotFoundError":
            raise _needs_loop(name) from exc
        raise
    coroutine.close()
    raise _needs_loop(name)


def _needs_loop(name: str) -> ConfigurationError:
    return ConfigurationError(
        f"middleware {name} awaited real asynchronous I/O on the synchronous Client; "
        "there is no event loop to run it. On Client a middleware may only await "
        "call_next(request); use AsyncClient for this middleware, or make it synchronous"
    )


def _name(middleware: Any) -> str:
    return getattr(middleware, "__qualname__", None) or type(middleware).__qualname__


class MiddlewareTransport(Wrapper):
    """Run ``middleware`` (outermost first) around ``inner``.

    Examples:
        >>> import httpx
        >>> from buttress.testing import DemoServer
        >>> async def tag(request, call_next):
        ...     request.headers["X-Tag"] = "demo"
        ...     return await call_next(request)
        >>> transport = MiddlewareTransport(httpx.HTTPTransport(), [tag])
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     client.get(f"{server.url}/echo").json()["headers"].get("x-tag")
        'demo'
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        middleware: Sequence[MiddlewareTypes] = (),
    ) -> None:
        for item in middleware:
            if not callable(item):
                raise ConfigurationError(
                    f"middleware must be callable as (request, call_next); got {item!r}"
                )
        self._inner = inner
        self.middleware: tuple[MiddlewareTypes, ...] = tuple(middleware)
        self._chain_of_client = tuple((m, is_async_middleware(m)) for m in self.middleware)

    def _chain(self, request: httpx.Request) -> tuple[tuple[MiddlewareTypes, bool], ...]:
        """The middleware for ``request`` with whether each is async: the client's, then its own."""
        extra = RequestOptions.of(request).middleware
        if not extra:
            return self._chain_of_client
        return self._chain_of_client + tuple((m, is_async_middleware(m)) for m in extra)

    # -- sync -------------------------------------------------------------------------------

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._inner, httpx.BaseTransport)
        chain = self._chain(request)
        inner = self._inner

        def call(index: int, request: httpx.Request) -> httpx.Response:
            if index == len(chain):
                return inner.handle_request(request)
            middleware, is_async = chain[index]
            following = functools.partial(call, index + 1)
            if is_async:
                coroutine = middleware(request, _BlockingNext(following))
                return _checked(_run_without_loop(coroutine, _name(middleware)), middleware)
            return _checked(middleware(request, following), middleware)

        return call(0, request)

    # -- async ------------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._inner, httpx.AsyncBaseTransport)
        chain = self._chain(request)
        inner = self._inner

        async def call(index: int, request: httpx.Request) -> httpx.Response:
            if index == len(chain):
                return await inner.handle_async_request(request)
            middleware, is_async = chain[index]
            following = functools.partial(call, index + 1)
            if is_async:
                return _checked(await middleware(request, following), middleware)

            def blocking_next(request: httpx.Request) -> httpx.Response:
                return anyio.from_thread.run(following, request)

            response = await anyio.to_thread.run_sync(middleware, request, blocking_next)
            return _checked(response, middleware)

        return await call(0, request)

    def __repr__(self) -> str:
        names = ", ".join(_name(m) for m in self.middleware)
        return f"MiddlewareTransport({self._inner!r}, [{names}])"


def _checked(response: Any, middleware: Any) -> httpx.Response:
    if not isinstance(response, httpx.Response):
        raise ConfigurationError(
            f"middleware {_name(middleware)} returned {type(response).__name__}, "
            "not a response: return call_next(request)'s result or an httpx.Response"
        )
    return response
