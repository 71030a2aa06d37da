"""A transport that plays a script of faults and answers, one step per request.

:class:`ScriptedTransport` is a network transport for tests: instead of a
server it has a script. Each request takes the next step; the last step
repeats once the script runs out. Steps:

=============================  ===============================================================
step                           what the client sees
=============================  ===============================================================
``Reply(200, json=...)``       a response (``Reply.error(429, retry_after=2)`` for error bodies)
``Fail(httpx.ConnectError)``   that httpx exception, raised while sending
``Reset()``                    the connection reset before any answer (``httpx.ReadError``)
``Truncate(reply, keep=10)``   the reply's headers, then ``keep`` bytes and a broken stream
``Delay(2.0, then=step)``      ``step`` after 2 seconds on the injected clock; a read timeout
                               shorter than that raises ``httpx.ReadTimeout`` instead
=============================  ===============================================================

Every step takes ``times=N`` to play N times in a row. Delays sleep on the
transport's clock (a :class:`~buttress.testing.FakeClock` unless you give
another), so tests never wait for real. Every request received is kept in
:attr:`ScriptedTransport.requests`, with its body read.

Answers follow HTTP as a server would: a ``HEAD`` gets the headers a ``GET``
would (``Content-Length`` included) and no body; ``204`` and ``304`` carry no
body and no ``Content-Length``, and a ``Reply(204, json=...)`` is refused.
"""

from __future__ import annotations

import json as jsonlib
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from .._body import WatchedStream
from .._clock import Clock
from .._exceptions import ConfigurationError
from .._flow import Flow, Sleep, adrive, drive
from .clock import FakeClock
from .mock import _bodiless, _error_body, _retry_after_value

__all__ = ["Delay", "Fail", "Reply", "Reset", "ScriptedTransport", "Step", "Truncate"]

_NO_JSON: Any = object()


@dataclass(frozen=True, kw_only=True)
class Step:
    """One scripted answer; ``times`` is how many requests in a row get it.

    Examples:
        >>> Reply(204, times=3).times
        3
    """

    times: int = 1

    def answer(self, request: httpx.Request) -> httpx.Response:
        """The response for ``request``, or raise the scripted failure."""
        raise NotImplementedError


@dataclass(frozen=True)
class Reply(Step):
    """Answer with ``status``, ``headers`` and a body (``json`` or raw ``content``).

    ``1xx``, ``204`` and ``304`` have no body (RFC 9110 6.4.1): giving one raises
    :class:`~buttress.ConfigurationError`. A ``HEAD`` request gets no body either.

    Examples:
        >>> Reply(201, json={"id": 7}).answer(httpx.Request("POST", "https://x.test")).json()
        {'id': 7}
    """

    status: int = 200
    json: Any = _NO_JSON
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if _bodiless(self.status) and (self.json is not _NO_JSON or self.content):
            raise ConfigurationError(
                f"a {self.status} answer has no body (RFC 9110 6.4.1): drop json= and content="
            )

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> Reply:
        """An error status with an ``{"error": ...}`` body and an optional ``Retry-After``.

        Examples:
            >>> Reply.error(429, retry_after=2).headers
            {'Retry-After': '2'}
        """
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = _retry_after_value(retry_after)
        return cls(status, json=_error_body(status, message), headers=all_headers, times=times)

    def body(self) -> bytes:
        """The encoded body."""
        if self.json is _NO_JSON:
            return self.content
        return jsonlib.dumps(self.json).encode()

    def answer(self, request: httpx.Request) -> httpx.Response:
        headers = dict(self.headers)
        if self.json is not _NO_JSON:
            headers.setdefault("Content-Type", "application/json")
        return httpx.Response(self.status, headers=headers, content=self.body(), request=request)


@dataclass(frozen=True)
class Fail(Step):
    """Raise ``error`` (an httpx exception class, or an instance) instead of answering.

    Examples:
        >>> Fail(httpx.ConnectTimeout, times=2).times
        2
    """

    error: type[httpx.TransportError] | httpx.TransportError = httpx.ConnectError
    message: str = "scripted failure"

    def answer(self, request: httpx.Request) -> httpx.Response:
        if isinstance(self.error, BaseException):
            raise self.error
        raise self.error(self.message, request=request)


@dataclass(frozen=True)
class Reset(Step):
    """The peer resets the connection before answering (``httpx.ReadError``).

    Examples:
        >>> Reset().times
        1
    """

    def answer(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)


