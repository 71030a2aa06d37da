"""WebSockets on the client's own transport stack: ``client.websocket(url)``.

The opening handshake is an ordinary ``GET`` sent with ``client.stream``, so it
has what every request of the client has: the base URL, default headers, auth,
cookies, TLS settings and proxies, and every layer of the stack (a request id
and ``traceparent``, one redacted log record, retries of a handshake that
fails, the circuit breaker, the rate limit). The server's ``101 Switching
Protocols`` hands the connection over: httpcore puts it in the response's
``"network_stream"`` extension, which the layers pass up untouched, and
`httpx-ws <https://frankie567.github.io/httpx-ws/>`_ speaks the WebSocket
protocol (RFC 6455) on it. A ``101`` is never read, stored in the cache or
retried, and a handshake is never answered from the cache.

On top of httpx-ws, a session here adds:

- ``max_message_size``: a message larger than this raises
  :class:`MessageTooLargeError` and closes the session (code 1009); it is
  counted as its bytes arrive, never buffered whole.
- ``keepalive_interval`` / ``keepalive_timeout``: a ping every so often; a pong
  that does not come in time ends the session as a lost connection, as does a
  write that the client's write timeout runs out on.
- ``queue_size`` for both kinds of session; messages that arrived before a close
  are delivered before it; a handshake answer the client did not ask for, and a
  server breaking the protocol, fail the session (RFC 6455 4.1, 7.1.7); a close
  code that may not be sent raises :class:`~buttress.ConfigurationError`.
- ``reconnect``: after a lost connection, or a close whose code says the server
  is going away or restarting (:data:`RECONNECT_CODES`), the session opens a
  new connection after the backoff of a :class:`~buttress.RetryConfig` (on the
  client's clock), then calls ``on_reconnect(ws)`` so you can resume
  (subscribe again, ask for what you missed).

Needs the ``websockets`` extra: ``pip install 'buttress[websockets]'``. The
handshake is HTTP/1.1 (RFC 6455); a client with ``http2=True`` that negotiates
HTTP/2 gets :class:`WebSocketUpgradeError`.

Examples:
    >>> from buttress import Client, RetryConfig
    >>> with Client(base_url="https://chat.example.com") as client:
    ...     ws = client.websocket("/rooms/1", reconnect=RetryConfig(max_attempts=5))
    ...     ws.reconnects      # nothing is sent until the ``with`` block opens it
    0
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import inspect
import json
import queue
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Generator, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio
import httpx

from ._calls import awaiting
from ._clock import Clock
from ._exceptions import (
    ClientError,
    ConfigurationError,
    HTTPError,
    InvalidJSONError,
    MessageTooLargeError,
    ReadTimeoutError,
    WebSocketClosedError,
    WebSocketError,
    WebSocketUpgradeError,
    describe,
)
from ._flow import Effect, Outcome, Sleep, call
from ._serialize import encode_json
from .policies.outcomes import is_transient
from .policies.retry import Attempt, RetryConfig, RetryPolicy

if TYPE_CHECKING:
    from types import ModuleType

    import httpx_ws
    from typing_extensions import Self

    from ._client import AsyncClient, Client, RequestKwargs
    from ._response import Response
    from ._websocket_protocol import AsyncSession, SyncSession
else:
    from typing import TypedDict as RequestKwargs  # the base, for the TypedDicts below

__all__ = [
    "ABNORMAL_CLOSURE",
    "MAX_MESSAGE_SIZE",
    "MESSAGE_TOO_BIG",
    "NORMAL_CLOSURE",
    "RECONNECT_CODES",
    "AsyncWebSocket",
    "AsyncWebSocketKwargs",
    "MessageTooLargeError",
    "WebSocket",
    "WebSocketClosedError",
    "WebSocketError",
    "WebSocketKwargs",
    "WebSocketUpgradeError",
]

NORMAL_CLOSURE = 1000
"""The close code of a session that ended as planned."""
ABNORMAL_CLOSURE = 1006
"""The close code for a connection lost without a close frame (RFC 6455 7.1.5)."""
MESSAGE_TOO_BIG = 1009
"""The close code sent when a message exceeds ``max_message_size``."""
RECONNECT_CODES = frozenset({1001, ABNORMAL_CLOSURE, 1011, 1012, 1013, 1014})
"""Close codes after which ``reconnect=`` opens a new connection.

