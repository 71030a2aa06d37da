"""A local HTTP/1.1 server that misbehaves on purpose, on real sockets on 127.0.0.1.

The demo API (an ASGI app behind uvicorn) can only send well-formed HTTP. The
:class:`FaultServer` writes raw bytes to its sockets, so it can also reset a
connection, stop half-way through a body or answer with garbage: the failures a
client meets on real networks. Every request it reads is recorded, so a test can
check what reached the server (was this POST sent twice?).

What each :class:`Fault` does, and what a buttress client sees:

===========================================  ==============================================
fault                                        on the wire / what the client raises
===========================================  ==============================================
``Fault.ok(json=...)``                       ``200`` with a JSON body (the default answer)
``Fault.respond(status, json=, headers=)``   any status; a JSON error body for >= 400
``Fault.service_unavailable(retry_after=)``  ``503`` with ``Retry-After`` -> ``ServerError``
``Fault.rate_limited(retry_after=, ...)``    ``429`` with ``Retry-After``, ``X-RateLimit-*``
                                             and ``RateLimit``/``RateLimit-Policy``
                                             -> ``RateLimitError``
``Fault.close()``                            closes the connection without answering
                                             -> ``ConnectionError``
``Fault.reset_before_headers()``             TCP reset (``SO_LINGER`` 0) before any byte
                                             -> ``ConnectionError``
``Fault.reset_mid_body(size=)``              headers and half the body, then a TCP reset
                                             -> ``ConnectionError`` while reading the body
``Fault.delay_first_byte(seconds, then=)``   waits, then behaves as ``then``; longer than
                                             the read timeout -> ``ReadTimeoutError``
``Fault.drip(size=, chunk=, interval=)``     the body in ``chunk``-byte pieces, ``interval``
                                             apart (slow but alive, or a read timeout)
``Fault.truncated(declared, sent, hold=)``   ``Content-Length: declared``, ``sent`` bytes,
                                             then close -> ``ConnectionError`` (``hold``:
                                             silence instead -> ``ReadTimeoutError``)
``Fault.broken_chunked(size_line=)``         ``Transfer-Encoding: chunked`` with an invalid
                                             chunk size -> ``ConnectionError``
``Fault.garbage_status()``                   a status line that is not HTTP
                                             -> ``ConnectionError``
``Fault.oversized_headers(size=)``           a header block bigger than any client accepts
                                             -> ``ConnectionError``
``Fault.huge_body(size=)``                   a valid ``200`` with a very large body (none
                                             for ``HEAD``)
``Fault.bad_encoding(coding=, content=)``    ``Content-Encoding: coding`` on a body that is
                                             not in it -> ``DecodingError``
``Fault.drip_headers(interval=)``            the status line and headers one byte every
                                             ``interval`` s (slowloris); a gap longer than
                                             the read timeout -> ``ReadTimeoutError``
``Fault.redirect(location, status=)``        a redirect; to a scheme other than http(s)
                                             -> ``RedirectRefusedError``
``Fault.endless_redirects()``                redirects to a new URL on every request (its
                                             query with ``hop`` counting up)
                                             -> ``TooManyRedirectsError``
``Fault.many_headers(count=)``               10,000 header lines -> ``ConnectionError``
``Fault.body_longer_than_declared(...)``     more body bytes than ``Content-Length``; the
                                             client reads the declared ones only
``Fault.informational_flood(count=)``        10,000 ``103 Early Hints``, then ``200``
``Fault.deeply_nested_json(depth=)``         ``[[[...]]]`` a million levels deep; ``.json()``
                                             -> ``InvalidJSONError``
``Fault.huge_number(digits=)``               a JSON number with a million digits; ``.json()``
                                             -> ``InvalidJSONError``
``any_fault.after(seconds)``                 the same fault, after a pause before its first
                                             byte
refused connections                          ``server.refused_url`` (nothing listens there),
                                             or ``with server.refusing():`` on the server's
                                             own port -> ``ConnectionError``
connections that never complete              ``server.blackhole_url`` (the handshake hangs)
                                             -> ``ConnectTimeoutError``
TLS closed without ``close_notify``          ``FaultServer(ssl_context=...)`` serves every
                                             fault over TLS, and closes without the alert
===========================================  ==============================================

Which fault answers a request, first match wins: the next fault queued for its
path (``enqueue(..., path=)``), the next fault queued for any path
(``enqueue(...)``), the fault routed to its path (``route(path, fault)``), the
server's ``default``.

Delays are real (they exist to trip a client's timeouts) but bounded: no fault
waits longer than ``max_delay``. :meth:`FaultServer.release` ends every wait at
once, now and for the rest of the server's life; :meth:`~FaultServer.release_waiting`
ends only those in progress. ``Fault.delay_first_byte()`` without seconds waits
until released, so a test never has to guess how slow is slow enough. Closing the
server releases too.

Examples:
    >>> import httpx
    >>> with FaultServer() as server:
    ...     server.enqueue(Fault.service_unavailable(retry_after=2))
    ...     first = httpx.get(server.url + "/orders")
    ...     second = httpx.get(server.url + "/orders")
    ...     print(first.status_code, first.headers["retry-after"], second.status_code)
    ...     print([(r.method, r.path) for r in server.requests])
    503 2 200
    [('GET', '/orders'), ('GET', '/orders')]
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode

from ._lifecycle import Serving

__all__ = ["Fault", "FaultServer", "ReceivedRequest"]

FaultKind = Literal[
    "respond",
    "close",
    "reset",
    "reset_mid_body",
    "drip",
    "truncated",
    "broken_chunked",
    "garbage_status",
    "oversized_headers",
    "huge_body",
    "drip_headers",
    "endless_redirects",
    "many_headers",
    "body_longer_than_declared",
    "informational_flood",
]

_MAX_REQUEST_HEAD = 1 << 20  # a client sending more than 1 MiB of headers is itself broken
_PATTERN = bytes(range(256)) * 256  # 64 KiB of recognisable body bytes
_IDLE_TIMEOUT = 30.0  # an idle keep-alive connection is dropped after this long
_HANG_UP_CHECK = 0.05  # how often a pause looks whether the client has hung up (seconds)
_EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"


def _pattern(size: int) -> Iterator[bytes]:
    while size > 0:
        piece = _PATTERN[: min(size, len(_PATTERN))]
        size -= len(piece)
        yield piece


@dataclass(frozen=True)
class Fault:
    """One scripted answer (or failure to answer). Build them with the class methods.

    ``delay`` is waited before the first byte of the answer (``None``: until
    :meth:`FaultServer.release`, bounded by the server's ``max_delay``). ``body``
    is the answer's body (for ``broken_chunked``: the invalid chunk-size line);
    ``size`` a length or a count, as each class method says.

    Examples:
        >>> Fault.rate_limited(retry_after=3).status
        429
        >>> Fault.ok().after(0.5).delay
        0.5
    """

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    delay: float | None = 0.0
    size: int = 0
    sent: int = 0
    chunk: int = 0
    interval: float | None = 0.0
    hold: bool = False

    def after(self, seconds: float | None) -> Fault:
        """This fault, answering only after ``seconds`` (``None``: until released).

        Examples:
            >>> Fault.close().after(0.1).kind
            'close'
        """
        if seconds is not None and seconds < 0:
            raise ValueError("a delay cannot be negative")
        return replace(self, delay=seconds)

    # -- well-formed answers ---------------------------------------------------------------

    @classmethod
    def ok(cls, json: Any = None, *, headers: Mapping[str, str] | None = None) -> Fault:
        """``200`` with ``json`` as the body (default: ``{"ok": true, "method", "path"}``).

        Examples:
            >>> Fault.ok({"id": 1}).body
            b'{"id": 1}'
        """
        return cls.respond(200, json=json, headers=headers)

    @classmethod
    def respond(
        cls,
        code: int,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Fault:
        """Answer ``code`` with a JSON body (default: an ``{"error": {"message"}}`` for >= 400).

        ``content`` sends these exact bytes as the body instead (JSON no encoder
        would write, say); it is still labelled ``application/json`` unless
        ``headers`` name another ``Content-Type``.

        ``Content-Length`` is the body's length, unless ``headers`` give one (or a
        ``Transfer-Encoding``): that one is sent instead, true or not. ``1xx``,
        ``204`` and ``304`` go without body or ``Content-Length``; ``HEAD`` without body.

        Examples:
            >>> Fault.respond(404).status
            404
            >>> Fault.respond(200, content=b"[1,").body
            b'[1,'
        """
        body = content if json is None else _dumps(json)
        pairs = tuple((headers or {}).items())
        return cls("respond", status=code, headers=pairs, body=body)

    @classmethod
    def service_unavailable(cls, retry_after: str | float = 1) -> Fault:
        """``503`` with ``Retry-After`` (seconds, or an HTTP-date given as text).

        Examples:
            >>> dict(Fault.service_unavailable(retry_after=2).headers)["Retry-After"]
            '2'
        """
        return cls.respond(503, headers={"Retry-After": _text(retry_after)})

    @classmethod
    def rate_limited(
        cls, retry_after: float = 1, *, limit: int = 10, window: int = 60, reset: int | None = None
    ) -> Fault:
        """``429`` with ``Retry-After`` and both styles of rate-limit headers.

        Sends ``X-RateLimit-Limit/Remaining/Reset`` and the IETF draft's
        ``RateLimit`` / ``RateLimit-Policy``, with nothing remaining.

        Examples:
            >>> dict(Fault.rate_limited(retry_after=5, limit=100).headers)["X-RateLimit-Limit"]
            '100'
        """
        reset = int(retry_after) if reset is None else reset
        return cls.respond(
            429,
            headers={
                "Retry-After": _text(retry_after),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
                "RateLimit": f'"default";r=0;t={reset}',
                "RateLimit-Policy": f'"default";q={limit};w={window}',
            },
        )

    @classmethod
    def huge_body(cls, size: int = 16 << 20) -> Fault:
        """A valid ``200`` whose body is ``size`` bytes (16 MiB by default; none for ``HEAD``).

        Examples:
            >>> Fault.huge_body(1 << 20).size
            1048576
        """
        return cls("huge_body", size=size)

    @classmethod
    def bad_encoding(cls, coding: str = "gzip", content: bytes | None = None) -> Fault:
        """A ``200`` whose body claims ``Content-Encoding: coding`` but is not in it.

        The body is ``content`` (plain JSON by default): pass bytes in another
        coding to declare one and send the other.

        Examples:
            >>> dict(Fault.bad_encoding().headers)["Content-Encoding"]
            'gzip'
            >>> import zlib
            >>> Fault.bad_encoding("gzip", zlib.compress(b"{}")).body[:1]
            b'x'
        """
        return cls.respond(200, headers={"Content-Encoding": coding}, content=content)

    @classmethod
    def drip(cls, size: int = 64, *, chunk: int = 1, interval: float = 0.01) -> Fault:
        """A valid ``200`` whose ``size``-byte body arrives ``chunk`` bytes every ``interval`` s.

        A ``HEAD`` gets the headers only, at once.

        Examples:
            >>> Fault.drip(10, chunk=2, interval=0.05).interval
            0.05
        """
        return cls("drip", size=size, chunk=max(1, chunk), interval=interval)

    @classmethod
    def delay_first_byte(cls, seconds: float | None = None, then: Fault | None = None) -> Fault:
        """Wait ``seconds`` (``None``: until released) and then answer as ``then`` (``ok()``).

        Examples:
            >>> Fault.delay_first_byte(0.2).delay
            0.2
        """
        return (then or cls.ok()).after(seconds)

    # -- broken answers ----------------------------------------------------------------------

    @classmethod
    def close(cls) -> Fault:
        """Close the connection after reading the request, without a byte of answer.

        Examples:
            >>> Fault.close().kind
            'close'
        """
        return cls("close")

    @classmethod
    def reset_before_headers(cls) -> Fault:
        """Reset the connection (RST, ``SO_LINGER`` 0) before any byte of answer.

        Examples:
            >>> Fault.reset_before_headers().kind
            'reset'
        """
        return cls("reset")

    @classmethod
    def reset_mid_body(cls, size: int = 4096) -> Fault:
        """Send the headers of a ``size``-byte body and half of it, then reset the connection.

        The reset waits (up to the server's ``max_delay``) until the client has
        received that half, so it is not lost in the reset (on Linux; elsewhere the
        reset follows the send at once).

        Examples:
            >>> Fault.reset_mid_body(100).sent
            50
        """
        return cls("reset_mid_body", size=size, sent=size // 2)

    @classmethod
    def truncated(cls, declared: int = 100, sent: int = 50, *, hold: bool = False) -> Fault:
        """Declare ``Content-Length: declared``, send ``sent`` bytes, then close cleanly.

        With ``hold``, the connection stays open and silent instead (until
        released, or ``max_delay``): only the client's read timeout ends the wait.

        Examples:
            >>> Fault.truncated(10, 3).size
            10
        """
        if sent >= declared:
            raise ValueError("a truncated body sends fewer bytes than it declares")
        return cls("truncated", size=declared, sent=sent, hold=hold)

    @classmethod
    def broken_chunked(cls, size_line: bytes = b"zz-not-hex") -> Fault:
        """``Transfer-Encoding: chunked``, one good chunk, then ``size_line`` as the next size.

        The default is not hex; ``b"-1"``, ``b"f" * 40`` (a size no client can
        hold) or ``b"5 5"`` are as invalid.

        Examples:
            >>> Fault.broken_chunked(b"-1").body
            b'-1'
        """
        return cls("broken_chunked", body=size_line)

    @classmethod
    def garbage_status(cls) -> Fault:
        """Answer with a status line that is not HTTP, then close.

        Examples:
            >>> Fault.garbage_status().kind
            'garbage_status'
        """
        return cls("garbage_status")

    @classmethod
    def oversized_headers(cls, size: int = 256 << 10) -> Fault:
        """Send one header whose value is ``size`` bytes (256 KiB: more than clients accept).

        Examples:
            >>> Fault.oversized_headers(1 << 20).size
            1048576
        """
        return cls("oversized_headers", size=size)

    @classmethod
    def drip_headers(cls, interval: float | None = 0.01) -> Fault:
        """A ``200`` whose status line and headers arrive one byte every ``interval`` s.

        A slowloris server: each byte comes in time for a per-read timeout. With
        ``interval`` ``None`` each byte waits until released (or ``max_delay``).

        Examples:
            >>> Fault.drip_headers(0.5).interval
            0.5
        """
        return cls("drip_headers", interval=interval)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Fault:
        """Redirect to ``location``, which may be any text (``ftp://...``, ``javascript:...``).

        Examples:
            >>> dict(Fault.redirect("file:///etc/passwd").headers)["Location"]
            'file:///etc/passwd'
        """
        return cls.respond(status, headers={"Location": location})

    @classmethod
    def endless_redirects(cls, status: int = 302) -> Fault:
        """Redirect each request to its own path with ``hop=<n + 1>``: no URL repeats.

        The rest of the query stays as it was; a ``hop`` missing or not a number counts as 0.

        Examples:
            >>> Fault.endless_redirects().status
            302
        """
        return cls("endless_redirects", status=status)

    @classmethod
    def many_headers(cls, count: int = 10_000) -> Fault:
        """A ``200`` with ``count`` header lines (``X-Header-<n>: <n>``) before its body.

        Examples:
            >>> Fault.many_headers(100).size
            100
        """
        return cls("many_headers", size=count)

    @classmethod
    def body_longer_than_declared(cls, declared: int = 16, sent: int = 64) -> Fault:
        """Declare ``Content-Length: declared`` but send ``sent`` bytes, and keep the connection.

        The bytes past the declared length would be read as the start of the next
        answer by a client that reused the connection.

        Examples:
            >>> Fault.body_longer_than_declared(2, 5).sent
            5
        """
        if sent <= declared:
            raise ValueError("a body longer than declared sends more bytes than it declares")
        return cls("body_longer_than_declared", size=declared, sent=sent)

    @classmethod
    def informational_flood(cls, count: int = 10_000) -> Fault:
        """``count`` interim ``103 Early Hints`` answers, then a ``200`` as ``ok()`` sends it.

        Examples:
            >>> Fault.informational_flood(5).size
            5
        """
        return cls("informational_flood", size=count)

    @classmethod
    def deeply_nested_json(cls, depth: int = 1_000_000) -> Fault:
        """A ``200`` whose JSON body is ``depth`` arrays inside each other (``[[[...]]]``).

        Examples:
            >>> Fault.deeply_nested_json(3).body
            b'[[[]]]'
        """
        return cls.respond(200, content=b"[" * depth + b"]" * depth)

    @classmethod
    def huge_number(cls, digits: int = 1_000_000) -> Fault:
        """A ``200`` whose JSON body is ``{"n": <a number with digits digits>}``.

        Examples:
            >>> Fault.huge_number(3).body
            b'{"n": 999}'
        """
        return cls.respond(200, content=b'{"n": ' + b"9" * digits + b"}")


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _text(value: str | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as the server read it off the wire.

    ``headers`` has lower-case names (the last value wins for repeated names);
    ``connection`` numbers the TCP connection it came on (1 for the first).

    Examples:
        >>> ReceivedRequest("POST", "/orders", "", {"idempotency-key": "k1"}, b"{}", 1).path
        '/orders'
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    connection: int
    fault: Fault | None = field(default=None, compare=False)


class _ClientGone(Exception):
    """The peer closed the connection, or the request could not be read."""


class FaultServer(Serving):
    """A scriptable, misbehaving HTTP/1.1 server on 127.0.0.1 (see the module docs).

    Args:
        default: the answer when nothing is queued or routed (``Fault.ok()``).
        max_delay: no delay, drip interval or hold lasts longer than this (seconds).
        ssl_context: a server-side context to speak HTTPS instead (:attr:`url` then
            starts ``https://``). Every fault works over TLS, and every close is
            made without TLS's ``close_notify`` alert, as a crashed server's is.

    Examples:
        >>> import httpx
        >>> with FaultServer() as server:
        ...     server.route("/broken", Fault.reset_before_headers())
        ...     try:
        ...         httpx.get(server.url + "/broken")
        ...     except httpx.TransportError:
        ...         print("reset")
        ...     print(httpx.get(server.url + "/fine").json())
        reset
        {'ok': True, 'method': 'GET', 'path': '/fine'}
    """

    def __init__(
        self,
        default: Fault | None = None,
        *,
        max_delay: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.default = default or Fault.ok()
        self.max_delay = max_delay
        self.ssl_context = ssl_context
        self.host = "127.0.0.1"
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._released = threading.Event()  # set for good: no more waiting
        self._wake = threading.Event()  # set to end the waits in progress
        self._stopping = threading.Event()
        self._queue: deque[Fault] = deque()
        self._path_queues: dict[str, deque[Fault]] = {}
        self._routes: dict[str, Fault] = {}
        self._requests: list[ReceivedRequest] = []
        self._connections: dict[int, socket.socket] = {}
        self._connection_count = 0
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._port = 0
        self._refused: socket.socket | None = None
        self._blackhole: list[socket.socket] = []
        self._selector: selectors.BaseSelector | None = None
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with an ``ssl_context``)."""
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{self.host}:{self._port}"

    @property
    def refused_url(self) -> str:
        """A URL where connections are refused: the port is held, but nothing listens.

        Examples:
            >>> import httpx
            >>> with FaultServer() as server:
            ...     try:
            ...         httpx.get(server.refused_url)
            ...     except httpx.ConnectError:
            ...         print("refused")
            refused
        """
        with self._lock:
            if self._refused is None:
                self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._refused.bind((self.host, 0))
            port = self._refused.getsockname()[1]
        return f"http://{self.host}:{port}"

    @property
    def blackhole_url(self) -> str:
        """A URL whose TCP handshake never completes, to trip a connect timeout.

        A listener with a full accept queue that never accepts: the kernel drops
        the connection attempts, exactly like a host behind a silent firewall.
        """
        with self._lock:
            if not self._blackhole:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                listener.bind((self.host, 0))
                listener.listen(0)
                filler = socket.create_connection(listener.getsockname(), timeout=1)
                self._blackhole = [listener, filler]
            port = self._blackhole[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    # -- scripting ---------------------------------------------------------------------------

    def enqueue(self, *faults: Fault, path: str | None = None) -> None:
        """Answer the next requests (to ``path``, or to any path) with ``faults``, in order.

        Examples:
            >>> server = FaultServer()
            >>> server.enqueue(Fault.close(), Fault.ok(), path="/a")
        """
        with self._lock:
            queue = self._queue if path is None else self._path_queues.setdefault(path, deque())
            queue.extend(faults)

    def route(self, path: str, fault: Fault) -> None:
        """Answer every request to ``path`` (nothing queued) with ``fault``.

        Examples:
            >>> server = FaultServer()
            >>> server.route("/busy", Fault.service_unavailable())
        """
        with self._lock:
            self._routes[path] = fault

    def release(self) -> None:
        """End every delay now, and make later delays instant (a test is done waiting)."""
        self._released.set()
        self.release_waiting()

    def release_waiting(self) -> None:
        """End the delays of the answers in progress; later answers wait as scripted.

        Examples:
            >>> server = FaultServer()
            >>> server.release_waiting()
        """
        with self._lock:
            woken, self._wake = self._wake, threading.Event()
        woken.set()

    def _choose(self, path: str) -> Fault:
        with self._lock:
            queue = self._path_queues.get(path)
            if queue:
                return queue.popleft()
            if self._queue:
                return self._queue.popleft()
            return self._routes.get(path, self.default)

    # -- what was received -------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request read so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched ``method`` and ``path`` (``None`` matches any).

        Examples:
            >>> FaultServer().count("POST")
            0
        """
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        )

    def clear(self) -> None:
        """Forget the recorded requests (queues and routes stay)."""
        with self._lock:
            self._requests.clear()

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted."""
        with self._lock:
            return self._connection_count

    @property
    def open_connections(self) -> int:
        """How many accepted connections are still open on the server's side."""
        with self._lock:
            return len(self._connections)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the server holds no open connection; ``False`` if it still does.

        Examples:
            >>> with FaultServer() as server:
            ...     server.wait_idle()
            True
        """
        return self.wait_open_connections(0, timeout)

    def wait_open_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until the server holds at most ``count`` open connections; ``False`` if more.

        After a failed call, ``count`` is how many connections the client keeps
        pooled: any more open on the server is a connection the client leaked.

        Examples:
            >>> with FaultServer() as server:
            ...     server.wait_open_connections(1)
            True
        """
        with self._idle:
            return self._idle.wait_for(lambda: len(self._connections) <= count, timeout)

    # -- refusing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Stop listening for the block: new connections to :attr:`url` are refused.

        Connections already open are left alone. The port is bound again on exit.

        Examples:
            >>> import httpx
            >>> with FaultServer() as server, server.refusing():
            ...     try:
            ...         httpx.get(server.url)
            ...     except httpx.ConnectError:
            ...         print("refused")
            refused
        """
        self._close_listener()
        try:
            yield
        finally:
            if not self._stopping.is_set():
                self._listen()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultServer:
        """Start serving on a free port; returns once connections are accepted."""
        self._selector = selectors.DefaultSelector()
        self._wakeup = socket.socketpair()
        self._selector.register(self._wakeup[0], selectors.EVENT_READ, None)
        self._listen()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"fault-server-{self._port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release delays, close every connection, wait for the threads."""
        if self._stopping.is_set() or self._accept_thread is None:
            return
        self._stopping.set()
        self.release()
        assert self._wakeup is not None
        assert self._selector is not None
        with contextlib.suppress(OSError):
            self._wakeup[1].send(b"x")
        self._accept_thread.join(timeout=5)
        self._close_listener()
        with self._lock:
            open_now = list(self._connections.values())
            threads = list(self._threads)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._selector.close()
        for sock in [*self._wakeup, *self._blackhole, *([self._refused] if self._refused else [])]:
            sock.close()

    def __repr__(self) -> str:
        return f"FaultServer(url={self.url!r})"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._port))
        listener.listen(128)
        listener.setblocking(False)
        self._port = listener.getsockname()[1]
        assert self._selector is not None
        with self._lock:
            self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "listener")
        self._poke()

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            assert self._selector is not None
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(listener)
            listener.close()

    def _poke(self) -> None:
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                self._wakeup[1].send(b"x")

    def _accept_loop(self) -> None:
        assert self._selector is not None
        assert self._wakeup is not None
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wakeup[0].recv(4096)
                    continue
                with self._lock:
                    listener = self._listener
                if listener is None or key.fileobj is not listener:
                    continue
                try:
                    sock, _ = listener.accept()
                except OSError:
                    continue
                self._spawn(sock)

    def _spawn(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(_IDLE_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._connection_count += 1
            number = self._connection_count
            self._connections[number] = sock
        thread = threading.Thread(target=self._serve_connection, args=(sock, number), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    # -- one connection ------------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, number: int) -> None:
        buffer = bytearray()
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                with self._lock:  # stop() must shut down the socket in use
                    self._connections[number] = sock
            while not self._stopping.is_set():
                request = self._read_request(sock, buffer, number)
                fault = self._choose(request.path)
                with self._lock:
                    self._requests.append(replace(request, fault=fault))
                if not self._answer(sock, request, fault):
                    break
                if request.headers.get("connection", "").lower() == "close":
                    break
        except (_ClientGone, OSError, ValueError):  # the client left, or sent nonsense
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._idle:
                self._connections.pop(number, None)
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _answer(self, sock: socket.socket, request: ReceivedRequest, fault: Fault) -> bool:
        """Act out ``fault``; ``True`` when the connection can serve another request."""
        with self._lock:
            wake = self._wake  # release_waiting() ends every pause of this answer

        def pause(seconds: float | None) -> None:  # real, bounded, releasable
            if seconds == 0 or self._released.is_set():
                return
            limit = self.max_delay if seconds is None else min(seconds, self.max_delay)
            deadline = time.monotonic() + limit
            # Look for a client that hung up, so a held connection does not outlive it.
            while not wake.wait(min(_HANG_UP_CHECK, max(deadline - time.monotonic(), 0))):
                if time.monotonic() >= deadline:
                    return
                if _hung_up(sock):
                    raise _ClientGone("the client closed the connection during a pause")

        pause(fault.delay)
        kind = fault.kind
        if kind == "reset":
            _reset(sock)
            return False
        if kind == "reset_mid_body":
            sock.sendall(_head(200, fault.headers, fault.size))
            for piece in _pattern(fault.sent):
                sock.sendall(piece)
            _drain(sock, self.max_delay, self._stopping)
            _reset(sock)
            return False
        if kind == "truncated":
            sock.sendall(_head(200, fault.headers, fault.size) + b"x" * fault.sent)
            if fault.hold:
                pause(None)
            else:
                sock.shutdown(socket.SHUT_WR)
            return False
        if kind == "drip":
            sock.sendall(_head(200, fault.headers, fault.size))
            for start in range(0, 0 if request.method == "HEAD" else fault.size, fault.chunk):
                if start:
                    pause(fault.interval)
                sock.sendall(b"x" * min(fault.chunk, fault.size - start))
            return True
        if kind == "huge_body":
            sock.sendall(_head(200, fault.headers, fault.size))
            for piece in _pattern(0 if request.method == "HEAD" else fault.size):
                sock.sendall(piece)
            return True
        if kind == "drip_headers":
            answer = _response(replace(fault, kind="respond"), request)
            end = answer.index(b"\r\n\r\n") + 4
            for index in range(end):
                if index:
                    pause(fault.interval)
                sock.sendall(answer[index : index + 1])
            sock.sendall(answer[end:])
            return True
        answer, serves_on = _at_once(fault, request)
        sock.sendall(answer)
        return serves_on

    # -- reading requests ----------------------------------------------------------------------

    def _read_request(self, sock: socket.socket, buffer: bytearray, number: int) -> ReceivedRequest:
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(buffer) > _MAX_REQUEST_HEAD:
                raise _ClientGone("request head too large")
            _fill(sock, buffer)
            end = buffer.find(b"\r\n\r\n")
        head = bytes(buffer[:end]).decode("latin-1")
        del buffer[: end + 4]
        line, *header_lines = head.split("\r\n")
        try:
            method, target, _version = line.split(" ", 2)
        except ValueError:
            raise _ClientGone(f"bad request line {line[:100]!r}") from None
        headers: dict[str, str] = {}
        for header_line in header_lines:
            name, _, value = header_line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _read_chunked(sock, buffer)
        else:
            body = _read_exactly(sock, buffer, int(headers.get("content-length", "0") or 0))
        path, _, query = target.partition("?")
        return ReceivedRequest(method, path, query, headers, body, number)


def _fill(sock: socket.socket, buffer: bytearray) -> None:
    data = sock.recv(65536)
    if not data:
        raise _ClientGone("peer closed")
    buffer += data


def _read_exactly(sock: socket.socket, buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        _fill(sock, buffer)
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _read_line(sock: socket.socket, buffer: bytearray) -> bytes:
    end = buffer.find(b"\r\n")
    while end < 0:
        _fill(sock, buffer)
        end = buffer.find(b"\r\n")
    line = bytes(buffer[:end])
    del buffer[: end + 2]
    return line


def _read_chunked(sock: socket.socket, buffer: bytearray) -> bytes:
    body = bytearray()
    while True:
        size_line = _read_line(sock, buffer).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise _ClientGone("bad chunk size") from None
        if size == 0:
            while _read_line(sock, buffer):  # trailers, up to the empty line
                pass
            return bytes(body)
        body += _read_exactly(sock, buffer, size)
        _read_line(sock, buffer)


def _head(
    status: int, headers: tuple[tuple[str, str], ...], length: int, *, json_body: bool = False
) -> bytes:
    """The status line and headers; ``Content-Length: length`` unless the caller framed it.

    A ``Content-Length`` (or ``Transfer-Encoding``) in ``headers`` is sent as given,
    never with a second one; none goes with ``1xx``, ``204`` or ``304`` (RFC 9110 8.6).
    """
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    names = {name.lower() for name, _ in headers}
    if json_body and "content-type" not in names:
        lines.append("Content-Type: application/json")
    lines.extend(f"{name}: {value}" for name, value in headers)
    framed = bool(names & {"content-length", "transfer-encoding"})
    if not framed and not (status < 200 or status in (204, 304)):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response(fault: Fault, request: ReceivedRequest) -> bytes:
    """The head and body a ``respond`` fault sends (the head alone for ``HEAD``)."""
    body = fault.body
    if body is None:
        body = _default_body(fault.status, request)
    if fault.status in (204, 304) or fault.status < 200:
        body = b""
    head = _head(fault.status, fault.headers, len(body), json_body=bool(body))
    return head if request.method == "HEAD" else head + body


def _default_body(status: int, request: ReceivedRequest) -> bytes:
    if status >= 400:
        return _dumps({"error": {"message": f"fault server says {status}", "status": status}})
    return _dumps({"ok": True, "method": request.method, "path": request.path})


def _hung_up(sock: socket.socket) -> bool:
    """Has the client closed its side? Plain TCP only: peeking into TLS would eat its records."""
    if isinstance(sock, ssl.SSLSocket):
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:  # nothing to read: still connected
        return False
    except OSError:  # reset by the client
        return True
    finally:
        sock.settimeout(timeout)


def _at_once(fault: Fault, request: ReceivedRequest) -> tuple[bytes, bool]:
    """What a fault sent in one piece writes, and whether the connection serves on after."""
    kind = fault.kind
    if kind == "respond":
        return _response(fault, request), True
    if kind == "close":
        return b"", False
    if kind == "broken_chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        return head + b"5\r\nhello\r\n" + (fault.body or b"") + b"\r\n\r\n", False
    if kind == "garbage_status":
        return b"HTTP/1.1 two-hundred maybe\r\n\x00\xff\xfe garbage \r\n\r\n", False
    if kind == "oversized_headers":
        head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * fault.size + b"\r\n"
        return head + b"Content-Length: 0\r\n\r\n", False
    if kind == "endless_redirects":
        headers = (*fault.headers, ("Location", _next_hop(request)))
        return _response(replace(fault, headers=headers), request), True
    if kind == "many_headers":
        lines = b"".join(b"X-Header-%d: %d\r\n" % (n, n) for n in range(fault.size))
        return b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n", True
    if kind == "body_longer_than_declared":
        return _head(200, fault.headers, fault.size) + b"x" * fault.sent, True
    # informational_flood
    return _EARLY_HINTS * fault.size + _response(replace(fault, kind="respond"), request), True


def _next_hop(request: ReceivedRequest) -> str:
    """The request's path and query with ``hop`` (0 when absent or not a number) plus one."""
    params = parse_qsl(request.query, keep_blank_values=True)
    hops = [index for index, (name, _) in enumerate(params) if name == "hop"]
    try:
        hop = int(params[hops[-1]][1]) + 1 if hops else 1
    except ValueError:
        hop = 1
    if not hops:
        params.append(("hop", ""))
        hops = [len(params) - 1]
    query = [
        ("hop", str(hop)) if index == hops[-1] else (name, value)
        for index, (name, value) in enumerate(params)
        if name != "hop" or index == hops[-1]
    ]
    return f"{request.path}?{urlencode(query, quote_via=quote)}"


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes sent that the peer has not acknowledged yet (Linux); ``None`` where unknown."""
    try:
        import fcntl
        import termios
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (AttributeError, OSError):  # pragma: no cover - no SIOCOUTQ on sockets there
        return None
    return int(struct.unpack("i", queued)[0])


def _drain(sock: socket.socket, limit: float, stopping: threading.Event) -> None:
    """Wait until the peer has received every byte sent (a reset throws away the rest).

    Gives up after ``limit`` seconds (a client that stopped reading), when the server
    stops, and at once where the kernel does not tell.
    """
    deadline = time.monotonic() + limit
    while _unacknowledged(sock) and time.monotonic() < deadline:
        if stopping.wait(0.001):
            return


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN (``SO_LINGER`` on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