class _BrokenStream(WatchedStream):
    """Yields the first bytes of a body, then fails as a peer that hung up would."""

    def __init__(self, head: bytes, request: httpx.Request) -> None:
        super().__init__(httpx.ByteStream(head))
        self._request = request

    def _ended(self) -> None:
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body", request=self._request
        )


@dataclass(frozen=True)
class Truncate(Step):
    """Send ``reply``'s status and headers (with the full ``Content-Length``), then only
    ``keep`` bytes of its body before the connection breaks (``httpx.RemoteProtocolError``).

    Examples:
        >>> Truncate(Reply(json={"id": 1}), keep=3).keep
        3
    """

    reply: Reply = field(default_factory=lambda: Reply(json={"ok": True}))
    keep: int = 0

    def answer(self, request: httpx.Request) -> httpx.Response:
        body = self.reply.body()
        headers = {**self.reply.headers, "Content-Length": str(len(body))}
        if self.reply.json is not _NO_JSON:
            headers.setdefault("Content-Type", "application/json")
        stream = _BrokenStream(body[: self.keep], request)
        return httpx.Response(self.reply.status, headers=headers, stream=stream, request=request)


@dataclass(frozen=True)
class Delay(Step):
    """Wait ``seconds`` on the transport's clock, then play ``then``.

    When the request's read timeout is shorter than the delay, the clock moves
    by the timeout and ``httpx.ReadTimeout`` is raised, as a slow server would cause.

    Examples:
        >>> step = Delay(1.5, then=Reply(204))
        >>> step.answer(httpx.Request("GET", "https://x.test")).status_code  # no wait here
        204
    """

    seconds: float = 1.0
    then: Step = field(default_factory=Reply)

    def answer(self, request: httpx.Request) -> httpx.Response:
        return self.then.answer(request)


class ScriptedTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A sync and async httpx transport that plays ``script``, one step per request.

    Args:
        *script: the steps, in order; the last one repeats when the script runs out.
        clock: where delays sleep (default: a new :class:`FakeClock`, never real time).

    Examples:
        >>> import buttress
        >>> clock = FakeClock()
        >>> transport = ScriptedTransport(
        ...     Fail(httpx.ConnectError),
        ...     Reply.error(503, retry_after=1),
        ...     Delay(2.0, then=Reply(json={"ok": True})),
        ...     clock=clock,
        ... )
        >>> client = buttress.Client(base_url="https://api.test", transport=transport, retry=False)
        >>> with client:
        ...     for _ in range(3):
        ...         try:
        ...             print(client.get("/ping").json())
        ...         except buttress.ClientError as e:
        ...             print(type(e).__name__)
        ConnectionError
        ServerError
        {'ok': True}
        >>> clock.sleeps, [r.url.path for r in transport.requests]
        ([2.0], ['/ping', '/ping', '/ping'])
    """

    def __init__(self, *script: Step, clock: Clock | None = None) -> None:
        if not script:
            raise ConfigurationError("a ScriptedTransport needs at least one step")
        self._plays = [step for step in script for _ in range(max(step.times, 1))]
        self.clock: Clock = FakeClock() if clock is None else clock
        """The clock delays sleep on (a :class:`FakeClock` by default)."""
        self.requests: list[httpx.Request] = []
        """Every request received, in order, with its body read."""
        self._lock = threading.Lock()

    def _next(self, request: httpx.Request) -> Step:
        with self._lock:
            step = self._plays[min(len(self.requests), len(self._plays) - 1)]
            self.requests.append(request)
        return step

    def _flow(self, request: httpx.Request, step: Step) -> Flow:
        while isinstance(step, Delay):
            read_timeout = request.extensions.get("timeout", {}).get("read")
            if read_timeout is not None and read_timeout < step.seconds:
                yield Sleep(read_timeout)
                raise httpx.ReadTimeout(
                    f"scripted delay of {step.seconds}s exceeds the read timeout",
                    request=request,
                )
            yield Sleep(step.seconds)
            step = step.then
        response = step.answer(request)
        if request.method == "HEAD":  # RFC 9110 9.3.2: the headers a GET gets, no content
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=httpx.ByteStream(b""),
                request=request,
                extensions=response.extensions,
            )
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        # The flow only sleeps: it never sends, so the transport stands in as "inner".
        return drive(self._flow(request, self._next(request)), self, self.clock)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return await adrive(self._flow(request, self._next(request)), self, self.clock)

    def __repr__(self) -> str:
        return f"ScriptedTransport(steps={len(self._plays)}, received={len(self.requests)})"
