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
- On Redis Cluster (``cluster=True``, or a ``RedisCluster`` client) the same
  calls and scripts work unchanged: every key of a namespace hashes to one slot.

The store owns the clients it makes. An event loop's connections close when
the loop ends (``asyncio.run`` closes them on its way out), or earlier with
:meth:`RedisStore.aclose`; the blocking ones with :meth:`RedisStore.close`; both
at the end of ``with store:`` / ``async with store:``. Clients of buttress never
close a store: many of them share it. A client given to the store stays its
giver's to close.

Under trio, redis-py's asyncio client cannot run; the blocking client then runs
in a worker thread.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import sniffio

from .._clock import SYSTEM_CLOCK, Clock
from .._exceptions import ConfigurationError
from .._extras import import_extra
from .._flow import Effect, call
from ..policies.store import SharedStore
from .health import (
    UNAVAILABLE,
    OnDegradedChange,
    OnStoreError,
    StoreHealth,
    StoreStatus,
    Unavailable,
)

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
    return import_extra(
        "redis", "redis.asyncio", needed_by="RedisStore", package="redis-py", extra="redis"
    )


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store call may fail with: redis-py's errors, sockets, and timeouts."""
    redis = _redis()
    # RedisClusterException (no cluster node reachable, say) is not a RedisError.
    return (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError,
            TimeoutError)  # fmt: skip


def _clusters() -> tuple[type[Any], type[Any]]:
    """redis-py's Redis Cluster clients: the blocking one and the asyncio one."""
    _redis()
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    return RedisCluster, AsyncRedisCluster


def _connection_settings(client: Any) -> dict[str, Any]:
    """The connection settings of a redis-py client (a server's or a cluster's)."""
    blocking_cluster, async_cluster = _clusters()
    if isinstance(client, blocking_cluster | async_cluster):
        settings = (
            client.connection_kwargs
            if isinstance(client, async_cluster)
            else client.nodes_manager.connection_kwargs
        )
        node = next(iter(client.nodes_manager.startup_nodes.values()))
        return {**settings, "host": node.host, "port": node.port, "db": None}
    pool = client.connection_pool
    return {**pool.connection_kwargs, "connection_class": pool.connection_class}


def _portable(settings: dict[str, Any]) -> dict[str, Any]:
    """The connection settings that both redis-py's blocking and asyncio clients accept."""
    names = ("host", "port", "db", "username", "password", "client_name", "protocol")
    portable = {name: settings[name] for name in names if settings.get(name) is not None}
    if settings.get("path"):
        portable["unix_socket_path"] = settings["path"]
    connection_class = settings.get("connection_class")
    if settings.get("ssl") or "ssl" in getattr(connection_class, "__name__", "").lower():
        portable["ssl"] = True
        portable |= {
            name: value
            for name, value in settings.items()
            if name.startswith("ssl_") and value is not None
        }
    return portable


_URL_FORMS = "redis://[[user]:password@]host[:port][/db], rediss://... or unix:///path"
# The query option redis-py names when it refuses one ("Invalid value for 'db'...").
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")  # an option's name, shown in a message


def _check_url(url: object, cluster: bool) -> None:
    """A :class:`~buttress.ConfigurationError` now for a URL redis-py would refuse at every call.

    Nothing connects: the URL is parsed, and a connection object made from it but
    not opened. Messages say which part is wrong and never quote the URL, which
    may hold a password (a mistyped one can land in the port or the path).
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"RedisStore url must be a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number from 0 to 65535 raises
    except ValueError:
        raise ConfigurationError(
            f"RedisStore url: its host and port cannot be read (a port is a number up to "
            f"65535; a password's reserved characters are %-encoded). Expected {_URL_FORMS}"
        ) from None
    if parts.scheme not in ("redis", "rediss", "unix") or not url.lower().startswith(
        f"{parts.scheme}://"
    ):
        raise ConfigurationError(f"RedisStore url must be {_URL_FORMS}")
    database = parts.path.strip("/")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError("a unix:// RedisStore url needs the socket's path")
    if parts.scheme != "unix" and database and not (database.isascii() and database.isdigit()):
        raise ConfigurationError(f"the database of a RedisStore url is a number: {_URL_FORMS}")
    if cluster and (parts.scheme == "unix" or database not in ("", "0")):
        raise ConfigurationError(
            "a Redis Cluster url is redis:// or rediss://host:port with database 0"
        )
    _check_options(url, parts.password)


def _check_options(url: str, password: str | None) -> None:
    """The URL's query options, as redis-py reads them into a connection (not opened)."""
    if _refused(url):
        parts = urlsplit(url)
        for name, values in parse_qs(parts.query).items():  # which one: each alone
            alone = urlunsplit(parts._replace(query=urlencode({name: values[-1]})))
            if _refused(alone) and _NAME.fullmatch(name) and not (password and password in name):
                raise ConfigurationError(
                    f"RedisStore url: redis-py refuses its query option {name!r} (an unknown "
                    "option, or a value of the wrong kind)"
                )
        raise ConfigurationError("RedisStore url has a query option redis-py refuses")


