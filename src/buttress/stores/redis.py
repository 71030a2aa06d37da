"""A Redis server as the store many processes share (redis-py, in the ``redis`` extra).

:class:`RedisStore` owns the connections (a blocking client for ``Client``, an
asyncio one per event loop for ``AsyncClient``), the short timeout of every call,
the key names, and the store's health. The limiter, the breaker and the caches
that use it say *what* to ask (an atomic server-side script, a few commands);
the store says *how*:

- :meth:`RedisStore.ask` is a flow step: the synchronous driver makes the blocking
  call, the asynchronous one awaits it. Outside a flow, :meth:`RedisStore.run` and
  :meth:`RedisStore.arun` do the same directly.
- Every key is ``buttress:{<namespace>}:<parts>``: the braces are a Redis Cluster
  hash tag, so all of a namespace's keys live in one slot and one script may
  touch several of them.
- A call that fails or outlasts ``timeout`` goes to :class:`~buttress.stores.StoreHealth`:
  per-process state (``UNAVAILABLE``) or :class:`~buttress.StoreError`.

Under trio, redis-py's asyncio client cannot run; the blocking client then runs
in a worker thread.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import sniffio

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError
from .._flow import Effect, call
from ..policies.store import SharedStore
from .health import UNAVAILABLE, OnStoreError, StoreHealth, StoreStatus, Unavailable

if TYPE_CHECKING:
    import asyncio

    from ..policies.breaker import CircuitBreakerConfig
    from ..policies.ratelimit import RateLimitConfig
    from .breaker import SharedCircuit
    from .budget import RedisRetryBudget
    from .ratelimit import SharedLimits

__all__ = ["RedisStore"]

T = TypeVar("T")
Keys = Sequence[str]
Args = Sequence["str | int | float | bytes"]


def _redis() -> Any:
    """redis-py, or a clear error naming the extra."""
    try:
        import redis
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - the test environment has every extra
        raise ConfigurationError(
            "RedisStore needs redis-py: pip install 'buttress[redis]'"
        ) from exc
    return redis


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store call may fail with: redis-py's errors, sockets, and timeouts."""
    redis = _redis()
    return (redis.exceptions.RedisError, OSError, TimeoutError)


def _portable(pool: Any) -> dict[str, Any]:
    """The settings of a redis-py pool that both its blocking and asyncio clients accept."""
    settings = pool.connection_kwargs
    names = ("host", "port", "db", "username", "password", "client_name", "protocol")
    portable = {name: settings[name] for name in names if settings.get(name) is not None}
    if settings.get("path"):
        portable["unix_socket_path"] = settings["path"]
    if "ssl" in pool.connection_class.__name__.lower():
        portable["ssl"] = True
        portable |= {
            name: value
            for name, value in settings.items()
            if name.startswith("ssl_") and value is not None
        }
    return portable


