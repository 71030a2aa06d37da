"""The buttress exception tree.

::

    ClientError (base)
    ├── HTTPError                      also httpx.HTTPStatusError
    │   ├── ClientResponseError (4xx)
    │   │   ├── AuthenticationError (401)
    │   │   ├── ForbiddenError (403)
    │   │   ├── NotFoundError (404)
    │   │   └── RateLimitError (429)
    │   └── ServerError (5xx)
    ├── ConnectionError                also httpx.TransportError (and the httpx class it replaces)
    │   └── IncompleteResponseError    also httpx.RemoteProtocolError: body cut short
    ├── TimeoutError                   also httpx.TimeoutException
    │   ├── ConnectTimeoutError        also httpx.ConnectTimeout
    │   ├── ReadTimeoutError           also httpx.ReadTimeout
    │   ├── WriteTimeoutError          also httpx.WriteTimeout
    │   └── PoolTimeoutError           also httpx.PoolTimeout
    ├── CircuitBreakerError            also httpx.TransportError
    │   └── CircuitBreakerOpenError
    ├── ValidationError                also ValueError
    │   └── SchemaValidationError      a call or an answer off its OpenAPI description
    ├── ConfigurationError             also ValueError
    │   └── InvalidURLError            also httpx.InvalidURL
    ├── TooManyRedirectsError          also httpx.TooManyRedirects
    ├── RedirectRefusedError           also httpx.RequestError
    ├── ResponseTooLargeError          a body past max_response_size
    ├── PaginationError                a page asked for twice, or the page cap reached
    ├── GraphQLError                   a GraphQL response with errors (partial data kept)
    ├── StoreError                     a shared store (Redis, Memcached) failed, when told to raise
    ├── WebSocketError                 a WebSocket session could not open or has ended
    │   ├── WebSocketUpgradeError      the handshake was not answered with an upgrade
    │   ├── WebSocketClosedError       the session ended: close code and reason
    │   └── MessageTooLargeError       a message past max_message_size
    └── DecodingError                  also httpx.DecodingError
        └── InvalidJSONError           also json.JSONDecodeError

The tree is SPEC 7.1's, with leaves added where httpx has a failure the spec
does not name (pool timeouts, redirect loops, refused redirects, undecodable
bodies, invalid JSON) and for SPEC 10.4's parsing resilience (truncated bodies,
size limits). Every class also subclasses the httpx exception it stands for, so
code written for plain httpx (``except httpx.TimeoutException``) keeps working when
it switches to buttress. Messages never contain credentials: URLs are redacted,
and text taken from a response body or a dependency's error is scrubbed of every
secret the request's vocabulary knows (see ``buttress._redact``).
"""

from __future__ import annotations

import builtins
import json
import re
import ssl
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ._extensions import CLIENT_RATE_LIMITED
from ._redact import Redactor

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

    from .graphql import GraphQLErrorDetail

__all__ = [
    "AuthenticationError",
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "ClientError",
    "ClientResponseError",
    "ConfigurationError",
    "ConnectTimeoutError",
    "ConnectionError",
    "DecodingError",
    "ForbiddenError",
    "GraphQLError",
    "HTTPError",
    "IncompleteResponseError",
    "InvalidJSONError",
    "InvalidURLError",
    "MessageTooLargeError",
    "NotFoundError",
    "PaginationError",
    "PoolTimeoutError",
    "RateLimitError",
    "ReadTimeoutError",
    "RedirectRefusedError",
    "ResponseTooLargeError",
    "SchemaValidationError",
    "ServerError",
    "StoreError",
    "TimeoutError",
    "TooManyRedirectsError",
    "ValidationError",
    "WebSocketClosedError",
    "WebSocketError",
    "WebSocketUpgradeError",
    "WriteTimeoutError",
]


