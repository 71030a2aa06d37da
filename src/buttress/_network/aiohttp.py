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
  wrapper streams, and the aiohttp errors chained to them carry no credential
  (aiohttp keeps the request headers, ``Proxy-Authorization`` included, and the
  proxy's ``BasicAuth`` in its exceptions);
- the request goes on the wire as httpx would send it: its header pairs as
  given (case and repeats kept), no header that httpx would not send, and a
  body that must match its declared ``Content-Length`` (else h11's
  ``LocalProtocolError``, before anything is sent when the length is known);
- the session keeps no cookies: the httpx client does (see ``get_client``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from functools import lru_cache
from typing import Any, NoReturn, cast

import aiohttp
import httpx
import httpx_aiohttp
import yarl
from aiohttp import hdrs
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError, TransferEncodingError
from httpx_aiohttp.transport import AIOHTTP_EXC_MAP
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["AiohttpTransport"]

_PIECE = 32 * 1024  # the most a body piece holds (see the module docstring)
_CUT_SHORT = (ContentLengthError, TransferEncodingError)  # what aiohttp finds at an early EOF
_FORBIDDEN_IN_HEADERS = re.compile(rb"[\r\n\x00]")  # a header injection, or a broken value
_LENGTH = re.compile(rb"[0-9]+")  # a valid Content-Length, as h11 reads it
# How aiohttp shows a proxy's credentials (a password may hold a parenthesis).
_BASIC_AUTH = re.compile(r"BasicAuth\(.*?encoding=[^)]*\)", re.DOTALL)
# What aiohttp adds to a request that lacks it (httpx sends only what the request holds).
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


# httpx-aiohttp's table, and what its older releases (0.1.8) leave out: a proxy's refusal
_EXCEPTIONS: dict[type[Exception], type[httpx.TransportError]] = {
    **AIOHTTP_EXC_MAP,
    aiohttp.ClientHttpProxyError: httpx.ProxyError,
    aiohttp.ClientProxyConnectionError: httpx.ProxyError,
}


def _translated(exc: Exception) -> Exception:
    """The httpx error for an aiohttp failure (``exc`` itself when it is not aiohttp's).

    A response aiohttp cannot parse (it raises a bare ``ClientResponseError``,
    its parser's ``HttpProcessingError`` as the cause) is a ``RemoteProtocolError``,
    as h11's refusal is on the httpx backend.

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
    if type(exc) is aiohttp.ClientResponseError or isinstance(exc.__cause__, HttpProcessingError):
        # A response aiohttp could not parse: a bad status line, header or framing.
        return httpx.RemoteProtocolError(_malformed(exc))
    kind: type[httpx.TransportError] | None = None
    for aiohttp_error, httpx_error in _EXCEPTIONS.items():
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


def _malformed(exc: Exception) -> str:
    """What aiohttp's parser said about a malformed response, on one line."""
    cause = exc.__cause__
    text = cause.message if isinstance(cause, HttpProcessingError) and cause.message else ""
    text = text or getattr(exc, "message", "") or str(exc)
    return "malformed response: " + " ".join(str(text).split())


def _clean(value: Any) -> Any:
    """``value`` without credentials: a message, or aiohttp's record of a request."""
    if isinstance(value, str):
        return _BASIC_AUTH.sub("BasicAuth([REDACTED])", value)
    if isinstance(value, aiohttp.RequestInfo) and value.headers:
        return aiohttp.RequestInfo(value.url, value.method, _NO_HEADERS, value.real_url)
    if isinstance(value, ConnectionKey) and value.proxy_auth is not None:
        return value._replace(proxy_auth=None)
    return value


def _scrubbed(exc: BaseException) -> None:
    """Take the credentials out of ``exc`` and the errors it chains, in place.

    aiohttp's ``ClientResponseError`` keeps the request's headers (with the
    ``Proxy-Authorization`` aiohttp added) in ``request_info`` and its ``args``;
    a connection error keeps the connection key (in ``_conn_key`` and ``args``),
    whose ``proxy_auth`` holds the proxy's password, and messages quote that key.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, aiohttp.ClientResponseError):
            error.request_info = _clean(error.request_info)
        if isinstance(error, aiohttp.ClientConnectorError):
            error._conn_key = _clean(error._conn_key)
        error.args = tuple(_clean(arg) for arg in error.args)
        pending += [error.__cause__, error.__context__]


def _reraise(exc: Exception) -> NoReturn:
    """Raise the httpx error for ``exc``; what it chains carries no credential."""
    error = _translated(exc)
    if error is exc:
        raise exc
    _scrubbed(exc)
    error.args = tuple(_clean(arg) for arg in error.args)
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


class _Counted:
    """A streamed request body held to its declared ``Content-Length``, as h11 holds one.

    aiohttp sends a stream whose length is declared as it comes; h11 refuses the
    piece that would pass the declared length, and the end of a body that falls short.
    """

    __slots__ = ("_declared", "_stream", "error")

    def __init__(self, stream: AsyncIterable[bytes], declared: int) -> None:
        self._stream = stream
        self._declared = declared
        self.error: httpx.LocalProtocolError | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in self._stream:
            sent += len(chunk)
            if sent > self._declared:
                self.error = httpx.LocalProtocolError("Too much data for declared Content-Length")
                raise self.error
            yield chunk
        if sent < self._declared:
            self.error = httpx.LocalProtocolError("Too little data for declared Content-Length")
            raise self.error


def _broken(data: Any) -> httpx.LocalProtocolError | None:
    """The error a streamed body raised for breaking its ``Content-Length``, if any."""
    return data.error if isinstance(data, _Counted) else None


def _declared_length(raw: list[tuple[bytes, bytes]]) -> int | None:
    """The request's ``Content-Length`` (``None``: not given), refused where h11 refuses it."""
    lengths = {
        part.strip()
        for name, value in raw
        if name.lower() == b"content-length"
        for part in value.split(b",")
    }
    if not lengths:
        return None
    if len(lengths) > 1:
        raise httpx.LocalProtocolError("conflicting Content-Length headers")
    (length,) = lengths
    if not _LENGTH.fullmatch(length):
        raise httpx.LocalProtocolError("bad Content-Length")
    return int(length)


def _prepared(request: httpx.Request) -> tuple[list[tuple[str, str]], tuple[str, ...], Any]:
    """The headers for aiohttp, the automatic headers it must not add, and the body.

    The header pairs are the request's own, in its order and case, repeats kept
    (httpx's ``Headers`` mapping would join repeats with commas and lower the case).
    """
    raw = request.headers.raw
    if any(_FORBIDDEN_IN_HEADERS.search(name + value) for name, value in raw):
        # h11 refuses it so on the httpx backend; aiohttp would raise a bare ValueError
        raise httpx.LocalProtocolError("Illegal header value")
    declared = _declared_length(raw)
    data: Any
    try:
        content = request.content
    except httpx.RequestNotRead:
        streamed = True
        stream = cast(AsyncIterable[bytes], request.stream)  # an AsyncClient's request
        data = stream if declared is None else _Counted(stream, declared)
    else:
        streamed = False
        if declared is not None and len(content) != declared:
            much = "much" if len(content) > declared else "little"
            raise httpx.LocalProtocolError(f"Too {much} data for declared Content-Length")
        data = content or None
    encoding = request.headers.encoding
    headers = [
        (name.decode(encoding), value.decode(encoding))
        for name, value in raw
        # aiohttp frames a stream itself, and refuses a Transfer-Encoding it did not set
        if not (streamed and name.lower() == b"transfer-encoding")
    ]
    skip = tuple(name for name in _AUTO_HEADERS if name not in request.headers)
    return headers, skip, data


class _FramedAsHttpx(aiohttp.ClientRequest):
    """aiohttp's request, saying nothing of a body the request does not have, as httpx.

    aiohttp sends ``Content-Length: 0`` for every method but GET, HEAD, OPTIONS and
    TRACE; httpx only for POST, PUT and PATCH, and it has then written that header
    into the request's own, which stays.
    """

    def __init__(self, method: str, url: yarl.URL, **options: Any) -> None:
        super().__init__(method, url, **options)
        announced = hdrs.CONTENT_LENGTH in CIMultiDict(options.get("headers") or ())
        if options.get("data") is None and not announced:
            self.headers.pop(hdrs.CONTENT_LENGTH, None)


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
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_FramedAsHttpx,
        )

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
        headers, skip, data = _prepared(request)
        response: aiohttp.ClientResponse | None = None
        url = request.url
        if url.userinfo:  # httpx already turned it into an Authorization header
            url = url.copy_with(userinfo=b"")
        try:
            response = await session.request(
                request.method,
                # Already encoded: read as text, yarl would decode %2E%2E and resolve it as "..".
                yarl.URL(str(url), encoded=True),
                headers=headers,
                skip_auto_headers=skip or None,
                data=data,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes, and the size limit counts raw bytes
                compress=False,
                timeout=_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
                server_hostname=request.extensions.get("sni_hostname"),
                **self._proxy(),
            )
        except Exception as exc:
            if _broken(data) is None:
                _reraise(exc)
        error = _broken(data)
        if error is not None:  # the body broke its Content-Length: h11's words
            if response is not None:  # the server answered before the body went wrong
                response.close()
            raise error  # outside the except clause, so aiohttp's error is not chained
        assert response is not None  # else _reraise raised
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
