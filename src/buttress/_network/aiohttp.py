"""The aiohttp backend: httpx-aiohttp's transport, lean on the hot path, honest about errors.

Imported only when ``backend="aiohttp"`` is asked for (extra ``buttress[aiohttp]``).
httpx-aiohttp builds the aiohttp session (connector, TLS, limits, proxy) and
closes it; this module sends each request on it with as little per-request
work as it can:

- the request headers go to aiohttp as one sequence of pairs (given httpx's
  ``Headers`` mapping, aiohttp would look each name up again);
- ``aiohttp.ClientTimeout`` objects are made once per distinct set of timeouts;
- a body is read in pieces of at most 32 KiB (one piece for a small
  response). Streaming 512 MiB through the full stack, that came out about a
  quarter faster than httpx-aiohttp's 16 KiB reads, steadily; pieces of 64 KiB
  (aiohttp's read-buffer limit) or whatever is buffered were as fast most of
  the time but now and then ran at half the speed. The size limit stops a body
  within one piece of it;
- failures are translated once, where they happen, instead of through
  wrapper streams;
- the session keeps no cookies: the httpx client does (see ``get_client``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any, NoReturn

import aiohttp
import httpx
import httpx_aiohttp
import yarl
from aiohttp.http_exceptions import ContentLengthError, TransferEncodingError
from httpx_aiohttp.transport import AIOHTTP_EXC_MAP

__all__ = ["AiohttpTransport"]

_PIECE = 32 * 1024  # the most a body piece holds (see the module docstring)
_CUT_SHORT = (ContentLengthError, TransferEncodingError)  # what aiohttp finds at an early EOF
_FORBIDDEN_IN_HEADERS = re.compile(rb"[\r\n\x00]")  # a header injection, or a broken value


def _translated(exc: Exception) -> Exception:
    """The httpx error for an aiohttp failure (``exc`` itself when it is not aiohttp's).

    httpx-aiohttp's table picks the most specific match, except that it reports
    every other connection error as ``ConnectTimeout``: a server closing a
    kept-alive connection, or a reset mid-response, is not a connect timeout,
    and the retry layer must not treat such a request as never sent. A body cut
    short is a ``RemoteProtocolError`` about an incomplete message body, as
    httpcore reports it, so that the body guard raises ``IncompleteResponseError``
    (with the bytes received) on both backends.
    """
    if isinstance(exc, aiohttp.ClientPayloadError) and isinstance(exc.__cause__, _CUT_SHORT):
        return httpx.RemoteProtocolError(
            f"the server closed the connection before the complete message body arrived: {exc}"
        )
    kind: type[httpx.TransportError] | None = None
    for aiohttp_error, httpx_error in AIOHTTP_EXC_MAP.items():
        if isinstance(exc, aiohttp_error) and (kind is None or issubclass(httpx_error, kind)):
            kind = httpx_error
    if kind is None:
        return exc
    if kind is httpx.ConnectTimeout and not isinstance(exc, aiohttp.ServerTimeoutError):
        if isinstance(exc, aiohttp.ClientConnectorError):
            kind = httpx.ConnectError
        elif isinstance(exc, aiohttp.ServerDisconnectedError):
            kind = httpx.RemoteProtocolError
        else:
            kind = httpx.NetworkError
        return kind(str(exc) or type(exc).__name__)
    return kind(str(exc))


def _reraise(exc: Exception) -> NoReturn:
    error = _translated(exc)
    if error is exc:
        raise exc
    raise error from exc


@lru_cache(maxsize=64)
def _timeout(connect: float | None, read: float | None, pool: float | None) -> Any:
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


class _Body(httpx.AsyncByteStream):
    """An aiohttp response's body, in pieces of at most ``_PIECE`` bytes."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_PIECE):
                yield chunk
        except Exception as exc:
            _reraise(exc)

    async def aclose(self) -> None:
        try:
            await self._response.__aexit__(None, None, None)  # releases the connection
        except Exception as exc:
            _reraise(exc)


class AiohttpTransport(httpx_aiohttp.AiohttpTransport):
    """httpx-aiohttp's transport, with connection errors classified as httpx would.

    Examples:
        >>> import httpx
        >>> client = httpx.AsyncClient(transport=AiohttpTransport())
    """

    _proxy_options: dict[str, Any] | None = None
    buttress_backend = "aiohttp"  # what the client calls this backend (for its errors)

    def get_client(self) -> aiohttp.ClientSession:
        """httpx-aiohttp's session, without a cookie jar of its own.

        The httpx client keeps the cookies and sends them in each request's
        ``Cookie`` header; a second jar in the session would resend cookies the
        client has dropped, and it cost a jar lookup on every request and a
        store on every response.
        """
        if self.client is not None:  # a session, or a factory, given by the caller
            return super().get_client()
        limit = self.limits.max_connections
        options: dict[str, Any] = {"keepalive_timeout": self.limits.keepalive_expiry}
        if limit is not None:
            options["limit"] = limit
        connector: aiohttp.BaseConnector
        if self.uds:
            connector = aiohttp.UnixConnector(path=self.uds, **options)
        else:
            local = (self.local_address, 0) if self.local_address else None
            connector = aiohttp.TCPConnector(ssl=self.ssl_context, local_addr=local, **options)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    def _proxy(self) -> dict[str, Any]:
        if self._proxy_options is None:
            proxy = self.proxy
            self._proxy_options = {
                "proxy": str(proxy.url) if proxy else None,
                "proxy_auth": aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                "proxy_headers": proxy.headers if proxy else None,
            }
        return self._proxy_options

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over aiohttp; failures are httpx transport errors."""
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()
        timeout = request.extensions.get("timeout", {})
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream
            request.headers.pop("transfer-encoding", None)  # aiohttp chunks it itself
        if any(_FORBIDDEN_IN_HEADERS.search(name + value) for name, value in request.headers.raw):
            # h11 refuses it so on the httpx backend; aiohttp would raise a bare ValueError
            raise httpx.LocalProtocolError("Illegal header value")
        url = request.url
        if url.userinfo:  # httpx already turned it into an Authorization header
            url = url.copy_with(userinfo=b"")
        try:
            response = await session.request(
                request.method,
                # Already encoded: read as text, yarl would decode %2E%2E and resolve it as "..".
                yarl.URL(str(url), encoded=True),
                headers=request.headers.items(),
                data=data,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, and the size limit counts raw bytes
                compress=False,
                timeout=_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
                server_hostname=request.extensions.get("sni_hostname"),
                **self._proxy(),
            )
        except Exception as exc:
            _reraise(exc)
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )
