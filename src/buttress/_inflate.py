"""What a compressed body inflates to, measured without holding it.

httpx decodes a body's ``Content-Encoding`` one network chunk at a time, each
chunk in one call: 64 KiB of gzip can become 64 MB, and a few hundred bytes of
brotli 200 MB. :class:`InflatedSize` runs the same codings beside httpx on the
raw chunks, in output pieces of at most :data:`PIECE` bytes that it counts and
drops, so the body guard can refuse the chunk that would cross the size limit
before httpx inflates it.

It decodes what httpx decodes: ``gzip``, ``deflate``, and ``br`` and ``zstd``
when their packages (``brotli`` or ``brotlicffi``, ``zstandard``) are
installed; other names, ``identity`` included, are skipped, as httpx skips them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["PIECE", "InflatedSize"]

PIECE = 64 * 1024
"""The most decoded output a coding produces per step (brotli may overshoot it by half)."""

_Emit = Callable[[bytes], None]


class _Enough(Exception):
    """Raised by the counter once the limit is passed: stop decoding this chunk."""


class _Zlib:
    """gzip and deflate. deflate starts as zlib-wrapped and falls back to raw, as httpx does."""

    error: type[Exception] = zlib.error

    def __init__(self, emit: _Emit, *, gzip: bool) -> None:
        self._emit = emit
        self._fallback = not gzip  # deflate only: some servers send it without the zlib header
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        if self._fallback:
            self._fallback = False
            try:
                piece = self._decoder.decompress(data, PIECE)
            except zlib.error:
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                piece = self._decoder.decompress(data, PIECE)
            self._drain(piece)
        else:
            self._drain(self._decoder.decompress(data, PIECE))

    def _drain(self, piece: bytes) -> None:
        # A full piece may leave output inside zlib even when all input went in.
        while True:
            if piece:
                self._emit(piece)
            tail = self._decoder.unconsumed_tail
            if not tail and len(piece) < PIECE:
                return
            piece = self._decoder.decompress(tail, PIECE)


class _Brotli:
    """br, bounded where the package can bound its output (brotli / brotlicffi 1.2 and later)."""

    def __init__(self, module: Any, emit: _Emit) -> None:
        self.error: type[Exception] = module.error
        self._emit = emit
        self._decoder = module.Decompressor()
        # brotli names it process, brotlicffi decompress (as httpx tells them apart).
        self._process = getattr(self._decoder, "process", None) or self._decoder.decompress
        self._bounded = hasattr(self._decoder, "can_accept_more_data")

    def feed(self, data: bytes) -> None:
        if not self._bounded:  # an older release: each chunk inflates whole, as in httpx
            self._emit(self._process(data))
            return
        piece = self._process(data, output_buffer_limit=PIECE)
        # Output can still be pending once more input would be accepted: drain until empty.
        while piece or not self._decoder.can_accept_more_data():
            self._emit(piece)
            piece = self._process(b"", output_buffer_limit=PIECE)


class _Zstd:
    """zstd, every frame of the body (as httpx), written out in pieces of ``PIECE`` bytes."""

    def __init__(self, module: Any, emit: _Emit) -> None:
        self.error: type[Exception] = module.ZstdError
        self._emit = emit
        self._writer = module.ZstdDecompressor().stream_writer(
            self, write_size=PIECE, write_return_read=True
        )

    def write(self, piece: bytes) -> int:  # the decompressor's output goes here
        self._emit(bytes(piece))
        return len(piece)

    def feed(self, data: bytes) -> None:
        self._writer.write(data)


def _brotli() -> Any:
    """The brotli bindings httpx would use: ``brotli``, else ``brotlicffi``."""
    try:
        import brotli
    except ImportError:
        import brotlicffi  # pyright: ignore[reportMissingImports]

        return brotlicffi
    return brotli


def _coding(name: str, emit: _Emit) -> _Zlib | _Brotli | _Zstd | None:
    """The decoder httpx would use for ``name``, or ``None`` where httpx passes bytes through."""
    try:
        if name in ("gzip", "deflate"):
            return _Zlib(emit, gzip=name == "gzip")
        if name == "br":
            return _Brotli(_brotli(), emit)
        if name == "zstd":
            import zstandard

            return _Zstd(zstandard, emit)
    except ImportError:  # httpx cannot decode it either: the raw bytes are the body
        return None
    return None


class InflatedSize:
    """Counts the decoded size of a body from its raw chunks, up to just past ``limit``.

    ``size`` stops growing once it exceeds ``limit``: nothing more is decoded.
    A body that does not decode stops the count where it breaks (httpx's decoder
    raises ``DecodingError`` on the same bytes).

    Examples:
        >>> import gzip
        >>> headers = httpx.Headers({"content-encoding": "gzip"})
        >>> meter = InflatedSize.of(headers, limit=1000)
        >>> meter.feed(gzip.compress(bytes(5000))) > 1000
        True
        >>> InflatedSize.of(httpx.Headers({"content-encoding": "identity"}), limit=1000) is None
        True
    """

    def __init__(self, names: list[str], limit: int) -> None:
        self.size = 0
        self.names = names
        self._limit = limit
        emit: _Emit = self._count
        codings: list[_Zlib | _Brotli | _Zstd] = []
        # Content-Encoding lists codings in the order applied: undo the last first.
        for name in names:
            coding = _coding(name, emit)
            if coding is not None:
                codings.append(coding)
                emit = coding.feed
        self._first: _Zlib | _Brotli | _Zstd | None = codings[-1] if codings else None
        self._errors = tuple(coding.error for coding in codings)

    @classmethod
    def of(cls, headers: httpx.Headers, *, limit: int) -> InflatedSize | None:
        """A meter for a response with these headers, or ``None`` when httpx decodes nothing."""
        names = [
            name.strip().lower() for name in headers.get_list("content-encoding", split_commas=True)
        ]
        meter = cls(names, limit)
        return meter if meter._first is not None else None

    def _count(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self._limit:
            raise _Enough

    def feed(self, data: bytes) -> int:
        """Decode ``data`` (the next raw chunk) and return the decoded size so far."""
        if self._first is None or not data or self.size > self._limit:
            return self.size
        try:
            self._first.feed(data)
        except _Enough:
            pass
        except self._errors:  # a damaged body: httpx reports it when it decodes these bytes
            self._first = None
        return self.size
