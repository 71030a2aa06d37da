"""A caller cancelled by asyncio while its response closes still hands the connection back.

httpcore releases a pooled connection at the end of its close; asyncio's own
cancellation (``task.cancel()``, ``asyncio.timeout``, ``wait_for``) landing at a
checkpoint inside that close used to leave the connection in use for good, until
the pool ran out (encode/httpcore#1093, which plain httpx shows too). Each test
cancels the caller at the first checkpoint of the close, found by an event the
body sets as its close begins; no test waits for time to pass.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import httpx
import pytest

import buttress
from buttress.testing import DemoServer
from buttress.transports import stack

pytestmark = pytest.mark.anyio


class _ClosingBody(httpx.AsyncByteStream):
    """The network's body, announcing when its close begins."""

    def __init__(self, body: httpx.AsyncByteStream, closing: asyncio.Event) -> None:
        self._body, self._closing = body, closing

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            yield chunk

    async def aclose(self) -> None:
        self._closing.set()  # the test runs at the close's first checkpoint, and cancels
        await self._body.aclose()


class _Announcing(httpx.AsyncBaseTransport):
    """httpx's real pooled transport, its bodies announcing their close."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=1))
        self.closing = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.network.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ClosingBody(response.stream, self.closing)
        return response

    async def aclose(self) -> None:
        await self.network.aclose()


def _in_use(transport: _Announcing) -> list[str]:
    pool = transport.network._pool
    return [repr(c) for c in pool.connections if not (c.is_idle() or c.is_closed())]


@pytest.mark.parametrize("kind", ["facade", "stack"])
async def test_a_caller_cancelled_as_its_body_closes_leaves_the_connection_free(
    demo: DemoServer, kind: str
) -> None:
    network = _Announcing()
    client = (
        buttress.AsyncClient(base_url=demo.url, transport=network, retry=False)
        if kind == "facade"
        else httpx.AsyncClient(base_url=demo.url, transport=stack(network, guard=True))
    )
    async with client:
        call = asyncio.create_task(client.get("/users/1"))
        await network.closing.wait()  # the body is read; its close has begun
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert _in_use(network) == []
        # the pool's only connection serves the next call
        assert (await client.get("/users/2")).status_code == 200


async def test_a_close_that_fails_after_the_caller_was_cancelled_is_not_reported_twice(
    demo: DemoServer,
) -> None:
    # The caller gets its cancellation; the close's own failure is taken, not logged by
    # asyncio as "never retrieved".
    class _Failing(_Announcing):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            body = response.stream
            assert isinstance(body, _ClosingBody)
            close = body.aclose

            async def fail_after_a_checkpoint() -> None:
                await close()
                raise httpx.ReadError("closed badly")

            body.aclose = fail_after_a_checkpoint  # type: ignore[method-assign]
            return response

    network = _Failing()
    unretrieved: list[object] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))
    try:
        async with buttress.AsyncClient(
            base_url=demo.url, transport=network, retry=False
        ) as client:
            call = asyncio.create_task(client.get("/users/1"))
            await network.closing.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        gc.collect()  # asyncio reports an exception never taken when its task is collected
    finally:
        loop.set_exception_handler(None)
    assert unretrieved == []