class ClientError(Exception):
    """Base of every exception buttress raises.

    Examples:
        >>> try:
        ...     raise NotFoundError.__new__(NotFoundError)
        ... except ClientError:
        ...     print("caught")
        caught
    """


# --- HTTP status errors ---------------------------------------------------------------------


class HTTPError(ClientError, httpx.HTTPStatusError):
    """The server answered with an error status.

    Carries the ``request``, the ``response`` (whose body has been read),
    ``status_code``, ``headers``, ``text``, ``details`` (what the error parser
    found in the body) and ``retry_after`` (seconds, from ``Retry-After``).

    Examples:
        >>> from buttress import Client, HTTPError
        >>> def fetch(client: Client) -> dict[str, object] | None:
        ...     try:
        ...         return client.get("/users/1").json()
        ...     except HTTPError as e:
        ...         print(e.status_code, e.details)
        ...         return None
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request,
        response: httpx.Response,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, request=request, response=response)
        self.details = details
        self.retry_after = retry_after

    @property
    def status_code(self) -> int:
        """The response's status code."""
        return self.response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response's headers."""
        return self.response.headers

    @property
    def text(self) -> str:
        """The response body as text ('' when it was not read)."""
        try:
            return self.response.text
        except httpx.ResponseNotRead:
            return ""


class ClientResponseError(HTTPError):
    """A 4xx answer: the request was wrong in the server's eyes.

    Examples:
        >>> issubclass(NotFoundError, ClientResponseError)
        True
    """


class AuthenticationError(ClientResponseError):
    """401 Unauthorized: missing or rejected credentials.

    Examples:
        >>> AuthenticationError.__mro__[1].__name__
        'ClientResponseError'
    """


class ForbiddenError(ClientResponseError):
    """403 Forbidden: the credentials are valid but not allowed to do this.

    Examples:
        >>> issubclass(ForbiddenError, HTTPError)
        True
    """


class NotFoundError(ClientResponseError):
    """404 Not Found.

    Examples:
        >>> issubclass(NotFoundError, httpx.HTTPStatusError)
        True
    """


class RateLimitError(ClientResponseError):
    """429 Too Many Requests, or a client-side rate limit that would not wait.

    ``retry_after`` holds the seconds the server (or the limiter) asked for,
    parsed from both ``Retry-After`` forms; ``None`` when nobody said. When the
    client's own limiter refused (nothing was sent), ``response`` is a synthetic
    429 and :attr:`limited_by_client` is true.

    Examples:
        >>> from buttress import Client, RateLimitError
        >>> def fetch(client: Client) -> None:
        ...     try:
        ...         client.get("/users")
        ...     except RateLimitError as e:
        ...         print(f"try again in {e.retry_after}s")
    """

    @property
    def limited_by_client(self) -> bool:
        """True when the client-side limiter refused and nothing reached the server."""
        return bool(self.response.extensions.get(CLIENT_RATE_LIMITED))


class ServerError(HTTPError):
    """A 5xx answer: the server failed.

    Examples:
        >>> issubclass(ServerError, ClientResponseError)
        False
    """