1001 going away, 1006 connection lost, 1011 server error, 1012 service
restart, 1013 try again later, 1014 bad gateway. Any other code (1000 normal,
1008 policy violation, ...) ends the session: a new connection would be
refused again, or was not wanted.
"""
MAX_MESSAGE_SIZE = 1024 * 1024
"""The default ``max_message_size``: 1 MiB."""

_ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
# RFC 6455 7.4: the codes a close frame may carry. 1004, 1005, 1006 and 1015 are
# reserved (never sent), the rest of 1000-2999 is for codes registered with IANA (these),
# 3000-3999 for registered libraries and frameworks, 4000-4999 private.
_REGISTERED_CLOSE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011})
_REGISTERED_CLOSE_CODES |= {1012, 1013, 1014}
_MAX_CLOSE_REASON = 123  # bytes: a control frame's payload is at most 125 (RFC 6455 5.5)
_BODY_ARGUMENTS = frozenset({"content", "data", "files", "json"})


# --- options -------------------------------------------------------------------------------


class _WebSocketOptions(RequestKwargs, total=False):
    subprotocols: Collection[str] | None
    reconnect: RetryConfig | bool | None
    keepalive_interval: float | None
    keepalive_timeout: float | None
    max_message_size: int | None
    queue_size: int


class WebSocketKwargs(_WebSocketOptions, total=False):
    """What ``Client.websocket`` takes besides the URL: request arguments and session options.

    Examples:
        >>> from typing_extensions import Unpack
        >>> from buttress import Client
        >>> def open_room(client: Client, **options: Unpack[WebSocketKwargs]) -> WebSocket:
        ...     return client.websocket("/rooms/1", **options)
    """

    on_reconnect: Callable[[WebSocket], object] | None


class AsyncWebSocketKwargs(_WebSocketOptions, total=False):
    """What ``AsyncClient.websocket`` takes; ``on_reconnect`` may be a coroutine function.

    Examples:
        >>> async def rejoin(ws: AsyncWebSocket) -> None:
        ...     await ws.send_json({"join": "room-1"})
        >>> options: AsyncWebSocketKwargs = {"reconnect": True, "on_reconnect": rejoin}
    """

    on_reconnect: Callable[[AsyncWebSocket], object] | None


@dataclass(frozen=True, slots=True)
class _Settings:
    """How a session reads: the message limit, the queue and the keepalive pings."""

    max_message_size: int | None
    queue_size: int
    keepalive_interval: float | None
    keepalive_timeout: float | None


def _protocol() -> ModuleType:
    """The httpx-ws side of a session, or the error naming the extra to install."""
    try:
        from . import _websocket_protocol
    except ImportError as exc:
        raise ConfigurationError(
            f"WebSockets need httpx-ws ({exc}): pip install 'buttress[websockets]'"
        ) from None
    return _websocket_protocol


def _positive(name: str, value: float | None, *, integer: bool = False) -> None:
    kind = (int,) if integer else (int, float)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
        raise ConfigurationError(
            f"{name} must be a positive {'integer' if integer else 'number'} or None, not {value!r}"
        )


def _http_url(url: httpx.URL | str) -> httpx.URL | str:
    """``ws://`` and ``wss://`` as the ``http://`` and ``https://`` URLs the handshake uses."""
    scheme, separator, rest = str(url).partition("://")
    if separator and scheme.lower() in ("ws", "wss"):
        return f"{'https' if scheme.lower() == 'wss' else 'http'}://{rest}"
    return url


def _handshake_headers(subprotocols: list[str] | None) -> tuple[dict[str, str], str]:
    """The opening handshake's headers (RFC 6455 4.1) and the key the server must answer."""
    key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    if subprotocols:
        headers["Sec-WebSocket-Protocol"] = ", ".join(subprotocols)
    return headers, key


def _tokens(response: httpx.Response, name: str) -> set[str]:
    """The comma-separated values of the header ``name`` (every line of it), lowercased."""
    values = ",".join(response.headers.get_list(name)).split(",")
    return {value.strip().lower() for value in values if value.strip()}


