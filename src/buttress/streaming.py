"""Streaming: server-sent events, downloads to disk, uploads, progress.

Bodies are read with httpx's own ``iter_bytes`` / ``iter_text`` / ``iter_lines``
(and their ``aiter_*`` twins) on a ``client.stream(...)`` response, which keep
memory constant. This module adds what httpx leaves out:

- :func:`iter_sse` / :func:`aiter_sse` (also ``response.iter_sse()``): the
  WHATWG event-stream rules (ids, event names, data over several lines,
  ``retry:``, comments), with a bound on every line and event
  (``max_event_size``, 1 MiB) so a server cannot make the client buffer without
  end; events are :class:`ServerSentEvent` (`httpx-sse`_'s, with a ``json()`` that
  raises buttress's :class:`~buttress.InvalidJSONError`);
- :class:`EventStream`: an SSE consumer that reconnects after a dropped
  connection, resumes with ``Last-Event-ID`` and waits as long as the server's
  ``retry:`` asked (the clock is injected, so tests do not sleep);
- :func:`download` / :func:`adownload` (``client.download(...)``): a body
  written to a file through a temporary file and an atomic rename, so a failed
  download leaves nothing behind;
- :func:`iter_file` / :func:`aiter_file`: a file as a request body, chunk by
  chunk, and :func:`track_upload` for upload progress on any request body
  (bytes, files, generators, multipart).

Progress callbacks receive ``(bytes_done, bytes_total_or_None)``.

.. _httpx-sse: https://github.com/florimondmanca/httpx-sse
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

import anyio
import httpx
import httpx_sse

from ._clock import SYSTEM_CLOCK, Clock
from ._exceptions import (
    ConfigurationError,
    ConnectionError,
    DecodingError,
    InvalidJSONError,
    ResponseTooLargeError,
    ServerError,
    TimeoutError,
    describe,
)

if TYPE_CHECKING:
    from ._client import AsyncClient, Client

__all__ = [
    "MAX_EVENT_SIZE",
    "EventStream",
    "ProgressCallback",
    "ServerSentEvent",
    "adownload",
    "aiter_file",
    "aiter_sse",
    "download",
    "iter_file",
    "iter_sse",
    "track_upload",
]

ProgressCallback: TypeAlias = Callable[[int, "int | None"], object]
"""Called as ``progress(bytes_done, bytes_total_or_None)`` while a body moves."""

CHUNK_SIZE = 64 * 1024

# --- server-sent events -----------------------------------------------------------------------


def _check_event_stream(response: httpx.Response) -> None:
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "text/event-stream":
        raise DecodingError(
            f"expected a text/event-stream response, got {media or 'no content type'!r}",
            request=response._request,
        )


MAX_EVENT_SIZE = 1 << 20
"""The default bound, in bytes, on one line of an event stream and on one event's data."""

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent(httpx_sse.ServerSentEvent):
    """One server-sent event: ``event``, ``data``, ``id``, ``retry`` and :meth:`json`.

    Examples:
        >>> event = ServerSentEvent(event="update", data='{"n": 1}', id="7")
        >>> (event.event, event.id, event.json())
        ('update', '7', {'n': 1})
    """

    def json(self) -> Any:
        """``data`` decoded as JSON.

        Raises:
            InvalidJSONError: ``data`` is not JSON (or nests too deeply, or has
                numbers with thousands of digits); the message names the event,
                its id and shows a snippet around the position.

        Examples:
            >>> try:
            ...     ServerSentEvent(event="update", data="{oops", id="7").json()
            ... except InvalidJSONError as e:
            ...     print(e)  # doctest: +ELLIPSIS
            invalid JSON in server-sent event 'update' (id '7'): Expecting property name ...
        """
        try:
            return json.loads(self.data)
        except json.JSONDecodeError as exc:
            error = exc
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[... nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            error = json.JSONDecodeError(reason, self.data[:100], 0)
        source = f"server-sent event {self.event!r}" + (f" (id {self.id!r})" if self.id else "")
        raise InvalidJSONError(error, source=source) from error


_LONGEST_RECONNECTION = 86_400.0
"""Seconds: a ``retry:`` above a day waits a day, so no server parks a client for ever."""
_RETRY_DIGITS = 18  # a longer retry (beyond any int64) reads as the longest wait


@dataclass
class _Source:
    """What outlives one event, as WHATWG's ``EventSource`` keeps it: the last event id
    (sent as ``Last-Event-ID`` on reconnection) and the reconnection time a ``retry:``
    line set, in milliseconds."""

    last_event_id: str = ""
    retry_ms: int | None = None


class _EventParser:
    """The WHATWG event-stream rules (HTML 9.2.6) on a body's bytes, each line and event bounded.

    Lines end with CRLF, LF or CR (a CR at the end of one chunk and an LF at
    the start of the next are one line break); text is UTF-8 whatever the
    headers say. A line longer than ``limit`` bytes, or an event whose data
    grows past it, raises :class:`ResponseTooLargeError` instead of being held.
    A block with no ``data`` line is not an event, but its ``id`` still becomes
    the last event id; a ``retry:`` line sets ``source.retry_ms`` as it is read,
    even in a block the stream never finishes.
    """

    def __init__(self, response: httpx.Response, limit: int | None, source: _Source) -> None:
        self._request = response._request
        self._limit = limit
        self._source = source
        self._partial = bytearray()  # the line still arriving
        self._after_cr = False  # the last chunk ended with CR: an LF opening the next is its pair
        self._first = True  # a byte order mark may open the stream
        self._event = ""
        self._data: list[str] = []  # one item per data line, so [""] is data, [] is none
        self._data_size = 0
        # Kept from event to event, and from the last connection (so that events a server
        # sends without ids after a reconnection do not lose the place); an empty id resets it.
        self._id = source.last_event_id
        self._retry: int | None = None  # this block's retry, for its event

    def _too_large(self, what: str, size: int) -> ResponseTooLargeError:
        limit = self._limit or 0
        source = f" from {describe(self._request)}" if self._request is not None else ""
        return ResponseTooLargeError(
            f"{what}{source} is longer than max_event_size={limit} bytes ({size} bytes so far); "
            f"raise the limit with iter_sse(response, max_event_size=...) or "
            f"EventStream(..., max_event_size=...)",
            limit=limit,
            received=size,
        )

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The blocks that ``chunk`` completes."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = chunk.split(b"\n")
        events = []
        for line in lines:
            if self._partial:
                self._check_line(len(self._partial) + len(line))
                line = bytes(self._partial + line)
                self._partial.clear()
            else:
                self._check_line(len(line))
            event = self._line(line)
            if event is not None:
                events.append(event)
        if rest:
            self._check_line(len(self._partial) + len(rest))
            self._partial += rest
        return events

    def _check_line(self, size: int) -> None:
        if self._limit is not None and size > self._limit:
            raise self._too_large("a line of the event stream", size)

    def _line(self, line: bytes) -> ServerSentEvent | None:
        if self._first:
            self._first = False
            line = line.removeprefix(_BOM)
        if not line:
            return self._dispatch()
        if line.startswith(b":"):  # a comment
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data_size += len(value) + 1  # the line break that joins data lines
            if self._limit is not None and self._data_size > self._limit:
                raise self._too_large("an event's data", self._data_size)
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # ASCII digits only; counts at once
            longest = int(_LONGEST_RECONNECTION * 1000)
            milliseconds = int(value) if len(value) <= _RETRY_DIGITS else longest
            self._retry = self._source.retry_ms = milliseconds
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self._source.last_event_id = self._id
        data, self._data, self._data_size = self._data, [], 0
        event_type, self._event = self._event, ""
        retry, self._retry = self._retry, None
        if not data:  # no data line: nothing to dispatch
            return None
        return ServerSentEvent(event=event_type, data="\n".join(data), id=self._id, retry=retry)


def _event_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(f"max_event_size must be a positive int or None, not {limit!r}")
    return limit


def _events(
    response: httpx.Response, max_event_size: int | None, source: _Source
) -> Iterator[ServerSentEvent]:
    parser = _EventParser(response, max_event_size, source)
    for chunk in response.iter_bytes():
        yield from parser.feed(chunk)


async def _aevents(
    response: httpx.Response, max_event_size: int | None, source: _Source
) -> AsyncIterator[ServerSentEvent]:
    parser = _EventParser(response, max_event_size, source)
    async for chunk in response.aiter_bytes():
        for event in parser.feed(chunk):
            yield event


def iter_sse(
    response: httpx.Response, *, max_event_size: int | None = MAX_EVENT_SIZE
) -> Iterator[ServerSentEvent]:
    """The events of a streamed ``text/event-stream`` response, as they arrive.

    Each :class:`ServerSentEvent` has ``event`` (``"message"`` by default),
    ``data`` (lines joined with ``\\n``), ``id`` (the last id seen), ``retry``
    (milliseconds, when the block set it) and ``json()``. Comments are skipped;
    a block without data only updates the id and retry state.

    ``max_event_size`` bounds, in bytes, any one line and the data of any one
    event (``None``: no bound), so a server that never ends a line cannot make
    the client buffer without end.

    Raises:
        DecodingError: the response is not ``text/event-stream``.
        ResponseTooLargeError: a line or an event is longer than ``max_event_size``.

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     with client.stream("GET", "/events", params={"count": 2}) as response:
        ...         [(event.id, event.json()) for event in iter_sse(response)]
        [('1', {'n': 1}), ('2', {'n': 2})]
    """
    _check_event_stream(response)
    return _events(response, _event_limit(max_event_size), _Source())


async def aiter_sse(
    response: httpx.Response, *, max_event_size: int | None = MAX_EVENT_SIZE
) -> AsyncIterator[ServerSentEvent]:
    """The async twin of :func:`iter_sse`.

    Examples:
        >>> from buttress import AsyncClient
        >>> async def ticks(client: AsyncClient) -> list[str]:
        ...     async with client.stream("GET", "/events", params={"count": 2}) as response:
        ...         return [event.data async for event in aiter_sse(response)]
    """
    _check_event_stream(response)
    async for event in _aevents(response, _event_limit(max_event_size), _Source()):
        yield event


_RECONNECTABLE = (ConnectionError, TimeoutError, ServerError)


class _Reconnection:
    """The state an SSE consumer keeps across connections (pure: no I/O, no sleeping)."""

    def __init__(self, last_event_id: str | None, retry: float, max_reconnects: int | None) -> None:
        self.source = _Source(last_event_id or "")  # the parsers of every connection write it
        self._retry = retry
        self.reconnects = 0
        self.delay: float | None = None
        self._max = max_reconnects
        self._failures = 0

    @property
    def last_event_id(self) -> str:
        return self.source.last_event_id

    @property
    def retry(self) -> float:
        """Seconds before reconnecting: the server's latest ``retry:``, else the caller's."""
        milliseconds = self.source.retry_ms
        if milliseconds is None:
            return self._retry
        return min(milliseconds / 1000.0, _LONGEST_RECONNECTION)

    def headers(self, extra: httpx._types.HeaderTypes | None) -> httpx.Headers:
        headers = httpx.Headers(extra)
        headers.setdefault("Accept", "text/event-stream")
        headers.setdefault("Cache-Control", "no-store")
        if self.last_event_id:  # any text but NUL (WHATWG), sent as UTF-8
            headers.update([(b"Last-Event-ID", self.last_event_id.encode())])
        return headers

    def seen(self) -> None:
        """An event came through: the failures in a row start again."""
        self._failures = 0

    @contextmanager
    def connection(self) -> Iterator[None]:
        """Wraps one connection: sets :attr:`delay` to the seconds to wait before the next one,
        or ``None`` when the stream has ended; re-raises a failure past the limit."""
        self.delay = None
        try:
            yield
        except _RECONNECTABLE:
            self._failures += 1
            if self._max is not None and self._failures > self._max:
                raise
            self.reconnects += 1
            self.delay = self.retry

    @staticmethod
    def opened(response: httpx.Response) -> bool:
        """True if events follow; False for a 204, which ends the stream (WHATWG)."""
        if response.status_code == 204:
            return False
        _check_event_stream(response)
        return True


class EventStream:
    """A server-sent event stream that reconnects and resumes where it stopped.

    Iterate it (``for`` with a :class:`~buttress.Client`, ``async for`` with an
    :class:`~buttress.AsyncClient`). When the connection drops, times out or
    gets a 5xx, it waits ``retry`` seconds (the server's latest ``retry:``
    overrides it) and reconnects with ``Last-Event-ID`` set to the last id
    seen, so the server can resume. It stops when the server ends the stream
    cleanly or answers 204 (WHATWG), or after ``max_reconnects`` failures in a
    row without an event in between (the last error is raised). A line or an
    event longer than ``max_event_size`` raises :class:`ResponseTooLargeError`
    (reconnecting would only meet it again).

    Args:
        client: the client to connect with (its full transport stack is used).
        url: the event stream's URL.
        last_event_id: resume after this id on the first connection.
        retry: seconds between reconnections until the server sets ``retry:``.
        max_reconnects: consecutive failures tolerated (``None``: no limit).
        max_event_size: bytes one line or one event's data may hold
            (``None``: no bound); see :func:`iter_sse`.
        clock: what waits between reconnections (inject a FakeClock in tests).
        **kwargs: request arguments for ``client.stream`` (``params``, ``headers``, ...).

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     stream = EventStream(client, "/events", params={"count": 3}, last_event_id="1")
        ...     [event.data for event in stream]
        ['{"n": 2}', '{"n": 3}']
    """

    def __init__(
        self,
        client: Client | AsyncClient,
        url: httpx.URL | str,
        *,
        method: str = "GET",
        last_event_id: str | None = None,
        retry: float = 3.0,
        max_reconnects: int | None = 10,
        max_event_size: int | None = MAX_EVENT_SIZE,
        clock: Clock = SYSTEM_CLOCK,
        **kwargs: Any,
    ) -> None:
        self._client = client
        self._max_event_size = _event_limit(max_event_size)
        self._method, self._url = method, url
        self._headers = kwargs.pop("headers", None)
        self._kwargs = kwargs
        self._clock = clock
        self._state = _Reconnection(last_event_id, retry, max_reconnects)

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event received (sent as ``Last-Event-ID`` on reconnection)."""
        return self._state.last_event_id

    @property
    def retry(self) -> float:
        """Seconds to wait before reconnecting (the server's ``retry:`` once it sent one)."""
        return self._state.retry

    @property
    def reconnects(self) -> int:
        """How many times the stream has reconnected."""
        return self._state.reconnects

    def _connect(self) -> Any:
        """The client's ``stream`` context manager for the next connection (async on an
        ``AsyncClient``)."""
        headers = self._state.headers(self._headers)
        return self._client.stream(self._method, self._url, headers=headers, **self._kwargs)

    def __iter__(self) -> Iterator[ServerSentEvent]:
        if not isinstance(self._client, httpx.Client):  # buttress.Client is one
            raise TypeError("iterate an EventStream on an AsyncClient with 'async for'")
        state = self._state
        while True:
            with state.connection(), self._connect() as response:
                if state.opened(response):
                    for event in _events(response, self._max_event_size, state.source):
                        state.seen()
                        yield event
            if state.delay is None:
                return
            self._clock.sleep(state.delay)

    async def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        if not isinstance(self._client, httpx.AsyncClient):  # buttress.AsyncClient is one
            raise TypeError("iterate an EventStream on a Client with 'for'")
        state = self._state
        while True:
            with state.connection():
                async with self._connect() as response:
                    if state.opened(response):
                        async for event in _aevents(response, self._max_event_size, state.source):
                            state.seen()
                            yield event
            if state.delay is None:
                return
            await self._clock.asleep(state.delay)


# --- downloads --------------------------------------------------------------------------------


def _total(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() and "content-encoding" not in response.headers else None


@contextmanager
def _replacing(target: Path) -> Iterator[tuple[int, Path]]:
    """A temporary file beside ``target`` (descriptor and path), renamed over ``target``
    when the block ends without an error, removed when it raises."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temporary = Path(name)
    try:
        yield fd, temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class _Progress:
    """Calls ``progress(done, total)``: with 0 at once, then after each chunk, the bytes so far."""

    def __init__(self, progress: ProgressCallback | None, total: int | None) -> None:
        self._progress, self._total, self._done = progress, total, 0
        self._report()

    def __call__(self, chunk: bytes) -> None:
        self._done += len(chunk)
        self._report()

    def _report(self) -> None:
        if self._progress is not None:
            self._progress(self._done, self._total)


def download(
    client: Client,
    url: httpx.URL | str,
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
    **kwargs: Any,
) -> Path:
    """Stream ``url`` into the file ``path``; returns the path.

    The body goes to a temporary file in the same directory, renamed over
    ``path`` only once it is complete: a failure (an error status, a dropped
    connection, a truncated body, an exception in ``progress``) leaves no
    partial file. Memory stays at one chunk. ``progress(done, total)`` is called
    with ``done=0`` before the body, then once per chunk written with the bytes
    written so far, so the last call says the file is whole, exactly once
    (``total`` is ``None`` when the size is unknown, or the body is compressed).

    Examples:
        >>> import tempfile, pathlib
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     saved = download(client, "/download", folder / "blob.bin", params={"size": 1000})
        >>> saved.stat().st_size
        1000
    """
    target = Path(path)
    with (
        _replacing(target) as (fd, _),
        os.fdopen(fd, "wb") as file,
        client.stream("GET", url, **kwargs) as response,
    ):
        wrote = _Progress(progress, _total(response))
        for chunk in response.iter_bytes(chunk_size):
            file.write(chunk)
            wrote(chunk)
    return target


async def adownload(
    client: AsyncClient,
    url: httpx.URL | str,
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
    **kwargs: Any,
) -> Path:
    """The async twin of :func:`download` (file writes run in a worker thread).

    Examples:
        >>> from buttress import AsyncClient
        >>> async def fetch(client: AsyncClient) -> int:
        ...     saved = await adownload(client, "/download", "blob.bin", params={"size": 10})
        ...     return saved.stat().st_size
    """
    target = Path(path)
    with _replacing(target) as (fd, temporary):
        os.close(fd)  # reopened for writes from a worker thread
        async with (
            await anyio.open_file(temporary, "wb") as file,
            client.stream("GET", url, **kwargs) as response,
        ):
            wrote = _Progress(progress, _total(response))
            async for chunk in response.aiter_bytes(chunk_size):
                await file.write(chunk)
                wrote(chunk)
    return target


# --- uploads ----------------------------------------------------------------------------------


def iter_file(
    file: str | os.PathLike[str] | IO[bytes], chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """A file as a request body, read one chunk at a time (for ``content=``).

    A path is opened (and closed) here; an open binary file is read from its
    current position and left open.

    Examples:
        >>> import io
        >>> list(iter_file(io.BytesIO(b"abcdef"), chunk_size=4))
        [b'abcd', b'ef']
    """
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as opened:
            yield from iter_file(opened, chunk_size)
        return
    while chunk := file.read(chunk_size):
        yield chunk


async def aiter_file(
    file: str | os.PathLike[str] | IO[bytes], chunk_size: int = CHUNK_SIZE
) -> AsyncIterator[bytes]:
    """The async twin of :func:`iter_file`: reads run in a worker thread.

    Examples:
        >>> import asyncio, io
        >>> async def chunks() -> list[bytes]:
        ...     return [chunk async for chunk in aiter_file(io.BytesIO(b"abc"), chunk_size=2)]
        >>> asyncio.run(chunks())
        [b'ab', b'c']
    """
    if isinstance(file, str | os.PathLike):
        async with await anyio.open_file(file, "rb") as opened:
            while chunk := await opened.read(chunk_size):
                yield chunk
        return
    while chunk := await anyio.to_thread.run_sync(file.read, chunk_size):
        yield chunk


class _CountingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Reports how much of a request body has been handed to the transport."""

    def __init__(
        self,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
        total: int | None,
        progress: ProgressCallback,
    ) -> None:
        self._stream, self._total, self._progress = stream, total, progress

    def __iter__(self) -> Iterator[bytes]:
        if not isinstance(self._stream, httpx.SyncByteStream):
            raise TypeError("this request body is async-only: send it with an AsyncClient")
        sent = _Progress(self._progress, self._total)
        for chunk in self._stream:
            yield chunk
            sent(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not isinstance(self._stream, httpx.AsyncByteStream):
            raise TypeError("this request body is sync-only: send it with a Client")
        sent = _Progress(self._progress, self._total)
        async for chunk in self._stream:
            yield chunk
            sent(chunk)


def track_upload(request: httpx.Request, progress: ProgressCallback) -> httpx.Request:
    """Call ``progress(sent, total)`` as ``request``'s body goes out; returns ``request``.

    Works for every body httpx builds: bytes, ``data=``, multipart ``files=``
    (streamed from the file objects), generators and :func:`iter_file`.
    ``total`` is the Content-Length, or ``None`` for a chunked body. "Sent"
    means handed to the connection, so the last call can precede the server's
    answer.

    Examples:
        >>> from buttress import Client
        >>> from buttress.testing import DemoServer
        >>> seen = []
        >>> with DemoServer() as server, Client(base_url=server.url) as client:
        ...     request = client.build_request("POST", "/upload", content=b"x" * 100)
        ...     tracked = track_upload(request, lambda done, total: seen.append(done))
        ...     client.send(tracked).json()["size"]
        100
        >>> seen
        [0, 100]
    """
    length = request.headers.get("content-length", "")
    total = int(length) if length.isdigit() else None
    request.stream = _CountingStream(request.stream, total, progress)
    return request
