"""The size limit holds for decoded bytes: decompression bombs from a real server.

Each bomb is 200 MiB of zeros compressed with one content coding (gzip is
about 200 KB of it, brotli a few hundred bytes); the client's limit is 1 MiB.
Every coding httpx decodes is served by an ASGI app on 127.0.0.1 and read
buffered and streamed (bytes, text, lines), by both facades, over the aiohttp
backend, and by plain httpx clients on the drop-in body guard. Peak memory is
measured with tracemalloc and must stay within a few times the limit.
"""

from __future__ import annotations

import contextlib
import gzip
import inspect
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import brotli
import httpx
import pytest
import zstandard

import buttress
from buttress._inflate import PIECE, InflatedSize, _Brotli
from buttress.testing import DemoServer
from buttress.transports import BodyGuardTransport
from buttress.transports.guard import BodyGuard
from tests.conftest import Either

pytestmark = pytest.mark.anyio
ALSO_ON_AIOHTTP = True  # the aiohttp backend delivers raw bytes too (it never decompresses)

LIMIT = 1 << 20
BOMB = 200 << 20
STEP = 1 << 20  # zeros go into the compressors a mebibyte at a time: never 200 MiB at once
# The decoded body up to the limit can be held twice (httpx's chunk list and the
# joined content, or a decoded chunk and its text), plus a raw chunk, decoder
# pieces and the server's copy of the compressed body. A bomb that inflated even
# one 64 KiB gzip chunk would need 64 MiB.
PEAK_BOUND = 4 * LIMIT

CODINGS = ["gzip", "deflate", "br", "zstd", "gzip, br"]  # the last one stacks two codings
READS = ["read", "iter_bytes", "iter_text", "iter_lines"]


def _zeros(size: int) -> Iterator[bytes]:
    zeros = bytes(STEP)
    for start in range(0, size, STEP):
        yield zeros[: min(STEP, size - start)]


def _encode(coding: str, pieces: Iterator[bytes]) -> bytes:
    """``pieces`` compressed with ``coding`` (a single name), without holding them all."""
    out = []
    if coding in ("gzip", "deflate"):
        zipper = zlib.compressobj(
            9, zlib.DEFLATED, zlib.MAX_WBITS | (16 if coding == "gzip" else 0)
        )
        out = [zipper.compress(piece) for piece in pieces] + [zipper.flush()]
    elif coding == "br":
        squeezer = brotli.Compressor(quality=5)
        out = [squeezer.process(piece) for piece in pieces] + [squeezer.finish()]
    else:
        packer = zstandard.ZstdCompressor().compressobj()
        out = [packer.compress(piece) for piece in pieces] + [packer.flush()]
    return b"".join(out)


def encode(codings: str, pieces: Iterator[bytes]) -> bytes:
    """``pieces`` with every coding of a Content-Encoding value applied, in its order."""
    names = [name.strip() for name in codings.split(",")]
    body = _encode(names[0], pieces)
    for name in names[1:]:
        body = _encode(name, iter([body]))
    return body


FITS = b'{"rows": [' + b",".join(b'{"n": %d}' % n for n in range(60_000)) + b"]}"  # ~670 KB
_FITS_GZIP = gzip.compress(FITS)
DAMAGED = _FITS_GZIP[:100] + b"\xff" * 50 + _FITS_GZIP[150:]  # gzip that breaks early on


class CompressedApp:
    """``GET /?coding=gzip&body=bomb|fits[&chunked=1]``: a pre-compressed body, as served."""

    def __init__(self, bodies: dict[tuple[str, str], bytes]) -> None:
        self.bodies = bodies

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        coding = query["coding"]
        body = self.bodies[coding, query["body"]]
        headers = [(b"content-type", b"application/json"), (b"content-encoding", coding.encode())]
        if query.get("chunked") != "1":
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(body), 16_384):
            piece = body[start : start + 16_384]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="session")