def _refused(url: str) -> bool:
    """Whether redis-py refuses ``url`` when it makes a connection of it (not opened)."""
    redis = _redis()
    try:
        pool = redis.ConnectionPool.from_url(url)
        pool.connection_class(**pool.connection_kwargs)
    except (ValueError, TypeError, redis.exceptions.RedisError):
        return True
    return False


def _check_settings(
    url: str | None,
    cluster: bool,
    namespace: str,
    timeout: float,
    degraded_share: float | None,
    send_margin: float,
) -> None:
    """A clear :class:`~buttress.ConfigurationError` for a setting a store cannot work with."""
    if url is not None:
        _check_url(url, cluster)
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
    if isinstance(send_margin, bool) or not isinstance(send_margin, int | float):
        raise ConfigurationError(f"send_margin must be seconds >= 0, not {send_margin!r}")
    if not send_margin >= 0:
        raise ConfigurationError(f"send_margin must be seconds >= 0, not {send_margin!r}")


def _given_clients(client: Any) -> tuple[Any, Any]:
    """A given client as ``(blocking, asyncio)``: one of them is ``client``, the other ``None``.

    Both are ``None`` without a client; anything but a client of redis-py's is an error.
    """
    if client is None:
        return None, None
    redis = _redis()
    blocking_cluster, async_cluster = _clusters()
    if isinstance(client, redis.Redis | blocking_cluster):
        return client, None
    if isinstance(client, redis.asyncio.Redis | async_cluster):
        return None, client
    raise ConfigurationError(
        "client must be a redis.Redis, redis.asyncio.Redis or a RedisCluster of "
        f"either kind, not {type(client).__name__}"
    )


