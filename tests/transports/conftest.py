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

from tests.conftest import Either

Layer = Callable[[Any], Any]
# one awaitable API over an httpx.Client or httpx.AsyncClient (see tests/conftest.py)
Plain = Either[httpx.Client | httpx.AsyncClient]


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
        made.append(Either(client))
        return made[-1]

    yield factory
    for either in made:
        await either.aclose()
