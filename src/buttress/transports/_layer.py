"""What every layer shares: forwarding lifecycle calls to the wrapped transport, driving flows.

:class:`Wrapper` is any transport of ours that wraps another: closing it, and
using it as a context manager, reaches the wrapped transport exactly as httpx's
client reaches its own transport (``httpx.Client.__enter__`` calls
``transport.__enter__()``, ``__exit__`` calls ``transport.__exit__(...)``).

A flow-driven layer subclasses :class:`Layer`, sets ``_inner`` and ``_clock``
and writes ``_flow(request)``; the rest is here, once.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx

from .._clock import Clock
from .._exceptions import ConfigurationError
from .._flow import Flow, adrive, drive

__all__ = ["Layer", "Wrapper"]

_W = TypeVar("_W", bound="Wrapper")
_T = TypeVar("_T", httpx.BaseTransport, httpx.AsyncBaseTransport)


class Wrapper(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A dual sync/async transport around ``_inner`` that passes lifecycle calls down to it."""

    _inner: httpx.BaseTransport | httpx.AsyncBaseTransport

    def _stop(self) -> None:
        """Stop what this layer runs by itself; called before the wrapped transport closes."""

    async def _astop(self) -> None:
        """The async twin of :meth:`_stop`."""

    def _below(self, kind: type[_T]) -> _T:
        """The wrapped transport as a client of ``kind`` reaches it: itself if it is a ``kind``,
        else a bare ``kind`` whose lifecycle calls do nothing (each client calls only its own)."""
        inner = self._inner
        return inner if isinstance(inner, kind) else kind()

    def __enter__(self: _W) -> _W:
        self._below(httpx.BaseTransport).__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop()
        self._below(httpx.BaseTransport).__exit__(*exc_info)

    async def __aenter__(self: _W) -> _W:
        await self._below(httpx.AsyncBaseTransport).__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._astop()
        await self._below(httpx.AsyncBaseTransport).__aexit__(*exc_info)

    def close(self) -> None:
        self._stop()
        self._below(httpx.BaseTransport).close()

    async def aclose(self) -> None:
        await self._astop()
        await self._below(httpx.AsyncBaseTransport).aclose()


class Layer(Wrapper):
    """A wrapper whose logic is one flow (see ``buttress._flow``), for both clients."""

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
