"""The Redis backend: one private cache that every process of a fleet shares.

Layout, all in the store's namespace (one cluster slot):

- ``cache:e:<key>``: a hash of the entries stored under one cache key (a URL and
  a caller; several when the response varies), each field an entry id, each
  value the entry in the disk cache's checksummed format. Its expiry is the
  longest of its entries' (see :mod:`buttress.cache._shared`).
- ``cache:index``: a sorted set of the cache keys, scored by when each expires:
  it bounds the size (the keys closest to expiring go first), lists the keys
  for invalidation, and forgets expired keys as it goes.
- ``cache:salt``: the secret that keys every digest, so that every process
  derives the same keys and nothing stored reveals a credential.
- ``cache:invalidations``: the pub/sub channel on which removals are announced
  to the in-memory tiers of the other processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hishel import Entry, Headers, Request

from .._exceptions import ConfigurationError, StoreError
from .._flow import Step, step_methods
from ..stores.health import UNAVAILABLE
from ._shared import check_window, entry_of, expiry_seconds, milliseconds, pack
from .base import _SALT_SIZES, CacheBackend, _Recent
from .memory import MemoryCache

if TYPE_CHECKING:
    from ..stores.redis import RedisStore

__all__ = ["RedisCache"]

logger = logging.getLogger("buttress.cache")

_RECENT = 4096  # ids of entries read lately, and their keys: updating or removing one needs both

_SALT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return redis.call('GET', KEYS[1])
"""

# KEYS: the entry's hash, the index, the salt. ARGV: id, entry, expiry (ms), time, max_size,
# salt, cache key, hash prefix, channel, message, then the ids of entries it replaces.
_STORE = """
local now = tonumber(ARGV[4])
if now then now = now * 1000 else
  local t = redis.call('TIME'); now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local expiry = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 11, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
local left = redis.call('PTTL', KEYS[1])
if left < expiry then redis.call('PEXPIRE', KEYS[1], expiry); left = expiry end
redis.call('ZADD', KEYS[2], now + left, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local evicted = 0
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if over > 0 then
  local doomed = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #doomed, 2 do
    evicted = evicted + redis.call('HLEN', ARGV[8] .. doomed[i])
    redis.call('DEL', ARGV[8] .. doomed[i])
  end
end
if redis.call('PTTL', KEYS[2]) < left then redis.call('PEXPIRE', KEYS[2], left) end
redis.call('SET', KEYS[3], ARGV[6], 'NX')
if redis.call('PTTL', KEYS[3]) < left then redis.call('PEXPIRE', KEYS[3], left) end
redis.call('PUBLISH', ARGV[9], ARGV[10])
return evicted
"""

# KEYS: the index. ARGV: hash prefix, cache key prefix, channel, message.
_REMOVE_KEYS = """
local removed = 0
local n = #ARGV[2]
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, n) == ARGV[2] then
    removed = removed + redis.call('HLEN', ARGV[1] .. member)
    redis.call('DEL', ARGV[1] .. member)
    redis.call('ZREM', KEYS[1], member)
  end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return removed
"""

