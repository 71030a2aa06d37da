"""A body the caller streams through ``CacheTransport`` still streams, against the demo API.

The layer keeps the body aside as the caller reads it and stores it once read
whole; what the caller observes (``iter_raw``, ``is_stream_consumed``,
``elapsed``, ``content`` before ``read()``) is what bare httpx gives.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from buttress.cache import CacheConfig, MemoryCache
from buttress.testing import DemoServer, FakeClock
from buttress.transports import CacheTransport
from buttress.transports.cache import CACHE_EXTENSION, CacheResult

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


@dataclass(frozen=True)
class Seen:
    """What a caller of ``client.stream(...)`` can observe of one response."""

    status: int
    content_type: str | None
    consumed_before_reading: bool
    content_before_reading: str  # the exception type raised by ``.content``, or "readable"
    elapsed_before_reading: str  # the exception type raised by ``.elapsed``, or "available"
    body: bytes
    consumed_after_reading: bool
    elapsed_after_closing: bool


def _raises(read: Callable[[], object], otherwise: str) -> str:
    try:
        read()
    except Exception as exc:
        return type(exc).__name__
    return otherwise


def _before(response: httpx.Response) -> tuple[bool, str, str]:
    return (
        response.is_stream_consumed,
        _raises(lambda: response.content, "readable"),
        _raises(lambda: response.elapsed, "available"),
    )


class Streamer:
    """``client.stream("GET", ...)`` on a plain httpx client of either kind."""

    def __init__(self, client: httpx.Client | httpx.AsyncClient) -> None:
        self.client = client
        self.last: httpx.Response | None = None

    async def see(self, url: str, *, stop_after: int | None = None) -> Seen:
        """Stream ``url`` raw; with ``stop_after``, close after that many chunks."""
        chunks: list[bytes] = []
        if isinstance(self.client, httpx.AsyncClient):
            async with self.client.stream("GET", url) as response:
                before = _before(response)
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    if len(chunks) == stop_after:
                        break
        else:
            with self.client.stream("GET", url) as response:
                before = _before(response)
                for chunk in response.iter_raw():
                    chunks.append(chunk)
                    if len(chunks) == stop_after:
                        break
        self.last = response
        return Seen(
            response.status_code,
            response.headers.get("content-type"),
            *before,
            b"".join(chunks),
            response.is_stream_consumed,
            isinstance(response.elapsed, timedelta),
        )

    def result(self) -> CacheResult:
        assert self.last is not None
        found = self.last.extensions[CACHE_EXTENSION]
        assert isinstance(found, CacheResult)
        return found


@pytest.fixture
async def streamer(mode: str) -> AsyncIterator[Callable[..., Streamer]]:
    made: list[httpx.Client | httpx.AsyncClient] = []

    def factory(cache: CacheConfig | None = None, **network_options: Any) -> Streamer:
        client: httpx.Client | httpx.AsyncClient
        if mode == "async":
            network: Any = httpx.AsyncHTTPTransport(**network_options)
            layer = network if cache is None else CacheTransport(network, cache, clock=FakeClock())
            client = httpx.AsyncClient(transport=layer)
        else:
            network = httpx.HTTPTransport(**network_options)
            layer = network if cache is None else CacheTransport(network, cache, clock=FakeClock())
            client = httpx.Client(transport=layer)
        made.append(client)
        return Streamer(client)

    yield factory
    for client in made:
        if isinstance(client, httpx.AsyncClient):
            await client.aclose()
        else:
            client.close()


async def test_a_streamed_miss_and_hit_look_like_bare_httpx(
    streamer: Callable[..., Streamer], demo: DemoServer
) -> None:
    url = f"{demo.url}/cacheable?key={uuid.uuid4().hex}"
    bare = await streamer().see(url)
    cached = streamer(CacheConfig(backend=MemoryCache()))
    miss = await cached.see(url)
    assert cached.result() == CacheResult(from_cache=False, stored=True)
    hit = await cached.see(url)
    assert cached.result().from_cache
    assert bare == miss == hit
    assert bare.consumed_before_reading is False
    assert bare.content_before_reading == "ResponseNotRead"
    assert bare.elapsed_before_reading == "RuntimeError"
    assert (bare.consumed_after_reading, bare.elapsed_after_closing) == (True, True)


@pytest.mark.parametrize("cached", [False, True], ids=["bare", "cached"])
async def test_a_streamed_miss_holds_its_connection_until_closed(
    streamer: Callable[..., Streamer], demo: DemoServer, cached: bool
) -> None:
    cache = CacheConfig(backend=MemoryCache()) if cached else None
    client = streamer(cache, limits=httpx.Limits(max_connections=1)).client
    url = f"{demo.url}/cacheable?key={uuid.uuid4().hex}"
    no_wait = httpx.Timeout(5.0, pool=0.0)  # a pool with no free connection fails at once
    if isinstance(client, httpx.AsyncClient):
        async with client.stream("GET", url):
            with pytest.raises(httpx.PoolTimeout):
                await client.get(f"{demo.url}/users/1", timeout=no_wait)
        assert (await client.get(f"{demo.url}/users/1", timeout=no_wait)).status_code == 200
    else:
        with client.stream("GET", url), pytest.raises(httpx.PoolTimeout):
            client.get(f"{demo.url}/users/1", timeout=no_wait)
        assert client.get(f"{demo.url}/users/1", timeout=no_wait).status_code == 200


async def test_a_stream_closed_early_stores_nothing(
    streamer: Callable[..., Streamer], demo: DemoServer
) -> None:
    backend = MemoryCache()
    cached = streamer(CacheConfig(backend=backend, default_ttl=60))
    url = f"{demo.url}/download?size={256 * 1024}&key={uuid.uuid4().hex}"
    partial = await cached.see(url, stop_after=1)
    assert 0 < len(partial.body) < 256 * 1024
    assert (cached.result().stored, backend.size) == (False, 0)
    whole = await cached.see(url)
    assert len(whole.body) == 256 * 1024
    assert (cached.result().stored, backend.size) == (True, 1)
    assert (await cached.see(url)).body == whole.body
    assert cached.result().from_cache


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_a_body_past_max_entry_size_streams_without_being_stored(
    streamer: Callable[..., Streamer], demo: DemoServer, chunked: str
) -> None:
    backend = MemoryCache()
    cached = streamer(CacheConfig(backend=backend, default_ttl=60, max_entry_size=100_000))
    url = f"{demo.url}/download?size=100001&chunked={chunked}&key={uuid.uuid4().hex}"
    assert len((await cached.see(url)).body) == 100_001
    assert (cached.result().stored, backend.size) == (False, 0)
    assert not (await cached.see(url)).consumed_before_reading
    assert not cached.result().from_cache


@pytest.mark.parametrize("chunked", ["0", "1"])
async def test_a_large_streamed_download_holds_only_a_few_chunks(
    streamer: Callable[..., Streamer], demo: DemoServer, chunked: str
) -> None:
    """32 MiB streamed past a 1 MiB ``max_entry_size``: the peak stays far below the body.

    With a ``Content-Length`` the layer knows at once not to keep the body;
    chunked, it keeps up to 1 MiB aside until the body outgrows it. The bound,
    4 MiB, allows that 1 MiB, the 64 KiB chunks in flight on both sides of the
    socket (the demo server runs in this process, so its allocations are
    traced too) and the interpreter's own noise. Reading the body whole, as
    the layer used to, peaks at twice the body.
    """
    size = 32 * MiB
    cached = streamer(CacheConfig(backend=MemoryCache(), default_ttl=60, max_entry_size=MiB))
    url = f"{demo.url}/download?size={size}&chunked={chunked}&key={uuid.uuid4().hex}"
    tracemalloc.start()
    try:
        length = 0
        if isinstance(cached.client, httpx.AsyncClient):
            async with cached.client.stream("GET", url) as response:
                async for chunk in response.aiter_raw():
                    length += len(chunk)
        else:
            with cached.client.stream("GET", url) as response:
                for chunk in response.iter_raw():
                    length += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert length == size
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB"
