"""One test body for the four kinds of client a testing helper must serve.

``buttress.Client``, ``buttress.AsyncClient``, ``httpx.Client`` and
``httpx.AsyncClient``: ``await Caller(...).get(url)`` works for all of them.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx

import buttress

KINDS = ["buttress-sync", "buttress-async", "httpx-sync", "httpx-async"]


class Caller:
    """Wraps a client of one kind so a test awaits every call the same way."""

    def __init__(self, kind: str, transport: Any, base_url: str = "", **kwargs: Any) -> None:
        classes: dict[str, Any] = {
            "buttress-sync": buttress.Client,
            "buttress-async": buttress.AsyncClient,
            "httpx-sync": httpx.Client,
            "httpx-async": httpx.AsyncClient,
        }
        self.kind = kind
        self.is_buttress = kind.startswith("buttress")
        if self.is_buttress:
            # The helpers under test script each answer; retries would consume them.
            kwargs.setdefault("retry", False)
        self.client = classes[kind](base_url=base_url, transport=transport, **kwargs)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        result = self.client.request(method, url, **kwargs)
        response = await result if inspect.isawaitable(result) else result
        assert isinstance(response, httpx.Response)
        return response

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def stream_bytes(self, url: str) -> bytes:
        if isinstance(self.client, httpx.AsyncClient):
            async with self.client.stream("GET", url) as response:
                return b"".join([chunk async for chunk in response.aiter_bytes()])
        with self.client.stream("GET", url) as response:
            return b"".join(response.iter_bytes())

    async def aclose(self) -> None:
        result = self.client.aclose() if hasattr(self.client, "aclose") else self.client.close()
        if inspect.isawaitable(result):
            await result