def _check_upgrade(response: httpx.Response, key: str, offered: list[str] | None) -> None:
    """Raise unless ``response`` switched to the WebSocket protocol for ``key`` (RFC 6455 4.1:
    the client fails the connection on any answer it did not ask for)."""
    where = describe(response.request)
    if response.status_code != 101:
        raise WebSocketUpgradeError(
            f"{where} did not switch to the WebSocket protocol: the server answered "
            f"{response.status_code} {response.reason_phrase}".rstrip(),
            response=response,
        )
    # RFC 6455 4.2.2: SHA-1 proves a WebSocket server read the key; no secret is involved.
    digest = hashlib.sha1((key + _ACCEPT_GUID).encode("ascii")).digest()
    if response.headers.get("sec-websocket-accept") != base64.b64encode(digest).decode("ascii"):
        raise WebSocketUpgradeError(
            f"{where} answered 101 without accepting the handshake key "
            "(Sec-WebSocket-Accept is missing or wrong): it is not a WebSocket server",
            response=response,
        )
    refusal = _unasked_for(response, offered)
    if refusal is not None:
        raise WebSocketUpgradeError(
            f"{where} answered 101 with {refusal}: the session is not opened (RFC 6455 4.1)",
            response=response,
        )
    if "network_stream" not in response.extensions:
        raise WebSocketUpgradeError(
            f"{where}: the transport did not hand over the connection (WebSockets need "
            "HTTP/1.1 and a network transport that passes httpcore's network_stream on)",
            response=response,
        )


def _unasked_for(response: httpx.Response, offered: list[str] | None) -> str | None:
    """What a 101 answer has that the handshake did not ask for, if anything."""
    if "websocket" not in _tokens(response, "upgrade"):
        return "no 'Upgrade: websocket' header"
    if "upgrade" not in _tokens(response, "connection"):
        return "no 'Connection: Upgrade' header"
    extensions = response.headers.get("sec-websocket-extensions", "").strip()
    if extensions:  # the client asks for no extension
        return f"an extension it was not asked for (Sec-WebSocket-Extensions: {extensions!r})"
    chosen = response.headers.get_list("sec-websocket-protocol")
    if chosen and (len(chosen) > 1 or chosen[0].strip() not in (offered or [])):
        shown = ", ".join(chosen)
        asked = f"offered {', '.join(offered)}" if offered else "offered none"
        return f"a subprotocol it was not offered ({shown!r}; the client {asked})"
    return None


def _check_close(code: int, reason: str) -> None:
    """Raise unless ``code`` and ``reason`` may go in a close frame (RFC 6455 5.5, 7.4)."""
    allowed = isinstance(code, int) and not isinstance(code, bool)
    if not (allowed and (code in _REGISTERED_CLOSE_CODES or 3000 <= code <= 4999)):
        raise ConfigurationError(
            f"close code {code!r} may not be sent (RFC 6455 7.4): use 1000 (normal), a "
            "registered code (1001-1003, 1007-1014), or 3000-4999 (4000-4999 are private); "
            "1005, 1006 and 1015 only report a close, and 1004 and 0-999 are not codes"
        )
    if not isinstance(reason, str) or len(reason.encode("utf-8")) > _MAX_CLOSE_REASON:
        raise ConfigurationError(
            f"a close reason is a str of at most {_MAX_CLOSE_REASON} bytes in UTF-8 "
            "(a control frame holds 125 bytes, the code two of them)"
        )


def _reconnect_config(
    client: Client | AsyncClient, reconnect: RetryConfig | bool | None
) -> RetryConfig | None:
    """``True``: the client's own retry configuration; ``False``/``None``: no reconnection."""
    if isinstance(reconnect, RetryConfig):
        return reconnect
    if reconnect is None or reconnect is False:
        return None
    if reconnect is not True:
        raise ConfigurationError(
            f"reconnect must be a RetryConfig, True or False, not {type(reconnect).__name__}"
        )
    retry = client._config.retry
    if isinstance(retry, RetryConfig):
        return retry
    return RetryConfig() if retry else RetryConfig(max_attempts=1)


