"""A scripted origin for cache tests: each test says what the server answers."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx

from buttress.testing import FakeClock
from tests.transports.conftest import Plain

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


def httpx_client(transport: Any, is_async: bool, base_url: str = "https://api.test") -> Plain:
    """A plain ``httpx.Client`` or ``httpx.AsyncClient`` over ``transport``."""
    cls: Any = httpx.AsyncClient if is_async else httpx.Client
    return Plain(cls(transport=transport, base_url=base_url))
