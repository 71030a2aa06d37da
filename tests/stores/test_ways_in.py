"""One store shared through each way in: the facade, ``stack()`` on httpx, and ``mounts``.

The issue's spellings, given to a ``buttress.Client``, to a plain ``httpx.Client``
through ``transports.stack()``, and to an ``httpx.Client`` under ``mounts``: the
three behave as three processes of one fleet (one cache, one breaker, one limit).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress.testing import DemoServer, FakeClock
from buttress.transports import stack
from tests.conftest import Either
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


class Fleet:
    """Three clients, one per way in, each on its own store object of one namespace."""

    def __init__(self, url: str, demo: DemoServer, mode: str) -> None:
        self.clock = FakeClock()
        namespace = f"ways-{secrets.token_hex(4)}"
        self.stores = [
            buttress.RedisStore(url, namespace=namespace, timeout=2.0, clock=self.clock)
            for _ in range(3)
        ]
        self.demo, self.mode = demo, mode
        self.clients: list[Either[Any]] = []

    def settings(self, store: buttress.RedisStore) -> dict[str, Any]:
        """The issue's spellings (small numbers, so a test reaches each limit)."""
        return {
            "rate_limit": buttress.RateLimitConfig(
                max_requests=4, time_window=60.0, on_limit="raise", store=store
            ),
            "circuit_breaker": buttress.CircuitBreakerConfig(
                failure_threshold=2, reset_timeout=30.0, per_host=True, store=store
            ),
            "cache": buttress.CacheConfig(enabled=True, backend=buttress.RedisCache(store)),
        }

    def open(self) -> list[Either[Any]]:
        facade, stacked, mounted = self.stores
        is_async = self.mode == "async"
        buttress_class: Any = buttress.AsyncClient if is_async else buttress.Client
        httpx_class: Any = httpx.AsyncClient if is_async else httpx.Client
        network: Any = httpx.AsyncHTTPTransport if is_async else httpx.HTTPTransport
        self.clients = [
            Either(
                buttress_class(
                    base_url=self.demo.url,
                    clock=self.clock,
                    retry=buttress.RetryConfig(max_attempts=1),  # as stack() here: no retries
                    **self.settings(facade),
                )
            ),
            Either(
                httpx_class(
                    base_url=self.demo.url,
                    transport=stack(network(), clock=self.clock, **self.settings(stacked)),
                )
            ),
            Either(
                httpx_class(
                    base_url=self.demo.url,
                    mounts={
                        self.demo.url: stack(network(), clock=self.clock, **self.settings(mounted))
                    },
                )
            ),
        ]
        return self.clients

    async def close(self) -> None:
        for either in self.clients:
            await either.aclose()
        for store in self.stores:
            await store.aclose()


@pytest.fixture
async def fleet(
    redis_server: RedisServer, demo: DemoServer, mode: str
) -> AsyncIterator[Callable[[], list[Either[Any]]]]:
    made = Fleet(redis_server.url, demo, mode)
    yield made.open
    await made.close()


async def test_one_cache_through_every_way_in(
    fleet: Callable[[], list[Either[Any]]], demo: DemoServer
) -> None:
    key = secrets.token_hex(4)
    before = demo.app.hits["/cacheable"]
    bodies = [(await client.get("/cacheable", params={"key": key})).json() for client in fleet()]
    assert bodies[0] == bodies[1] == bodies[2]
    assert demo.app.hits["/cacheable"] - before == 1  # fetched once, served to all three


async def test_one_breaker_through_every_way_in(fleet: Callable[[], list[Either[Any]]]) -> None:
    facade, stacked, mounted = fleet()
    for client in (facade, stacked):  # one failure each: two in a row for the fleet
        with pytest.raises(buttress.ServerError) if client.is_buttress else _no_raise():
            await client.get("/status/500")
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await mounted.get("/status/200")


async def test_one_limit_through_every_way_in(fleet: Callable[[], list[Either[Any]]]) -> None:
    facade, stacked, mounted = fleet()
    for client in (facade, stacked, mounted, facade):  # four requests of the window's four
        assert (await client.get("/users/1")).status_code == 200
    with pytest.raises(buttress.RateLimitError):
        await stacked.get("/users/2")


class _no_raise:
    """A plain httpx client returns an error status rather than raising it."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None
