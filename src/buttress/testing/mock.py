"""A mock REST API for unit tests: a thin layer over respx with the answers APIs really give.

respx matches requests and records calls; :class:`MockAPI` adds the answers a
REST client has to cope with (JSON bodies, error bodies, ``429`` and ``503``
with ``Retry-After``) and plays a sequence of them per route, the last one
repeating. Hand :attr:`MockAPI.transport` to any client (``buttress.Client``,
``buttress.AsyncClient``, a plain ``httpx.Client`` or ``httpx.AsyncClient``), or
use the object as a context manager to intercept every httpx client in the
block (respx's patching).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx

if TYPE_CHECKING:
    import respx
    from respx.models import CallList

from .._exceptions import ConfigurationError

__all__ = ["Answer", "MockAPI", "error_response", "json_response"]

Answer: TypeAlias = Any
"""What a route answers: an ``httpx.Response``, an exception (class or instance) to raise,
or any other value as the JSON body of a ``200``."""


def json_response(
    data: Any, status: int = 200, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A response with ``data`` as its JSON body.

    Examples:
        >>> json_response({"id": 1}, 201).json()
        {'id': 1}
    """
    return httpx.Response(status, json=data, headers=headers)


def _retry_after_value(seconds: float) -> str:
    """``seconds`` as a ``Retry-After`` value: ``2`` rather than ``2.0``."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """The ``{"error": {"message", "status"}}`` body the demo API (and these helpers) use."""
    return {
        "error": {"message": message or httpx.codes.get_reason_phrase(status), "status": status}
    }


def error_response(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """An error answer with an ``{"error": {"message", "status"}}`` body (the demo API's shape).

    ``retry_after`` (seconds) adds a ``Retry-After`` header.

    Examples:
        >>> response = error_response(429, retry_after=2)
        >>> response.status_code, response.headers["retry-after"]
        (429, '2')
    """
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers["Retry-After"] = _retry_after_value(retry_after)
    return httpx.Response(status, json=_error_body(status, message), headers=all_headers)


def _bodiless(status: int) -> bool:
    """Statuses that never carry content (RFC 9110 6.4.1): ``1xx``, ``204`` and ``304``."""
    return status < 200 or status in (204, 304)


def _encoded_body(response: httpx.Response) -> bytes:
    """The body of a response built with ``content=``/``json=``, as sent: still encoded."""
    assert isinstance(response.stream, httpx.ByteStream)
    return b"".join(response.stream)  # ``.content`` is decoded (gzip, ...): not what was sent


class _Recording(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A streamed answer's body, passed on chunk by chunk and kept for the later plays."""

    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream) -> None:
        self._stream = stream
        self.chunks: list[bytes] = []
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        if not isinstance(self._stream, httpx.SyncByteStream):
            raise RuntimeError("Attempted to call a sync iterator on an async stream.")
        for chunk in self._stream:
            self.chunks.append(chunk)
            yield chunk
        self.complete = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not isinstance(self._stream, httpx.AsyncByteStream):
            raise RuntimeError("Attempted to call an async iterator on a sync stream.")
        async for chunk in self._stream:
            self.chunks.append(chunk)
            yield chunk
        self.complete = True

    def close(self) -> None:
        if isinstance(self._stream, httpx.SyncByteStream):
            self._stream.close()

    async def aclose(self) -> None:
        if isinstance(self._stream, httpx.AsyncByteStream):
            await self._stream.aclose()


