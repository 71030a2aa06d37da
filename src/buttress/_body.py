"""A response body passed on chunk by chunk while something watches it, for both clients.

The layers that look at a body as it streams (the guard counts it, the cache
keeps a copy, the pool gate frees its place when it is closed, the facade maps
its errors) subclass :class:`WatchedStream` and write only the hooks; reading
and closing, sync and async, are written here once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TYPE_CHECKING, NoReturn, TypeVar

import httpx

if TYPE_CHECKING:
    import asyncio

__all__ = ["WatchedStream"]

_Stream = TypeVar("_Stream", httpx.SyncByteStream, httpx.AsyncByteStream)


class WatchedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """``stream``'s chunks, each shown to :meth:`_chunk`; errors pass through :meth:`_failure`.

    Subclasses override the hooks they need. Read and close it as the wrapped
    stream is (a sync stream with ``for`` and ``close``, an async one with
    ``async for`` and ``aclose``); the other way raises ``RuntimeError``, as httpx does.

    Examples:
        >>> class Counted(WatchedStream):
        ...     size = 0
        ...     def _chunk(self, data: bytes) -> bytes:
        ...         self.size += len(data)
        ...         return data
        >>> body = Counted(httpx.ByteStream(b"hello"))
        >>> (b"".join(body), body.size)
        (b'hello', 5)
    """

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        self._stream = stream

    def _started(self) -> None:
        """Called before the first chunk is read."""

    def _chunk(self, data: bytes) -> bytes:
        """Called with each chunk; returns what the reader gets."""
        return data

    def _ended(self) -> None:
        """Called once the wrapped stream has ended cleanly."""

    async def _aended(self) -> None:
        """:meth:`_ended`, when the stream is read asynchronously (it may await)."""
        self._ended()

    def _closed(self) -> None:
        """Called when the body is closed, even if closing the wrapped stream failed."""

    def _failure(self, exc: Exception) -> Exception:
        """The exception to raise for ``exc``, met while reading or closing (``exc`` itself)."""
        return exc

    def _raise(self, exc: Exception) -> NoReturn:
        """Raise what :meth:`_failure` makes of ``exc``, met while reading or closing."""
        failure = self._failure(exc)
        if failure is exc:
            raise exc
        raise failure from exc

    def _wrapped(self, protocol: type[_Stream]) -> _Stream:
        """The wrapped stream, which must speak ``protocol`` (as httpx checks of its own)."""
        if isinstance(self._stream, protocol):
            return self._stream
        used, body = (
            ("synchronously", "async")
            if protocol is httpx.SyncByteStream
            else ("asynchronously", "sync")
        )
        raise RuntimeError(f"Attempted to use a {body} response body {used}")

    # try/except written out, not a context manager: this runs for every response body
    # beneath every layer that watches it, and a generator-based one costs more than the
    # watching itself.
    def __iter__(self) -> Iterator[bytes]:
        stream = self._wrapped(httpx.SyncByteStream)
        try:
            self._started()
            for data in stream:
                yield self._chunk(data)
            self._ended()
        except Exception as exc:
            self._raise(exc)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        stream = self._wrapped(httpx.AsyncByteStream)
        try:
            self._started()
            async for data in stream:
                yield self._chunk(data)
            await self._aended()
        except Exception as exc:
            self._raise(exc)

    def close(self) -> None:
        stream = self._wrapped(httpx.SyncByteStream)
        try:
            stream.close()
        except Exception as exc:
            self._raise(exc)
        finally:
            self._closed()

    async def aclose(self) -> None:
        stream = self._wrapped(httpx.AsyncByteStream)
        try:
            if _pooled_by_httpcore(stream):
                await _to_the_end(stream.aclose())
            else:
                await stream.aclose()
        except Exception as exc:
            self._raise(exc)
        finally:
            self._closed()


def _pooled_by_httpcore(stream: httpx.AsyncByteStream) -> bool:
    """Is ``stream`` the body of httpx's own transport, whose close hands back a connection?

    Told by name, not imported: the class is private to httpx. Its close keeps no
    context variable, so it can run as a task of its own (see :func:`_to_the_end`);
    any other body is closed where it is, as httpx closes it.
    """
    kind = type(stream)
    return kind.__name__ == "AsyncResponseStream" and kind.__module__ == "httpx._transports.default"


async def _to_the_end(closing: Awaitable[None]) -> None:
    """Await ``closing`` to its end even when the caller is cancelled meanwhile.

    httpcore hands a pooled connection back only at the end of its close, and
    anyio's shield there does not hold against asyncio's own cancellation
    (``task.cancel()``, ``asyncio.timeout``, ``wait_for``): a caller cancelled at
    that moment would leave the connection in use for good, until the pool runs
    out (encode/httpcore#1093). So the close runs as a task of its own; the
    caller waits for it, then is cancelled as asked. Other event loops (trio)
    shield closes themselves.
    """
    import asyncio  # here: a program without async clients need not load it

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio
        await closing
        return
    task = asyncio.ensure_future(closing)
    task.add_done_callback(_taken)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait((task,))  # cancelled again, it leaves the close running
        raise


def _taken(task: asyncio.Future[None]) -> None:
    # A caller cancelled meanwhile gets its cancellation, not the close's failure; taken
    # here, that failure is not logged by asyncio as never retrieved.
    if not task.cancelled():
        task.exception()
