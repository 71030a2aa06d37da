"""WatchedStream: one set of hooks, read and closed the same way by both protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from buttress._body import WatchedStream

pytestmark = pytest.mark.anyio


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Two chunks, then ``fail`` while reading (or at once when closed, if ``on_close``)."""

    def __init__(self, fail: Exception | None = None, *, on_close: bool = False) -> None:
        self._fail, self._on_close = fail, on_close

    def _chunks(self) -> Iterator[bytes]:
        yield b"ab"
        yield b"cd"
        if self._fail is not None and not self._on_close:
            raise self._fail

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk

    def close(self) -> None:
        if self._on_close and self._fail is not None:
            raise self._fail

    async def aclose(self) -> None:
        self.close()


class Journal(WatchedStream):
    """Records every hook call; turns a ``KeyError`` into a ``LookupError`` it names."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        super().__init__(stream)
        self.calls: list[str] = []

    def _started(self) -> None:
        self.calls.append("started")

    def _chunk(self, data: bytes) -> bytes:
        self.calls.append(data.decode())
        return data.upper()

    def _ended(self) -> None:
        self.calls.append("ended")

    def _closed(self) -> None:
        self.calls.append("closed")

    def _failure(self, exc: Exception) -> Exception:
        return LookupError("translated") if isinstance(exc, KeyError) else exc


async def read(body: WatchedStream, asynchronous: bool) -> bytes:
    if asynchronous:
        return b"".join([chunk async for chunk in body])
    return b"".join(body)


async def close(body: WatchedStream, asynchronous: bool) -> None:
    if asynchronous:
        await body.aclose()
    else:
        body.close()


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def asynchronous(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def test_every_chunk_passes_through_the_hooks_in_order(asynchronous: bool) -> None:
    body = Journal(Broken())
    assert await read(body, asynchronous) == b"ABCD"
    await close(body, asynchronous)
    assert body.calls == ["started", "ab", "cd", "ended", "closed"]


async def test_a_failure_while_reading_is_translated_and_the_end_is_not_reported(
    asynchronous: bool,
) -> None:
    body = Journal(Broken(KeyError("gone")))
    with pytest.raises(LookupError, match="translated") as raised:
        await read(body, asynchronous)
    assert isinstance(raised.value.__cause__, KeyError)
    assert body.calls == ["started", "ab", "cd"]


async def test_an_untranslated_failure_is_raised_as_it_is(asynchronous: bool) -> None:
    failure = ValueError("as it is")
    body = Journal(Broken(failure))
    with pytest.raises(ValueError, match="as it is") as raised:
        await read(body, asynchronous)
    assert raised.value is failure
    assert raised.value.__cause__ is None


async def test_a_failing_close_is_translated_and_still_reports_the_close(
    asynchronous: bool,
) -> None:
    body = Journal(Broken(KeyError("gone"), on_close=True))
    with pytest.raises(LookupError, match="translated"):
        await close(body, asynchronous)
    assert body.calls == ["closed"]


class SyncOnly(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"never read"


class AsyncOnly(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"never read"


async def test_the_other_protocol_raises_a_clear_error_and_reads_nothing(
    asynchronous: bool,
) -> None:
    body = Journal(SyncOnly() if asynchronous else AsyncOnly())
    kind = "sync" if asynchronous else "async"
    with pytest.raises(RuntimeError, match=f"Attempted to use a {kind} response body"):
        await read(body, asynchronous)
    with pytest.raises(RuntimeError, match=f"Attempted to use a {kind} response body"):
        await close(body, asynchronous)
    assert body.calls == []


def test_outside_asyncio_the_close_runs_in_place() -> None:
    # Under trio no asyncio loop runs: the close is awaited as it is, not made an asyncio task.
    closed: list[bool] = []

    class Plain(httpx.AsyncByteStream):
        async def aclose(self) -> None:
            closed.append(True)

    body = Journal(Plain())
    closing = body.aclose()
    with pytest.raises(StopIteration):
        closing.send(None)  # driven by hand, as a foreign event loop would: it ends at once
    assert closed == [True]
    assert body.calls == ["closed"]