class _Replay(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A recorded streamed body, played again in the same chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


class _Streamed:
    """A streamed ``httpx.Response`` answer: its own stream the first time, a replay after."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lock = threading.Lock()
        self._recording: _Recording | None = None

    def stream(self) -> httpx.SyncByteStream | httpx.AsyncByteStream:
        with self._lock:
            if self._recording is None:
                self._recording = _Recording(self.response.stream)
                return self._recording
            if self._recording.complete:
                return _Replay(list(self._recording.chunks))
        raise ConfigurationError(
            "a streamed answer is played again only once its first play was read to the end:"
            " give one httpx.Response per call to answer calls that overlap"
        )


def _prepared(answer: Answer) -> Answer:
    """``answer`` checked once, when routed; a streamed response made playable again."""
    if not isinstance(answer, httpx.Response):
        return answer
    streamed = not isinstance(answer.stream, httpx.ByteStream)
    status = answer.status_code
    if _bodiless(status) and (streamed or _encoded_body(answer)):
        raise ConfigurationError(
            f"a {status} answer has no body (RFC 9110 6.4.1): build it without content= or json="
        )
    if streamed and answer.is_stream_consumed:
        raise ConfigurationError(
            "this streamed httpx.Response was already read: its bytes are gone; route a new one"
        )
    return _Streamed(answer) if streamed else answer


def _sent(
    response: httpx.Response,
    stream: httpx.SyncByteStream | httpx.AsyncByteStream,
    request: httpx.Request,
) -> httpx.Response:
    """A new response as a server sends ``response``: its status, headers and ``stream``."""
    headers = httpx.Headers(response.headers)
    if response.status_code == 204 or response.status_code < 200:
        headers.pop("Content-Length", None)  # RFC 9110 8.6: never in a 204
    return httpx.Response(
        response.status_code,
        headers=headers,
        stream=stream,
        request=request,
        extensions=dict(response.extensions),
    )


def _fresh(answer: Answer, request: httpx.Request) -> httpx.Response:
    """A new response (or a raised exception) for one call; responses are never shared.

    The body is the one a server would send: encoded as given (``Content-Encoding``
    is the client's to undo), streamed when the answer streams, and none for ``HEAD``.
    """
    if isinstance(answer, type) and issubclass(answer, BaseException):
        if issubclass(answer, httpx.RequestError):
            raise answer(f"mocked {answer.__name__}", request=request)
        raise answer()
    if isinstance(answer, BaseException):
        raise answer
    head = request.method == "HEAD"  # RFC 9110 9.3.2: the headers of a GET, no content
    if isinstance(answer, _Streamed):
        return _sent(answer.response, httpx.ByteStream(b"") if head else answer.stream(), request)
    response = answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)
    return _sent(response, httpx.ByteStream(b"" if head else _encoded_body(response)), request)


class _Sequence:
    """respx side effect: the answers in order, the last one repeating."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        if not answers:
            raise ConfigurationError("a mocked route needs at least one answer")
        self._answers = [_prepared(answer) for answer in answers]
        self._played = itertools.count()  # next() on a count is atomic: safe across threads

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = self._answers[min(next(self._played), len(self._answers) - 1)]
        return _fresh(answer, request)


class MockAPI:
    """A mocked REST API: routes with scripted answers, and the calls it received.

    Args:
        base_url: routes are relative to it (default ``https://api.example.test``).
        assert_all_called: fail on leaving the ``with`` block if a route was never called.

    Examples:
        >>> import buttress
        >>> api = MockAPI()
        >>> _ = api.json("GET", "/users/1", {"id": 1, "name": "Ada"})
        >>> _ = api.rate_limited("GET", "/users", retry_after=3, then={"data": []})
        >>> with buttress.Client(base_url=api.base_url, transport=api.transport) as client:
        ...     print(client.get("/users/1").json()["name"])
        ...     try:
        ...         client.get("/users", retry=False)  # retries would wait and try again
        ...     except buttress.RateLimitError as e:
        ...         print("retry in", e.retry_after)
        ...     print(client.get("/users").json())
        Ada
        retry in 3.0
        {'data': []}
        >>> len(api.calls)
        3
    """

    def __init__(
        self, base_url: str = "https://api.example.test", *, assert_all_called: bool = False
    ) -> None:
        try:
            import respx
        except ImportError:  # pragma: no cover - the test environment has it
            raise ConfigurationError(
                "MockAPI needs respx: pip install 'buttress[testing]'"
            ) from None
        self.base_url = base_url.rstrip("/")
        self.router = respx.MockRouter(
            base_url=self.base_url, assert_all_called=assert_all_called, assert_all_mocked=True
        )
        """The respx router: use it for anything the helpers do not cover."""
        self.transport = httpx.MockTransport(self.router.handler)
        """A sync and async httpx transport answering from the routes."""

    @property
    def calls(self) -> CallList:
        """Every call received, in order (respx's ``CallList``: ``.last.request``, ...)."""
        return self.router.calls

    def route(self, method: str, path: str, *answers: Answer) -> respx.Route:
        """Answer ``method path`` with ``answers`` in order; the last one repeats.

        An answer is an ``httpx.Response``, an exception (class or instance) to
        raise, or JSON data for a ``200``. Returns the respx route
        (``.calls``, ``.call_count``, ``.called``).

        A response goes out as a server would send it: the body as encoded
        (``Content-Encoding: gzip`` bytes stay gzip, for the client to decode), a
        streamed body streamed (played again from what the first play streamed,
        once that was read to the end), no body for ``HEAD``, no ``Content-Length``
        with a ``204``. A ``204`` or ``304`` with a body raises ``ConfigurationError``.

        Examples:
            >>> import httpx
            >>> api = MockAPI()
            >>> route = api.route("GET", "/ping", httpx.ConnectError, {"ok": True})
            >>> with httpx.Client(transport=api.transport) as client:
            ...     try:
            ...         client.get(f"{api.base_url}/ping")
            ...     except httpx.ConnectError:
            ...         print("down")
            ...     print(client.get(f"{api.base_url}/ping").json())
            down
            {'ok': True}
        """
        return self.router.route(method=method.upper(), path=path).mock(
            side_effect=_Sequence(answers)
        )

    def json(
        self,
        method: str,
        path: str,
        data: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> respx.Route:
        """Answer ``method path`` with ``data`` as JSON.

        Examples:
            >>> _ = MockAPI().json("POST", "/users", {"id": 101}, status=201)
        """
        return self.route(method, path, json_response(data, status, headers=headers))

    def error(
        self,
        method: str,
        path: str,
        status: int,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> respx.Route:
        """Answer ``method path`` with an error status and an ``{"error": ...}`` body.

        Examples:
            >>> _ = MockAPI().error("GET", "/users/999", 404, "no such user")
        """
        return self.route(method, path, error_response(status, message, headers=headers))

    def rate_limited(
        self,
        method: str,
        path: str,
        *,
        retry_after: float | None = 1,
        times: int = 1,
        then: Answer = None,
        headers: dict[str, str] | None = None,
    ) -> respx.Route:
        """Answer ``429`` with ``Retry-After`` ``times`` times, then ``then``.

        ``then=None`` keeps answering 429.

        Examples:
            >>> _ = MockAPI().rate_limited("GET", "/search", retry_after=2, then={"hits": []})
        """
        return self._failing(429, method, path, retry_after, times, then, headers)

    def unavailable(
        self,
        method: str,
        path: str,
        *,
        retry_after: float | None = None,
        times: int = 1,
        then: Answer = None,
        headers: dict[str, str] | None = None,
    ) -> respx.Route:
        """Answer ``503 Service Unavailable`` ``times`` times, then ``then``.

        Examples:
            >>> _ = MockAPI().unavailable("GET", "/report", retry_after=5, times=2, then={})
        """
        return self._failing(503, method, path, retry_after, times, then, headers)

    def _failing(
        self,
        status: int,
        method: str,
        path: str,
        retry_after: float | None,
        times: int,
        then: Answer,
        headers: dict[str, str] | None,
    ) -> respx.Route:
        failure = error_response(status, retry_after=retry_after, headers=headers)
        answers: list[Answer] = [failure] * max(times, 1)
        if then is not None:
            answers.append(then)
        return self.route(method, path, *answers)

    def __enter__(self) -> MockAPI:
        """Intercept every httpx client (not only those given :attr:`transport`) in the block."""
        self.router.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.router.__exit__(*exc_info)

    def __repr__(self) -> str:
        return f"MockAPI(base_url={self.base_url!r}, routes={len(self.router.routes)})"