class _Reconnection:
    """When a session reconnects and how long it waits first (pure: no I/O, no sleeping).

    ``max_attempts`` counts the connection that was lost as the first attempt,
    as it counts a request's first attempt: ``max_attempts=3`` allows two
    reconnection attempts. The count starts again once a message arrives on
    the new connection, so a server that accepts and drops at once is not
    reconnected to forever.
    """

    def __init__(self, config: RetryConfig | None, clock: Clock) -> None:
        self.config = config
        self._policy = None if config is None else RetryPolicy(config)
        self._clock = clock
        self.reconnects = 0
        self._failures = 0
        self._since = 0.0

    def delay(self, failure: Exception) -> float | None:
        """Seconds to wait before reconnecting after ``failure``; ``None``: give up."""
        config, policy = self.config, self._policy
        if config is None or policy is None or not self._worth_retrying(failure, config):
            return None
        now = self._clock.monotonic()
        if self._failures == 0:
            self._since = now
        self._failures += 1
        attempt = Attempt(self._failures, failure, now, self._clock.time(), self._since, None, True)
        delay = policy.next_delay(attempt)
        retry_after = getattr(failure, "retry_after", None)  # a handshake answered 503/429
        if delay is not None and retry_after is not None and config.respect_retry_after:
            return retry_after if retry_after <= config.retry_after_max else None
        return delay

    def reconnected(self) -> None:
        self.reconnects += 1

    def received(self) -> None:
        self._failures = 0

    @staticmethod
    def _worth_retrying(failure: Exception, config: RetryConfig) -> bool:
        if isinstance(failure, WebSocketClosedError):
            return failure.code in RECONNECT_CODES
        if isinstance(failure, HTTPError):
            return failure.status_code in config.retry_statuses
        return is_transient(failure)


# --- sessions ------------------------------------------------------------------------------

_ClientT = TypeVar("_ClientT", "Client", "AsyncClient")
_Message = TypeVar("_Message", str, bytes)
_T = TypeVar("_T")


@contextmanager
def _until_normal_closure() -> Iterator[None]:
    """Ends a loop over messages when the session closes normally; other closures raise."""
    try:
        yield
    except WebSocketClosedError as closed:
        if closed.code != NORMAL_CLOSURE:
            raise


