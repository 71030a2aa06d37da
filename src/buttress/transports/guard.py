"""The body guard layer: the size limit and truncation, checked on every attempt.

:class:`BodyGuardTransport` sits just above the network transport, so a body
cut short or grown past ``max_response_size`` fails *that attempt* with a
buttress error (:class:`~buttress.IncompleteResponseError`,
:class:`~buttress.ResponseTooLargeError`) which the retry layer above can judge,
whoever reads the body.

:class:`BodyGuard` holds the logic once; :class:`GuardedStream` only feeds it
chunks. The guard counts the raw
(still encoded) bytes the transport delivers, so it compares like with like
against ``Content-Length`` and stops at ``limit`` before buffering more. For a
compressed body it also measures what the raw bytes decode to
(:class:`~buttress._inflate.InflatedSize`), so the limit holds for the decoded
body too: the chunk that would inflate past it is refused before httpx
decodes it.
"""

from __future__ import annotations

import logging
from typing import cast

import httpx

from .._body import WatchedStream
from .._exceptions import IncompleteResponseError, ResponseTooLargeError, describe
from .._extensions import EXTENSION_KEY
from .._inflate import InflatedSize
from .._options import RequestOptions
from ._layer import Wrapper

__all__ = [
    "BodyGuard",
    "BodyGuardTransport",
    "GuardedAsyncStream",
    "GuardedStream",
    "GuardedSyncStream",
]

logger = logging.getLogger("buttress")

# h11 and httpcore phrase a cut-off body like this (Content-Length and chunked alike).
_TRUNCATION_HINTS = ("complete message body", "incomplete chunked read")
_NO_BODY_STATUSES = frozenset({204, 304})


