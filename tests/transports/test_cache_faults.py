"""``stale-if-error`` when the connection itself fails, against a real misbehaving server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from buttress.cache import CacheConfig, MemoryCache
from buttress.testing import FakeClock, Fault, FaultServer
from buttress.transports import CacheTransport
from buttress.transports.cache import CACHE_EXTENSION, CacheResult
from tests.transports.conftest import Plain

from .cache_origin import httpx_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
async def api(mode: str) -> AsyncIterator[tuple[Plain, FakeClock]]:
    clock = FakeClock()
    network: Any = httpx.AsyncHTTPTransport() if mode == "async" else httpx.HTTPTransport()
    transport = CacheTransport(network, CacheConfig(backend=MemoryCache()), clock=clock)
    caller = httpx_client(transport, is_async=mode == "async", base_url="http://127.0.0.1")
    yield caller, clock
    await caller.aclose()


def _refused(server: FaultServer) -> contextlib.AbstractContextManager[None]:
    return server.refusing()


def _faulty(fault: Fault) -> Any:
    def arrange(server: FaultServer) -> contextlib.AbstractContextManager[None]:
        server.enqueue(fault)
        return contextlib.nullcontext()

    return arrange


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(_refused, id="refused"),
        pytest.param(_faulty(Fault.reset_before_headers()), id="reset"),
        pytest.param(_faulty(Fault.close()), id="closed"),
    ],
)
async def test_rfc5861_4_stale_if_error_covers_connection_failures(
    api: tuple[Plain, FakeClock], server: FaultServer, failure: Any
) -> None:
    caller, clock = api
    url = f"{server.url}/doc"
    server.route(
        "/doc", Fault.ok({"v": 1}, headers={"cache-control": "max-age=10, stale-if-error=60"})
    )
    await caller.get(url, headers={"connection": "close"})  # the failure needs a new connection
    clock.advance(30)
    with failure(server):
        stale = await caller.get(url)
    assert stale.json() == {"v": 1}
    found = stale.extensions[CACHE_EXTENSION]
    assert isinstance(found, CacheResult)
    assert (found.from_cache, found.stale, found.age) == (True, True, 30)
    clock.advance(60)  # 80 s past freshness: beyond the window, the failure shows
    with failure(server), pytest.raises(httpx.TransportError):
        await caller.get(url)
