"""What the facade puts around httpx's send: failures mapped, responses adopted, hooks.

A response httpx returns becomes a buttress :class:`~buttress.Response`
(:func:`adopt`); a failure while its body streams is mapped into the buttress
exception tree as it happens (:class:`MappedStream`), as one before or
while sending is by the client. Response hooks get a read body.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, cast

import httpx

from ._body import WatchedStream
from ._exceptions import ClientError, map_exception
from ._options import RequestOptions
from ._redact import Redactor
from ._response import Response, as_response

__all__ = [
    "MappedStream",
    "SharedTransport",
    "adapt_hooks",
    "adopt",
    "hide_secrets",
    "reraise_mapped",
]


class SharedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Another client's network transport, borrowed: closing it here leaves it open."""

    def __init__(self, inner: Any, owner: Any) -> None:
        self._inner, self._owner = inner, owner

    def _check(self) -> None:
        if self._owner.is_closed:
            raise ClientError(
                "cannot send a request: the client this one was derived from "
                "(with_middleware) has been closed, and its connection pool with it"
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._check()
        return cast(httpx.Response, self._inner.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._check()
        return cast(httpx.Response, await self._inner.handle_async_request(request))

    def close(self) -> None:
        """The owner closes the pool."""

    async def aclose(self) -> None:
        """The owner closes the pool."""


class _SecretsHidingRequest(httpx.Request):
    """The requests the facade builds: an ``httpx.Request`` whose repr hides its secrets."""

    def __repr__(self) -> str:
        return f"<Request({self.method!r}, {Redactor.for_request(self).url(self.url)!r})>"


def hide_secrets(request: httpx.Request) -> httpx.Request:
    """``request``, its repr now hiding its secrets (httpx makes plain requests: the
    clients' ``build_request`` and those of redirects, adopted with their responses).

    Examples:
        >>> hide_secrets(httpx.Request("GET", "https://api.example.com/?token=abc"))
        <Request('GET', 'https://api.example.com/?token=[REDACTED]')>
    """
    if type(request) is httpx.Request:
        request.__class__ = _SecretsHidingRequest
    return request


def reraise_mapped(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise ``exc`` as buttress's exception; one that is not about the transport unchanged.

    (``raise map_exception(exc) from exc`` would make an unmapped exception its own cause.)
    """
    mapped = map_exception(exc, request)
    if mapped is exc:
        raise exc
    raise mapped from exc


class MappedStream(WatchedStream):
    """Maps failures while the body streams (a read timeout mid-body) into the tree."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, request: httpx.Request
    ) -> None:
        super().__init__(stream)
        self._request = request

    def _failure(self, exc: Exception) -> Exception:
        return map_exception(exc, self._request)


def adopt(sent: httpx.Response, *, stream: bool) -> Response:
    """``sent`` (and its redirect history) as buttress :class:`Response` objects.

    Their requests (httpx makes those of redirects) hide secrets in their reprs;
    a streamed body maps its failures.

    Examples:
        >>> request = httpx.Request("GET", "https://api.example.com/?key=secret")
        >>> response = adopt(httpx.Response(204, request=request), stream=False)
        >>> type(response).__name__, response.request
        ('Response', <Request('GET', 'https://api.example.com/?key=[REDACTED]')>)
    """
    for adopted in (*sent.history, sent):
        as_response(adopted)
        if adopted._request is not None:
            hide_secrets(adopted._request)
    response = cast(Response, sent)
    if stream:
        response.stream = MappedStream(response.stream, response.request)
    return response


def _streamed(response: httpx.Response) -> bool:
    return RequestOptions.of(response.request).streamed


def adapt_hooks(
    hooks: Mapping[str, list[Callable[..., Any]]], *, asynchronous: bool
) -> dict[str, list[Callable[..., Any]]]:
    """httpx's ``event_hooks`` as the clients run them.

    Response hooks get a read body (except under ``client.stream``), so that
    ``response.elapsed`` and ``response.json()`` work in them (SPEC 18.7);
    an ``AsyncClient`` takes plain functions as well as coroutine functions.

    Examples:
        >>> hooks = adapt_hooks({"response": [print]}, asynchronous=True)
        >>> [hook.__name__ for hook in hooks["response"]]
        ['call']
    """
    if asynchronous:
        return {
            event: [_async_hook(f, reads=event == "response") for f in functions]
            for event, functions in hooks.items()
        }
    return {
        event: [_reading_hook(f) if event == "response" else f for f in functions]
        for event, functions in hooks.items()
    }


def _reading_hook(hook: Callable[..., Any]) -> Callable[..., Any]:
    """Read the body before a response hook runs, unless the caller streams it."""

    def call(response: httpx.Response) -> Any:
        if not _streamed(response):
            response.read()
        return hook(response)

    return call


def _async_hook(hook: Callable[..., Any], *, reads: bool = False) -> Callable[..., Awaitable[None]]:
    """httpx's AsyncClient awaits every hook; let plain functions in too."""
    if inspect.iscoroutinefunction(hook) and not reads:
        return hook

    async def call(message: Any) -> None:
        if reads and not _streamed(message):
            await message.aread()
        result = hook(message)
        if inspect.isawaitable(result):
            await result

    return call