def compressed() -> Iterator[DemoServer]:
    """The bombs and the well-behaved bodies, compressed once, served on 127.0.0.1."""
    bodies: dict[tuple[str, str], bytes] = {}
    for coding in CODINGS:
        bodies[coding, "bomb"] = encode(coding, _zeros(BOMB))
        bodies[coding, "fits"] = encode(coding, iter([FITS]))
    bodies["gzip", "damaged"] = DAMAGED
    with DemoServer(CompressedApp(bodies)) as server:
        yield server


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Yields a list that receives the peak of traced allocations made inside the block."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


async def consume(
    client: httpx.Client | httpx.AsyncClient, how: str, url: str, **kwargs: Any
) -> int:
    """Read the body of ``GET url`` as ``how`` says; returns the decoded bytes (or characters)."""
    if how == "read":
        got = client.get(url, **kwargs)
        response = await got if inspect.isawaitable(got) else got
        assert isinstance(response, httpx.Response)
        return len(response.json()["rows"])
    size = 0
    if isinstance(client, httpx.AsyncClient):
        async with client.stream("GET", url, **kwargs) as response:
            async for part in getattr(response, "a" + how)():
                size += len(part)
        return size
    with client.stream("GET", url, **kwargs) as response:
        for part in getattr(response, how)():
            size += len(part)
    return size


def query(coding: str, body: str, chunked: bool = False) -> str:
    return f"/?coding={coding}&body={body}&chunked={int(chunked)}"


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("how", READS)
async def test_a_bomb_stops_at_the_decoded_limit(
    make_client: Callable[..., Either], compressed: DemoServer, coding: str, how: str
) -> None:
    either = make_client(base_url=compressed.url, max_response_size=LIMIT)
    # A stream is limited only when the call asks; a buffered read has the client's limit.
    limit = {} if how == "read" else {"max_response_size": LIMIT}
    with peak_memory() as peak, pytest.raises(buttress.ResponseTooLargeError) as info:
        await consume(
            either.client, how, query(coding, "bomb", chunked=how == "iter_lines"), **limit
        )
    assert info.value.limit == LIMIT
    assert f"bytes once decoded from {coding})" in str(info.value)
    # Stopped within a decoder piece or two of the limit (brotli overshoots a piece by half).
    assert LIMIT < info.value.received <= LIMIT + 2 * PIECE
    assert peak[0] < PEAK_BOUND, f"peak {peak[0]:,} bytes for a {LIMIT:,}-byte limit"


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("how", ["read", "iter_bytes"])
async def test_a_body_under_the_limit_decodes_whole(
    make_client: Callable[..., Either], compressed: DemoServer, coding: str, how: str
) -> None:
    either = make_client(base_url=compressed.url, max_response_size=LIMIT)
    got = await consume(either.client, how, query(coding, "fits"), max_response_size=LIMIT)
    assert got == (60_000 if how == "read" else len(FITS))


@pytest.fixture(params=["httpx-sync", "httpx-async"])
async def plain(request: pytest.FixtureRequest) -> AsyncIterator[httpx.Client | httpx.AsyncClient]:
    """A plain httpx client on the drop-in body guard."""
    if request.param == "httpx-sync":
        with httpx.Client(transport=BodyGuardTransport(httpx.HTTPTransport())) as client:
            yield client
    else:
        async with httpx.AsyncClient(
            transport=BodyGuardTransport(httpx.AsyncHTTPTransport())
        ) as client:
            yield client


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("how", ["read", "iter_bytes"])
async def test_a_plain_httpx_client_on_the_guard_stops_a_bomb(
    plain: httpx.Client | httpx.AsyncClient, compressed: DemoServer, coding: str, how: str
) -> None:
    url = compressed.url + query(coding, "bomb")
    limit = buttress.options(max_response_size=LIMIT)
    with peak_memory() as peak, pytest.raises(buttress.ResponseTooLargeError) as info:
        await consume(plain, how, url, extensions=limit)
    assert LIMIT < info.value.received <= LIMIT + 2 * PIECE
    assert peak[0] < PEAK_BOUND, f"peak {peak[0]:,} bytes for a {LIMIT:,}-byte limit"
    # Without a limit the guard leaves the body to httpx: a well-behaved one decodes as usual.
    assert await consume(plain, how, compressed.url + query(coding, "fits")) in (60_000, len(FITS))


# --- the meter on its own ---------------------------------------------------------------------