class RedisStore(
    SharedStore, AbstractContextManager["RedisStore"], AbstractAsyncContextManager["RedisStore"]
):
    """One Redis server (or cluster) whose state every process of a fleet shares.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` for TLS, or
            ``unix:///path``; or give ``client`` instead. It is read here, without
            connecting: one redis-py would refuse (another scheme, a port or
            database that is not a number, an unknown query option or a value it
            cannot read) raises :class:`~buttress.ConfigurationError`, which never
            quotes the URL.
        client: a ready ``redis.Redis`` (or ``redis.asyncio.Redis``), or a
            ``redis.cluster.RedisCluster`` (or ``redis.asyncio.cluster.RedisCluster``);
            the other kind is made from its connection settings. It stays yours
            to close.
        cluster: ``url`` is one node of a Redis Cluster (``db`` must be 0); the
            client finds the other nodes from it.
        namespace: keeps this fleet's keys apart from others on the same server.
        timeout: seconds each store call may take (connect included) before it
            counts as failed.
        on_store_error: ``"fallback"`` to per-process state while the store is
            away (logged, see :attr:`degraded`), or ``"raise"``
            :class:`~buttress.StoreError`.
        degraded_share: while degraded, the share of a shared limit each process
            keeps (``0.25`` for four workers); ``None`` keeps the whole limit.
        recheck: seconds between attempts to reach a store that is away.
        send_margin: seconds a request may take from the server's check of a shared
            limit to the network (the reply's way back, the client's own work): the
            fleet's sends are spaced over windows this much longer, so that lag never
            crowds a window past the limit (it costs ``send_margin / time_window`` of
            the rate: 1% of a one-second window by default).
        on_degraded_change: told ``(name, degraded)`` now and whenever the store
            goes away or comes back: ``PrometheusCollector.store_degraded_changed``
            makes it the ``buttress_store_degraded`` gauge.
        clock: for tests: what times the store's health, and the scripts too
            (see :meth:`time_argument`); scripts otherwise use the server's clock.

    Examples:
        >>> store = RedisStore("redis://:s3cret@127.0.0.1:6379/0", namespace="billing")
        >>> store
        RedisStore('redis://127.0.0.1:6379/0', namespace='billing')
        >>> store.key("limit", "api.example.com")
        'buttress:{billing}:limit:api.example.com'
        >>> RedisStore("redis://127.0.0.1:7000/0", cluster=True, namespace="billing")
        RedisStore('redis://127.0.0.1:7000/0', namespace='billing', cluster=True)

        The program that makes a store closes it, once, when it is done::

            with RedisStore("redis://127.0.0.1:6379/0") as store:  # or: async with
                ...
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        cluster: bool = False,
        namespace: str = "buttress",
        timeout: float = 0.05,
        on_store_error: OnStoreError = "fallback",
        degraded_share: float | None = None,
        recheck: float = 1.0,
        send_margin: float = 0.01,
        on_degraded_change: OnDegradedChange | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigurationError("RedisStore needs a url or a client (one of them)")
        _check_settings(url, cluster, namespace, timeout, degraded_share, send_margin)
        blocking, awaiting = _given_clients(client)  # one of them is client, if given
        given_cluster = isinstance(client, _clusters())
        if cluster and client is not None and not given_cluster:
            raise ConfigurationError("cluster=True needs a url or a RedisCluster client")
        self.namespace = namespace
        self.timeout = float(timeout)
        self.degraded_share = degraded_share
        self.send_margin = float(send_margin)
        self.cluster = bool(cluster) or given_cluster
        self._url = url
        self._lock = threading.Lock()
        # Each event loop's client, and what closes it when the loop ends.
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._given = client  # the caller's to close, not ours
        self._given_async = awaiting
        self._settings: dict[str, Any] = (
            {} if client is None else _portable(_connection_settings(client))
        )
        if self.cluster:
            self._settings.pop("db", None)  # a cluster has database 0 only
        self.clock = clock
        what = "Redis Cluster" if self.cluster else "Redis"
        self.health = StoreHealth(  # first: it checks its settings before a client is made
            f"{what} at {self._address()}",
            on_store_error=on_store_error,
            recheck=recheck,
            clock=clock,
            on_degraded_change=on_degraded_change,
        )
        # The blocking client is made at its first call: a cluster's connects when made.
        self._sync: Any = blocking

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

    def _make_client(self, *, asyncio: bool) -> Any:
        """A new client of the kind asked for, with this store's timeouts."""
        redis = _redis()
        if self.cluster:
            blocking_cluster, async_cluster = _clusters()
            kind = async_cluster if asyncio else blocking_cluster
        else:
            kind = redis.asyncio.Redis if asyncio else redis.Redis
        timeouts = self._timeouts(asyncio=asyncio)
        if self._url is not None:
            return kind.from_url(self._url, **timeouts)
        return kind(**self._settings, **timeouts)

    def _blocking_client(self) -> Any:
        """The blocking client, made at its first call: failing to connect is a store error."""
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    self._sync = self._make_client(asyncio=False)
                client = self._sync
        return client

    def _address(self) -> str:
        """Where the store is, for messages: the URL without credentials, or host:port/db.

        The query goes too: redis-py reads ``?password=`` from it.
        """
        if self._url is not None:
            parts = urlsplit(self._url)
            netloc = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=netloc, query="", fragment=""))
        settings = self._settings
        if "unix_socket_path" in settings:
            return f"unix://{settings['unix_socket_path']}"
        host, port = settings.get("host", "localhost"), settings.get("port", 6379)
        return f"{host}:{port}" if self.cluster else f"{host}:{port}/{settings.get('db', 0)}"

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
        began = self.health.generation
        if not self.health.should_try():
            return UNAVAILABLE
        try:
            value = operation(self._blocking_client())
        except _store_errors() as exc:
            self.health.failed(exc, began)
            return UNAVAILABLE
        self.health.succeeded(began)
        return value

    async def arun(
        self, operation: Callable[[Any], Awaitable[T]], blocking: Callable[[Any], T]
    ) -> T | Unavailable:
        """``await operation(client)`` on the asyncio client (trio: ``blocking``, in a thread).

        Returns ``UNAVAILABLE`` if the store is away, like :meth:`run`.
        """
        if sniffio.current_async_library() != "asyncio":
            return await anyio.to_thread.run_sync(self.run, blocking)
        began = self.health.generation
        if not self.health.should_try():
            return UNAVAILABLE
        try:
            with anyio.fail_after(self.timeout * 2):  # connect, then the command
                value = await operation(await self._async_client())
        except _store_errors() as exc:
            self.health.failed(exc, began)
            return UNAVAILABLE
        self.health.succeeded(began)
        return value

    def ask(
        self, blocking: Callable[[Any], T], awaiting: Callable[[Any], Awaitable[T]]
    ) -> Generator[Effect, object, T | Unavailable]:
        """In a flow: ``answer = yield from store.ask(op, async_op)``; ``UNAVAILABLE`` if away."""
        return call(lambda: self.run(blocking), lambda: self.arun(awaiting, blocking))

    def script(self, source: str) -> Callable[[Keys, Args], Generator[Effect, object, Any]]:
        """A server-side Lua script, as a flow step: ``yield from script(keys, args)``.

        The script is called by its digest, and sent again whenever a server answers
        that it does not know it (a new server, or one restarted empty).
        """
        # redis-py's blocking Script and its AsyncScript, made once; each call names
        # its client, since clients come and go with event loops.
        scripts: dict[bool, Any] = {}

        def bound(client: Any, *, awaiting: bool) -> Any:
            script = scripts.get(awaiting)
            if script is None:
                script = scripts[awaiting] = client.register_script(source)
            return script

        def run(keys: Keys, args: Args) -> Generator[Effect, object, Any]:
            def blocking(client: Any) -> Any:
                return bound(client, awaiting=False)(list(keys), list(args), client)

            def awaiting(client: Any) -> Any:  # redis-py's AsyncScript call: an awaitable
                return bound(client, awaiting=True)(list(keys), list(args), client)

            return self.ask(blocking, awaiting)

        return run

    def gated_script(
        self, gate: str, then: str
    ) -> Callable[[Keys, Args, Keys, Args], Generator[Effect, object, Any]]:
        """Two scripts in one atomic call (one round trip): ``then`` runs if ``gate`` lets it.

        ``yield from gated(gate_keys, gate_args, then_keys, then_args)`` answers
        ``[gate's reply]``, or ``[gate's reply, then's reply]`` when the gate's
        reply starts with ``1``; ``UNAVAILABLE`` when the store is away. Each
        script sees only its own ``KEYS`` and ``ARGV``, as when called alone.
        """
        combined = self.script(
            f"""
local function gate(KEYS, ARGV)
{gate}
end
local function after(KEYS, ARGV)
{then}
end
local gate_keys, gate_args = tonumber(ARGV[1]), tonumber(ARGV[2])
local gk, ga, tk, ta = {{}}, {{}}, {{}}, {{}}
for i = 1, #KEYS do
  if i <= gate_keys then gk[#gk + 1] = KEYS[i] else tk[#tk + 1] = KEYS[i] end
end
for i = 3, #ARGV do
  if i - 2 <= gate_args then ga[#ga + 1] = ARGV[i] else ta[#ta + 1] = ARGV[i] end
end
local opened = gate(gk, ga)
if opened[1] ~= 1 then return {{opened}} end
return {{opened, after(tk, ta)}}
"""
        )

        def run(
            gate_keys: Keys, gate_args: Args, then_keys: Keys, then_args: Args
        ) -> Generator[Effect, object, Any]:
            keys = [*gate_keys, *then_keys]
            return combined(keys, [len(gate_keys), len(gate_args), *gate_args, *then_args])

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

    async def _async_client(self) -> Any:
        """The asyncio client of the running event loop (redis-py's are bound to one loop)."""
        import asyncio

        loop = asyncio.get_running_loop()
        made = self._loops.get(loop)
        if made is not None:
            return made[0]
        with self._lock:  # no await from here to the loop's entry: tasks cannot race
            if self._given_async is not None:
                # It serves the first loop that asks: an asyncio client is bound to one.
                client, self._given_async = self._given_async, None
            else:
                client = self._make_client(asyncio=True)
            closer = self._closed_with(loop, client)
            self._loops[loop] = (client, closer)
        await closer.asend(None)
        return client

    async def _closed_with(
        self, loop: asyncio.AbstractEventLoop, client: Any
    ) -> AsyncGenerator[None, None]:
        """Closes ``client`` when its event loop ends, or at :meth:`aclose`.

        Started, this generator is one the loop knows: ``asyncio.run`` (and every
        runner) closes such generators before closing the loop, so a program that
        never calls :meth:`aclose` leaks no connection either.
        """
        try:
            yield
        finally:
            with self._lock:
                if self._loops.get(loop, (None,))[0] is client:
                    del self._loops[loop]
            if client is not self._given:
                await client.aclose()

    def close(self) -> None:
        """Close the blocking connections this store made; it reconnects if asked again.

        Asyncio connections belong to their event loop: close them with :meth:`aclose`
        (or ``async with store:``) on that loop.
        """
        with self._lock:
            if self._sync is self._given:
                return
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running event loop's asyncio connections and the blocking ones.

        The store stays usable: a later call connects again.
        """
        if sniffio.current_async_library() == "asyncio":  # trio: the blocking client only
            import asyncio

            made = self._loops.get(asyncio.get_running_loop())
            if made is not None:
                await made[1].aclose()
        self.close()

    # Entering (with / async with) is the standard library's: it answers the store itself.
    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        cluster = ", cluster=True" if self.cluster else ""
        return f"RedisStore({self._address()!r}, namespace={self.namespace!r}{cluster})"
