"""The interface a buttress cache backend implements, on top of hishel's storage.

A backend is a :class:`hishel.BaseStorage` (``get_entries``,
``update_headers``, ``remove_entry``, and ``store`` behind the shared
``create_entry``) plus what invalidation and statistics need:
``remove_where``, ``remove_keys``, ``clear`` and ``size``. The cache layer
reaches storage through the async twins (``aget_entries``, ``astore``...) on an
``AsyncClient``: they run inline for the in-process and local-file backends, and
the shared ones (:class:`~buttress.RedisCache`, :class:`~buttress.MemcachedCache`)
await their network I/O or move it to a worker thread, never blocking the event
loop. :class:`AsyncStorage` adapts any backend to
:class:`hishel.AsyncBaseStorage`, so the backends also serve hishel's own
async integrations.
"""

from __future__ import annotations

import abc
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

from hishel import AsyncBaseStorage, BaseStorage, Entry, Headers, Request, Response

from .._exceptions import ConfigurationError
from .stats import CacheStats, StatsRecorder

__all__ = ["AsyncStorage", "CacheBackend"]

_SALT_SIZES = range(16, 65)
"""Lengths a salt may have, in bytes: it keys BLAKE2b, which takes at most 64."""

_Where = TypeVar("_Where")


class _Recent(Generic[_Where]):
    """Where the ``size`` entries last read or stored live, by id, safe across threads.

    hishel updates and removes an entry by id alone; a backend that files entries
    under their key remembers the latest ones so that it finds them without a scan.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._places: OrderedDict[uuid.UUID, _Where] = OrderedDict()

    def remember(self, id: uuid.UUID, place: _Where) -> None:
        with self._lock:
            self._places[id] = place
            self._places.move_to_end(id)
            if len(self._places) > self._size:
                self._places.popitem(last=False)

    def get(self, id: uuid.UUID) -> _Where | None:
        with self._lock:
            return self._places.get(id)


class CacheBackend(BaseStorage):
    """Base class of buttress cache backends (memory, disk, and custom ones).

    The cache layer decides freshness, and a stale entry is still useful for
    revalidation and ``stale-if-error``: the memory and disk backends never
    expire entries, they only bound their size. The shared ones, whose server
    expires keys, keep an entry until its ``buttress-useful-until`` header (set
    by the cache layer) has passed, plus a window for revalidation.

    Attributes:
        salt: secret bytes (16 to 64) keying the digests in keys, stored
            requests and entry checksums, so that nothing stored reveals the
            credential, query or header behind it. Random unless given.
        recorder: the hit/miss/revalidation/eviction counters.

    Examples:
        >>> from buttress.cache import MemoryCache
        >>> backend = MemoryCache(max_size=10)
        >>> backend.stats().size
        0
    """

    def __init__(self, *, salt: bytes | None = None) -> None:
        super().__init__()
        if salt is not None and len(salt) not in _SALT_SIZES:
            raise ConfigurationError(
                f"a cache salt must be {_SALT_SIZES[0]} to {_SALT_SIZES[-1]} bytes, got {len(salt)}"
            )
        self.salt = salt if salt is not None else os.urandom(_SALT_SIZES[0])
        self.recorder = StatsRecorder()

    @abc.abstractmethod
    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        """Remove every entry whose stored request satisfies ``predicate``; return how many."""

    @abc.abstractmethod
    def remove_keys(self, prefix: str) -> int:
        """Remove every entry stored under a key starting with ``prefix``; return how many.

        The cache layer builds keys as a digest of the URL followed by a digest
        of what identifies the caller, so one call removes a URL for every caller.
        """

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every entry."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """How many entries are stored."""

    def stats(self) -> CacheStats:
        """The counters and the current size."""
        hits, misses, revalidations, evictions = self.recorder.counts()
        return CacheStats(
            hits, misses, revalidations, self.size, evictions, self.recorder.too_large_count()
        )

    def create_entry(
        self, request: Request, response: Response, key: str, **lifetimes: float | None
    ) -> Entry:
        """An entry whose body streams through; it is stored once read to the end.

        hishel's ``ttl=`` and ``tti=`` (``lifetimes``) are not used: freshness
        comes from the response's headers.

        hishel's contract: an entry is visible only after its stream was fully
        read, and one abandoned half-way is never stored. Backends implement
        :meth:`store`.
        """
        id = uuid.uuid4()
        status, headers = response.status_code, response.headers
        chunks: list[bytes] = []

        def saving(body: Iterator[bytes]) -> Iterator[bytes]:
            for chunk in body:
                chunks.append(chunk)
                yield chunk
            self.store(key, id, request, status, headers, b"".join(chunks))

        stream = response.stream if response.stream is not None else iter(())
        if not isinstance(stream, Iterator):
            raise TypeError("an async body is stored through AsyncStorage(backend)")
        return Entry(id, request, Response(status, headers, saving(stream)))

    @abc.abstractmethod
    def store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        """Keep one complete entry under ``key`` (a backend may decline one too large)."""

    # The async twins of the methods the cache layer calls on an AsyncClient. These
    # defaults run inline: right for backends whose work never waits on a network.

    async def aget_entries(self, key: str) -> list[Entry]:
        """:meth:`get_entries`, for the event loop."""
        return self.get_entries(key)

    async def astore(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        """:meth:`store`, for the event loop."""
        self.store(key, id, request, status, headers, body)

    async def aupdate_headers(self, id: uuid.UUID, headers: Headers) -> None:
        """:meth:`update_headers`, for the event loop."""
        self.update_headers(id, headers)

    async def aremove_entry(self, id: uuid.UUID) -> None:
        """:meth:`remove_entry`, for the event loop."""
        self.remove_entry(id)

    async def aremove_keys(self, prefix: str) -> int:
        """:meth:`remove_keys`, for the event loop."""
        return self.remove_keys(prefix)


class AsyncStorage(AsyncBaseStorage):
    """A buttress backend behind hishel's async storage interface.

    Each call goes to the backend's async twin (``aget_entries``...), so a shared
    backend awaits its network I/O instead of blocking the event loop.

    Examples:
        >>> from buttress.cache import MemoryCache
        >>> storage = AsyncStorage(MemoryCache())
        >>> storage.backend.size
        0
    """

    def __init__(self, backend: CacheBackend) -> None:
        super().__init__()
        self.backend = backend

    async def create_entry(
        self, request: Request, response: Response, key: str, **lifetimes: float | None
    ) -> Entry:
        stream = response.stream or iter(())
        if isinstance(stream, AsyncIterator):
            body = b"".join([chunk async for chunk in stream])
        else:
            body = b"".join(stream)
        id = uuid.uuid4()
        await self.backend.astore(key, id, request, response.status_code, response.headers, body)
        return _replaying(
            Entry(id, request, Response(response.status_code, response.headers)), body
        )

    async def get_entries(self, key: str) -> list[Entry]:
        entries = await self.backend.aget_entries(key)
        return [_replaying(entry, _drain(entry)) for entry in entries]

    async def update_headers(self, id: uuid.UUID, headers: Headers) -> None:
        await self.backend.aupdate_headers(id, headers)

    async def remove_entry(self, id: uuid.UUID) -> None:
        await self.backend.aremove_entry(id)

    async def close(self) -> None:
        self.backend.close()


def _drain(entry: Entry) -> bytes:
    stream = entry.response.stream
    return b"".join(stream) if isinstance(stream, Iterator) else b""


def _replaying(entry: Entry, body: bytes) -> Entry:
    """``entry`` with an async stream that yields ``body``."""

    async def replay() -> AsyncIterator[bytes]:
        yield body

    response = Response(entry.response.status_code, entry.response.headers, replay())
    return Entry(entry.id, entry.request, response)
