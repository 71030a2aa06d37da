"""A scripted origin for cache tests: each test says what the server answers."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx

from buttress.testing import FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


class Origin:
    """An ``httpx.MockTransport`` whose answers a test scripts; every request is recorded.

    ``answer(...)`` sets the response for every following request; ``Date`` is
    filled from the fake clock unless given.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b'{"v": 1}'
        self.handler: Handler | None = None
        self.transport = httpx.MockTransport(self._handle)

    def answer(
        self,
        status: int = 200,
        body: bytes = b'{"v": 1}',
        handler: Handler | None = None,
        **headers: str,
    ) -> None:
        self.status, self.body, self.handler = status, body, handler
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}

    def date(self, offset: float = 0.0) -> str:
        return formatdate(self.clock.time() + offset, usegmt=True)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is not None:
            return self.handler(request)
        headers = {"date": self.date(), **self.headers}
        return httpx.Response(self.status, headers=headers, content=self.body)

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


class Caller:
    """One awaitable API over a plain ``httpx.Client`` or ``httpx.AsyncClient``."""

    def __init__(self, transport: Any, is_async: bool, base_url: str = "https://api.test") -> None:
        self.is_async = is_async
        self.client: httpx.Client | httpx.AsyncClient = (
            httpx.AsyncClient(transport=transport, base_url=base_url)
            if is_async
            else httpx.Client(transport=transport, base_url=base_url)
        )

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
