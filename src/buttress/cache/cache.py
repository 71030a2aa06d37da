"""``Cache``: the handle behind ``client.cache`` (invalidate, clear, statistics)."""

from __future__ import annotations

import fnmatch

import httpx
from hishel import Request

from ._keys import stored_query
from .base import CacheBackend
from .stats import CacheStats

__all__ = ["Cache"]


def _join(base: httpx.URL | None, target: str) -> httpx.URL:
    url = httpx.URL(target)
    if url.is_absolute_url or base is None or not str(base):
        return url
    path = base.raw_path.rstrip(b"/") + b"/" + url.raw_path.lstrip(b"/")
    return base.copy_with(raw_path=path)


class Cache:
    """Manage a cache backend: remove entries, clear it, read its statistics.

    Relative URLs and patterns are resolved against ``base_url``; without one
    they match any host.

    Examples:
        >>> from buttress.cache import Cache, MemoryCache
        >>> cache = Cache(MemoryCache(), base_url="https://api.example.com")
        >>> cache.invalidate("/users/123")
        0
        >>> cache.stats().hit_rate
        0.0
    """

    def __init__(self, backend: CacheBackend, base_url: httpx.URL | str | None = None) -> None:
        self.backend = backend
        self._base = httpx.URL(base_url) if base_url else None

    def __repr__(self) -> str:
        return f"Cache({self.backend!r})"

    def _same_origin(self, target: httpx.URL, stored: httpx.URL) -> bool:
        if not target.is_absolute_url:
            return True
        return (target.scheme, target.host, target.port) == (
            stored.scheme,
            stored.host,
            stored.port,
        )

    def invalidate(self, url_or_path: str | httpx.URL) -> int:
        """Remove the entries for one URL (any query string unless one is given); return how many.

        Examples:
            >>> from buttress.cache import Cache, MemoryCache
            >>> Cache(MemoryCache()).invalidate("https://api.example.com/users/1")
            0
        """
        target = _join(self._base, str(url_or_path))
        query = stored_query(self.backend.salt, target.query.decode()) if target.query else ""

        def matches(request: Request) -> bool:
            stored = httpx.URL(request.url)
            if not self._same_origin(target, stored) or stored.path != target.path:
                return False
            return not query or stored.query.decode() == query

        return self.backend.remove_where(matches)

    def invalidate_pattern(self, pattern: str) -> int:
        """Remove the entries whose path matches a glob such as ``"/users/*"``; return how many.

        Examples:
            >>> from buttress.cache import Cache, MemoryCache
            >>> Cache(MemoryCache()).invalidate_pattern("/users/*")
            0
        """
        target = _join(self._base, pattern)
        glob = target.path

        def matches(request: Request) -> bool:
            stored = httpx.URL(request.url)
            return self._same_origin(target, stored) and fnmatch.fnmatchcase(stored.path, glob)

        return self.backend.remove_where(matches)

    def clear(self) -> None:
        """Remove every entry (statistics are kept)."""
        self.backend.clear()

    def stats(self) -> CacheStats:
        """Hits, misses, revalidations, hit rate, size and evictions."""
        return self.backend.stats()
