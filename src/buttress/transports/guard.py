"""The body guard layer: the size limit and truncation, checked on every attempt.

It sits just above the network transport, so a body cut short or grown past
``max_response_size`` fails *that attempt* with a buttress error
(:class:`~buttress.IncompleteResponseError`, :class:`~buttress.ResponseTooLargeError`)
which the retry layer above can judge, whoever reads the body.
"""

from __future__ import annotations

from typing import cast

import httpx

from .._guard import BodyGuard, GuardedAsyncStream, GuardedSyncStream
from .._options import EXTENSION_KEY, RequestOptions
from ._layer import Wrapper

__all__ = ["BodyGuardTransport"]


def _guard(request: httpx.Request, response: httpx.Response) -> BodyGuard:
    options = request.extensions.get(EXTENSION_KEY)
    # A buffered body keeps its chunks so a truncation error can carry them; a
    # stream (or a plain httpx request, which may be one) is never held.
    keep = isinstance(options, RequestOptions) and not options.streamed
    limit = RequestOptions.of(request).max_response_size
    return BodyGuard(request, response.headers, response.status_code, limit=limit, keep=keep)


class BodyGuardTransport(Wrapper):
    """Watch every response body ``inner`` returns (limit from ``max_response_size``).

    Examples:
        >>> import httpx, buttress
        >>> from buttress.testing import DemoServer
        >>> transport = BodyGuardTransport(httpx.HTTPTransport())
        >>> limit = buttress.options(max_response_size=1000)
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     try:
        ...         client.get(f"{server.url}/download?size=5000", extensions=limit)
        ...     except buttress.ResponseTooLargeError as error:
        ...         print(error.limit)
        1000
    """

    def __init__(self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = cast(httpx.BaseTransport, self._inner).handle_request(request)
        stream = cast(httpx.SyncByteStream, response.stream)
        response.stream = GuardedSyncStream(stream, _guard(request, response))
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await cast(httpx.AsyncBaseTransport, self._inner).handle_async_request(request)
        stream = cast(httpx.AsyncByteStream, response.stream)
        response.stream = GuardedAsyncStream(stream, _guard(request, response))
        return response

    def __repr__(self) -> str:
        return f"BodyGuardTransport({self._inner!r})"
