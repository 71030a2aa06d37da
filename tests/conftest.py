"""Shared fixtures: the demo API on 127.0.0.1, and one test body for both clients.

Async tests run on asyncio through anyio's pytest plugin: a test module with
``async def`` tests sets ``pytestmark = pytest.mark.anyio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Generic

import httpx
import pytest
from typing_extensions import TypeVar

import buttress
from buttress.testing import DemoServer, FakeClock

# The package's own pytest plugin is loaded here rather than through its entry
# point (disabled in pyproject's addopts) so coverage sees the package imported.
pytest_plugins = [
    "buttress.testing.pytest_plugin",
    "tests.servers",  # TLS servers, proxies: the connection tests' fixtures
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def demo(buttress_demo_server: DemoServer) -> DemoServer:
    """The demo API, one per test session (tests use their own keys for stateful endpoints).

    The plugin's, which its own tests use too: one server for the whole session.
    """
    return buttress_demo_server


# Which clients an ``Either`` drives: buttress's unless said (``Either[httpx.Client]``).
ClientT = TypeVar(
    "ClientT",
    bound=httpx.Client | httpx.AsyncClient,
    default=buttress.Client | buttress.AsyncClient,
)


class Either(Generic[ClientT]):
    """Drives any client, buttress's or httpx's, sync or async, through one awaitable API.

    ``await either.get(...)`` works for all four, so a single test body covers sync
    and async; ``either.client`` is the real client for anything else.
    """

    def __init__(self, client: ClientT) -> None:
        self.client = client
        self.is_async = isinstance(client, httpx.AsyncClient)
        self.is_buttress = isinstance(client, (buttress.Client, buttress.AsyncClient))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return await result if self.is_async else result

        return call

    async def stream_bytes(self, method: str, url: str, **kwargs: Any) -> bytes:
        if isinstance(self.client, httpx.AsyncClient):
            async with self.client.stream(method, url, **kwargs) as response:
                return b"".join([chunk async for chunk in response.aiter_bytes()])
        with self.client.stream(method, url, **kwargs) as response:
            return b"".join(response.iter_bytes())

    async def aclose(self) -> None:
        if isinstance(self.client, httpx.AsyncClient):
            await self.client.aclose()
        else:
            self.client.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``mode`` (or ``make_client``/``client``) runs once per client kind.

    ``sync``: ``Client``; ``async``: ``AsyncClient``; ``aiohttp``: ``AsyncClient``
    over the aiohttp backend, for the modules that set ``ALSO_ON_AIOHTTP = True``
    (the layer suites; connection tests need h2, SOCKS and TLS details that the
    aiohttp backend does not offer). Test ``either.is_async``, not ``mode``, for
    "is this the async client".
    """
    if "mode" in metafunc.fixturenames and not hasattr(metafunc.module, "mode"):
        modes = ["sync", "async"]
        if getattr(metafunc.module, "ALSO_ON_AIOHTTP", False):
            modes.append("aiohttp")
        metafunc.parametrize("mode", modes)


@pytest.fixture
async def make_client(mode: str) -> AsyncIterator[Callable[..., Either]]:
    """A factory for clients of this test's mode; all are closed afterwards.

    In the ``aiohttp`` mode the client gets ``backend="aiohttp"`` unless the test
    passes its own bottom ``transport=``.
    """
    made: list[Either] = []

    def factory(**kwargs: Any) -> Either:
        # Backoff and Retry-After waits pass on a fake clock: tests never sleep.
        kwargs.setdefault("clock", FakeClock())
        either: Either
        if mode == "sync":
            either = Either(buttress.Client(**kwargs))
        else:
            if mode == "aiohttp" and "transport" not in kwargs:
                kwargs.setdefault("backend", "aiohttp")
            either = Either(buttress.AsyncClient(**kwargs))
        made.append(either)
        return either

    yield factory
    for either in made:
        await either.aclose()


@pytest.fixture
async def client(make_client: Callable[..., Either], demo: DemoServer) -> Either:
    """A sync or async client on the demo API."""
    return make_client(base_url=demo.url)
