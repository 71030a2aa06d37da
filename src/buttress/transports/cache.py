"""``CacheTransport``: an RFC 9111 *private* cache in front of the inner transport.

hishel's state machine (``CacheMiss``, ``NeedRevalidation``, ``NeedToBeUpdated``,
``InvalidateEntries``) decides what may be stored and how a ``304`` refreshes
a stored response; it runs with ``shared=False``. buttress adds what a private
API client needs and hishel 2.0 lacks:

- choosing a stored response uses an injected clock, the ``Age`` the origin
  sent and the request's ``max-age`` / ``max-stale`` / ``min-fresh`` /
  ``no-cache`` / ``only-if-cached`` (:mod:`buttress.policies.cache`);
- the key covers everything in the request as sent that may say who is asking
  (:mod:`buttress.cache._keys`), so one caller's response is never served to
  another; what is stored holds keyed digests instead of query values and
  request headers, so no secret is stored;
- an explicit ``default_ttl`` replaces heuristic freshness; ``cacheable_status_codes``,
  ``max_entry_size`` and a request's ``no-store`` limit storing;
- unsafe methods invalidate the target URI (and same-origin ``Location`` /
  ``Content-Location``) for every credential;
- ``stale-if-error`` (RFC 5861) when the origin fails or the circuit is open, and
  ``stale-while-revalidate`` with the revalidation in the background.

A hit is answered here and never reaches the layers below. The layer never
reads a body for a caller who streams it: the body is kept aside as the caller
reads it, and stored once it has been read whole.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email.utils import formatdate
from functools import partial

import httpx
from hishel import (
    AnyState,
    CacheMiss,
    CacheOptions,
    CouldNotBeStored,
    Entry,
    FromCache,
    Headers,
    InvalidateEntries,
    NeedRevalidation,
    NeedToBeUpdated,
    Request,
    Response,
    StoreAndUse,
)
from httpx._decoders import SUPPORTED_DECODERS  # the codings httpx decodes when it reads

from .._body import WatchedStream
from .._clock import SYSTEM_CLOCK, Clock
from .._config import require_config
from .._extensions import CACHE_EXTENSION, EXTENSION_KEY
from .._flow import (
    Effect,
    Flow,
    Outcome,
    Read,
    Send,
    acall_at_once,
    adrive,
    call,
    call_at_once,
    drive,
)
from .._options import RequestOptions
from ..cache._keys import CacheKeys, Fields, header_fields, joined, varied
from ..cache.base import CacheBackend
from ..cache.cache import Cache
from ..cache.config import SAFE_METHODS, CacheConfig
from ..policies.cache import (
    INITIAL_AGE,
    INTERNAL_HEADERS,
    RESPONSE_TIME,
    USEFUL_UNTIL,
    Lookup,
    RequestDirectives,
    StoredHeaders,
    age_of,
    cache_control,
    conditional_request,
    initial_age,
    lookup,
    served_lines,
    stale_if_error_allows,
    useful_until,
    varies_by_everything,
    vary_matches,
)
from ..policies.outcomes import allows_stale
from ._layer import Layer

__all__ = ["CACHE_EXTENSION", "CacheResult", "CacheTransport"]

"""The ``response.extensions`` key where the layer records a :class:`CacheResult`."""

_CONDITIONAL = ("if-none-match", "if-modified-since")
_FORWARDED_AS_IS = frozenset(
    {"range", "upgrade", *_CONDITIONAL, "if-match", "if-unmodified-since", "if-range"}
)
"""Request headers that make a request go to the origin untouched, and its answer unstored."""


@dataclass(frozen=True, slots=True)
class CacheResult:
    """What the cache did for one response (``response.extensions["buttress.cache"]``).

    Attributes:
        from_cache: the body came from storage.
        age: seconds since the origin generated it (including the ``Age`` it
            arrived with); ``None`` for a response straight from the origin.
        revalidated: the origin confirmed the stored response with a 304.
        stale: served past its freshness: the origin failed (stale-if-error) or
            it is being revalidated (stale-while-revalidate).
        stored: the response was stored (a streamed one once the caller has
            read it whole).
        revalidating: served stale while a background request revalidates it
            (RFC 5861 ``stale-while-revalidate``).

    Examples:
        >>> CacheResult(from_cache=True, age=12.0).stale
        False
    """

    from_cache: bool
    age: float | None = None
    revalidated: bool = False
    stale: bool = False
    stored: bool = False
    revalidating: bool = False


_MISS = CacheResult(from_cache=False)
_STORED = CacheResult(from_cache=False, stored=True)
_REVALIDATE = RequestDirectives(no_cache=True)
_MAX_BACKGROUND = 8
"""Revalidations in flight at once per transport; a stale answer past this starts none."""


def _internal_headers(headers: httpx.Headers) -> Headers:
    grouped: dict[str, list[str]] = {}
    for name, value in headers.multi_items():  # names come lower-cased
        values = grouped.get(name)
        if values is None:
            grouped[name] = [value]
        else:
            values.append(value)
    grouped.pop("transfer-encoding", None)
    return Headers(grouped)


def _raw_headers(headers: Headers, age: float) -> list[tuple[bytes, bytes]]:
    return [*served_lines(headers), (b"age", str(int(age)).encode())]


def _storable(headers: Headers) -> Headers:
    """Response headers as stored: without ``Set-Cookie``, a credential the caller gets once.

    Replaying it from storage would also reset cookies the client changed since.
    """
    return Headers({name: headers.get_list(name) or [] for name in headers if name != "set-cookie"})


def _forbids_storing(response: httpx.Response) -> bool:
    """``Cache-Control: no-store`` (RFC 9111 5.2.2.5): an API's usual answer, decided cheaply."""
    value = response.headers.get("cache-control")
    return value is not None and cache_control(value).no_store


