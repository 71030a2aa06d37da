"""A cached client answers as httpx alone does where the request itself shapes the answer.

Against a real origin on 127.0.0.1 serving several virtual hosts on one address, with
validators and HEAD: the ``Host`` a request names, the validators a caller sends itself
and a HEAD's ``Content-Length`` reach the caller as they would without the cache, on
``buttress.Client(cache=...)`` in every mode and on ``stack(cache=...)`` under a plain
httpx client, the second time from storage where storage may answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from buttress import CacheConfig, MemoryCache
from buttress.testing import DemoServer
from buttress.transports import stack
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True


class VirtualHosts:
    """ASGI: every host name gets its own page, fresh for a minute, with an ``ETag``.

    A matching ``If-None-Match`` gets a 304; HEAD gets the page's headers, its
    ``Content-Length`` included, and no body. ``hits`` counts what reached it.
    """

    def __init__(self) -> None:
        self.hits = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.hits += 1
        request = dict(scope["headers"])
        host = request[b"host"]
        body = b"the site of " + host
        etag = b'"' + host + b'"'
        headers = [(b"cache-control", b"max-age=60"), (b"etag", etag)]
        if request.get(b"if-none-match") == etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


@pytest.fixture(scope="module")
def origin() -> Iterator[DemoServer]:
    with DemoServer(VirtualHosts()) as server:
        yield server


CALLS = [
    ("GET", {"host": "a.example"}),
    ("GET", {"host": "b.example"}),
    ("GET", {"host": "a.example", "if-none-match": '"a.example"'}),
    ("GET", {"host": "b.example", "if-none-match": '"a.example"'}),
    ("HEAD", {"host": "a.example"}),
]


Seen = tuple[int, bytes, str | None, str | None]


def seen(response: httpx.Response) -> Seen:
    """What a caller sees of an answer: status, body, ``ETag`` and ``Content-Length``."""
    headers = response.headers
    return (
        response.status_code,
        response.content,
        headers.get("etag"),
        headers.get("content-length"),
    )


async def answers(client: Either[Any]) -> list[Seen]:
    return [
        seen(await client.request(method, "/page", headers=headers)) for method, headers in CALLS
    ]


@pytest.fixture
async def bare(mode: str, origin: DemoServer) -> AsyncIterator[Either[Any]]:
    """httpx alone, sync or async as the test's mode."""
    plain = httpx.Client if mode == "sync" else httpx.AsyncClient
    client = Either(plain(base_url=origin.url))
    yield client
    await client.aclose()


async def test_the_facade_answers_as_httpx_does(
    make_client: Callable[..., Either], origin: DemoServer, bare: Either[Any]
) -> None:
    expected = await answers(bare)
    assert [status for status, *_ in expected] == [200, 200, 304, 200, 200]
    cached = make_client(base_url=origin.url, cache=CacheConfig(backend=MemoryCache()))
    before = origin.app.hits
    assert await answers(cached) == expected
    assert await answers(cached) == expected
    # Storage answered the HEAD (from the stored GET) and, the second time, the plain
    # GETs too; the callers' validators went to the origin every time.
    assert origin.app.hits - before == 4 + 2


async def test_stack_on_a_plain_client_answers_as_httpx_does(
    mode: str, origin: DemoServer, bare: Either[Any]
) -> None:
    expected = await answers(bare)
    config = CacheConfig(backend=MemoryCache())
    plain = httpx.Client if mode == "sync" else httpx.AsyncClient
    network: Any = httpx.HTTPTransport() if mode == "sync" else httpx.AsyncHTTPTransport()
    cached = Either(plain(base_url=origin.url, transport=stack(network, cache=config)))
    try:
        assert await answers(cached) == expected
        assert await answers(cached) == expected
    finally:
        await cached.aclose()