class _Session(Generic[_ClientT]):
    """What the sync and async sessions share: options, state, and the meaning of errors."""

    def __init__(
        self,
        client: _ClientT,
        url: httpx.URL | str,
        *,
        subprotocols: Collection[str] | None = None,
        reconnect: RetryConfig | bool | None = None,
        on_reconnect: Callable[[Any], object] | None = None,
        keepalive_interval: float | None = 20.0,
        keepalive_timeout: float | None = 20.0,
        max_message_size: int | None = MAX_MESSAGE_SIZE,
        queue_size: int = 16,
        **kwargs: Any,
    ) -> None:
        for name in _BODY_ARGUMENTS.intersection(kwargs):
            raise ConfigurationError(f"a WebSocket handshake has no body: {name}= is not taken")
        client._check_call_names(kwargs)  # the rest are the handshake's request arguments
        _positive("keepalive_interval", keepalive_interval)
        _positive("keepalive_timeout", keepalive_timeout)
        _positive("max_message_size", max_message_size, integer=True)
        if queue_size is None:
            raise ConfigurationError("queue_size must be a positive integer, not None")
        _positive("queue_size", queue_size, integer=True)
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        config = _reconnect_config(client, reconnect)
        if on_reconnect is not None and (config is None or config.max_attempts < 2):
            raise ConfigurationError(
                "on_reconnect is only called when the session reconnects: pass reconnect= "
                "a RetryConfig with max_attempts of 2 or more (reconnect=True takes the "
                "client's retry= configuration)"
            )
        if on_reconnect is not None and not callable(on_reconnect):
            raise ConfigurationError("on_reconnect must be a callable taking the WebSocket")
        self._client: _ClientT = client
        self._url = _http_url(url)
        self._subprotocols = list(subprotocols) if subprotocols else None
        self._headers = kwargs.pop("headers", None)
        self._kwargs = kwargs
        self._settings = _Settings(
            max_message_size, queue_size, keepalive_interval, keepalive_timeout
        )
        self._clock: Clock = client._config.clock
        self._serializer = client._config.json_serializer
        self._reconnection = _Reconnection(config, self._clock)
        self._on_reconnect = on_reconnect
        self._response: Response | None = None
        self._over: WebSocketClosedError | None = None  # why the session ended, once it has
        # messages of a connection that has ended, received before its end and not read
        self._unread: deque[str | bytes] = deque()

    @property
    def response(self) -> Response:
        """The handshake response of the current connection (status 101, the server's headers)."""
        if self._response is None:
            raise WebSocketError("the WebSocket is not open: use it in a 'with' block")
        return self._response

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose from ``subprotocols``, if any."""
        chosen: str | None = self.response.headers.get("sec-websocket-protocol")
        return chosen

    @property
    def reconnects(self) -> int:
        """How many times the session has reconnected."""
        return self._reconnection.reconnects

    def _handshake(self, reconnecting: bool) -> tuple[dict[str, Any], str]:
        """``client.stream`` arguments for one opening handshake, and its key.

        A reconnection's handshake is sent once, past the retry layer: ``reconnect=``
        alone decides how often and when to try again.
        """
        extra, key = _handshake_headers(self._subprotocols)
        headers = httpx.Headers(self._headers)
        headers.update(extra)
        arguments = {**self._kwargs, "headers": headers}
        if reconnecting:
            arguments["retry"] = False
        return arguments, key

    def _next_unread(self) -> str | bytes | None:
        """A message an ended connection received and nobody read yet, if any."""
        try:
            return self._unread.popleft()
        except IndexError:
            return None

    def _check_open(self, connected: bool) -> None:
        """Raise unless the session has a connection to use (``connected``)."""
        if self._over is not None:
            over = self._over
            raise WebSocketClosedError(str(over), code=over.code, reason=over.reason)
        if not connected:
            raise WebSocketError(
                "the WebSocket is not open: use it in a 'with' block "
                "(or a reconnection was interrupted)"
            )

    def _ending(self, exc: Exception, connection: Any) -> WebSocketError:
        """Our error for ``exc``, which ended the session; re-raise it if it did not."""
        error: WebSocketError | None = _protocol().ended(exc, connection, self.response.request)
        if error is None:
            raise exc
        return error

    def _gave_up(self, error: WebSocketError, failure: Exception) -> Exception:
        """The session is over for good: remember why, and say what to raise."""
        if isinstance(error, WebSocketClosedError):
            self._over = error
        else:  # too large: what later calls meet is the close we sent
            self._over = WebSocketClosedError(
                f"the WebSocket {describe(self.response.request)} is closed: a message was "
                f"larger than max_message_size (code {MESSAGE_TOO_BIG})",
                code=MESSAGE_TOO_BIG,
                reason="message too big",
            )
        return failure

    def _closed_by_caller(self, code: int, reason: str) -> None:
        _check_close(code, reason)
        self._unread.clear()
        if self._over is None and self._response is not None:
            self._over = WebSocketClosedError(
                f"the WebSocket {describe(self._response.request)} is closed: "
                f"you closed it (code {code})",
                code=code,
                reason=reason,
            )

    def _timed_out(self, timeout: float | None) -> ReadTimeoutError:
        return ReadTimeoutError(
            f"no message on the WebSocket {describe(self.response.request)} within "
            f"{timeout}s; the session is still open",
            request=self.response.request,
        )

    def _reconnecting_after(
        self, error: WebSocketError, code: int
    ) -> Generator[Effect, Outcome, None]:
        """Close what ``error`` ended (with ``code``), keeping the messages it received, then
        wait and connect again until a handshake succeeds, or raise what ended the session:
        a flow the client's driver runs, blocking or not."""
        close = partial(self._disconnect, code, "", keep=True)
        connect = partial(self._connect, reconnecting=True)
        yield from call(close, cast(Any, close))
        failure: Exception = error
        while True:
            delay = self._reconnection.delay(failure)
            if delay is None:
                raise self._gave_up(error, failure)
            yield Sleep(delay)
            try:
                yield from call(connect, cast(Any, connect))
            except ClientError as exc:  # the handshake failed: maybe again after a wait
                failure = exc
                continue
            self._reconnection.reconnected()
            return

    def _disconnect(self, code: int, reason: str, keep: bool = False) -> None:
        raise NotImplementedError

    def _connect(self, reconnecting: bool = False) -> None:
        raise NotImplementedError

    def _encode(self, value: Any) -> str:
        return encode_json(value, self._serializer).decode("utf-8")

    def _decode(self, message: str | bytes) -> Any:
        try:
            return json.loads(message.decode() if isinstance(message, bytes) else message)
        except UnicodeDecodeError as exc:
            text = exc.object.decode("utf-8", "replace")
            error = json.JSONDecodeError("the message is not UTF-8", text, exc.start)
        except json.JSONDecodeError as exc:
            error = exc
        request = self.response.request
        source = f"a message on the WebSocket {describe(request)}"
        raise InvalidJSONError(error, request=request, source=source) from None

    @staticmethod
    def _of_kind(message: str | bytes, kind: type[_Message]) -> _Message:
        """``message``, if it is of ``kind`` (``str``: text, ``bytes``: binary)."""
        if not isinstance(message, kind):
            arrived = (
                f"a binary one of {len(message)} bytes"
                if isinstance(message, bytes)
                else f"a text one of {len(message)} characters"
            )
            wanted = "text" if kind is str else "binary"
            raise WebSocketError(
                f"expected a {wanted} message, {arrived} arrived (receive() returns either kind)"
            )
        return message