# KEYS: the entry's hash. ARGV: id, channel, message.
_REMOVE_ENTRY = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
"""

_SALT_LIFETIME = 30 * 86_400.0  # renewed by every store for as long as an entry lives

Operation = Callable[[Any], Any]


class RedisCache(CacheBackend):
    """Entries in Redis, shared by every process that uses the same store and namespace.

    Each entry expires on the server when it stops being useful: when it is no
    longer fresh nor servable stale (``stale-while-revalidate``,
    ``stale-if-error``, and ``CacheConfig.stale_if_error``), plus
    ``revalidation_window`` for one with a validator (``ETag``,
    ``Last-Modified``), which a ``304`` can still refresh. At most ``max_size``
    cache keys (one per URL and caller) are kept; past that the keys closest to
    expiring are removed first. Keys, stored requests and entries hold keyed
    digests, never a credential or a query value, and each caller has keys of
    its own, exactly as in :class:`MemoryCache` and :class:`DiskCache`.

    ``client.cache.invalidate()``, ``invalidate_pattern()`` and ``clear()``
    remove entries for every process. With ``local=`` a :class:`MemoryCache`
    answers repeated lookups from this process's memory; it hears every removal
    and every newer entry through Redis pub/sub, and is not used while that
    subscription is down (after which it starts empty). A thread listens for
    them; :meth:`close` stops it.

    When the store is away, lookups are misses and nothing is stored (the
    store's :class:`~buttress.stores.StoreHealth` logs it once), or, with
    ``RedisStore(on_store_error="raise")``, the request raises
    :class:`~buttress.StoreError`. The salt is read from (or written to) Redis
    here; if the store is away now, this process uses a salt of its own and
    shares no entries until it is made again (one WARNING on the
    ``buttress.cache`` logger says so). Making the cache never raises for a
    store that is away, with ``"raise"`` too: the requests that need the store
    do. Give every process the same ``salt=`` to share entries whatever the
    store's state at start.

    Args:
        store: the :class:`~buttress.RedisStore` (server and namespace).
        max_size: the most cache keys kept.
        revalidation_window: seconds a stale entry with a validator is kept.
        local: an in-memory tier in front of Redis.
        salt: 16 to 64 secret bytes, the same in every process; read from
            Redis when not given.

    Examples:
        >>> import buttress
        >>> store = buttress.RedisStore("redis://127.0.0.1:1/0", namespace="docs")
        >>> backend = buttress.RedisCache(store, max_size=5000, salt=b"s" * 16)
        >>> backend
        RedisCache(RedisStore('redis://127.0.0.1:1/0', namespace='docs'), max_size=5000)
        >>> config = buttress.CacheConfig(backend=backend)
    """

    def __init__(
        self,
        store: RedisStore,
        *,
        max_size: int = 10_000,
        revalidation_window: float = 3600.0,
        local: MemoryCache | None = None,
        salt: bytes | None = None,
    ) -> None:
        from ..stores.redis import RedisStore

        if not isinstance(store, RedisStore):
            raise ConfigurationError(f"RedisCache needs a RedisStore, not {type(store).__name__}")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigurationError(f"RedisCache max_size must be at least 1, got {max_size!r}")
        if local is not None and not isinstance(local, MemoryCache):
            raise ConfigurationError(f"local must be a MemoryCache, not {type(local).__name__}")
        self.redis_store = store
        self.max_size = max_size
        self.revalidation_window = check_window(revalidation_window)
        self.local = local
        super().__init__(salt=salt if salt is not None else self._shared_salt(store))
        self._prefix = store.key("cache", "e", "")
        self._index = store.key("cache", "index")
        self._salt_key = store.key("cache", "salt")
        self._channel = store.key("cache", "invalidations")
        self._token = uuid.uuid4().hex  # tells this instance's announcements from the others'
        self._recent: _Recent[str] = _Recent(_RECENT)
        self._scripts: dict[tuple[int, str], Any] = {}
        self._listening = threading.Event()
        self._closing = threading.Event()
        self._listener: threading.Thread | None = None
        if local is not None:
            self._listener = threading.Thread(
                target=self._listen, name="buttress-cache-invalidations", daemon=True
            )
            self._listener.start()

    def __repr__(self) -> str:
        local = f", local={self.local!r}" if self.local is not None else ""
        return f"RedisCache({self.redis_store!r}, max_size={self.max_size}{local})"

    @staticmethod
    def _shared_salt(store: RedisStore) -> bytes:
        key, mine = store.key("cache", "salt"), os.urandom(_SALT_SIZES[0])
        lifetime = milliseconds(_SALT_LIFETIME)
        try:
            found = store.run(
                lambda client: client.eval(_SALT, 1, key, mine, lifetime)  # once, at start
            )
        except StoreError:  # on_store_error="raise": the requests raise, not the constructor
            found = UNAVAILABLE
        if found is UNAVAILABLE:
            logger.warning(
                "RedisCache could not read the shared salt from %s: this process uses a salt "
                "of its own and shares no entries with other processes until it is made again",
                store.health.name,
            )
        if found is UNAVAILABLE or not isinstance(found, bytes) or len(found) not in _SALT_SIZES:
            return mine
        return found

    # -- talking to Redis --------------------------------------------------------------------

    def _script(self, source: str, keys: list[str], args: list[Any]) -> Operation:
        def operation(client: Any) -> Any:
            script = self._scripts.get((id(client), source))
            if script is None:
                script = self._scripts[(id(client), source)] = client.register_script(source)
            return script(keys=keys, args=args)

        return operation

    def _run(self, operation: Operation) -> Any:
        return self.redis_store.run(operation)

    def _ask(self, operation: Operation) -> Step[Any]:
        # the same operation for both clients: redis-py's asyncio one answers an awaitable
        return self.redis_store.ask(operation, operation)

    def _announce(self, kind: str, subject: str = "") -> str:
        return f"{self._token} {kind} {subject}"

    # -- reading -----------------------------------------------------------------------------

    def _local_entries(self, key: str) -> list[Entry]:
        if self.local is None or not self._listening.is_set():
            return []
        return self.local.get_entries(key)

    def _parsed(self, key: str, stored: Any) -> list[tuple[uuid.UUID, bytes, Entry]]:
        """The entries of an ``HGETALL`` answer: id, bytes, entry (a damaged one is skipped)."""
        if stored is UNAVAILABLE or not stored:
            return []
        parsed = []
        for field, data in stored.items():
            try:
                id = uuid.UUID(field.decode() if isinstance(field, bytes) else field)
            except ValueError:
                continue
            entry = entry_of(self.salt, key, id, data)
            if entry is not None:
                parsed.append((id, data, entry))
        return parsed

    def _found(self, key: str, stored: Any) -> list[Entry]:
        """The entries of an ``HGETALL`` answer, remembered (and kept in the memory tier)."""
        entries = []
        for id, data, entry in self._parsed(key, stored):
            self._recent.remember(id, key)
            if self.local is not None and self._listening.is_set():
                copy = entry_of(self.salt, key, id, data)  # the entry's body streams only once
                assert copy is not None
                self._keep_locally(key, copy)
            entries.append(entry)
        return entries

    def _keep_locally(self, key: str, entry: Entry) -> None:
        assert self.local is not None
        stream = entry.response.stream
        body = b"".join(stream) if stream is not None else b""  # type: ignore[arg-type]
        response = entry.response
        self.local.store(key, entry.id, entry.request, response.status_code, response.headers, body)

    def _get_entries(self, key: str) -> Step[list[Entry]]:
        found = self._local_entries(key)
        if found:
            return found
        bucket = self._prefix + key
        return self._found(key, (yield from self._ask(lambda client: client.hgetall(bucket))))

    get_entries, aget_entries = step_methods(_get_entries)

    # -- writing -----------------------------------------------------------------------------

    def _storing(
        self,
        key: str,
        id: uuid.UUID,
        request: Request,
        status: int,
        headers: Headers,
        body: bytes,
        replaced: tuple[uuid.UUID, ...] = (),
    ) -> Operation | None:
        expiry = expiry_seconds(headers, self.redis_store.clock, self.revalidation_window)
        if expiry <= 0:
            return None  # already useless: nothing to keep
        if self.local is not None and self._listening.is_set():
            self.local.store(key, id, request, status, headers, body)
        self._recent.remember(id, key)
        args: list[Any] = [
            str(id),
            pack(self.salt, key, request, status, headers, body),
            milliseconds(expiry),
            self.redis_store.time_argument(),
            self.max_size,
            self.salt,
            key,
            self._prefix,
            self._channel,
            self._announce("key", key),
            *(str(old) for old in replaced),
        ]
        return self._script(_STORE, [self._prefix + key, self._index, self._salt_key], args)

    def _evicted(self, count: Any) -> None:
        if isinstance(count, int) and count:
            self.recorder.eviction(count)

    def _store(
        self, key: str, id: uuid.UUID, request: Request, status: int, headers: Headers, body: bytes
    ) -> Step[None]:
        operation = self._storing(key, id, request, status, headers, body)
        if operation is not None:
            self._evicted((yield from self._ask(operation)))

    store, astore = step_methods(_store)

    def _update_headers(self, id: uuid.UUID, headers: Headers) -> Step[None]:
        key = self._recent.get(id)
        if key is None:
            return  # not read here lately: the entry will be revalidated again
        bucket = self._prefix + key
        stored = yield from self._ask(lambda client: client.hget(bucket, str(id)))
        if stored is UNAVAILABLE or stored is None:
            return
        entry = entry_of(self.salt, key, id, stored)
        if entry is None:
            return
        stream = entry.response.stream
        body = b"".join(stream) if stream is not None else b""  # type: ignore[arg-type]
        status = entry.response.status_code
        yield from self._store(key, id, entry.request, status, headers, body)

    update_headers, aupdate_headers = step_methods(_update_headers)

    def _removing(self, id: uuid.UUID) -> Operation | None:
        key = self._recent.get(id)
        if key is None:
            return None
        if self.local is not None:
            self.local.remove_entry(id)
        message = self._announce("entry", str(id))
        return self._script(_REMOVE_ENTRY, [self._prefix + key], [str(id), self._channel, message])

    def _remove_entry(self, id: uuid.UUID) -> Step[None]:
        operation = self._removing(id)
        if operation is not None:
            yield from self._ask(operation)

    remove_entry, aremove_entry = step_methods(_remove_entry)

    def _removing_keys(self, prefix: str, message: str) -> Operation:
        if self.local is not None:
            self.local.remove_keys(prefix)
        args = [self._prefix, prefix, self._channel, message]
        return self._script(_REMOVE_KEYS, [self._index], args)

    def _remove_keys(self, prefix: str) -> Step[int]:
        removed = yield from self._ask(
            self._removing_keys(prefix, self._announce("prefix", prefix))
        )
        return removed if isinstance(removed, int) else 0

    remove_keys, aremove_keys = step_methods(_remove_keys)

    def remove_where(self, predicate: Callable[[Request], bool]) -> int:
        """Read every stored request, remove the entries ``predicate`` picks (management only)."""

        def removing(client: Any) -> int:
            keys = [member.decode() for member in client.zrange(self._index, 0, -1)]
            reading = client.pipeline(transaction=False)
            for key in keys:
                reading.hgetall(self._prefix + key)
            doomed = [
                (key, str(id))
                for key, stored in zip(keys, reading.execute(), strict=True)
                for id, _, entry in self._parsed(key, stored)
                if predicate(entry.request)
            ]
            removing = client.pipeline(transaction=False)
            for key, id in doomed:
                removing.hdel(self._prefix + key, id)
                removing.publish(self._channel, self._announce("entry", id))
            removing.execute()
            return len(doomed)

        removed = self._run(removing)
        if self.local is not None:
            self.local.remove_where(predicate)
        return removed if isinstance(removed, int) else 0

    def clear(self) -> None:
        self._run(self._removing_keys("", self._announce("clear")))

    @property
    def size(self) -> int:
        """How many entries Redis holds now (0 while the store is away)."""

        def counting(client: Any) -> int:
            reading = client.pipeline(transaction=False)
            for member in client.zrange(self._index, 0, -1):
                reading.hlen(self._prefix + member.decode())
            return sum(reading.execute())

        counted = self._run(counting)
        return counted if isinstance(counted, int) else 0

    # -- the in-memory tier --------------------------------------------------------------------

    def _listen(self) -> None:
        """Apply the removals other processes announce to the in-memory tier, until closed."""
        import redis.exceptions

        while not self._closing.is_set():
            try:
                pubsub = self._run(self._subscribing)
            except StoreError:
                pubsub = UNAVAILABLE
            if pubsub is UNAVAILABLE:
                self._closing.wait(max(self.redis_store.health.recheck, 0.05))
                continue
            try:
                assert self.local is not None
                self.local.clear()  # what was announced while nobody listened is lost
                self._listening.set()
                while not self._closing.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message["type"] == "message":
                        self._hear(message["data"].decode())
            except (redis.exceptions.RedisError, OSError):
                pass  # subscribe again
            finally:
                self._listening.clear()
                with contextlib.suppress(Exception):
                    pubsub.close()

    def _subscribing(self, client: Any) -> Any:
        pubsub = client.pubsub()
        pubsub.subscribe(self._channel)
        confirmed = pubsub.get_message(timeout=self.redis_store.timeout * 20)
        if confirmed is None or confirmed["type"] != "subscribe":
            pubsub.close()
            raise TimeoutError("no confirmation of the subscription")
        return pubsub

    def _hear(self, message: str) -> None:
        token, kind, subject = [*message.split(" ", 2), "", ""][:3]
        local = self.local
        if token == self._token or local is None:
            return
        if kind == "entry":
            with contextlib.suppress(ValueError):
                local.remove_entry(uuid.UUID(subject))
        elif kind in ("key", "prefix"):
            local.remove_keys(subject)
        elif kind == "clear":
            local.clear()

    def close(self) -> None:
        """Stop hearing invalidations (the store's connections are the store's to close)."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join()
