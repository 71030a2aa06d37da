"""The Memcached backend (pymemcache, in the ``memcached`` extra), within Memcached's limits.

Memcached cannot list its keys, so removal works by *generations*: every entry
key starts with the namespace's generation and its URL's generation
(``<namespace>:<generation>:<url generation>:<cache key>``). Removing a URL's
entries (what an unsafe method does, for every caller) increments its URL's
generation; ``clear()``, ``invalidate()`` and ``invalidate_pattern()`` increment
the namespace's. Readers then look under the new numbers, and the orphaned
entries expire on their own. A generation that Memcached lost (evicted, or a
restart) is started again at a random number, never at one used before.

Memcached has no pub/sub either, so this backend has no in-memory tier: a
process-local copy could not hear another process's invalidation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import struct
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from hishel import Entry, Headers, Request

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError
from .._extras import import_extra
from ..stores.health import UNAVAILABLE, OnStoreError, StoreHealth, Unavailable
from ._keys import URL_KEY_LENGTH
from ._shared import LONGEST_EXPIRY, check_window, entry_of, expiry_seconds, pack
from .base import _SALT_SIZES, CacheBackend, _Recent

__all__ = ["MemcachedCache"]

logger = logging.getLogger("buttress.cache")

T = TypeVar("T")

_RECENT = 4096  # ids of entries read lately, and their keys: updating or removing one needs both
_ITEM = struct.Struct(">16sI")  # an entry of a key's value: its id, its length, then its bytes
_EXPIRES = struct.Struct(">d")  # a key's value starts with when it expires (epoch seconds)
_CONTENDED = 3  # attempts at a compare-and-set before a store gives up (a miss, later)


def _pymemcache() -> Any:
    """pymemcache's pooled client class, or a clear error naming the extra."""
    base = import_extra(
        "pymemcache.client.base",
        needed_by="MemcachedCache",
        package="pymemcache",
        extra="memcached",
    )
    return base.PooledClient


def _store_errors() -> tuple[type[BaseException], ...]:
    from pymemcache.exceptions import MemcacheError

    return (MemcacheError, OSError)


# What memcached answers when it refuses one item (SERVER_ERROR ...): a value above its item
# size (-I), or no memory it may take for it (-M). The server is there; the item is not kept.
_REFUSED_ITEMS = (b"object too large for cache", b"out of memory storing object")


def _refused_item(error: BaseException) -> bool:
    from pymemcache.exceptions import MemcacheServerError

    reason = error.args[0] if isinstance(error, MemcacheServerError) and error.args else b""
    reason = reason.encode() if isinstance(reason, str) else reason
    return isinstance(reason, bytes) and reason.strip().startswith(_REFUSED_ITEMS)


def _bucket(data: bytes | None) -> tuple[float, dict[uuid.UUID, bytes]]:
    """When a key's value expires, and its entries (nothing, for a value not ours)."""
    if not data or len(data) < _EXPIRES.size:
        return 0.0, {}
    (expires,), offset, entries = _EXPIRES.unpack_from(data), _EXPIRES.size, {}
    while offset + _ITEM.size <= len(data):
        raw_id, length = _ITEM.unpack_from(data, offset)
        offset += _ITEM.size
        entries[uuid.UUID(bytes=raw_id)] = data[offset : offset + length]
        offset += length
    return expires, entries


def _value(expires: float, entries: dict[uuid.UUID, bytes]) -> bytes:
    parts = [_EXPIRES.pack(expires)]
    for id, data in entries.items():
        parts += [_ITEM.pack(id.bytes, len(data)), data]
    return b"".join(parts)


