"""The WebSocket protocol once the handshake is done: httpx-ws sessions with our limits.

Imported only by :mod:`buttress.websocket` when a WebSocket opens, because httpx-ws
and wsproto are the optional ``websockets`` extra. httpx-ws reads the connection in
the background (a thread for ``Client``, a task for ``AsyncClient``), answers pings
and queues messages; this module gives its sessions a wsproto connection that
enforces ``max_message_size`` as the bytes arrive, and says what each of httpx-ws's
errors means for the caller.
"""

from __future__ import annotations

import queue
from collections.abc import Generator
from contextlib import suppress
from typing import TYPE_CHECKING, TypeVar

import anyio
import httpx
import httpx_ws
import wsproto
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

__all__ = [
    "SizeLimitedConnection",
    "discard_unread",
    "ended",
    "message_data",
    "open_async",
    "open_sync",
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


class SizeLimitedConnection(wsproto.connection.Connection):
    """A client-side wsproto connection that refuses a message past ``limit`` bytes.

    wsproto hands a message over in pieces as its bytes arrive, so the count stops
    the message at the limit (plus one read) instead of after buffering it whole.
    A message too large becomes a close event (code 1009): httpx-ws then stops
    reading, and the caller learns why from :attr:`too_large`. The close the
    server sent, if any, is kept in :attr:`peer_close`. Once :attr:`discarding`
    is set, no event is handed over (see :func:`discard_unread`).
    """

    def __init__(self, limit: int | None) -> None:
        super().__init__(wsproto.ConnectionType.CLIENT)
        self.limit = limit
        self.too_large: int | None = None
        self.peer_close: CloseConnection | None = None
        self.discarding = False
        self._message_size = 0

    def events(self) -> Generator[Event, None, None]:
        for event in super().events():
            if self.discarding:  # the session is closing: hand over nothing more
                return
            if isinstance(event, CloseConnection):
                self.peer_close = event
            elif isinstance(event, Message) and self.limit is not None:
                data = event.data
                self._message_size += len(data.encode() if isinstance(data, str) else data)
                if self._message_size > self.limit:
                    self.too_large = self._message_size
                    yield CloseConnection(MESSAGE_TOO_BIG, "message too big")
                    return
                if event.message_finished:
                    self._message_size = 0
            yield event


_Session = TypeVar("_Session", httpx_ws.WebSocketSession, httpx_ws.AsyncWebSocketSession)


def open_sync(response: httpx.Response, settings: _Settings) -> httpx_ws.WebSocketSession:
    """A session on the connection the 101 ``response`` handed over (enter it to start)."""
    return _open(httpx_ws.WebSocketSession, response, settings)


def open_async(response: httpx.Response, settings: _Settings) -> httpx_ws.AsyncWebSocketSession:
    """The async twin of :func:`open_sync`."""
    return _open(httpx_ws.AsyncWebSocketSession, response, settings)


def _open(kind: type[_Session], response: httpx.Response, settings: _Settings) -> _Session:
    session = kind(
        response.extensions["network_stream"],
        max_message_size_bytes=_READ_SIZE,
        queue_size=settings.queue_size,
        keepalive_ping_interval_seconds=settings.keepalive_interval,
        keepalive_ping_timeout_seconds=settings.keepalive_timeout,
        response=response,
    )
    session.connection = SizeLimitedConnection(settings.max_message_size)
    return session


def discard_unread(session: httpx_ws.WebSocketSession) -> None:
    """Let a closed sync session's reading thread end, and wake a thread waiting on it.

    httpx-ws's thread waits for room in a full queue without watching for the
    close, and leaving the session joins that thread: a session left with
    unread messages would hang there. So no event is handed over any more and
    the queue is emptied. A thread of yours still waiting for a message of this
    session (closed by another thread) would wait forever: it gets the error of
    a lost connection instead, and goes on with the session's next connection.
    """
    connection = session.connection
    assert isinstance(connection, SizeLimitedConnection)
    connection.discarding = True
    while True:
        try:
            session.receive(timeout=0)
        except queue.Empty:
            break
        except httpx_ws.HTTPXWSException:
            continue
    waiting: object = getattr(session, "_events", None)  # httpx-ws's queue (not public)
    if isinstance(waiting, queue.Queue):
        with suppress(queue.Full):
            waiting.put_nowait(httpx_ws.WebSocketNetworkError())


def message_data(event: Event) -> str | bytes | None:
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
    has closed: the session is over, for the reason the server gave.
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
    if isinstance(error, httpx_ws.WebSocketDisconnect):
        code, reason = error.code, error.reason
    elif isinstance(error, _CONNECTION_LOST):
        code, reason = ABNORMAL_CLOSURE, ""
    elif isinstance(error, LocalProtocolError):
        close = connection.peer_close
        code, reason = (close.code, close.reason or "") if close else (ABNORMAL_CLOSURE, "")
    else:
        return None
    reason = scrub(request, reason)
    if code == ABNORMAL_CLOSURE:
        text = "the connection was lost (or a keepalive ping went unanswered)"
    else:
        text = f"the server closed it with code {code}" + (f" ({reason})" if reason else "")
    return WebSocketClosedError(f"{where} is closed: {text}", code=code, reason=reason)
