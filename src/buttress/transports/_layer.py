"""What every flow-driven layer shares: driving its flow for both clients, closing.

A layer subclasses :class:`Layer`, sets ``_inner`` and ``_clock`` and writes
``_flow(request)``; the rest is here, once.
"""

from __future__ import annotations

import httpx

from .._clock import Clock
from .._exceptions import ConfigurationError
from .._flow import Flow, adrive, drive

__all__ = ["Layer"]


class Layer(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A dual sync/async httpx transport whose logic is one flow (see ``buttress._flow``)."""

    _inner: httpx.BaseTransport | httpx.AsyncBaseTransport
    _clock: Clock

    def _flow(self, request: httpx.Request) -> Flow:
        raise NotImplementedError

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        if not isinstance(inner, httpx.BaseTransport):
            raise ConfigurationError(
                f"{type(self).__name__} wraps an async-only transport: use an httpx.AsyncClient"
            )
        return drive(self._flow(request), inner, self._clock)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        if not isinstance(inner, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                f"{type(self).__name__} wraps a sync-only transport: use it with httpx.Client"
            )
        return await adrive(self._flow(request), inner, self._clock)

    def close(self) -> None:
        if isinstance(self._inner, httpx.BaseTransport):
            self._inner.close()

    async def aclose(self) -> None:
        if isinstance(self._inner, httpx.AsyncBaseTransport):
            await self._inner.aclose()
