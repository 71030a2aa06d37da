"""The WebSocket protocol once the handshake is done: httpx-ws sessions with our limits.

Imported only by :mod:`buttress.websocket` when a WebSocket opens, because httpx-ws
and wsproto are the optional ``websockets`` extra. httpx-ws reads the connection in
the background (a thread for ``Client``, a task for ``AsyncClient``), answers pings
and queues messages; this module gives its sessions a wsproto connection that
enforces ``max_message_size`` as the bytes arrive and notices a server breaking the
protocol, a queue of ``queue_size`` for both kinds, writes bounded by the client's
write timeout, a sync close that shuts the socket down, and says what each of
httpx-ws's errors means for the caller.
"""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import anyio
import httpcore
import httpx
import httpx_ws
import wsproto
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Event, Message
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from ._exceptions import (
    MessageTooLargeError,
    WebSocketClosedError,
    WebSocketError,
    describe,
    scrub,
)

if TYPE_CHECKING:
    from .websocket import _Settings

MESSAGE_TOO_BIG = int(CloseReason.MESSAGE_TOO_BIG)  # 1009, sent when a message is too large
ABNORMAL_CLOSURE = int(CloseReason.ABNORMAL_CLOSURE)  # 1006, lost without a close frame
NORMAL_CLOSURE = int(CloseReason.NORMAL_CLOSURE)  # 1000
CLOSE_TIMEOUT = 2.0
"""Seconds a sync close waits for the server's close frame (less if the read timeout is)."""

__all__ = [
    "CLOSE_TIMEOUT",
    "AsyncSession",
    "SizeLimitedConnection",
    "SyncSession",
    "close_code",
    "ended",
    "finish_async",
    "finish_sync",
    "message_data",
    "open_async",
    "open_sync",
    "wake_waiting",
]

_CONNECTION_LOST = (
    httpx_ws.WebSocketNetworkError,
    # the queue of an async session whose reading task has ended is closed
    anyio.EndOfStream,
    anyio.ClosedResourceError,
)

# httpx-ws calls this "max_message_size_bytes", but it is only how much one read asks
# the socket for; the limit on a message is SizeLimitedConnection's.
_READ_SIZE = 64 * 1024
# A sync session whose writes have a timeout reads with one too, this long, and reads
# again: httpcore sets the socket's timeout on each call, and a read without one would
# turn a write under way in another thread back into a blocking write without end.
_READ_POLL = 1.0


class SizeLimitedConnection(wsproto.connection.Connection):
    """A client-side wsproto connection that refuses a message past ``limit`` bytes.

    wsproto hands a message over in pieces as its bytes arrive, so the count stops
    the message at the limit (plus one read) instead of after buffering it whole.
    A message too large becomes a close event (code 1009): httpx-ws then stops
    reading, and the caller learns why from :attr:`too_large`. The close the
    server sent, if any, is kept in :attr:`peer_close` (and :attr:`peer_closed`
    is set). A frame that breaks the protocol (wsproto yields a close event for
    it without a close frame) is kept in :attr:`violation`; nothing but the
    client's close can be sent after it. Once :attr:`discarding` is set, no
    event is handed over (see :func:`finish_sync`). ``stop`` is called when a
    close or a violation arrives, so that the session stops reading.
    """

    def __init__(self, limit: int | None, stop: Callable[[], object] | None = None) -> None:
        super().__init__(wsproto.ConnectionType.CLIENT)
        self.limit = limit
        self.too_large: int | None = None
        self.peer_close: CloseConnection | None = None
        self.peer_closed = threading.Event()
        self.violation: CloseConnection | None = None
        self.write_timed_out: float | None = None
        self.discarding = False
        self._stop = stop
        self._message_size = 0

    def events(self) -> Generator[Event, None, None]:
        for event in super().events():
            if isinstance(event, CloseConnection):
                self._closing(event)
            if self.discarding:  # the session is closing: hand over nothing more
                continue
            if isinstance(event, Message) and self.limit is not None:
                data = event.data
                self._message_size += len(data.encode() if isinstance(data, str) else data)
                if self._message_size > self.limit:
                    self.too_large = self._message_size
                    yield CloseConnection(MESSAGE_TOO_BIG, "message too big")
                    return
                if event.message_finished:
                    self._message_size = 0
            yield event

    def send(self, event: Event) -> bytes:
        if self.violation is not None and not isinstance(event, CloseConnection):
            raise LocalProtocolError(f"the server broke the protocol: {self.violation.reason}")
        return super().send(event)

    def _closing(self, event: CloseConnection) -> None:
        # A close frame moves the state on; a frame wsproto could not parse leaves it.
        if self.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            self.violation = event
        else:
            self.peer_close = event
        self.peer_closed.set()
        if self._stop is not None:
            self._stop()


