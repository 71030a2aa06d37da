"""The logging layer: request ids, trace context, spans and one record per request.

Two transports share the work:

- :class:`LoggingTransport` sits near the top of the stack and sees each
  *logical* request once (each redirect hop is one): it sends a copy of it with
  a request id and a ``traceparent`` (the caller's request is not changed),
  opens the logical OpenTelemetry span and logs the outcome with its duration.
- :class:`AttemptTransport` sits at the bottom, just above the network, and
  sees every *attempt*: it counts attempts, gives each its own span id in
  the trace context, opens a span per attempt and logs each at DEBUG (the
  retry that caused a resend is the one WARNING, on ``buttress.retry``).

A :class:`~buttress.LoggingMiddleware` above the logging layer writes the
record of the requests it sees, in place of :class:`LoggingTransport`'s, so
a request is never logged twice.

Both work alone on a plain ``httpx.Client`` / ``httpx.AsyncClient``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import ClassVar

import httpx

from .._body import WatchedStream
from .._clock import SYSTEM_CLOCK, Clock
from .._config import defaults, require_config
from .._extensions import LOGGED_ABOVE_EXTENSION, REQUEST_ID_EXTENSION
from .._flow import Flow, Send
from ..observability import RequestTrace, TracingConfig, end_span, start_attempt, start_request
from ..policies.logging import BodySample, LoggingConfig, RequestLogger
from ._layer import Layer

__all__ = ["AttemptTransport", "LoggingTransport"]


class _Observing(Layer):
    """What both logging layers hold: their config, the tracing config, a logger."""

    _logger_name: ClassVar[str]

    def __init__(
        self,
        inner: httpx.BaseTransport | httpx.AsyncBaseTransport,
        config: LoggingConfig | None = None,
        *,
        tracing: TracingConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        require_config(type(self).__name__, config, LoggingConfig)
        self._inner = inner
        self.config = config or defaults(LoggingConfig)
        self.tracing = (tracing or defaults(TracingConfig)).require_extras()
        self._clock = clock
        self._log = RequestLogger(logging.getLogger(self._logger_name), self.config)


class LoggingTransport(_Observing):
    """Log each logical request, with a request id and W3C trace context.

    Examples:
        >>> import httpx
        >>> from buttress.testing import DemoServer
        >>> transport = LoggingTransport(httpx.HTTPTransport())
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     echoed = client.get(f"{server.url}/echo").json()["headers"]
        >>> sorted(name for name in echoed if name in ("traceparent", "x-request-id"))
        ['traceparent', 'x-request-id']
    """

    _logger_name = "buttress.request"

    # Not a flow: the layer sends once and only watches, so its sync and async methods
    # differ in their one call; driving a flow per request cost more than its own work.

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        if not isinstance(inner, httpx.BaseTransport):
            return super().handle_request(request)  # refused there, with the layers' message
        sent, trace, start = self._start(request)
        try:
            response = inner.handle_request(sent)
        except BaseException as error:
            self._failed(request, sent, trace, start, error)
            raise
        return self._answered(request, sent, trace, start, response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        inner = self._inner
        if not isinstance(inner, httpx.AsyncBaseTransport):
            return await super().handle_async_request(request)
        sent, trace, start = self._start(request)
        try:
            response = await inner.handle_async_request(sent)
        except BaseException as error:
            self._failed(request, sent, trace, start, error)
            raise
        return self._answered(request, sent, trace, start, response)

    def _start(self, request: httpx.Request) -> tuple[httpx.Request, RequestTrace, float]:
        """The request as sent (the caller's stays untouched), its trace, and when it left."""
        sent, trace = start_request(request, self.tracing)
        self._log.started(sent, trace.request_id)
        return sent, trace, self._clock.monotonic()

    def _answered(
        self,
        request: httpx.Request,
        sent: httpx.Request,
        trace: RequestTrace,
        start: float,
        response: httpx.Response,
    ) -> httpx.Response:
        log = self._log
        seconds = self._clock.monotonic() - start
        response.extensions[REQUEST_ID_EXTENSION] = trace.request_id
        # A LoggingMiddleware above writes the record in our place (it marks the request
        # until it has its answer); with records off, there is none to write.
        if log.config.enabled and not request.extensions.get(LOGGED_ABOVE_EXTENSION, False):
            attempts = trace.attempts or 1
            sample = log.sampler(sent, response)
            if sample is None:
                log.finished(sent, response, seconds, trace.request_id, attempts=attempts)
            else:  # the record waits for the body, for whoever reads it (or closes it)
                finished = partial(
                    log.finished, sent, response, seconds, trace.request_id, attempts=attempts
                )
                response.stream = _LoggedBody(response.stream, sample, finished)
        end_span(trace.span, response)
        return response

    def _failed(
        self,
        request: httpx.Request,
        sent: httpx.Request,
        trace: RequestTrace,
        start: float,
        error: BaseException,
    ) -> None:
        if not isinstance(error, Exception):  # cancelled or interrupted while waiting
            end_span(trace.span, _Cancelled())
            return
        seconds = self._clock.monotonic() - start
        if not request.extensions.get(LOGGED_ABOVE_EXTENSION, False):
            self._log.failed(sent, error, seconds, trace.request_id)
        end_span(trace.span, error)

    def __repr__(self) -> str:
        return f"LoggingTransport({self._inner!r})"


class AttemptTransport(_Observing):
    """Count, trace and log (at DEBUG) every network attempt; put it just above the network.

    Examples:
        >>> import httpx
        >>> from buttress.testing import DemoServer
        >>> transport = LoggingTransport(AttemptTransport(httpx.HTTPTransport()))
        >>> with DemoServer() as server, httpx.Client(transport=transport) as client:
        ...     client.get(f"{server.url}/users/1").status_code
        200
    """

    _logger_name = "buttress.attempt"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request, unobserved = self._start(request)
        if unobserved and isinstance(self._inner, httpx.BaseTransport):
            return self._inner.handle_request(request)
        return super().handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request, unobserved = self._start(request)
        if unobserved and isinstance(self._inner, httpx.AsyncBaseTransport):
            return await self._inner.handle_async_request(request)
        return await super().handle_async_request(request)

    def _start(self, request: httpx.Request) -> tuple[httpx.Request, bool]:
        """``request`` as sent, and whether this attempt is already counted and needs no flow.

        An attempt with no span of its own and no DEBUG record is only counted (and given
        its span id): it goes straight to the transport beneath, its outcome untouched,
        without the flow's per-request cost.
        """
        request, trace = start_request(request, self.tracing)  # as is, below LoggingTransport
        if trace.span is not None or self._log.enabled(logging.DEBUG):
            return request, False
        start_attempt(request, trace, self.tracing)  # makes no span without the trace's
        return request, True

    def _flow(self, request: httpx.Request) -> Flow:
        request, trace = start_request(request, self.tracing)  # as is, below LoggingTransport
        span = start_attempt(request, trace, self.tracing)
        attempt, request_id = trace.attempts, trace.request_id
        log = self._log
        if log.enabled(logging.DEBUG):
            extra = log.extra(request, request_id, attempt=attempt)
            log.logger.debug("%s %s attempt %d", request.method, extra["url"], attempt, extra=extra)
        outcome = None
        try:
            outcome = yield Send(request)
        finally:
            end_span(span, outcome if outcome is not None else _Cancelled())
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, httpx.Response)
        return outcome

    def __repr__(self) -> str:
        return f"AttemptTransport({self._inner!r})"


class _LoggedBody(WatchedStream):
    """A response body that writes its request's record once it has ended or been closed.

    The record's body sample is what went by: the first ``body_limit`` bytes of
    what the caller read. Nothing is read here, so a streamed response reaches
    its caller as soon as its headers do, as it would without the layer.
    """

    def __init__(
        self,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
        sample: BodySample,
        finished: Callable[..., None],
    ) -> None:
        super().__init__(stream)
        self._sample = sample
        self._finished: Callable[..., None] | None = finished

    def _chunk(self, data: bytes) -> bytes:
        self._sample.feed(data)
        return data

    def _failure(self, exc: Exception) -> Exception:
        self._sample.failed(exc)
        return exc

    def _ended(self) -> None:
        self._write()

    def _closed(self) -> None:
        self._write()

    def _write(self) -> None:
        finished, self._finished = self._finished, None  # once, at the end or the close
        if finished is not None:
            finished(sample=self._sample)


class _Cancelled(Exception):
    """Stands for a cancellation when a span has to be closed."""
