"""Middleware: code that wraps every request, and the built-in middleware.

Subclass :class:`Middleware` and write ``async def __call__(self, request,
call_next)``; the same object works on ``Client`` and ``AsyncClient`` (see
:mod:`buttress.transports.middleware` for how). A plain ``def __call__`` (or
function) with the same arguments is accepted too; its ``call_next`` returns
the response directly.

The built-ins are thin adapters over what buttress already has:

- :class:`LoggingMiddleware`: the logging layer's records and redaction.
- :class:`MetricsMiddleware`: reports to a :class:`~buttress.MetricsCollector`.
- :class:`AuthMiddleware`: any ``auth=`` value (an ``httpx.Auth``).
- :class:`TimeoutMiddleware`: the per-request timeout options.
- :class:`RetryMiddleware`: the retry layer's flow and policy.

Examples:
    >>> from buttress import Client
    >>> from buttress.testing import DemoServer
    >>> class Version(Middleware):
    ...     async def __call__(self, request, call_next):
    ...         request.headers["X-Client-Version"] = "1.0.0"
    ...         return await call_next(request)
    >>> with DemoServer() as server, Client(base_url=server.url, middleware=[Version()]) as c:
    ...     c.get("/echo").json()["headers"]["x-client-version"]
    '1.0.0'
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from typing import Any, cast

import httpx

from ._clock import SYSTEM_CLOCK, Clock
from ._config import TimeoutConfig, TimeoutTypes
from ._exceptions import ConfigurationError
from ._extensions import (
    ATTEMPTS_KEY,
    CACHE_EXTENSION,
    EXTENSION_KEY,
    LOGGED_ABOVE_EXTENSION,
    METRICS_EXTENSION,
)
from ._flow import adrive, drive
from ._options import RequestOptions
from ._redact import declare, declared_by
from .auth import AuthTypes, coerce_auth
from .observability import MetricsCollector, notify, request_trace
from .policies.logging import LoggingConfig, RequestLogger
from .policies.retry import RetryConfig, RetryPolicy, retry_flow
from .transports.middleware import CallNext, _run_without_loop

__all__ = [
    "AuthMiddleware",
    "CallNext",
    "LoggingMiddleware",
    "MetricsMiddleware",
    "Middleware",
    "RetryMiddleware",
    "TimeoutMiddleware",
]


class Middleware:
    """Base class for middleware: override ``async def __call__(self, request, call_next)``.

    The base passes the request on unchanged. Call ``await call_next(request)``
    once to send the request further down and get the response; return a
    response without calling it to answer early; wrap it in ``try`` to catch or
    transform failures.

    Examples:
        >>> class RequireJSON(Middleware):
        ...     async def __call__(self, request, call_next):
        ...         request.headers.setdefault("Accept", "application/json")
        ...         return await call_next(request)
    """

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        return await call_next(request)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}


class LoggingMiddleware(Middleware):
    """Log each request at ``level`` with status and duration, credentials redacted.

    Records go to the ``buttress.middleware`` logger, with ``request_id``,
    ``method``, ``url``, ``status_code``, ``duration_ms`` and (when the logging
    layer counted them) ``attempts`` as ``extra`` fields, written when the
    response arrives (so the request id of the logging layer below is known).
    A failure is logged at ``level`` too: the caller gets the exception. At
    ``level="DEBUG"`` records carry the (redacted) request and response
    headers. Responses slower than the ``slow_threshold`` of ``config``, or
    from deprecated endpoints, are logged at WARNING at least.

    The client's logging layer already logs every request; use this middleware
    when you want records at a different level or place in the chain, or on a
    plain httpx client through :class:`~buttress.transports.MiddlewareTransport`.
    The requests it logs are not logged again by a logging layer beneath it:
    one record per request, this middleware's.

    Examples:
        >>> LoggingMiddleware(level="DEBUG", redact_headers=["X-Tenant-Key"])
        LoggingMiddleware(level='DEBUG')
    """

    def __init__(
        self,
        level: str | int = "INFO",
        redact_headers: Iterable[str] = (),
        *,
        config: LoggingConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if isinstance(level, str) and level.upper() not in _LEVELS:
            raise ConfigurationError(f"level must be DEBUG, INFO or WARNING, not {level!r}")
        self.level = _LEVELS[level.upper()] if isinstance(level, str) else level
        config = config or LoggingConfig()
        extra_headers = (*config.redact_headers, *redact_headers)
        config = config.model_copy(update={"redact_headers": extra_headers})
        self._log = RequestLogger(logging.getLogger("buttress.middleware"), config)
        self._clock = clock

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        log, clock = self._log, self._clock
        start = clock.monotonic()
        # The logging layer beneath leaves the record to us.
        request.extensions[LOGGED_ABOVE_EXTENSION] = log.config.enabled
        try:
            response = await call_next(request)
        except Exception as exc:
            seconds = clock.monotonic() - start
            log.failed(request, exc, seconds, _request_id(request), level=self.level)
            raise
        finally:
            request.extensions.pop(LOGGED_ABOVE_EXTENSION, None)
        seconds = clock.monotonic() - start
        fields = {}
        if ATTEMPTS_KEY in response.extensions:
            fields["attempts"] = response.extensions[ATTEMPTS_KEY]
        log.finished(request, response, seconds, _request_id(request), self.level, **fields)
        return response

    def __repr__(self) -> str:
        return f"LoggingMiddleware(level={logging.getLevelName(self.level)!r})"


def _request_id(request: httpx.Request) -> str | None:
    trace = request_trace(request)
    return trace.request_id if trace else request.headers.get("X-Request-ID")


def _from_cache(response: httpx.Response) -> bool | None:
    """Hit or miss when a cache layer looked at this request; ``None`` when none did."""
    result = response.extensions.get(CACHE_EXTENSION)  # buttress's CacheTransport
    if result is not None:
        return bool(getattr(result, "from_cache", False))
    for key in ("from_cache", "hishel_from_cache"):  # other caches under the middleware
        if key in response.extensions:
            return bool(response.extensions[key])
    return None


class MetricsMiddleware(Middleware):
    """Report each request's duration, status, attempts, cache use, bytes and rate-limit waits.

    Attempts and the client-side limiter's waits are counted by the logging
    layer beneath (without it: 1 attempt, no waits). Cache hits are reported
    when the cache layer marks the response. The collector travels down with
    the request, so the retry layer and the rate limiter report to it too (see
    :class:`~buttress.MetricsCollector` for the optional hooks).

    Examples:
        >>> from buttress import Client, PrometheusCollector
        >>> from buttress.testing import DemoServer
        >>> collector = PrometheusCollector()
        >>> with DemoServer() as server:
        ...     with Client(base_url=server.url, middleware=[MetricsMiddleware(collector)]) as c:
        ...         _ = c.get("/users/1")
        >>> collector.registry.get_sample_value(
        ...     "buttress_requests_total",
        ...     {"host": "127.0.0.1", "method": "GET", "status_class": "2xx"},
        ... )
        1.0
    """

    def __init__(self, collector: MetricsCollector, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.collector = collector
        self._clock = clock

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        start = self._clock.monotonic()
        host = request.url.host
        given = request.extensions.get(METRICS_EXTENSION)
        request.extensions[METRICS_EXTENSION] = self.collector  # for the layers beneath
        try:
            response = await call_next(request)
        except Exception as exc:
            trace = request_trace(request)
            self.collector.request_finished(
                method=request.method,
                host=host,
                status=None,
                duration=self._clock.monotonic() - start,
                attempts=(trace.attempts if trace else 0) or 1,
                error=type(exc).__name__,
            )
            self._report_wait(request)
            raise
        finally:  # leave the request as it came, should it be sent again elsewhere
            if given is None:
                request.extensions.pop(METRICS_EXTENSION, None)
            else:
                request.extensions[METRICS_EXTENSION] = given
        self._report_wait(request)
        self.collector.request_finished(
            method=request.method,
            host=host,
            status=response.status_code,
            duration=self._clock.monotonic() - start,
            attempts=int(response.extensions.get(ATTEMPTS_KEY, 1)),
            error=None,
        )
        hit = _from_cache(response)
        if hit is not None:
            self.collector.cache_result(host=host, hit=hit)
        cached = response.extensions.get(CACHE_EXTENSION)  # a CacheResult, when cached
        if getattr(cached, "revalidated", False):
            notify(self.collector, "cache_revalidated", host=host)
        if getattr(cached, "stale", False):
            notify(self.collector, "cache_stale_served", host=host)
        notify(
            self.collector,
            "bytes_transferred",
            host=host,
            sent=_size(request.headers, request),
            received=_size(response.headers, response),
        )
        return response

    def _report_wait(self, request: httpx.Request) -> None:
        trace = request_trace(request)
        if trace is not None and trace.rate_limit_wait > 0:
            self.collector.rate_limit_waited(host=request.url.host, seconds=trace.rate_limit_wait)

    def __repr__(self) -> str:
        return f"MetricsMiddleware({self.collector!r})"


def _size(headers: httpx.Headers, message: httpx.Request | httpx.Response) -> int:
    """Body bytes of a message: its content when in memory, else its Content-Length, else 0."""
    if hasattr(message, "_content"):
        return len(message.content)
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() else 0


class AuthMiddleware(Middleware):
    """Authenticate requests with any ``auth=`` value: a thin adapter over ``httpx.Auth``.

    Accepts what the client's ``auth=`` accepts (``("bearer", token)``,
    ``("api_key", key)``, ``(user, password)``, an ``httpx.Auth`` or a callable).
    Multi-step schemes (Digest) work: the middleware answers their challenges.
    Schemes that need to read bodies are refused; give those to ``auth=``.

    Examples:
        >>> AuthMiddleware(("bearer", "s3cret"))
        AuthMiddleware(BearerAuth(token='**********'))
    """

    def __init__(self, auth: AuthTypes) -> None:
        coerced = coerce_auth(auth)
        if coerced is None:
            raise ConfigurationError("AuthMiddleware needs credentials, not None")
        if coerced.requires_request_body or coerced.requires_response_body:
            raise ConfigurationError(
                f"{type(coerced).__name__} reads bodies; pass it as the client's auth= instead"
            )
        self.auth = coerced
        self._declared = declared_by(coerced)

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        declare(request, self._declared)  # the layers below hide what this auth sends
        flow = self.auth.auth_flow(request)
        request = next(flow)
        while True:
            response = await call_next(request)
            try:
                request = flow.send(response)
            except StopIteration:
                return response
            if isinstance(response.stream, httpx.SyncByteStream):
                response.close()
            else:
                await response.aclose()

    def __repr__(self) -> str:
        return f"AuthMiddleware({self.auth!r})"


class TimeoutMiddleware(Middleware):
    """Tighten the timeouts of every request passing through.

    ``total`` sets the per-request deadline option (``total_timeout``, read by
    the layers beneath) and caps each httpx phase timeout at it; ``timeout``
    sets the per-phase timeouts (a number, ``httpx.Timeout`` or
    :class:`~buttress.TimeoutConfig`). Timeouts are only ever shortened: a call
    that asked for less keeps its shorter limit.

    Examples:
        >>> TimeoutMiddleware(total=10, timeout=2)
        TimeoutMiddleware(total=10.0, timeout=(2.0, 2.0, 2.0, 2.0))
    """

    def __init__(self, total: float | None = None, *, timeout: TimeoutTypes = None) -> None:
        if total is not None and total <= 0:
            raise ConfigurationError(f"total must be > 0 seconds, not {total!r}")
        self.total = None if total is None else float(total)
        self.timeout = None if timeout is None else TimeoutConfig.coerce(timeout)

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        phases: dict[str, Any] = dict(request.extensions.get("timeout") or {})
        for name in ("connect", "read", "write", "pool"):
            limits = [phases.get(name), self.total]
            if self.timeout is not None:
                limits.append(getattr(self.timeout, name))
            known = [x for x in limits if x is not None]
            phases[name] = min(known) if known else None
        request.extensions["timeout"] = phases
        if self.total is not None:
            options = RequestOptions.of(request)
            current = options.total_timeout
            total = self.total if current is None else min(current, self.total)
            request.extensions[EXTENSION_KEY] = replace(options, total_timeout=total)
        return await call_next(request)

    def __repr__(self) -> str:
        phases = None
        if self.timeout is not None:
            t = self.timeout
            phases = (t.connect, t.read, t.write, t.pool)
        return f"TimeoutMiddleware(total={self.total!r}, timeout={phases!r})"


class RetryMiddleware(Middleware):
    """Retry transient failures of everything below it: a thin adapter over the retry layer.

    It runs the retry layer's own flow and policy
    (:func:`~buttress.policies.retry.retry_flow`), so backoff, ``Retry-After``,
    idempotency rules (POST and PATCH only with an ``Idempotency-Key``), the
    budget and the per-request ``retry=`` and ``total_timeout`` options behave
    exactly as with the client's ``retry=``. Each attempt is ``call_next``;
    the waits are ``clock.sleep`` on ``Client`` and ``await clock.asleep`` on
    ``AsyncClient``. Use it to retry around other middleware; give the client
    ``retry=False`` so requests are not retried twice over.

    Examples:
        >>> from buttress import Client, RetryConfig
        >>> from buttress.testing import DemoServer
        >>> retry = RetryMiddleware(RetryConfig(max_attempts=3, backoff_factor=0.01))
        >>> with DemoServer() as server, Client(
        ...     base_url=server.url, retry=False, middleware=[retry]
        ... ) as client:
        ...     client.get("/flaky?key=doc-middleware&failures=2").json()["attempts"]
        3
    """

    def __init__(self, config: RetryConfig | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        config = config or RetryConfig()
        budget = config.budget.create(config.store) if config.budget is not None else None
        self.policy = RetryPolicy(config, budget)
        self._clock = clock

    @property
    def config(self) -> RetryConfig:
        """The configuration this middleware retries with."""
        return self.policy.config

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        flow = retry_flow(self.policy, request, self._clock)
        attempts = _CallNextTransport(call_next)
        if getattr(call_next, "is_async", True):
            return await adrive(flow, attempts, self._clock)
        return drive(flow, attempts, self._clock)  # Client: no event loop, block

    def __repr__(self) -> str:
        return f"RetryMiddleware(max_attempts={self.config.max_attempts})"


class _CallNextTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """``call_next`` as the inner transport of a flow driver."""

    def __init__(self, call_next: CallNext) -> None:
        self._call_next = call_next

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        coroutine = cast("Coroutine[Any, Any, httpx.Response]", self._call_next(request))
        return _run_without_loop(coroutine, "RetryMiddleware")  # completes at once on Client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._call_next(request)