def _too_large(response: httpx.Response, limit: int | None) -> bool:
    """Does the response announce a body longer than ``limit``?"""
    length = response.headers.get("content-length", "")
    return limit is not None and length.isdigit() and int(length) > limit


def _drop_decoded_codings(headers: Headers) -> None:
    """The body httpx read lost the codings it decodes; list only those it still has (3.1)."""
    codings = [
        coding.strip()
        for value in headers.get_list("content-encoding") or ()
        for coding in value.split(",")
    ]
    kept = [coding for coding in codings if coding and coding.lower() not in SUPPORTED_DECODERS]
    if kept != codings:
        del headers["content-encoding"]
        if kept:
            headers["content-encoding"] = ", ".join(kept)


def _revalidating(response: httpx.Response) -> bool:
    result = response.extensions.get(CACHE_EXTENSION)
    return isinstance(result, CacheResult) and result.revalidating


def _background_request(request: httpx.Request) -> httpx.Request:
    """A copy of ``request`` for a revalidation of its own, sharing no per-request state."""
    extensions: dict[str, object] = {}
    if "timeout" in request.extensions:
        extensions["timeout"] = request.extensions["timeout"]
    options = request.extensions.get(EXTENSION_KEY)
    if isinstance(options, RequestOptions):
        extensions[EXTENSION_KEY] = replace(options, streamed=False, cache_control=None)
    return httpx.Request(
        request.method, request.url, headers=request.headers, extensions=extensions
    )


class _Tee(WatchedStream):
    """The origin's body on its way to the caller, kept aside until it has been read whole.

    ``keep(body)`` is the step that stores the body once the caller reaches its end,
    run blocking, or awaited when the caller reads asynchronously (so storing it
    never blocks the event loop). A body longer than ``limit`` is let go as soon as
    it grows past it, and one the caller closes early is never kept.
    """

    def __init__(
        self,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
        limit: int | None,
        keep: Callable[[bytes], Generator[Effect, object, None]],
    ) -> None:
        super().__init__(stream)
        self._limit = limit
        self._keep = keep
        self._chunks: list[bytes] | None = []
        self._size = 0

    def _chunk(self, data: bytes) -> bytes:
        if self._chunks is not None:
            self._size += len(data)
            if self._limit is not None and self._size > self._limit:
                self._chunks = None
            else:
                self._chunks.append(data)
        return data

    def _ended(self) -> None:
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            call_at_once(self._keep(b"".join(chunks)))

    async def _aended(self) -> None:
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            await acall_at_once(self._keep(b"".join(chunks)))

    def _closed(self) -> None:
        self._chunks = None