def _httpx_size(codings: str, body: bytes) -> int:
    return len(httpx.Response(200, headers={"content-encoding": codings}, content=body).content)


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("step", [1, 1000, 1 << 20])
def test_meter_agrees_with_httpx_however_the_body_is_cut(coding: str, step: int) -> None:
    body = encode(coding, iter([FITS]))
    meter = InflatedSize.of(httpx.Headers({"content-encoding": coding}), limit=10 * len(FITS))
    assert meter is not None
    for start in range(0, len(body), step):
        meter.feed(body[start : start + step])
    assert meter.size == _httpx_size(coding, body) == len(FITS)


@pytest.mark.parametrize("coding", CODINGS)
def test_a_body_decoding_to_exactly_the_limit_passes(coding: str) -> None:
    body = encode(coding, iter([bytes(5000)]))
    request = httpx.Request("GET", "https://api.example.com/x")
    headers = httpx.Headers({"content-encoding": coding})
    BodyGuard(request, headers, 200, limit=5000).chunk(body)
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        BodyGuard(request, headers, 200, limit=4999).chunk(body)
    assert (info.value.limit, info.value.received) == (4999, 5000)


def test_raw_deflate_is_measured_like_httpx_decodes_it() -> None:
    squeezer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)  # no zlib header
    body = squeezer.compress(FITS) + squeezer.flush()
    meter = InflatedSize.of(httpx.Headers({"content-encoding": "deflate"}), limit=len(FITS))
    assert meter is not None
    assert meter.feed(body) == _httpx_size("deflate", body) == len(FITS)


@pytest.mark.parametrize("codings", ["identity", "compress", "x-unknown, identity", ""])
def test_codings_httpx_does_not_decode_need_no_meter(codings: str) -> None:
    assert InflatedSize.of(httpx.Headers({"content-encoding": codings}), limit=1) is None


def test_a_damaged_body_stops_the_count_and_httpx_reports_it() -> None:
    body, damaged = gzip.compress(FITS), DAMAGED
    meter = InflatedSize.of(httpx.Headers({"content-encoding": "gzip"}), limit=LIMIT)
    assert meter is not None
    size = meter.feed(damaged)
    assert size < len(FITS)
    assert meter.feed(body) == size  # nothing more is decoded once the body broke
    with pytest.raises(httpx.DecodingError):
        _httpx_size("gzip", damaged)


@pytest.mark.parametrize("how", ["read", "iter_bytes"])
async def test_a_damaged_body_is_a_decoding_error_not_a_size_error(
    make_client: Callable[..., Either], compressed: DemoServer, how: str
) -> None:
    either = make_client(base_url=compressed.url, max_response_size=LIMIT)
    with pytest.raises(buttress.DecodingError):
        await consume(either.client, how, query("gzip", "damaged"), max_response_size=LIMIT)


class _OlderBrotli:
    """The brotli bindings before 1.2: ``process`` takes no output limit."""

    error = brotli.error

    class Decompressor:
        def __init__(self) -> None:
            self._real = brotli.Decompressor()

        def process(self, data: bytes) -> bytes:
            return bytes(self._real.process(data))


def test_older_brotli_bindings_are_still_counted() -> None:
    sizes: list[int] = []
    coding = _Brotli(_OlderBrotli, lambda piece: sizes.append(len(piece)))
    coding.feed(encode("br", iter([FITS])))
    assert sum(sizes) == len(FITS)  # whole chunks at once: the limit holds, the memory bound not


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_the_demo_apis_compressed_endpoint(
    make_client: Callable[..., Either], demo: DemoServer, coding: str
) -> None:
    either = make_client(base_url=demo.url, max_response_size=LIMIT)
    small = await either.get("/compressed", params={"size": 5000, "coding": coding})
    assert (small.headers["content-encoding"], small.content) == (coding, bytes(5000))
    with pytest.raises(buttress.ResponseTooLargeError) as info:
        await either.get("/compressed", params={"size": BOMB, "coding": coding})
    assert LIMIT < info.value.received <= LIMIT + PIECE
    with pytest.raises(buttress.ClientResponseError, match="gzip or deflate"):
        await either.get("/compressed", params={"coding": "br"})