def _framing(headers: httpx.Headers) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (``None``: none, repeated or not a number) and whether
    the body has a ``Content-Encoding``.

    One pass over the raw names: each ``get`` or ``in`` is a pass of its own that decodes
    every header, and this runs for every response.
    """
    lengths: list[bytes] = []
    encoded = False
    for name, value in headers.raw:
        name = name.lower()
        if name == b"content-length":
            lengths.append(value)
        elif name == b"content-encoding":
            encoded = True
    if len(lengths) != 1:  # httpx joins repeated values with commas: no number
        return None, encoded
    declared = lengths[0].decode(headers.encoding)
    return (int(declared) if declared.strip().isdigit() else None), encoded


class BodyGuard:
    """Counts a body's bytes; raises past ``limit`` and when the body ends early.

    ``keep`` makes the guard hold references to the chunks (the client is
    buffering them anyway) so a truncation error can carry the partial body.

    Examples:
        >>> request = httpx.Request("GET", "https://api.example.com/x")
        >>> guard = BodyGuard(request, httpx.Headers({"content-length": "3"}), 200, limit=10)
        >>> guard.check_declared()
        >>> guard.chunk(b"abc")
        b'abc'
        >>> guard.finish()
    """

    def __init__(
        self,
        request: httpx.Request,
        headers: httpx.Headers,
        status_code: int,
        *,
        limit: int | None,
        keep: bool = False,
    ) -> None:
        self._request = request
        self._limit = limit
        self._keep = keep
        self._chunks: list[bytes] = []
        self.received = 0
        has_body = request.method != "HEAD" and status_code >= 200
        has_body = has_body and status_code not in _NO_BODY_STATUSES
        self.expected: int | None = None
        self._inflated: InflatedSize | None = None
        if not has_body:
            return
        self.expected, encoded = _framing(headers)
        if limit is not None and encoded:
            self._inflated = InflatedSize.of(headers, limit=limit)

    def _too_large(self, received: int, how: str) -> ResponseTooLargeError:
        limit = self._limit or 0
        return ResponseTooLargeError(
            f"response to {describe(self._request)} is larger than max_response_size="
            f"{limit} bytes ({how}); raise the limit with Client(max_response_size=...) or "
            f"per call with max_response_size=..., or read it with client.stream()",
            limit=limit,
            received=received,
        )

    def check_declared(self) -> None:
        """Fail before reading when ``Content-Length`` already exceeds the limit."""
        if self._limit is not None and self.expected is not None and self.expected > self._limit:
            raise self._too_large(self.expected, f"Content-Length is {self.expected}")

    def chunk(self, data: bytes) -> bytes:
        """Account for ``data``; returns it, or raises once the limit is passed."""
        self.received += len(data)
        limit = self._limit
        if limit is not None:
            if self.received > limit:
                self._chunks.clear()
                raise self._too_large(self.received, f"{self.received} bytes arrived")
            inflated = self._inflated
            if inflated is not None and inflated.feed(data) > limit:
                self._chunks.clear()
                codings = ", ".join(inflated.names)
                raise self._too_large(
                    inflated.size, f"{inflated.size} bytes once decoded from {codings}"
                )
        if self._keep:
            self._chunks.append(data)
        return data

    def _incomplete(self, detail: str) -> IncompleteResponseError:
        expected = f" of {self.expected}" if self.expected is not None else ""
        message = (
            f"response to {describe(self._request)} was cut off after {self.received}{expected} "
            f"bytes ({detail})"
        )
        logger.debug("%s", message)  # raised to the caller, who decides how bad it is
        return IncompleteResponseError(
            message,
            received=self.received,
            expected=self.expected,
            partial=b"".join(self._chunks),
            request=self._request,
        )

    def failed(self, exc: Exception) -> Exception:
        """The exception to raise for ``exc`` met while reading (truncations are translated)."""
        if isinstance(exc, httpx.RemoteProtocolError) and any(
            hint in str(exc) for hint in _TRUNCATION_HINTS
        ):
            return self._incomplete(str(exc) or "connection closed")
        return exc

    def finish(self) -> None:
        """The body ended cleanly; check it against ``Content-Length``."""
        if self.expected is not None and self.received < self.expected:
            raise self._incomplete("the connection closed early")
        self._chunks.clear()


class GuardedStream(WatchedStream):
    """Feeds a body stream, sync or async, through a :class:`BodyGuard`."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, guard: BodyGuard):
        super().__init__(stream)
        self._guard = guard

    def _started(self) -> None:
        self._guard.check_declared()

    def _chunk(self, data: bytes) -> bytes:
        return self._guard.chunk(data)

    def _ended(self) -> None:
        self._guard.finish()

    def _failure(self, exc: Exception) -> Exception:
        return self._guard.failed(exc)


# The names of the two classes it replaces.
GuardedSyncStream = GuardedAsyncStream = GuardedStream


def _guard(request: httpx.Request, response: httpx.Response) -> BodyGuard:
    options = request.extensions.get(EXTENSION_KEY)
    if not isinstance(options, RequestOptions):  # a plain httpx request: no limit, and
        # it may be a stream, so nothing is held
        return BodyGuard(request, response.headers, response.status_code, limit=None)
    # A buffered body keeps its chunks so a truncation error can carry them; a
    # stream is never held.
    return BodyGuard(
        request,
        response.headers,
        response.status_code,
        limit=options.max_response_size,
        keep=not options.streamed,
    )


class BodyGuardTransport(Wrapper):
    """Watch every response body ``inner`` returns (limit from ``max_response_size``).

    Examples:
        >>> import httpx, buttress
        >>> from buttress.testing import DemoServer
        >>> transport = BodyGuardTransport(httpx.HTTPTransport())
        >>> limit = buttress.options(max_response_size=1000)
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     try:
        ...         client.get(f"{server.url}/download?size=5000", extensions=limit)
        ...     except buttress.ResponseTooLargeError as error:
        ...         print(error.limit)
        1000
    """

    def __init__(self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = cast(httpx.BaseTransport, self._inner).handle_request(request)
        response.stream = GuardedStream(response.stream, _guard(request, response))
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await cast(httpx.AsyncBaseTransport, self._inner).handle_async_request(request)
        response.stream = GuardedStream(response.stream, _guard(request, response))
        return response

    def __repr__(self) -> str:
        return f"BodyGuardTransport({self._inner!r})"