class _EventQueue(queue.Queue[Any]):
    """httpx-ws's queue of received events, whose ``put`` no longer waits once it is closed.

    httpx-ws's thread waits for room in a full queue without watching for the
    close, and leaving the session joins that thread: once closed, an event that
    finds no room is dropped (nobody is going to read it) instead of waiting.
    """

    closed = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self.not_full:
            while 0 < self.maxsize <= self._qsize() and not self.closed:
                if not block:
                    raise queue.Full
                self.not_full.wait()
            if 0 < self.maxsize <= self._qsize():
                return
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def close(self) -> None:
        with self.not_full:
            self.closed = True
            self.not_full.notify_all()


class _Stream(httpcore.NetworkStream):
    """A sync network stream whose writes time out (ending the connection) and that shuts down.

    A write that times out shuts the socket down, so a write or read waiting in
    another thread ends too, and is raised as httpcore's ``WriteError``: httpx-ws
    then treats the connection as lost. Closing shuts the socket down before
    closing it: httpx-ws's reading thread may be waiting in ``recv``, and closing
    a socket from another thread neither wakes it nor sends the FIN (Linux).
    """

    def __init__(
        self,
        stream: httpcore.NetworkStream,
        write_timeout: float | None,
        connection: SizeLimitedConnection,
        closing: threading.Event,
    ) -> None:
        self._stream = stream
        self._write_timeout = write_timeout
        self._read_timeout = None if write_timeout is None else _READ_POLL
        self._connection = connection
        self._closing = closing

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while True:
            try:
                return self._stream.read(max_bytes, self._read_timeout)
            except httpcore.ReadTimeout:
                if self._closing.is_set():
                    return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._connection.write_timed_out is not None:
            raise httpcore.WriteError("an earlier write timed out")
        try:
            self._stream.write(buffer, self._write_timeout)
        except httpcore.WriteTimeout as exc:
            self._connection.write_timed_out = self._write_timeout
            self.shutdown()
            raise httpcore.WriteError(str(exc)) from exc

    def shutdown(self) -> None:
        sock = self._stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with suppress(OSError):  # the plain socket's: an SSLSocket's would drop its TLS
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self._stream.close()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncStream(httpcore.AsyncNetworkStream):
    """The async twin of :class:`_Stream` (anyio wakes a pending read when the stream closes)."""

    def __init__(
        self,
        stream: httpcore.AsyncNetworkStream,
        write_timeout: float | None,
        connection: SizeLimitedConnection,
    ) -> None:
        self._stream = stream
        self._write_timeout = write_timeout
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._connection.write_timed_out is not None:
            raise httpcore.WriteError("an earlier write timed out")
        try:
            await self._stream.write(buffer, self._write_timeout)
        except httpcore.WriteTimeout as exc:
            self._connection.write_timed_out = self._write_timeout
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _write_timeout(response: httpx.Response) -> float | None:
    """The write timeout the handshake was sent with (the client's, or the call's)."""
    timeouts = response.request.extensions.get("timeout") or {}
    value: float | None = timeouts.get("write")
    return value


def _close_timeout(response: httpx.Response) -> float:
    timeouts = response.request.extensions.get("timeout") or {}
    read: float | None = timeouts.get("read")
    return CLOSE_TIMEOUT if read is None else min(read, CLOSE_TIMEOUT)


def _session_options(settings: _Settings) -> dict[str, Any]:
    """What httpx-ws's sessions, sync and async, are made with."""
    return {
        "max_message_size_bytes": _READ_SIZE,
        "queue_size": settings.queue_size,
        "keepalive_ping_interval_seconds": settings.keepalive_interval,
        "keepalive_ping_timeout_seconds": settings.keepalive_timeout,
    }


