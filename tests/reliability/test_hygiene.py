"""Resource hygiene: connections, descriptors and clients are released, sync and async."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

import buttress
from buttress import TimeoutConfig
from buttress.testing import Fault, FaultServer
from tests.conftest import Either

from .conftest import needs_proc_fd, open_fds

pytestmark = pytest.mark.anyio

ONE_CONNECTION = {"max_connections": 1, "timeout": TimeoutConfig(pool=1, read=5)}


async def _read_one_chunk_and_break(either: Either, url: str) -> None:
    client = either.client
    if isinstance(client, buttress.AsyncClient):
        async with client.stream("GET", url) as response:
            async for _chunk in response.aiter_bytes():
                break
    else:
        with client.stream("GET", url) as response:
            for _chunk in response.iter_bytes():
                break


async def test_abandoned_stream_releases_its_connection(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    # A body far bigger than the socket buffers: the connection is busy when abandoned.
    fault_server.route("/big", Fault.huge_body(32 << 20))
    client = make_client(base_url=fault_server.url, **ONE_CONNECTION)
    for _ in range(3):
        await _read_one_chunk_and_break(client, "/big")
    # With a pool of one, a connection still held by an abandoned stream would be a PoolTimeout.
    assert (await client.get("/small")).status_code == 200
    assert fault_server.count(path="/big") == 3


async def test_stream_left_by_an_exception_releases_its_connection(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    fault_server.route("/big", Fault.huge_body(32 << 20))
    client = make_client(base_url=fault_server.url, **ONE_CONNECTION)
    for _ in range(3):
        with pytest.raises(KeyError):
            await _raise_inside_stream(client, "/big")
    assert (await client.get("/small")).status_code == 200


async def _raise_inside_stream(either: Either, url: str) -> None:
    client = either.client
    if isinstance(client, buttress.AsyncClient):
        async with client.stream("GET", url):
            raise KeyError("the caller's own bug")
    with client.stream("GET", url):
        raise KeyError("the caller's own bug")


async def test_close_twice_is_harmless(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    client = make_client(base_url=fault_server.url)
    await client.get("/x")
    await client.aclose()
    await client.aclose()
    assert client.client.is_closed
    with pytest.raises(buttress.ClientError, match="closed"):
        await client.get("/x")


def _make_and_drop(cls: type[buttress.Client | buttress.AsyncClient]) -> None:
    cls(base_url="http://127.0.0.1:1")
    gc.collect()


@pytest.mark.parametrize("cls", [buttress.Client, buttress.AsyncClient])
def test_unclosed_client_warns(cls: type[buttress.Client | buttress.AsyncClient]) -> None:
    with pytest.warns(ResourceWarning, match="unclosed"):
        _make_and_drop(cls)


@pytest.mark.parametrize("cls", [buttress.Client, buttress.AsyncClient])
def test_closed_client_does_not_warn(cls: type[buttress.Client | buttress.AsyncClient]) -> None:
    client = cls(base_url="http://127.0.0.1:1")
    if isinstance(client, buttress.Client):
        client.close()
    else:
        import asyncio

        asyncio.run(client.aclose())
    del client
    gc.collect()  # filterwarnings=error: a ResourceWarning here fails the test


REQUESTS = 10_000


@needs_proc_fd
async def test_ten_thousand_requests_leave_no_descriptor_behind(
    make_client: Callable[..., Either], fault_server: FaultServer
) -> None:
    # Every 50th answer breaks its connection, so connections are opened and dropped all along.
    fault_server.route("/reset", Fault.reset_before_headers())
    fault_server.route("/close", Fault.close())
    fault_server.route("/truncated", Fault.truncated())
    broken = ["/reset", "/close", "/truncated"]
    before = open_fds()
    client = make_client(base_url=fault_server.url, retry=False)  # one connection per failure
    failures = 0
    for number in range(REQUESTS):
        path = broken[number // 50 % 3] if number % 50 == 49 else "/ok"
        try:
            await client.get(path)
        except buttress.ConnectionError:
            failures += 1
    await client.aclose()
    assert failures == REQUESTS // 50
    assert fault_server.wait_idle()
    assert open_fds() == before
    # One connection at the start, and a new one after every broken answer but the last.
    assert fault_server.connections == failures
