"""Plain httpx clients around a buttress layer: one test body for sync and async.

``plain(layer)`` builds an ``httpx.Client`` or ``httpx.AsyncClient`` (by the
test's ``mode``) whose transport is ``layer(network)``; with ``mounted=True``
the layer is mounted for ``http://127.0.0.1`` instead, the other way in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

Layer = Callable[[Any], Any]


class Plain:
    """``await plain.get(...)`` for either kind of httpx client."""

    def __init__(self, client: httpx.Client | httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if isinstance(self.client, httpx.AsyncClient):
            return await self.client.request(method, url, **kwargs)
        return self.client.request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def aclose(self) -> None:
        if isinstance(self.client, httpx.AsyncClient):
            await self.client.aclose()
        else:
            self.client.close()


@pytest.fixture
async def plain(mode: str) -> AsyncIterator[Callable[..., Plain]]:
    made: list[Plain] = []

    def factory(layer: Layer, *, mounted: bool = False, network: Any = None) -> Plain:
        is_async = mode == "async"
        if network is None:
            network = httpx.AsyncHTTPTransport() if is_async else httpx.HTTPTransport()
        transport = layer(network)
        cls: Any = httpx.AsyncClient if is_async else httpx.Client
        if mounted:
            client = cls(mounts={"http://127.0.0.1": transport})
        else:
            client = cls(transport=transport)
        made.append(Plain(client))
        return made[-1]

    yield factory
    for plain_client in made:
        await plain_client.aclose()