class SyncSession(httpx_ws.WebSocketSession):
    """httpx-ws's sync session with our connection, queue and stream (see the module)."""

    def __init__(self, response: httpx.Response, settings: _Settings) -> None:
        stream = response.extensions["network_stream"]
        super().__init__(stream, response=response, **_session_options(settings))
        connection = SizeLimitedConnection(settings.max_message_size, self._should_close.set)
        self.connection = connection
        self.stream = _Stream(self.stream, _write_timeout(response), connection, self._should_close)
        self.queue = self._events = _EventQueue(settings.queue_size)
        self.close_timeout = _close_timeout(response)
        self.unread: list[str | bytes] = []

    def _background_receive(self, max_bytes: int) -> None:
        # a ping answered in a closing state: wsproto refuses it, and the session is over
        with suppress(LocalProtocolError):
            super()._background_receive(max_bytes)

    def _background_keepalive_ping(
        self, interval_seconds: float, timeout_seconds: float | None = None
    ) -> None:
        # a ping that could not be written: the connection is lost, and the reading
        # thread says so (raised here, it would be an uncaught error in a thread)
        with suppress(httpx_ws.WebSocketNetworkError, LocalProtocolError):
            super()._background_keepalive_ping(interval_seconds, timeout_seconds)

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self.queue.close()  # a reading thread waiting for room ends
        super().__exit__(*exc_info)  # type: ignore[no-untyped-call]

    def drain(self, keep: bool) -> None:
        """Take every event queued: messages go to :attr:`unread` if ``keep``, the rest away."""
        while True:
            try:
                event = self.queue.get_nowait()
            except queue.Empty:
                return
            data = message_data(event)
            if keep and data is not None:
                self.unread.append(data)


class AsyncSession(httpx_ws.AsyncWebSocketSession):
    """httpx-ws's async session with our connection and stream, and a queue of ``queue_size``.

    httpx-ws makes its async queue with no room at all, whatever ``queue_size``
    says: its reading task then waits for each message to be received, and
    answers no ping meanwhile.
    """

    def __init__(self, response: httpx.Response, settings: _Settings) -> None:
        stream = response.extensions["network_stream"]
        super().__init__(stream, response=response, **_session_options(settings))
        connection = SizeLimitedConnection(settings.max_message_size, self._should_close.set)
        self.connection = connection
        self.stream = _AsyncStream(self.stream, _write_timeout(response), connection)

    async def _background_receive(self, max_bytes: int) -> None:
        # a ping answered in a closing state: wsproto refuses it, and the session is over
        with suppress(LocalProtocolError):
            await super()._background_receive(max_bytes)

    async def _background_keepalive_ping(
        self, interval_seconds: float, timeout_seconds: float | None = None
    ) -> None:
        # a ping that could not be written: the connection is lost, and the reading
        # task says so; raised here, it would end the session's task group instead
        with suppress(httpx_ws.WebSocketNetworkError):
            await super()._background_keepalive_ping(interval_seconds, timeout_seconds)

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[AsyncSession, None]:
        # httpx-ws's own, with the queue's size given
        Item = Event | httpx_ws.HTTPXWSException
        streams = anyio.create_memory_object_stream[Item](max_buffer_size=self._queue_size)
        self._send_event, self._receive_event = streams
        self._background_task_group = group = anyio.create_task_group()
        async with self._send_event, self._receive_event, group:
            group.start_soon(self._background_receive, self._max_message_size_bytes)
            interval = self._keepalive_ping_interval_seconds
            if interval is not None:
                timeout = self._keepalive_ping_timeout_seconds
                group.start_soon(self._background_keepalive_ping, interval, timeout)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await self.close()

    def drain(self) -> list[str | bytes]:
        """The messages queued and not received yet (taken from the queue)."""
        unread: list[str | bytes] = []
        while True:
            try:
                event = self._receive_event.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return unread
            data = message_data(event)
            if data is not None:
                unread.append(data)


def open_sync(response: httpx.Response, settings: _Settings) -> SyncSession:
    """A session on the connection the 101 ``response`` handed over (enter it to start)."""
    return SyncSession(response, settings)


def open_async(response: httpx.Response, settings: _Settings) -> AsyncSession:
    """The async twin of :func:`open_sync`."""
    return AsyncSession(response, settings)