class MemcachedCache(CacheBackend):
    """Entries in a Memcached server, shared by every process that uses the same ``namespace``.

    Like :class:`RedisCache`: private RFC 9111 entries that expire on the server
    when they stop being useful (fresh, then servable stale, plus
    ``revalidation_window`` for one with a validator), secret-free keys and
    entries, and each caller's entries apart. Within Memcached's limits:

    - an entry larger than ``max_item_size`` (Memcached's item size, 1 MiB unless
      started with ``-I``) is not stored; ``stats().too_large`` counts them, and
      the entries the server itself refuses (``SERVER_ERROR object too large for
      cache`` when ``max_item_size`` is above its ``-I``, or ``out of memory
      storing object``): one refused item leaves the server healthy, and the
      first is logged once as a WARNING on ``buttress.cache``;
    - the size bound is Memcached's own memory limit (``-m``) and its LRU;
      ``size`` is the server's item count, which includes other namespaces;
    - ``invalidate()``, ``invalidate_pattern()`` and ``clear()`` start a new
      generation of the namespace: every entry is orphaned (Memcached cannot
      list keys to find the matching ones), for every process, and they return
      0 (nothing is counted). An unsafe method's own invalidation is per URL.

    When the server is away, lookups are misses and nothing is stored; its
    :class:`~buttress.stores.StoreHealth` logs it once (``health``), or each call
    raises :class:`~buttress.StoreError` with ``on_store_error="raise"``.

    Args:
        server: ``"host:port"``.
        namespace: keeps this fleet's entries apart from others on the server:
            1 to 64 printable ASCII characters without spaces (every key starts
            with it, and Memcached keys are ASCII, at most 250 bytes).
        timeout: seconds each call may take (connect included).
        on_store_error: ``"fallback"`` (a miss) or ``"raise"``.
        recheck: seconds between attempts to reach a server that is away.
        max_item_size: bytes above which an entry is not stored.
        revalidation_window: seconds a stale entry with a validator is kept.
        salt: 16 to 64 secret bytes, the same in every process; read from (or
            written to) the server when not given.
        clock: for tests: what times expiry and the server's health.

    Examples:
        >>> from buttress import CacheConfig, MemcachedCache
        >>> backend = MemcachedCache("127.0.0.1:1", namespace="docs", salt=b"s" * 16)
        >>> backend
        MemcachedCache('127.0.0.1:1', namespace='docs')
        >>> config = CacheConfig(backend=backend)
    """

    def __init__(
        self,
        server: str = "127.0.0.1:11211",
        *,
        namespace: str = "buttress",
        timeout: float = 0.05,
        on_store_error: OnStoreError = "fallback",
        recheck: float = 1.0,
        max_item_size: int = 1_000_000,
        revalidation_window: float = 3600.0,
        salt: bytes | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not isinstance(server, str) or not server.rpartition(":")[2].isdigit():
            raise ConfigurationError(f"server must be 'host:port', not {server!r}")
        if (
            not isinstance(namespace, str)
            or not 0 < len(namespace) <= 64
            or not (namespace.isascii() and namespace.isprintable() and " " not in namespace)
        ):
            raise ConfigurationError(
                "namespace must be 1 to 64 printable ASCII characters without spaces "
                f"(Memcached keys are ASCII), not {namespace!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        if (
            isinstance(max_item_size, bool)
            or not isinstance(max_item_size, int)
            or max_item_size < 1
        ):
            raise ConfigurationError(
                f"max_item_size must be at least 1 byte, not {max_item_size!r}"
            )
        self.server = server
        self.namespace = namespace
        self.timeout = float(timeout)
        self.max_item_size = max_item_size
        self.revalidation_window = check_window(revalidation_window)
        self.clock = clock
        self.health = StoreHealth(
            f"Memcached at {server}", on_store_error=on_store_error, recheck=recheck, clock=clock
        )
        self._client = _pymemcache()(
            server,
            connect_timeout=self.timeout,
            timeout=self.timeout,
            no_delay=True,
            default_noreply=False,
        )
        self._recent: _Recent[str] = _Recent(_RECENT)
        self._told_refused = False
        super().__init__(salt=salt if salt is not None else self._shared_salt())

    def __repr__(self) -> str:
        return f"MemcachedCache({self.server!r}, namespace={self.namespace!r})"

    @property
    def degraded(self) -> bool:
        """Whether the server is away (lookups are misses meanwhile)."""
        return self.health.degraded

    def _run(self, operation: Callable[[Any], T]) -> T | Unavailable:
        """``operation(client)``, or ``UNAVAILABLE`` while the server is away."""
        if not self.health.should_try():
            return UNAVAILABLE
        value: T | Unavailable
        try:
            value = operation(self._client)
        except _store_errors() as exc:
            if not _refused_item(exc):
                self.health.failed(exc)
                return UNAVAILABLE
            self._refused(exc)
            value = UNAVAILABLE
        self.health.succeeded()  # it answered, if only to refuse one item
        return value

    def _refused(self, error: BaseException) -> None:
        """The server refused one item: counted, logged the first time; the server is fine."""
        self.recorder.too_large()
        if self._told_refused:
            return
        self._told_refused = True
        reason = error.args[0] if error.args else error
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
        logger.warning(
            "Memcached at %s refused to store an entry (%s); it is served, not cached. "
            "If entries below max_item_size=%d are refused, start memcached with a larger "
            "-I or lower max_item_size.",
            self.server,
            reason,
            self.max_item_size,
        )

    def _shared_salt(self) -> bytes:
        key, mine = f"{self.namespace}:salt", os.urandom(_SALT_SIZES[0])

        def salt(client: Any) -> Any:
            client.add(key, mine)
            return client.get(key)

        found = self._run(salt)
        if found is UNAVAILABLE or not isinstance(found, bytes) or len(found) not in _SALT_SIZES:
            return mine
        return found

    # -- keys and generations ------------------------------------------------------------------

    def _generations(self, client: Any, key: str, *, start: bool) -> str | None:
        """``<namespace>:<generation>:<url generation>:`` for ``key``; ``None`` if never started.

        ``start`` begins a lost or new generation at a random number (a store does).
        """
        names = [f"{self.namespace}:gen", f"{self.namespace}:url:{key[:URL_KEY_LENGTH]}"]
        found = client.get_many(names)
        if start and len(found) < len(names):
            for name in names:
                if name not in found:
                    client.add(name, str(secrets.randbits(48)))
            found = client.get_many(names)
        if len(found) < len(names):
            return None
        return f"{self.namespace}:{found[names[0]].decode()}:{found[names[1]].decode()}:{key}"

    # -- the backend ---------------------------------------------------------------------------

    def get_entries(self, key: str) -> list[Entry]:
        def reading(client: Any) -> bytes | None:
            name = self._generations(client, key, start=False)
            return None if name is None else client.get(name)

        data = self._run(reading)
        if data is UNAVAILABLE:
            return []
        entries = []
        for id, stored in _bucket(data)[1].items():
            entry = entry_of(self.salt, key, id, stored)
            if entry is not None:
                self._recent.remember(id, key)
                entries.append(entry)
        return entries

    def _change(
        self, key: str, change: Callable[[float, dict[uuid.UUID, bytes]], float | None]
    ) -> None:
        """Apply ``change`` to ``key``'s value by compare-and-set (the new expiry, or no change)."""

        def changing(client: Any) -> None:
            name = self._generations(client, key, start=True)
            assert name is not None
            for _ in range(_CONTENDED):
                data, cas = client.gets(name)
                expires, entries = _bucket(data)
                new_expiry = change(expires, entries)
                if new_expiry is None:
                    return
                value = _value(new_expiry, entries)
                if len(value) > self.max_item_size:
                    self.recorder.too_large()
                    return
                seconds = min(max(1, int(new_expiry - self.clock.time()) + 1), int(LONGEST_EXPIRY))
                if not entries:
                    client.delete(name)
                    return
                if cas is None and client.add(name, value, expire=seconds):
                    return
                if cas is not None and client.cas(name, value, cas, expire=seconds):
                    return

        self._run(changing)

    def store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        expiry = expiry_seconds(headers, self.clock, self.revalidation_window)
        if expiry <= 0:
            return
        data = pack(self.salt, key, request, status, headers, body)
        if len(data) > self.max_item_size:
            self.recorder.too_large()  # never fits: serve it, do not store it
            return
        until = self.clock.time() + expiry

        def adding(expires: float, entries: dict[uuid.UUID, bytes]) -> float:
            entries[id] = data
            return max(expires, until)

        self._recent.remember(id, key)
        self._change(key, adding)

    def update_headers(self, id: uuid.UUID, headers: Headers) -> None:
        key = self._recent.get(id)
        if key is None:
            return  # not read here lately: the entry will be revalidated again
        expiry = expiry_seconds(headers, self.clock, self.revalidation_window)
        until = self.clock.time() + expiry

        def updating(expires: float, entries: dict[uuid.UUID, bytes]) -> float | None:
            entry = entry_of(self.salt, key, id, entries.get(id, b""))
            if entry is None:
                return None
            body = b"".join(entry.response.stream or ())  # type: ignore[arg-type]
            status = entry.response.status_code
            entries[id] = pack(self.salt, key, entry.request, status, headers, body)
            return max(expires, until)

        self._change(key, updating)

    def remove_entry(self, id: uuid.UUID) -> None:
        key = self._recent.get(id)
        if key is None:
            return

        def removing(expires: float, entries: dict[uuid.UUID, bytes]) -> float | None:
            return expires if entries.pop(id, None) is not None else None

        self._change(key, removing)

    def _next_generation(self, name: str) -> None:
        def bumping(client: Any) -> None:
            if client.incr(name, 1) is None:
                client.add(name, str(secrets.randbits(48)))

        self._run(bumping)

    def remove_keys(self, prefix: str) -> int:
        """Orphan the entries under ``prefix`` (a URL's, or all); returns 0: nothing is counted."""
        if len(prefix) >= URL_KEY_LENGTH:
            self._next_generation(f"{self.namespace}:url:{prefix[:URL_KEY_LENGTH]}")
        else:
            self._next_generation(f"{self.namespace}:gen")
        return 0

    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        """Orphan every entry (no key listing to test ``predicate`` on); returns 0."""
        self._next_generation(f"{self.namespace}:gen")
        return 0

    def clear(self) -> None:
        self._next_generation(f"{self.namespace}:gen")

    @property
    def size(self) -> int:
        """The server's item count (every namespace's), or 0 while it is away."""

        def counting(client: Any) -> int:
            return int(client.stats().get(b"curr_items", 0))

        counted = self._run(counting)
        return counted if isinstance(counted, int) else 0

    # -- the event loop: pymemcache blocks, so its calls go to a worker thread -----------------

    async def aget_entries(self, key: str) -> list[Entry]:
        return await anyio.to_thread.run_sync(self.get_entries, key)

    async def astore(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> None:
        await anyio.to_thread.run_sync(partial(self.store, key, id, request, status, headers, body))

    async def aupdate_headers(self, id: uuid.UUID, headers: Headers) -> None:
        await anyio.to_thread.run_sync(self.update_headers, id, headers)

    async def aremove_entry(self, id: uuid.UUID) -> None:
        await anyio.to_thread.run_sync(self.remove_entry, id)

    async def aremove_keys(self, prefix: str) -> int:
        return await anyio.to_thread.run_sync(self.remove_keys, prefix)

    def close(self) -> None:
        """Close the connections to the server."""
        with contextlib.suppress(Exception):
            self._client.close()