class WebSocket(_Session["Client"]):
    """A WebSocket session opened through a :class:`~buttress.Client`.

    Make it with ``client.websocket(url, ...)`` and use it in a ``with`` block:
    the handshake is sent on entering, the session is closed on leaving.
    Messages are ``str`` (text) or ``bytes`` (binary). ``url`` may be relative
    to the client's ``base_url``, and ``ws://`` / ``wss://`` are taken for
    ``http://`` / ``https://``.

    Args:
        client: the client whose stack sends the handshake.
        url: the WebSocket's URL.
        subprotocols: offered in ``Sec-WebSocket-Protocol``; the server's choice
            is :attr:`subprotocol`.
        reconnect: a :class:`~buttress.RetryConfig` whose backoff spaces the
            reconnections, ``True`` for the client's retry configuration, or
            ``None``/``False`` (default) to end the session when it drops.
        on_reconnect: called with the WebSocket after each reconnection, before
            any message is received on the new connection (resume here).
        keepalive_interval: seconds between keepalive pings (``None``: none).
        keepalive_timeout: seconds a ping may wait for its pong (``None``: forever).
        max_message_size: bytes a message may hold (``None``: no limit).
        queue_size: messages received but not yet read that the session keeps;
            when full it stops reading the connection until you receive.
        **kwargs: request arguments for the handshake (``headers``, ``params``,
            ``auth``, ``timeout``, ``cookies``, ...).

    Examples:
        >>> from buttress import Client
        >>> def shout(client: Client, text: str) -> str:
        ...     with client.websocket("/echo") as ws:
        ...         ws.send_text(text.upper())
        ...         return ws.receive_text()
    """

    _stack: ExitStack | None = None
    _session: SyncSession | None = None
    _reconnecting: threading.Lock

    def __enter__(self) -> Self:
        self._reconnecting = threading.Lock()
        self._connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str | bytes]:
        """Each message as it arrives, until the session closes normally."""
        with _until_normal_closure():
            while True:
                yield self.receive()

    def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message: ``str`` for text, ``bytes`` for binary.

        Waits ``timeout`` seconds at most (``None``: as long as it takes) and
        then raises :class:`~buttress.ReadTimeoutError`, leaving the session open.
        """
        while True:
            unread = self._next_unread()
            if unread is not None:
                return unread
            session = self._live()
            if self._unread:  # a reconnection ended while we waited: its messages first
                continue
            try:
                event = session.receive(timeout)
            except (queue.Empty, builtins.TimeoutError):  # httpx-ws 0.9, and 0.10 on
                raise self._timed_out(timeout) from None
            except Exception as exc:
                self._recover(self._ending(exc, session.connection), session)
                continue
            message: str | bytes | None = _protocol().message_data(event)
            if message is not None:
                self._reconnection.received()
                return message

    # -- the calls, written once: AsyncWebSocket awaits these same methods, which reach its
    # own receive, send and disconnect through _received, _send and _disconnect

    def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text."""
        return self._received(timeout, lambda message: self._of_kind(message, str))

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary."""
        return self._received(timeout, lambda message: self._of_kind(message, bytes))

    def receive_json(self, timeout: float | None = None) -> Any:
        """The next message (text or binary) as JSON; :class:`~buttress.InvalidJSONError` if not."""
        return self._received(timeout, self._decode)

    def send_text(self, text: str) -> None:
        """Send a text message."""
        return self._send(lambda session: session.send_text(text))

    def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        return self._send(lambda session: session.send_bytes(data))

    def send_json(self, value: Any) -> None:
        """Send ``value`` as JSON in a text message (encoded as the client encodes ``json=``)."""
        text = self._encode(value)
        return self._send(lambda session: session.send_text(text))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the session (leaving its ``with`` block does it). Closing twice is harmless."""
        self._closed_by_caller(code, reason)
        return self._disconnect(code, reason)

    def _received(self, timeout: float | None, then: Callable[[str | bytes], _T]) -> _T:
        return then(self.receive(timeout))

    # -- connecting ---------------------------------------------------------------------

    def _live(self) -> SyncSession:
        """The current connection's session, once a reconnection under way has ended."""
        session = self._session
        if session is None and self._response is not None:
            with self._reconnecting:
                session = self._session
        self._check_open(session is not None)
        assert session is not None
        return session

    def _send(self, action: Callable[[httpx_ws.WebSocketSession], None]) -> None:
        while True:
            session = self._live()
            try:
                action(session)
                return
            except Exception as exc:
                self._recover(self._ending(exc, session.connection), session)

    def _connect(self, reconnecting: bool = False) -> None:
        arguments, key = self._handshake(reconnecting)
        protocol = _protocol()
        with ExitStack() as stack:
            response = stack.enter_context(self._client.stream("GET", self._url, **arguments))
            _check_upgrade(response, key, self._subprotocols)
            session = stack.enter_context(protocol.open_sync(response, self._settings))
            self._stack, self._session, self._response = stack.pop_all(), session, response

    def _disconnect(self, code: int, reason: str, keep: bool = False) -> None:
        """Close the connection; ``keep``: its messages not read yet are delivered later."""
        stack, session = self._stack, self._session
        self._stack = self._session = None
        protocol = _protocol()
        # The connection may be gone already: closing it is then best effort.
        if session is not None:
            protocol.finish_sync(session, code, reason, keep=keep)
        if stack is not None:
            with suppress(Exception):
                stack.close()  # joins httpx-ws's threads
        if session is not None:
            session.drain(keep)  # what the reading thread queued last
            if keep:
                self._unread.extend(session.unread)
            protocol.wake_waiting(session)

    def _recover(self, error: WebSocketError, failed: SyncSession) -> None:
        """Reconnect after ``error`` ended the ``failed`` session, or raise what ended it.

        Of the threads that meet the end of one connection, the first reconnects;
        the others wait for it and go on with the new connection.
        """
        with self._reconnecting:
            if self._session is not failed:
                return  # another thread has reconnected, or the session was closed
            code = _protocol().close_code(failed.connection)
            self._client._run(self._reconnecting_after(error, code))
        if self._on_reconnect is not None:
            self._on_reconnect(self)