def finish_sync(session: SyncSession, code: int, reason: str, *, keep: bool) -> None:
    """Close ``session``'s connection (the thread leaving it joins its threads afterwards).

    A healthy connection gets the close frame and, for a while (RFC 6455 7.1.1),
    the server's in reply; then the socket is shut down, so the server sees the
    connection end and httpx-ws's reading thread stops. Messages queued and not
    received are kept (``keep``: :attr:`SyncSession.unread`) or dropped.
    """
    connection = session.connection
    assert isinstance(connection, SizeLimitedConnection)
    if not keep:
        connection.discarding = True
    session.drain(keep)  # room for an event the reading thread is putting
    if connection.state is ConnectionState.OPEN and not session._should_close.is_set():
        with suppress(Exception):
            session.send(CloseConnection(code, reason or None))
        connection.discarding = True
        connection.peer_closed.wait(session.close_timeout)
    with suppress(Exception):
        session.close(code, reason or None)
    session.queue.close()
    session.drain(keep)


def wake_waiting(session: SyncSession) -> None:
    """Wake a thread of yours waiting for a message of ``session``, closed by another.

    It would wait forever: it gets the error of a lost connection instead, and
    goes on with the session's next connection (or learns why it ended).
    """
    with suppress(queue.Full):
        session.queue.put_nowait(httpx_ws.WebSocketNetworkError())


async def finish_async(session: AsyncSession, code: int, reason: str) -> list[str | bytes]:
    """Close ``session``'s connection; the messages queued and not received yet."""
    connection = session.connection
    assert isinstance(connection, SizeLimitedConnection)
    connection.discarding = True
    unread = session.drain()
    with suppress(Exception):
        await session.close(code, reason or None)
    return unread


def close_code(connection: wsproto.connection.Connection) -> int:
    """The code the client closes with once ``connection`` has ended."""
    assert isinstance(connection, SizeLimitedConnection)
    if connection.too_large is not None:
        return MESSAGE_TOO_BIG
    if connection.violation is not None:
        return connection.violation.code
    return NORMAL_CLOSURE


def message_data(event: object) -> str | bytes | None:
    """A text or binary message's content; ``None`` for any other event."""
    if isinstance(event, Message):
        data: str | bytes = event.data
        return data
    return None


def ended(
    error: BaseException, connection: SizeLimitedConnection, request: httpx.Request
) -> WebSocketError | None:
    """Our error for what httpx-ws raised when the session ended; ``None`` if it is not that.

    ``LocalProtocolError`` is wsproto refusing to send on a connection the server
    has closed (or broken the protocol on): the session is over, for that reason.
    """
    where = f"the WebSocket {describe(request)}"
    if connection.too_large is not None:
        limit = connection.limit or 0
        return MessageTooLargeError(
            f"a message on {where} is larger than max_message_size={limit} bytes "
            f"({connection.too_large} bytes arrived before reading stopped); the session "
            f"was closed with code {MESSAGE_TOO_BIG}",
            limit=limit,
            received=connection.too_large,
        )
    if not isinstance(error, (httpx_ws.WebSocketDisconnect, LocalProtocolError, *_CONNECTION_LOST)):
        return None
    code, reason, text = _why(error, connection)
    reason = scrub(request, reason)
    text = text.format(reason=f" ({reason})" if reason else "", code=code)
    return WebSocketClosedError(f"{where} is closed: {text}", code=code, reason=reason)


def _why(error: BaseException, connection: SizeLimitedConnection) -> tuple[int, str, str]:
    """The code, the reason and the message (to format) of a session that ended."""
    if connection.violation is not None:
        violation = connection.violation
        text = (
            "the server broke the WebSocket protocol{reason}; the client closed it with code {code}"
        )
        return violation.code, violation.reason or "", text
    if connection.write_timed_out is not None:
        text = (
            f"the connection was lost: a write did not finish within the write timeout "
            f"({connection.write_timed_out}s), the server is not reading"
        )
        return ABNORMAL_CLOSURE, "", text
    if isinstance(error, httpx_ws.WebSocketDisconnect):
        code, reason = error.code, error.reason or ""
    elif isinstance(error, LocalProtocolError) and connection.peer_close is not None:
        code, reason = connection.peer_close.code, connection.peer_close.reason or ""
    else:
        code, reason = ABNORMAL_CLOSURE, ""
    if code == ABNORMAL_CLOSURE:
        return code, reason, "the connection was lost (or a keepalive ping went unanswered)"
    return code, reason, "the server closed it with code {code}{reason}"