class RedisStore(SharedStore):
    """One Redis server (or cluster) whose state every process of a fleet shares.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS, or
            ``unix:///path``; or give ``client`` instead.
        client: a ready ``redis.Redis`` (or ``redis.asyncio.Redis``); the other
            kind is made from its connection settings.
        namespace: keeps this fleet's keys apart from others on the same server.
        timeout: seconds each store call may take (connect included) before it
            counts as failed.
        on_store_error: ``"fallback"`` to per-process state while the store is
            away (logged, see :attr:`degraded`), or ``"raise"``
            :class:`~buttress.StoreError`.
        degraded_share: while degraded, the share of a shared limit each process
            keeps (``0.25`` for four workers); ``None`` keeps the whole limit.
        recheck: seconds between attempts to reach a store that is away.
        clock: for tests: what times the store's health, and the scripts too
            (see :meth:`time_argument`); scripts otherwise use the server's clock.

    Examples:
        >>> store = RedisStore("redis://:s3cret@127.0.0.1:6379/0", namespace="billing")
        >>> store
        RedisStore('redis://127.0.0.1:6379/0', namespace='billing')
        >>> store.key("limit", "api.example.com")
        'buttress:{billing}:limit:api.example.com'
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        namespace: str = "buttress",
        timeout: float = 0.05,
        on_store_error: OnStoreError = "fallback",
        degraded_share: float | None = None,
        recheck: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStore needs a url or a client (one of them)")
        if not isinstance(namespace, str) or not namespace or set("{}") & set(namespace):
            raise ConfigurationError(
                f"namespace must be a non-empty string without braces, not {namespace!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        if degraded_share is not None and not 0 < degraded_share <= 1:
            raise ConfigurationError(
                f"degraded_share must be in (0, 1] or None, not {degraded_share!r}"
            )
        redis = _redis()
        self.namespace = namespace
        self.timeout = float(timeout)
        self.degraded_share = degraded_share
        self._url = url
        self._lock = threading.Lock()
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._given_async = None
        if client is not None and not isinstance(client, redis.Redis | redis.asyncio.Redis):
            raise ConfigurationError(
                f"client must be a redis.Redis or redis.asyncio.Redis, not {type(client).__name__}"
            )
        self._settings: dict[str, Any] = {} if client is None else _portable(client.connection_pool)
        self.clock = clock
        self.health = StoreHealth(  # first: it checks its settings before a client is made
            f"Redis at {self._address()}",
            on_store_error=on_store_error,
            recheck=recheck,
            clock=clock,
        )
        if url is not None:
            self._sync = redis.Redis.from_url(url, **self._timeouts())
        elif isinstance(client, redis.asyncio.Redis):
            self._given_async = client
            self._sync = redis.Redis(**self._settings, **self._timeouts())
        else:
            self._sync = client

    def _timeouts(self, *, asyncio: bool = False) -> dict[str, Any]:
        """Connection options: every call bounded by ``timeout``, no retries of redis-py's."""
        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "retry": (AsyncRetry if asyncio else Retry)(NoBackoff(), 0),
        }

    def _address(self) -> str:
        """Where the store is, for messages: the URL without credentials, or host:port/db."""
        if self._url is not None:
            parts = urlsplit(self._url)
            return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        settings = self._settings
        if "unix_socket_path" in settings:
            return f"unix://{settings['unix_socket_path']}"
        host, port = settings.get("host", "localhost"), settings.get("port", 6379)
        return f"{host}:{port}/{settings.get('db', 0)}"

    # -- keys ---------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        """The key named by ``parts`` in this store's namespace (one cluster slot)."""
        return ":".join([f"buttress:{{{self.namespace}}}", *(quote(p, safe=".-_") for p in parts)])

    def time_argument(self) -> str:
        """The time to pass a script: ``""`` (use the Redis server's ``TIME``) or a test clock's.

        A script reads it as ``tonumber(ARGV[n])`` and falls back to ``TIME`` when it
        is empty, so every process of a fleet is timed by one clock (the server's)
        and clock skew between machines cannot matter; a test that injects a
        :class:`~buttress.testing.FakeClock` times the scripts with it instead.
        """
        return "" if self.clock is SYSTEM_CLOCK else repr(self.clock.time())

    # -- calls ----------------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """Whether the store is away and per-process state is used instead."""
        return self.health.degraded

    def status(self) -> StoreStatus:
        """The store's health: degraded or not, since when, what failed last."""
        return self.health.status()

    def run(self, operation: Callable[[Any], T]) -> T | Unavailable:
        """``operation(client)`` with the blocking client, or ``UNAVAILABLE`` if the store is away.

        With ``on_store_error="raise"`` a failure raises :class:`~buttress.StoreError`.
        """
        if not self.health.should_try():
            return UNAVAILABLE
        try:
            value = operation(self._sync)
        except _store_errors() as exc:
            self.health.failed(exc)
            return UNAVAILABLE
        self.health.succeeded()
        return value

    async def arun(
        self, operation: Callable[[Any], Awaitable[T]], blocking: Callable[[Any], T]
    ) -> T | Unavailable:
        """``await operation(client)`` on the asyncio client (trio: ``blocking``, in a thread).

        Returns ``UNAVAILABLE`` if the store is away, like :meth:`run`.
        """
        if sniffio.current_async_library() != "asyncio":
            return await anyio.to_thread.run_sync(self.run, blocking)
        if not self.health.should_try():
            return UNAVAILABLE
        try:
            with anyio.fail_after(self.timeout * 2):  # connect, then the command
                value = await operation(self._async_client())
        except _store_errors() as exc:
            self.health.failed(exc)
            return UNAVAILABLE
        self.health.succeeded()
        return value

    def ask(
        self, blocking: Callable[[Any], T], awaiting: Callable[[Any], Awaitable[T]]
    ) -> Generator[Effect, object, T | Unavailable]:
        """In a flow: ``answer = yield from store.ask(op, async_op)``; ``UNAVAILABLE`` if away."""
        return call(lambda: self.run(blocking), lambda: self.arun(awaiting, blocking))

    def script(self, source: str) -> Callable[[Keys, Args], Generator[Effect, object, Any]]:
        """A server-side Lua script, as a flow step: ``yield from script(keys, args)``.

        The script is sent once per connection pool and then called by its digest.
        """
        scripts: dict[int, Any] = {}

        def bound(client: Any) -> Any:
            script = scripts.get(id(client))
            if script is None:
                script = scripts[id(client)] = client.register_script(source)
            return script

        def run(keys: Keys, args: Args) -> Generator[Effect, object, Any]:
            return self.ask(
                lambda client: bound(client)(keys=list(keys), args=list(args)),
                lambda client: bound(client)(keys=list(keys), args=list(args)),
            )

        return run

    # -- the policies' shared state (see buttress.policies.store) -------------------------

    def circuit(self, config: CircuitBreakerConfig, clock: Clock, *, name: str) -> SharedCircuit:
        """The circuit called ``name``, kept here for every process."""
        from .breaker import SharedCircuit

        return SharedCircuit(self, config, clock, name=name)

    def limits(self, config: RateLimitConfig, clock: Clock | None = None) -> SharedLimits:
        """``config``'s limits, booked here by every process."""
        from .ratelimit import SharedLimits

        return SharedLimits(self, config, clock)

    def retry_budget(
        self, *, ratio: float, min_per_second: float, window: float
    ) -> RedisRetryBudget:
        """A per-host retry budget kept here for every process."""
        from .budget import RedisRetryBudget

        return RedisRetryBudget(self, ratio=ratio, min_per_second=min_per_second, window=window)

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a RedisStore holds live connections and cannot be pickled: make one in each "
            "process, e.g. RedisStore(url, namespace=...), from settings the process reads"
        )

    def _async_client(self) -> Any:
        """The asyncio client of the running event loop (redis-py's are bound to one loop)."""
        import asyncio

        loop = asyncio.get_running_loop()
        client = self._loops.get(loop)
        if client is None:
            redis = _redis()
            with self._lock:
                client = self._loops.get(loop)
                if client is None:
                    if self._given_async is not None and not self._loops:
                        client = self._given_async
                    elif self._url is not None:
                        client = redis.asyncio.Redis.from_url(
                            self._url, **self._timeouts(asyncio=True)
                        )
                    else:
                        client = redis.asyncio.Redis(
                            **self._settings, **self._timeouts(asyncio=True)
                        )
                    self._loops[loop] = client
        return client

    def close(self) -> None:
        """Close the blocking client's connections (asyncio ones close with :meth:`aclose`)."""
        self._sync.close()

    async def aclose(self) -> None:
        """Close this event loop's asyncio connections."""
        import asyncio

        client = self._loops.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def __repr__(self) -> str:
        return f"RedisStore({self._address()!r}, namespace={self.namespace!r})"
