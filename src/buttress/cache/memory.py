"""The in-memory backend: an LRU bounded by the number of entries."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hishel import Entry, Headers, Request, Response

from .._exceptions import ConfigurationError
from .base import CacheBackend

__all__ = ["MemoryCache"]


@dataclass(slots=True)
class _Stored:
    request: Request
    status_code: int
    headers: Headers
    body: bytes

    def entry(self, id: uuid.UUID) -> Entry:
        return Entry(id, self.request, Response(self.status_code, self.headers, iter((self.body,))))


class MemoryCache(CacheBackend):
    """Entries in this process's memory, at most ``max_size`` of them (the default backend).

    The least recently used entries are evicted first. Thread-safe: a lock
    guards each O(1) dictionary update, never I/O.

    Examples:
        >>> from buttress import CacheConfig, Client, MemoryCache
        >>> config = CacheConfig(backend=MemoryCache(max_size=500))
        >>> config.backend.max_size
        500
    """

    def __init__(self, max_size: int = 1000) -> None:
        if max_size < 1:
            raise ConfigurationError(f"MemoryCache max_size must be at least 1, got {max_size}")
        super().__init__()
        self.max_size = max_size
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, dict[uuid.UUID, _Stored]] = OrderedDict()
        self._where: dict[uuid.UUID, str] = {}

    def __repr__(self) -> str:
        return f"MemoryCache(max_size={self.max_size})"

    def store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        stored = _Stored(request, status, headers, body)
        evicted = 0
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = {}
            else:
                self._buckets.move_to_end(key)
            bucket[id] = stored
            self._where[id] = key
            while len(self._where) > self.max_size:
                oldest_key, oldest = next(iter(self._buckets.items()))
                oldest_id = next(iter(oldest))
                del oldest[oldest_id], self._where[oldest_id]
                if not oldest:
                    del self._buckets[oldest_key]
                evicted += 1
        if evicted:
            self.recorder.eviction(evicted)

    def get_entries(self, key: str) -> list[Entry]:
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return []
            self._buckets.move_to_end(key)
            return [stored.entry(id) for id, stored in bucket.items()]

    def update_headers(self, id: uuid.UUID, headers: Headers) -> None:
        with self._lock:
            key = self._where.get(id)
            if key is not None:
                self._buckets[key][id].headers = headers

    def remove_entry(self, id: uuid.UUID) -> None:
        with self._lock:
            key = self._where.pop(id, None)
            if key is not None:
                bucket = self._buckets[key]
                del bucket[id]
                if not bucket:
                    del self._buckets[key]

    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        with self._lock:
            snapshot = [(id, stored.request) for id, stored in self._items()]
        doomed = [id for id, request in snapshot if predicate(request)]
        for id in doomed:
            self.remove_entry(id)
        return len(doomed)

    def remove_keys(self, prefix: str) -> int:
        with self._lock:
            doomed = [key for key in self._buckets if key.startswith(prefix)]
            removed = 0
            for key in doomed:
                for id in self._buckets.pop(key):
                    del self._where[id]
                    removed += 1
        return removed

    def _items(self) -> list[tuple[uuid.UUID, _Stored]]:
        return [item for bucket in self._buckets.values() for item in bucket.items()]

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._where.clear()

    @property
    def size(self) -> int:
        return len(self._where)
