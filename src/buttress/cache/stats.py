"""Cache statistics: counters shared by every transport using one backend."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["CacheStats", "StatsRecorder"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's activity.

    Every cacheable lookup counts once: as a *hit* (answered from storage),
    a *revalidation* (the origin answered 304 to a conditional request) or a
    *miss* (the origin sent a full response, or nothing was stored).
    ``too_large`` counts responses a backend declined to store for their size
    (a Memcached item limit, say).

    Examples:
        >>> stats = CacheStats(hits=3, misses=1, revalidations=0, size=1, evictions=0)
        >>> stats.hit_rate
        0.75
    """

    hits: int
    misses: int
    revalidations: int
    size: int
    evictions: int
    too_large: int = 0

    @property
    def hit_rate(self) -> float:
        """Hits over all lookups (0.0 before the first lookup)."""
        total = self.hits + self.misses + self.revalidations
        return self.hits / total if total else 0.0


class StatsRecorder:
    """Thread-safe counters; the lock is held only for an increment.

    Examples:
        >>> recorder = StatsRecorder()
        >>> recorder.hit()
        >>> recorder.counts()
        (1, 0, 0, 0)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits = self._misses = self._revalidations = self._evictions = 0
        self._too_large = 0

    def hit(self) -> None:
        with self._lock:
            self._hits += 1

    def miss(self) -> None:
        with self._lock:
            self._misses += 1

    def revalidation(self) -> None:
        with self._lock:
            self._revalidations += 1

    def eviction(self, count: int = 1) -> None:
        with self._lock:
            self._evictions += count

    def too_large(self) -> None:
        """A response was not stored: it exceeds what the backend can hold."""
        with self._lock:
            self._too_large += 1

    def too_large_count(self) -> int:
        """How many responses were not stored for their size."""
        with self._lock:
            return self._too_large

    def counts(self) -> tuple[int, int, int, int]:
        """``(hits, misses, revalidations, evictions)``."""
        with self._lock:
            return self._hits, self._misses, self._revalidations, self._evictions

    def reset(self) -> None:
        with self._lock:
            self._hits = self._misses = self._revalidations = self._evictions = 0
            self._too_large = 0
