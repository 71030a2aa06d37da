"""The aiohttp backend: httpx-aiohttp's transport with honest error classes.

Imported only when ``backend="aiohttp"`` is asked for (extra ``buttress[aiohttp]``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import aiohttp
import httpx
import httpx_aiohttp

__all__ = ["AiohttpTransport"]


def _corrected(exc: httpx.TransportError) -> httpx.TransportError:
    """Undo httpx-aiohttp's mapping of every aiohttp connection error to ``ConnectTimeout``.

    A server closing a kept-alive connection, or a reset mid-response, is not a
    connect timeout: the retry layer must not treat such a request as never sent.
    """
    cause = exc.__cause__
    if not isinstance(exc, httpx.ConnectTimeout) or isinstance(cause, aiohttp.ServerTimeoutError):
        return exc
    kind: type[httpx.TransportError]
    if isinstance(cause, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(cause, aiohttp.ServerDisconnectedError):
        kind = httpx.RemoteProtocolError
    else:
        kind = httpx.NetworkError
    corrected = kind(str(exc) or type(cause).__name__)
    corrected.__cause__ = cause
    return corrected


class _CorrectedStream(httpx.AsyncByteStream):
    """A response body whose failures go through :func:`_corrected`."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except httpx.TransportError as exc:
            raise _corrected(exc) from exc.__cause__

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except httpx.TransportError as exc:
            raise _corrected(exc) from exc.__cause__


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx-aiohttp's transport, with connection errors classified as httpx would.

    Examples:
        >>> import httpx
        >>> client = httpx.AsyncClient(transport=AiohttpTransport())
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over aiohttp; failures are httpx transport errors."""
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise _corrected(exc) from exc.__cause__
        response.stream = _CorrectedStream(cast(httpx.AsyncByteStream, response.stream))
        return response