@awaiting(  # the same methods, awaited: they reach this session's _received, _send, _disconnect
    WebSocket,
    "receive_text",
    "receive_bytes",
    "receive_json",
    "send_text",
    "send_bytes",
    "send_json",
    "close",
)
class AsyncWebSocket(_Session["AsyncClient"]):
    """A WebSocket session opened through an :class:`~buttress.AsyncClient`.

    The async twin of :class:`WebSocket`: the same arguments, ``async with``,
    ``await ws.receive()``, ``async for message in ws``; ``on_reconnect`` may
    be a coroutine function. The connection is held by a task of the session's
    own, so a ``receive()`` cancelled by your timeout never disturbs it, and
    errors come out as themselves, not in an ``ExceptionGroup``.

    Examples:
        >>> from buttress import AsyncClient
        >>> async def shout(client: AsyncClient, text: str) -> str:
        ...     async with client.websocket("/echo") as ws:
        ...         await ws.send_text(text.upper())
        ...         return await ws.receive_text()
    """

    _group: anyio.abc.TaskGroup | None = None
    _held: _Held | None = None
    _reconnecting: anyio.Lock

    async def __aenter__(self) -> Self:
        self._reconnecting = anyio.Lock()
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        try:
            await self._connect()
        except BaseException:
            await self._end_group()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self.close()
        finally:
            await self._end_group()

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        """Each message as it arrives, until the session closes normally."""
        with _until_normal_closure():
            while True:
                yield await self.receive()

    async def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message (see :meth:`WebSocket.receive`)."""
        while True:
            unread = self._next_unread()
            if unread is not None:
                return unread
            held = await self._live()
            if self._unread:  # a reconnection ended while we waited: its messages first
                continue
            try:
                event = await held.session.receive(timeout)
            except builtins.TimeoutError:
                raise self._timed_out(timeout) from None
            except Exception as exc:
                await self._recover(self._ending(exc, held.session.connection), held)
                continue
            message: str | bytes | None = _protocol().message_data(event)
            if message is not None:
                self._reconnection.received()
                return message

    if TYPE_CHECKING:  # what the methods @awaiting sets above return here

        async def receive_text(self, timeout: float | None = None) -> str: ...
        async def receive_bytes(self, timeout: float | None = None) -> bytes: ...
        async def receive_json(self, timeout: float | None = None) -> Any: ...
        async def send_text(self, text: str) -> None: ...
        async def send_bytes(self, data: bytes) -> None: ...
        async def send_json(self, value: Any) -> None: ...
        async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None: ...

    async def _received(self, timeout: float | None, then: Callable[[str | bytes], _T]) -> _T:
        return then(await self.receive(timeout))

    # -- connecting ---------------------------------------------------------------------

    async def _send(
        self, action: Callable[[httpx_ws.AsyncWebSocketSession], Awaitable[None]]
    ) -> None:
        while True:
            held = await self._live()
            try:
                await action(held.session)
                return
            except Exception as exc:
                await self._recover(self._ending(exc, held.session.connection), held)

    async def _live(self) -> _Held:
        """The current connection, once a reconnection under way has ended."""
        held = self._held
        if held is None and self._response is not None:
            async with self._reconnecting:
                held = self._held
        self._check_open(held is not None)
        assert held is not None
        return held

    async def _connect(self, reconnecting: bool = False) -> None:  # type: ignore[override]
        assert self._group is not None
        held: _Held = await self._group.start(partial(self._hold, reconnecting))
        self._held, self._response = held, held.response

    async def _hold(self, reconnecting: bool, *, task_status: anyio.abc.TaskStatus[_Held]) -> None:
        """Open a connection and keep it (and httpx-ws's tasks) until it is released.

        A failed handshake is raised to the caller of ``_connect``; once the
        connection is handed over, an error while closing it is nobody's to
        handle (the session is over either way), so it is dropped.
        """
        arguments, key = self._handshake(reconnecting)
        protocol = _protocol()
        done = anyio.Event()
        handed_over = False
        try:
            async with AsyncExitStack() as stack:
                stream = self._client.stream("GET", self._url, **arguments)
                response = await stack.enter_async_context(stream)
                _check_upgrade(response, key, self._subprotocols)
                session = protocol.open_async(response, self._settings)
                await stack.enter_async_context(session)
                held = _Held(session, response, anyio.Event(), done)
                task_status.started(held)
                handed_over = True
                await held.release.wait()
        except Exception:
            if not handed_over:
                raise
        finally:
            done.set()

    async def _disconnect(  # type: ignore[override]
        self, code: int, reason: str, keep: bool = False
    ) -> None:
        """Close the connection; ``keep``: its messages not read yet are delivered later."""
        held, self._held = self._held, None
        if held is None:
            return
        with anyio.CancelScope(shield=True):
            # The connection may be gone already: closing it is then best effort.
            unread = await _protocol().finish_async(held.session, code, reason)
            if keep:
                self._unread.extend(unread)
            held.release.set()
            await held.done.wait()

    async def _end_group(self) -> None:
        group, self._group = self._group, None
        if group is not None:
            group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)

    async def _recover(self, error: WebSocketError, failed: _Held) -> None:
        """Reconnect after ``error`` ended the ``failed`` connection, or raise what ended it.

        Of the tasks that meet the end of one connection, the first reconnects;
        the others wait for it and go on with the new connection.
        """
        async with self._reconnecting:
            if self._held is not failed:
                return  # another task has reconnected, or the session was closed
            code = _protocol().close_code(failed.session.connection)
            flow = self._reconnecting_after(error, code)
            await cast("Awaitable[None]", self._client._run(flow))
        if self._on_reconnect is not None:
            result = self._on_reconnect(self)
            if inspect.isawaitable(result):
                await result


@dataclass(frozen=True, slots=True)
class _Held:
    """One connection of an :class:`AsyncWebSocket`, held open by its task until released."""

    session: AsyncSession
    response: Response
    release: anyio.Event
    done: anyio.Event