class _Background:
    """Revalidations that run after a stale answer went out (RFC 5861 stale-while-revalidate).

    One worker thread serves the sync client, tasks on the running event loop
    the async one; at most ``limit`` revalidations are pending, one per key.
    Closing stops them: queued ones are dropped, one in flight is awaited (the
    sync client) or cancelled (the async client).
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._closed = False
        self._threads: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _claim(self, key: str) -> bool:
        if self._closed or key in self._pending or len(self._pending) >= self._limit:
            return False
        self._pending.add(key)
        return True

    @contextmanager
    def _running(self, key: str) -> Iterator[None]:
        try:
            yield
        except Exception:  # the stale entry stays; a later request revalidates again
            pass
        finally:
            with self._lock:
                self._pending.discard(key)

    def start_thread(self, key: str, job: Callable[[], None]) -> None:
        def run() -> None:
            with self._running(key):
                job()

        with self._lock:
            if not self._claim(key):
                return
            if self._threads is None:
                self._threads = ThreadPoolExecutor(1, thread_name_prefix="buttress-revalidate")
            self._threads.submit(run)

    async def start_task(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            with self._running(key):
                await job()

        with self._lock:
            if not self._claim(key):
                return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): no task to leave behind, revalidate now
            await run()
            return
        task = loop.create_task(run())
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class CacheTransport(Layer):
    """A private HTTP cache (RFC 9111) wrapping ``inner``, for sync and async clients.

    Works on a plain httpx client, under ``mounts`` and through
    ``buttress.Client(cache=CacheConfig(...))``. Per request, pass
    ``extensions=buttress.options(cache_control="no-cache")`` (the facade's
    ``cache_control=`` keyword does this).

    Examples:
        >>> import httpx
        >>> from buttress.cache import CacheConfig, MemoryCache
        >>> from buttress.testing import DemoServer
        >>> from buttress.transports import CacheTransport
        >>> transport = CacheTransport(httpx.HTTPTransport(), CacheConfig(backend=MemoryCache()))
        >>> with DemoServer() as server:
        ...     with httpx.Client(transport=transport, base_url=server.url) as client:
        ...         first = client.get("/cacheable", params={"key": "doc"})
        ...         second = client.get("/cacheable", params={"key": "doc"})
        ...         second.extensions["buttress.cache"].from_cache
        True
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        config: CacheConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        require_config(type(self).__name__, config, CacheConfig)
        self._inner = inner
        self.config = config if config is not None else CacheConfig()
        self._clock = clock
        self._storage = self.config.backend
        # A backend whose async read is the default one reads inline on the event loop too:
        # the flow reads it directly, with no effect for the driver to perform.
        own_read = getattr(self._storage.aget_entries, "__func__", None)
        self._reads_inline = own_read is CacheBackend.aget_entries
        self._keys = CacheKeys(
            self._storage.salt, self.config.credential_headers, self.config.credential_params
        )
        self._options = CacheOptions(
            shared=False, supported_methods=sorted(self.config.cacheable_methods)
        )
        self._background = _Background(_MAX_BACKGROUND)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if _revalidating(response):
            self._background.start_thread(
                self._keys.key(request)[0], partial(self._revalidate, _background_request(request))
            )
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if _revalidating(response):
            await self._background.start_task(
                self._keys.key(request)[0], partial(self._arevalidate, _background_request(request))
            )
        return response

    # Closing, or leaving a ``with`` block, stops the background revalidations first.
    def _stop(self) -> None:
        self._background.close()

    async def _astop(self) -> None:
        await self._background.aclose()

    @property
    def cache(self) -> Cache:
        """Invalidate entries, clear, and read statistics (see :class:`~buttress.cache.Cache`)."""
        return Cache(self._storage)

    # -- the flow -------------------------------------------------------------------------

    def _flow(self, request: httpx.Request) -> Flow:
        if request.method not in SAFE_METHODS:
            return (yield from self._unsafe(request))
        if request.method in self.config.cacheable_methods:
            fields = header_fields(request.headers)  # read once, for all the layer asks
            # An Upgrade request (a WebSocket handshake) asks for a new protocol on this
            # connection: no stored response can answer it, and its 101 is never stored. A
            # caller's own conditional request (its If-None-Match, say) wants the origin's
            # answer to its validators, a 304 included: forwarded as it is (RFC 9111 4.3.2).
            if _FORWARDED_AS_IS.isdisjoint(fields):
                return (yield from self._cached(request, fields))
        outcome = yield Send(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    def _unsafe(self, request: httpx.Request) -> Flow:
        """RFC 9111 4.4: a non-error answer to an unsafe method invalidates what it names."""
        outcome = yield Send(request)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        if 200 <= outcome.status_code < 400:
            targets = {request.url}
            for name in ("location", "content-location"):
                if name in outcome.headers:
                    other = request.url.join(outcome.headers[name])
                    if (other.scheme, other.host, other.port) == (
                        request.url.scheme,
                        request.url.host,
                        request.url.port,
                    ):
                        targets.add(other)
            storage = self._storage
            for target in targets:
                prefix = self._keys.url_key(target, request)
                yield from call(
                    partial(storage.remove_keys, prefix), partial(storage.aremove_keys, prefix)
                )
        return outcome

    def _identity(
        self, request: httpx.Request, fields: Fields
    ) -> Generator[Effect, object, tuple[str, list[Entry], Request]]:
        """``request``'s storage key, the entries stored under it, and the request as stored."""
        key, url = self._keys.key(request, fields)
        storage = self._storage
        if self._reads_inline:
            entries = storage.get_entries(key)
        else:
            entries = yield from call(
                partial(storage.get_entries, key), partial(storage.aget_entries, key)
            )
        names = {name for entry in entries for name in varied(entry.response.headers)}
        return key, entries, self._keys.stored_request(request, url, names, fields)

    def _cached(self, request: httpx.Request, fields: Fields) -> Flow:
        """Answer from storage when RFC 9111 allows; otherwise ask the origin."""
        options = RequestOptions.of(request)
        directives = RequestDirectives.parse(joined(fields, "cache-control"), options.cache_control)
        key, entries, internal = yield from self._identity(request, fields)
        found = self._lookup(internal, entries, directives)
        if found.usable is not None:
            self._storage.recorder.hit()
            background = found.revalidate_in_background
            result = CacheResult(True, found.age, stale=background, revalidating=background)
            return self._serve(request, found.usable, result)
        if directives.only_if_cached:  # RFC 9111 5.2.1.7
            self._storage.recorder.miss()
            return httpx.Response(
                504,
                text="no stored response satisfies this only-if-cached request",
                request=request,
                extensions={CACHE_EXTENSION: _MISS},
            )
        # Plain httpx users may be streaming: only buttress's own unstreamed requests are read here.
        read_body = EXTENSION_KEY in request.extensions and not options.streamed
        return (
            yield from self._from_origin(
                request, key, internal, found.candidates, not directives.no_store, read_body
            )
        )

    def _revalidation(self, request: httpx.Request) -> Flow:
        """Revalidate (or refetch) what ``request`` was answered with, reading the new body."""
        key, entries, internal = yield from self._identity(request, header_fields(request.headers))
        found = self._lookup(internal, entries, _REVALIDATE)
        return (yield from self._from_origin(request, key, internal, found.candidates, True, True))

    def _lookup(
        self, internal: Request, entries: list[Entry], directives: RequestDirectives
    ) -> Lookup:
        """What storage holds for ``internal``, judged now (RFC 9111 section 4)."""
        now, default_ttl = self._clock.time(), self.config.default_ttl
        return lookup(internal, entries, directives, now=now, default_ttl=default_ttl)

    def _revalidate(self, request: httpx.Request) -> None:
        assert isinstance(self._inner, httpx.BaseTransport)
        drive(self._revalidation(request), self._inner, self._clock).close()

    async def _arevalidate(self, request: httpx.Request) -> None:
        assert isinstance(self._inner, httpx.AsyncBaseTransport)
        response = await adrive(self._revalidation(request), self._inner, self._clock)
        await response.aclose()

    def _from_origin(
        self,
        request: httpx.Request,
        key: str,
        internal: Request,
        candidates: list[Entry],
        store: bool,
        read_body: bool,
    ) -> Flow:
        """Revalidate ``candidates`` or fetch, driving hishel's states to the end.

        A response to store is kept as its body is read: here when ``read_body``,
        otherwise by the caller.
        """
        recorder = self._storage.recorder
        state: AnyState
        if candidates:
            state = NeedRevalidation(
                request=conditional_request(internal, candidates[0].response),
                original_request=internal,
                revalidating_entries=candidates,
                options=self._options,
            )
        else:
            state = CacheMiss(request=internal, options=self._options)
        upstream: httpx.Response | None = None
        while True:
            if isinstance(state, (CacheMiss, NeedRevalidation)):
                upstream, following = yield from self._ask_origin(request, state, candidates)
                if following is None:  # answered without hishel: a stale entry, or no-store
                    return upstream
                state = following
            elif isinstance(state, (InvalidateEntries, NeedToBeUpdated)):
                state = yield from self._write_through(state)
            elif isinstance(state, FromCache):
                recorder.revalidation()
                entry = state.entry
                age = age_of(entry, self._clock.time())
                return self._serve(request, entry, CacheResult(True, age, revalidated=True))
            else:
                assert isinstance(state, (StoreAndUse, CouldNotBeStored))
                assert upstream is not None
                recorder.miss()
                upstream.extensions[CACHE_EXTENSION] = _MISS
                if isinstance(state, CouldNotBeStored) or not store:
                    return upstream
                return (
                    yield from self._store_and_use(
                        request, key, internal, candidates, read_body, upstream, state
                    )
                )

    def _write_through(
        self, state: InvalidateEntries | NeedToBeUpdated
    ) -> Generator[Effect, object, AnyState]:
        """Do to storage what revalidation decided; hishel's next state.

        Entries the origin invalidated are removed, and entries it confirmed get
        the new headers, before the answer is served.
        """
        storage = self._storage
        if isinstance(state, InvalidateEntries):
            for entry_id in state.entry_ids:
                yield from call(
                    partial(storage.remove_entry, entry_id),
                    partial(storage.aremove_entry, entry_id),
                )
            return state.next()
        for entry in state.updating_entries:
            refreshed = self._stamped(_storable(entry.response.headers), entry.response.status_code)
            yield from call(
                partial(storage.update_headers, entry.id, refreshed),
                partial(storage.aupdate_headers, entry.id, refreshed),
            )
        return state.next()

    def _ask_origin(
        self,
        request: httpx.Request,
        state: CacheMiss | NeedRevalidation,
        candidates: list[Entry],
    ) -> Generator[Effect, Outcome, tuple[httpx.Response, AnyState | None]]:
        """Send the request (conditional when revalidating); the answer and hishel's next state.

        No state when the answer is final: a stale entry served for an error, or a
        response that must not be stored.
        """
        clock = self._clock
        sent = self._conditional(request, state) if isinstance(state, NeedRevalidation) else request
        request_time = clock.time()
        outcome = yield Send(sent)
        if allows_stale(outcome):  # type: ignore[arg-type]
            stale = self._stale_for_error(candidates)
            if stale is not None:
                if isinstance(outcome, httpx.Response):
                    yield Read(outcome)  # release the connection; the body is not used
                self._storage.recorder.hit()
                result = CacheResult(True, age_of(stale, clock.time()), stale=True)
                return self._serve(request, stale, result), None
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        if isinstance(state, CacheMiss) and _forbids_storing(outcome):
            self._storage.recorder.miss()  # what hishel would conclude, without converting it
            outcome.extensions[CACHE_EXTENSION] = _MISS
            return outcome, None
        if outcome.status_code == 304 and isinstance(state, NeedRevalidation):
            yield Read(outcome)
        return outcome, state.next(self._received(outcome, request_time, clock.time()))

    def _store_and_use(
        self,
        request: httpx.Request,
        key: str,
        internal: Request,
        candidates: list[Entry],
        read_body: bool,
        upstream: httpx.Response,
        state: StoreAndUse,
    ) -> Flow:
        """Return ``upstream``, keeping its body in storage as it is read (unless too large)."""
        codes = self.config.cacheable_status_codes
        if codes is not None and upstream.status_code not in codes:
            return upstream
        if varies_by_everything(state.response.headers):  # RFC 9111 4.1: it can never answer
            return upstream
        names = varied(state.response.headers) | set(internal.headers)
        stored = self._keys.stored_request(request, internal.url, names)
        keep = partial(self._store, upstream, key, stored, state.response, candidates)
        if upstream.is_stream_consumed:  # a layer below read it (and decoded it)
            yield from keep(upstream.content, decoded=True)
            return upstream
        if request.method != "HEAD" and _too_large(upstream, self.config.max_entry_size):
            return upstream
        upstream.stream = _Tee(upstream.stream, self.config.max_entry_size, keep)
        if read_body:
            read = yield Read(upstream)
            if isinstance(read, Exception):
                raise read
        return upstream

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _conditional(request: httpx.Request, state: NeedRevalidation) -> httpx.Request:
        """The caller's request plus the validators of the stored response."""
        headers = request.headers.copy()
        for name in _CONDITIONAL:
            value = state.request.headers.get(name)
            if value is not None:
                headers[name] = value
        return httpx.Request(
            request.method,
            request.url,
            headers=headers,
            stream=request.stream,
            extensions=request.extensions,
        )

    @staticmethod
    def _received(response: httpx.Response, request_time: float, response_time: float) -> Response:
        """The origin's response for hishel, stamped with when it arrived and how old it was."""
        headers = _internal_headers(response.headers)
        for name in INTERNAL_HEADERS:
            headers.pop(name, None)  # only this layer writes these
        for name in ",".join(headers.get_list("connection") or ()).split(","):
            headers.pop(name.strip(), None)  # RFC 9111 3.1: hop-by-hop, never stored
        if "date" not in headers:  # RFC 9110 6.6.1: a cache adds the Date the origin left out
            headers["date"] = formatdate(response_time, usegmt=True)
        age = initial_age(headers, request_time=request_time, response_time=response_time)
        headers[RESPONSE_TIME] = repr(response_time)
        headers[INITIAL_AGE] = repr(age)
        return Response(response.status_code, headers)

    def _stamped(self, headers: Headers, status_code: int) -> StoredHeaders:
        """``headers`` as stored: with when the response stops being useful, for backends
        that expire it, and read once for every hit (:class:`StoredHeaders`)."""
        headers.pop(USEFUL_UNTIL, None)
        until = useful_until(
            headers,
            status_code,
            default_ttl=self.config.default_ttl,
            stale_if_error=self.config.stale_if_error,
        )
        headers[USEFUL_UNTIL] = repr(until)
        return StoredHeaders.of(headers)

    def _store(
        self,
        upstream: httpx.Response,
        key: str,
        request: Request,
        response: Response,
        superseded: list[Entry],
        body: bytes,
        *,
        decoded: bool = False,
    ) -> Generator[Effect, object, None]:
        """Store ``body`` (as received, or ``decoded`` by httpx) and mark ``upstream`` stored.

        A step that asks the storage through :func:`call`: blocking or awaited, as it is run.
        """
        limit = self.config.max_entry_size
        if limit is not None and len(body) > limit:
            return
        headers = _storable(response.headers)
        if decoded:
            _drop_decoded_codings(headers)
        # The body as stored sets the length, except where a response has none: a HEAD
        # response's Content-Length is its GET's, a 204's or a 304's is not there at all.
        if request.method != "HEAD" and response.status_code not in (204, 304):
            headers.pop("content-length", None)
            headers["content-length"] = str(len(body))
        headers = self._stamped(headers, response.status_code)
        storage, id, status = self._storage, uuid.uuid4(), response.status_code
        yield from call(
            partial(storage.store, key, id, request, status, headers, body),
            partial(storage.astore, key, id, request, status, headers, body),
        )
        for old in superseded:
            if old.request.method == request.method and vary_matches(request, old):
                yield from call(
                    partial(storage.remove_entry, old.id), partial(storage.aremove_entry, old.id)
                )
        upstream.extensions[CACHE_EXTENSION] = _STORED

    def _stale_for_error(self, candidates: list[Entry]) -> Entry | None:
        now = self._clock.time()
        for entry in candidates:
            if stale_if_error_allows(
                entry,
                now=now,
                default_ttl=self.config.default_ttl,
                window=self.config.stale_if_error,
            ):
                return entry
        return None

    @staticmethod
    def _serve(request: httpx.Request, entry: Entry, result: CacheResult) -> httpx.Response:
        stream = entry.response.stream
        body = b"".join(stream) if isinstance(stream, Iterator) else b""
        if request.method == "HEAD":
            body = b""  # a stored GET response answers HEAD with its headers
        return httpx.Response(  # a stream, as from the network: unread, iter_raw() works
            entry.response.status_code,
            headers=_raw_headers(entry.response.headers, result.age or 0.0),
            stream=httpx.ByteStream(body),
            request=request,
            extensions={CACHE_EXTENSION: result},
        )
