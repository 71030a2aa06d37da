"""A caller cancelled by asyncio while its response closes still hands the connection back.

httpcore releases a pooled connection at the end of its close; asyncio's own
cancellation (``task.cancel()``, ``asyncio.timeout``, ``wait_for``) landing at a
checkpoint inside that close used to leave the connection in use for good, until
the pool ran out (encode/httpcore#1093, which plain httpx shows too). Each test
cancels the caller at the first checkpoint of httpcore's close, found by an event
set as the close begins; no test waits for time to pass.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpcore._async.connection_pool import PoolByteStream

import buttress
from buttress.testing import DemoServer
from buttress.transports import stack

pytestmark = pytest.mark.anyio

# httpcore's pooled body, whose close hands the connection back (private to httpcore)
_POOLED_BODY: Any = PoolByteStream


@pytest.fixture
def closing(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set as httpcore starts closing a pooled body; the close then goes on as it would."""
    began = asyncio.Event()
    close = _POOLED_BODY.aclose

    async def announced(self: Any) -> None:
        began.set()  # the test runs at the close's first checkpoint, and cancels
        await close(self)

    monkeypatch.setattr(_POOLED_BODY, "aclose", announced)
    return began


def _network() -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))


def _in_use(network: httpx.AsyncHTTPTransport) -> list[str]:
    pool = network._pool
    return [repr(c) for c in pool.connections if not (c.is_idle() or c.is_closed())]


def _client(kind: str, url: str, network: httpx.AsyncHTTPTransport) -> httpx.AsyncClient:
    if kind == "facade":
        return buttress.AsyncClient(base_url=url, transport=network, retry=False)
    return httpx.AsyncClient(base_url=url, transport=stack(network, guard=True))


async def _cancelled_as_it_closes(
    client: httpx.AsyncClient, closing: asyncio.Event, call: Callable[[], Any]
) -> None:
    task = asyncio.create_task(call())
    await closing.wait()  # the body is read; httpcore's close has begun
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the call was not cancelled")


@pytest.mark.parametrize("kind", ["facade", "stack"])
async def test_a_caller_cancelled_as_its_body_closes_leaves_the_connection_free(
    demo: DemoServer, closing: asyncio.Event, kind: str
) -> None:
    network = _network()
    async with _client(kind, demo.url, network) as client:
        await _cancelled_as_it_closes(client, closing, lambda: client.get("/users/1"))
        assert _in_use(network) == []
        # the pool's only connection serves the next call
        assert (await client.get("/users/2")).status_code == 200


async def test_a_streamed_body_closed_by_its_reader_as_it_is_cancelled(
    demo: DemoServer, closing: asyncio.Event
) -> None:
    network = _network()
    async with _client("facade", demo.url, network) as client:

        async def stream() -> None:
            async with client.stream("GET", "/users/1") as response:
                await response.aread()

        await _cancelled_as_it_closes(client, closing, stream)
        assert _in_use(network) == []


_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


class _ContextBody(httpx.AsyncByteStream):
    """A body whose close resets a context variable its transport set: tracing does so."""

    def __init__(self, token: contextvars.Token[str]) -> None:
        self._token = token

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"

    async def aclose(self) -> None:
        _seen.reset(self._token)  # raises ValueError in any other context


class _ContextTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        token = _seen.set("in flight")
        return httpx.Response(200, stream=_ContextBody(token), request=request)


@pytest.mark.parametrize("kind", ["facade", "stack"])
async def test_other_bodies_close_in_the_callers_context(kind: str) -> None:
    # Only httpx's own pooled bodies are closed in a task of their own.
    transport = _ContextTransport()
    client = (
        buttress.AsyncClient(transport=transport, retry=False)
        if kind == "facade"
        else httpx.AsyncClient(transport=stack(transport, guard=True))
    )
    async with client:
        assert (await client.get("https://api.test/")).json() == {}
    assert _seen.get() == ""