_STATUS_CLASSES: Mapping[int, type[HTTPError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[HTTPError]:
    """The exception class for an error ``status_code`` (400-599)."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    return ServerError if status_code >= 500 else ClientResponseError


# --- transport errors -----------------------------------------------------------------------


class ConnectionError(ClientError, httpx.TransportError):
    """The exchange with the server failed below HTTP: refused, reset, broken protocol, TLS.

    The original httpx exception is kept as ``__cause__``, and the raised object
    is also an instance of that httpx class (``except httpx.ConnectError`` works).

    Examples:
        >>> issubclass(ConnectionError, httpx.TransportError)
        True
    """


class IncompleteResponseError(ConnectionError, httpx.RemoteProtocolError):
    """The body ended before it was complete: shorter than its Content-Length, or a
    chunked body cut off.

    ``received`` is the number of bytes that arrived, ``expected`` the declared
    Content-Length (``None`` for a chunked body) and ``partial`` the bytes the
    client had buffered for you (``b""`` for ``client.stream()``, whose chunks
    you already consumed).

    Examples:
        >>> err = IncompleteResponseError("cut", received=10, expected=100, partial=b"0123456789")
        >>> (err.received, err.expected, len(err.partial))
        (10, 100, 10)
    """

    def __init__(
        self,
        message: str,
        *,
        received: int,
        expected: int | None,
        partial: bytes = b"",
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.received = received
        self.expected = expected
        self.partial = partial


class TimeoutError(ClientError, httpx.TimeoutException):
    """A timeout, or the request's total deadline, ran out.

    Examples:
        >>> issubclass(ReadTimeoutError, TimeoutError)
        True
    """


class ConnectTimeoutError(TimeoutError, httpx.ConnectTimeout):
    """No connection within the connect timeout.

    Examples:
        >>> issubclass(ConnectTimeoutError, httpx.ConnectTimeout)
        True
    """


class ReadTimeoutError(TimeoutError, httpx.ReadTimeout):
    """No bytes from the server within the read timeout.

    Examples:
        >>> issubclass(ReadTimeoutError, httpx.ReadTimeout)
        True
    """


class WriteTimeoutError(TimeoutError, httpx.WriteTimeout):
    """Could not send bytes within the write timeout.

    Examples:
        >>> issubclass(WriteTimeoutError, httpx.WriteTimeout)
        True
    """


class PoolTimeoutError(TimeoutError, httpx.PoolTimeout):
    """No free connection in the pool within the pool timeout (a client-side limit).

    Examples:
        >>> issubclass(PoolTimeoutError, httpx.PoolTimeout)
        True
    """


class CircuitBreakerError(ClientError, httpx.TransportError):
    """Base for circuit breaker failures.

    Examples:
        >>> issubclass(CircuitBreakerOpenError, CircuitBreakerError)
        True
    """


class CircuitBreakerOpenError(CircuitBreakerError):
    """The circuit for ``host`` is open: the request was not sent.

    ``retry_after`` is the number of seconds until the breaker lets a trial
    request through (half-open).

    Examples:
        >>> err = CircuitBreakerOpenError("open", host="api.example.com", retry_after=3.0)
        >>> (err.host, err.retry_after)
        ('api.example.com', 3.0)
    """

    def __init__(
        self,
        message: str,
        *,
        host: str,
        retry_after: float | None = None,
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(message, request=request)
        self.host = host
        self.retry_after = retry_after


class TooManyRedirectsError(ClientError, httpx.TooManyRedirects):
    """More redirects than ``max_redirects`` allowed.

    Examples:
        >>> issubclass(TooManyRedirectsError, httpx.TooManyRedirects)
        True
    """


class RedirectRefusedError(ClientError, httpx.RequestError):
    """A redirect the client will not follow: cross-origin when not allowed, or not http(s).

    Examples:
        >>> from buttress import Client, RedirectConfig, RedirectRefusedError
        >>> def fetch(client: Client) -> None:
        ...     try:
        ...         client.get("/redirect", params={"to": "https://elsewhere.example"})
        ...     except RedirectRefusedError as e:
        ...         print(e)
    """


class ResponseTooLargeError(ClientError):
    """A response body is larger than ``max_response_size``; reading stopped at the limit.

    The limit holds for the body as sent and as decoded (gzip, deflate, br,
    zstd), so a small compressed body that inflates past it is stopped too. It
    is also raised for a server-sent event line or event longer than
    ``max_event_size`` (:func:`buttress.streaming.iter_sse`).

    ``limit`` is the limit in bytes and ``received`` what had arrived (the
    declared Content-Length, or the bytes decoded) when the client gave up.
    Raise the limit with ``Client(max_response_size=...)`` or per call, or read
    large bodies with ``client.stream()`` / ``client.download()``.

    Examples:
        >>> err = ResponseTooLargeError("too large", limit=100, received=101)
        >>> (err.limit, err.received)
        (100, 101)
    """

    def __init__(self, message: str, *, limit: int, received: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.received = received


class PaginationError(ClientError):
    """Pagination cannot go on safely, so it stops instead of fetching forever.

    Raised when the next page is one already fetched (a cursor that goes
    ``a -> b -> a``, ``Link`` headers that point back and forth), and when the
    walk reaches the default page cap without a ``max_pages`` of its own.
    ``request`` is the page that was not fetched (a
    :class:`~buttress.pagination.PageRequest`); ``pages_fetched`` the pages
    fetched before. The pages before it were yielded as usual.

    Examples:
        >>> from buttress import Client, PaginationError
        >>> def every_user(client: Client) -> list[object]:
        ...     users: list[object] = []
        ...     try:
        ...         users.extend(client.paginate("/users"))
        ...     except PaginationError as e:
        ...         print(f"stopped after {e.pages_fetched} pages: {e}")
        ...     return users
    """

    def __init__(self, message: str, *, request: Any = None, pages_fetched: int = 0) -> None:
        super().__init__(message)
        self.request = request
        self.pages_fetched = pages_fetched


class GraphQLError(ClientError):
    """A GraphQL server answered with ``errors``: the operation failed, wholly or in part.

    ``errors`` holds each error the server listed, as a
    :class:`~buttress.graphql.GraphQLErrorDetail` (``message``, ``locations``,
    ``path``, ``extensions``); ``messages`` just their messages. ``data`` is
    what the server could still answer (``None`` when nothing ran, as for a
    query that does not validate): a failed field is ``null`` there and named
    by an error's ``path``. ``response`` is the HTTP response, read;
    ``status_code`` its status (200 for most; a 4xx when an
    ``application/graphql-response+json`` server refused the request, whose
    :class:`HTTPError` is then ``__cause__``).

    Examples:
        >>> from buttress import Client, GraphQLError
        >>> def user_name(client: Client) -> str | None:
        ...     try:
        ...         return client.graphql("{ user(id: 1) { name } }")["user"]["name"]
        ...     except GraphQLError as e:
        ...         print(e.messages, [error.path for error in e.errors])
        ...         return None
    """

    def __init__(
        self,
        message: str,
        *,
        errors: tuple[GraphQLErrorDetail, ...],
        data: Any = None,
        response: httpx.Response,
    ) -> None:
        super().__init__(message)
        self.errors = errors
        self.data = data
        self.response = response

    @property
    def messages(self) -> list[str]:
        """The message of each error, in the server's order."""
        return [error.message for error in self.errors]

    @property
    def status_code(self) -> int:
        """The HTTP status of the response that carried the errors."""
        return self.response.status_code


class DecodingError(ClientError, httpx.DecodingError):
    """The response body could not be decoded (content encoding or JSON).

    Examples:
        >>> issubclass(InvalidJSONError, DecodingError)
        True
    """


class InvalidJSONError(DecodingError, json.JSONDecodeError):
    """``response.json()`` met a body that is not JSON.

    The message shows the status, the content type, the position and a short
    snippet around it; ``status_code``, ``content_type``, ``pos``, ``lineno``,
    ``colno`` and ``doc`` are attributes. :meth:`ServerSentEvent.json
    <buttress.ServerSentEvent.json>` raises it too, naming the event and its id
    (``status_code`` and ``content_type`` are then ``None``). It is also a ``json.JSONDecodeError``
    (and so a ``ValueError``), which is what ``httpx.Response.json`` raises.

    Examples:
        >>> try:
        ...     import buttress
        ...     html = {"content-type": "text/html"}
        ...     buttress.Response(200, content=b"<html>", headers=html).json()
        ... except InvalidJSONError as e:
        ...     print(e.pos, e.content_type)
        0 text/html
    """

    def __init__(
        self,
        error: json.JSONDecodeError,
        *,
        status_code: int | None = None,
        content_type: str | None = None,
        request: httpx.Request | None = None,
        source: str | None = None,
    ) -> None:
        doc, pos = error.doc, error.pos
        start = max(0, pos - 30)
        snippet = scrub(request, doc[start : pos + 30])
        # ``source`` says where the JSON came from when it is not a response's body.
        source = source or f"a {status_code} response (content-type {content_type or 'unset'})"
        message = (
            f"invalid JSON in {source}: "
            f"{error.msg} at line {error.lineno} column {error.colno} (char {pos}), "
            f"near {snippet!r}"
        )
        # httpx's and json's __init__ take incompatible arguments: set both by hand.
        Exception.__init__(self, message)
        self._request = request
        self.msg, self.doc, self.pos = error.msg, doc, pos
        self.lineno, self.colno = error.lineno, error.colno
        self.status_code = status_code
        self.content_type = content_type

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (Exception, self.args)


# --- caller-side errors ---------------------------------------------------------------------


class ValidationError(ClientError, ValueError):
    """A response (or request body) did not match its Pydantic model.

    ``errors`` is pydantic's list of field-level errors, ``model`` the type it was
    validated against, ``response`` the response (its body is available).

    Examples:
        >>> from pydantic import BaseModel
        >>> class User(BaseModel):
        ...     id: int
        >>> from buttress import Client, ValidationError
        >>> def load(client: Client) -> User | None:
        ...     try:
        ...         return client.get("/users/1", response_model=User)
        ...     except ValidationError as e:
        ...         print([err["loc"] for err in e.errors])
        ...         return None
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[ErrorDetails] | None = None,
        model: Any = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.errors: list[ErrorDetails] = errors or []
        self.model = model
        self.response = response


class SchemaValidationError(ValidationError):
    """A call to an OpenAPI operation, or its answer, does not match the API's description.

    Raised by :mod:`buttress.openapi` before sending, when arguments or a request
    body are off the document (nothing was sent, ``response`` is ``None``), and
    after, when a response body is off the schema documented for its status
    (``response`` holds it). ``errors`` lists every problem the way pydantic
    does: ``loc`` (``("query", "limit")``, ``("body", "age")``,
    ``("response", "name")``), ``msg``, ``type`` (the JSON Schema keyword that
    failed, ``missing`` or ``unknown``) and ``input``. ``operation`` is the
    operation's name. Messages never quote the values, which may be secrets.

    Examples:
        >>> err = SchemaValidationError("off", operation="get_user", errors=[])
        >>> (isinstance(err, ValidationError), err.operation, err.response)
        (True, 'get_user', None)
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        errors: list[ErrorDetails] | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message, errors=errors, response=response)
        self.operation = operation


class ConfigurationError(ClientError, ValueError):
    """The client, or a call, was configured in a way that cannot work.

    Also raised when an option needs an extra that is not installed; the message
    names the extra (``pip install 'buttress[http2]'``).

    Examples:
        >>> from buttress import TimeoutConfig
        >>> try:
        ...     TimeoutConfig.coerce("soon")
        ... except ConfigurationError as e:
        ...     print("bad timeout")
        bad timeout
    """


class StoreError(ClientError):
    """A shared store (Redis, Memcached) did not answer in time, or answered with an error.

    Raised only with ``on_store_error="raise"``; by default a client falls back to
    per-process state while the store is away (see :class:`~buttress.RedisStore`).
    The message names the store by its address, never by its credentials.

    Examples:
        >>> raise StoreError("Redis at 127.0.0.1:6379/0 did not answer within 0.05s")
        Traceback (most recent call last):
        ...
        buttress.StoreError: Redis at 127.0.0.1:6379/0 did not answer within 0.05s
    """


class InvalidURLError(ConfigurationError, httpx.InvalidURL):
    """A URL that cannot be parsed: a request's, a ``base_url``, a relative path.

    It is also an ``httpx.InvalidURL`` (which plain httpx raises) and a
    :class:`ConfigurationError`. The message names the part that is wrong,
    never the whole URL, which may hold a password.

    Examples:
        >>> from buttress import Client
        >>> with Client() as client:
        ...     try:
        ...         client.get("http://[::1/")
        ...     except InvalidURLError as e:
        ...         print(e)
        invalid URL for GET: Invalid port: ':1'
    """


# --- mapping httpx's exceptions into the tree -----------------------------------------------

_TIMEOUTS: Mapping[type[httpx.TimeoutException], type[TimeoutError]] = {
    httpx.ConnectTimeout: ConnectTimeoutError,
    httpx.ReadTimeout: ReadTimeoutError,
    httpx.WriteTimeout: WriteTimeoutError,
    httpx.PoolTimeout: PoolTimeoutError,
}


_C = TypeVar("_C", bound=ClientError)
_JOINED: dict[tuple[type[ClientError], type[BaseException]], type[ClientError]] = {}


def _joined(ours: type[_C], theirs: type[BaseException]) -> type[_C]:
    """A class that is both ``ours`` and ``theirs``, so either ``except`` catches it.

    Built once per pair; the result is named like ``ours`` so tracebacks read
    ``buttress.ConnectionError``.
    """
    if issubclass(ours, theirs):
        return ours
    joined = _JOINED.get((ours, theirs))
    if joined is None:
        # Exception's __str__: ssl.SSLError's would print the args tuple.
        namespace = {"__module__": "buttress", "__str__": Exception.__str__}
        joined = type(ours.__name__, (ours, theirs), namespace)
        joined.__qualname__ = ours.__qualname__
        _JOINED[(ours, theirs)] = joined
    return joined  # type: ignore[return-value]


def wrong_kind(message: str) -> ConfigurationError:
    """A :class:`ConfigurationError` that is also the ``TypeError`` Python (or httpx) raises
    for an argument of the wrong kind."""
    return _joined(ConfigurationError, TypeError)(message)


def closed_client(client: object, what: str = "a request") -> ClientError:
    """The error for sending on a closed client: a :class:`ClientError` that is also the
    ``RuntimeError`` httpx raises there."""
    name = type(client).__name__
    return _joined(ClientError, RuntimeError)(f"cannot send {what}: this {name} has been closed")


# What went wrong, by the httpx (or builtin) class; the first match in the MRO wins.
_WHAT: Mapping[type[BaseException], str] = {
    httpx.ConnectTimeout: "timed out connecting",
    httpx.ReadTimeout: "timed out reading the response",
    httpx.WriteTimeout: "timed out sending the request",
    httpx.PoolTimeout: "timed out waiting for a free connection",
    httpx.TimeoutException: "timed out",
    builtins.TimeoutError: "timed out",
    httpx.ConnectError: "could not connect",
    httpx.ReadError: "network error while reading the response",
    httpx.WriteError: "network error while sending the request",
    httpx.CloseError: "network error while closing the connection",
    httpx.ProxyError: "proxy failed",
    httpx.RemoteProtocolError: "protocol error",
    httpx.LocalProtocolError: "invalid HTTP request",
    httpx.UnsupportedProtocol: "unsupported URL scheme",
    httpx.TooManyRedirects: "too many redirects",
    httpx.DecodingError: "could not decode the response body",
    httpx.StreamError: "stream misused",
    httpx.CookieConflict: "cookie conflict",
    ssl.SSLError: "TLS error",
    OSError: "network error",
}
_PHASES: Mapping[type[BaseException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def _http2_detail(exc: Exception) -> str | None:
    """Words for an HTTP/2 ``GOAWAY`` or ``RST_STREAM``; httpcore's message is h2's event repr."""
    cause = exc.__cause__
    event = cause.args[0] if cause is not None and cause.args else None
    if type(event).__module__ != "h2.events":
        return None
    code = getattr(event, "error_code", None)
    code_name = getattr(code, "name", code)
    kind = type(event).__name__
    if kind == "ConnectionTerminated":
        return f"the server closed the HTTP/2 connection (GOAWAY, error code {code_name})"
    if kind == "StreamReset":
        return f"the server reset the HTTP/2 stream (RST_STREAM, error code {code_name})"
    return None


# h11 quotes the header it refuses ("Illegal header value b'Bearer ...\n'"): maybe a
# credential, and escaped so that no redaction of the raw value finds it.
_REFUSED_HEADER = re.compile(r"(Illegal header (?:name|value)) .*", re.S)


def _message(exc: Exception, request: httpx.Request | None) -> str:
    """``exc``'s message, saying which request failed and (for timeouts) after how long."""
    detail = _REFUSED_HEADER.sub(r"\1 (not shown)", _http2_detail(exc) or str(exc))
    if request is None:
        return scrub(None, detail) if detail else type(exc).__name__
    what = next((_WHAT[cls] for cls in type(exc).__mro__ if cls in _WHAT), "request failed")
    message = f"{what} for {describe(request)}"
    phase = next((_PHASES[cls] for cls in type(exc).__mro__ if cls in _PHASES), None)
    seconds = (request.extensions.get("timeout") or {}).get(phase)
    if seconds is not None:
        message += f" ({phase} timeout {seconds:g}s)"
    if detail and detail != "timed out":
        # Some backends quote the URL (aiohttp: "Connection timeout to host <url>").
        message += f": {scrub(request, detail)}"
    return message


def _h11_local_error(exc: BaseException) -> bool:
    """Is ``exc`` h11's ``LocalProtocolError``, which httpcore does not always map to httpx's?

    h11 is looked up where httpcore loaded it, not imported here: the exception
    cannot exist before it is.
    """
    h11 = sys.modules.get("h11")
    return h11 is not None and isinstance(exc, h11.LocalProtocolError)


def map_exception(exc: Exception, request: httpx.Request | None = None) -> Exception:
    """Translate an httpx (or socket) failure into the buttress tree.

    The message says what failed for which request (``METHOD url``, redacted),
    then httpx's own words; ``request``, ``__cause__`` (the original) and
    ``__notes__`` are kept. Already-mapped exceptions and exceptions that are
    not about the transport (a user's bug, a ``KeyError`` in a hook) are
    returned unchanged.

    Examples:
        >>> request = httpx.Request("GET", "http://u:pw@a.test/?key=k")
        >>> request.extensions["timeout"] = {"connect": 5.0}
        >>> error = map_exception(httpx.ConnectTimeout("timed out"), request)
        >>> type(error).__name__
        'ConnectTimeoutError'
        >>> print(error)
        timed out connecting for GET http://u:[REDACTED]@a.test/?key=[REDACTED] (connect timeout 5s)
    """
    if isinstance(exc, ClientError):
        return exc
    if request is None and isinstance(exc, httpx.RequestError):
        request = exc._request
    message = _message(exc, request)
    mapped: Exception
    if isinstance(exc, httpx.TimeoutException):
        mapped = _TIMEOUTS.get(type(exc), TimeoutError)(message, request=request)
    elif isinstance(exc, httpx.TooManyRedirects):
        mapped = TooManyRedirectsError(message, request=request)
    elif isinstance(exc, httpx.DecodingError):
        mapped = DecodingError(message, request=request)
    elif isinstance(exc, httpx.InvalidURL):
        mapped = InvalidURLError(message)
    elif isinstance(exc, httpx.UnsupportedProtocol):
        mapped = _joined(ConfigurationError, type(exc))(message)
    elif isinstance(exc, httpx.TransportError | httpx.RequestError):
        mapped = _joined(ConnectionError, type(exc))(message, request=request)
    elif isinstance(exc, builtins.TimeoutError):
        mapped = TimeoutError(message, request=request)
    elif isinstance(exc, ssl.SSLError | OSError):
        mapped = _joined(ConnectionError, type(exc))(message, request=request)
    elif _h11_local_error(exc):  # httpcore lets h11's own escape (a body shorter than declared)
        mapped = _joined(ConnectionError, httpx.LocalProtocolError)(message, request=request)
    elif isinstance(exc, httpx.StreamError | httpx.CookieConflict):
        # Usage errors (a stream read twice, ...); their __init__ takes no message.
        joined = _joined(ClientError, type(exc))
        mapped = joined.__new__(joined)
        Exception.__init__(mapped, message)
    else:
        return exc
    mapped.__cause__ = exc
    mapped.__traceback__ = exc.__traceback__
    notes = getattr(exc, "__notes__", None)  # e.g. the retry layer's "not retried: ..."
    if notes:
        mapped.__notes__ = list(notes)  # type: ignore[attr-defined]  # PEP 678 (3.10 too)
    return mapped


def describe(request: httpx.Request) -> str:
    """``METHOD url`` with secrets redacted, for messages.

    Examples:
        >>> describe(httpx.Request("GET", "https://a.test/x?token=t0k3n"))
        'GET https://a.test/x?token=[REDACTED]'
    """
    return f"{request.method} {Redactor.for_request(request).url(request.url)}"


def scrub(request: httpx.Request | None, text: str) -> str:
    """``text`` (from a response body, a server, a dependency) without ``request``'s secrets.

    Every value the request's vocabulary knows is replaced wherever it appears:
    its credential headers, secret query values, URL password, and the values
    the client that sent it knows (``buttress._redact.Redactor.for_request``).

    Examples:
        >>> request = httpx.Request("GET", "https://a.test/", headers={"X-API-Key": "k3y-42"})
        >>> scrub(request, "invalid key k3y-42")
        'invalid key [REDACTED]'
    """
    return Redactor.for_request(request).scrub(text, request)


class WebSocketError(ClientError):
    """A WebSocket could not be opened, or was used in a way it cannot be.

    Examples:
        >>> issubclass(WebSocketClosedError, WebSocketError)
        True
    """


class WebSocketUpgradeError(WebSocketError):
    """The server answered the handshake without switching to the WebSocket protocol.

    ``response`` is its answer (status and headers; the body is not read). An
    error status raises the client's usual :class:`~buttress.HTTPError` instead
    (``AuthenticationError`` for a 401, ...), unless ``raise_for_status=False``.

    Examples:
        >>> error = WebSocketUpgradeError("no upgrade", response=httpx.Response(200))
        >>> error.response.status_code
        200
    """

    def __init__(self, message: str, *, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


class WebSocketClosedError(WebSocketError):
    """The session is over: the server closed it, the connection was lost, or you closed it.

    ``code`` and ``reason`` are the close frame's (``ABNORMAL_CLOSURE``, 1006,
    when the connection was lost without one). Iterating a WebSocket ends
    quietly on a normal closure (1000) and raises this for any other.

    Examples:
        >>> error = WebSocketClosedError("closed", code=1012, reason="restarting")
        >>> (error.code, error.reason)
        (1012, 'restarting')
    """

    def __init__(self, message: str, *, code: int, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class MessageTooLargeError(WebSocketError):
    """A message was larger than ``max_message_size``; the session is closed (code 1009).

    ``limit`` is the limit in bytes and ``received`` how much of the message had
    arrived when reading stopped. Reconnecting would only meet the message
    again, so ``reconnect=`` does not.

    Examples:
        >>> error = MessageTooLargeError("too large", limit=1024, received=65536)
        >>> (error.limit, error.received)
        (1024, 65536)
    """

    def __init__(self, message: str, *, limit: int, received: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.received = received
