"""Request ids, W3C trace context, OpenTelemetry spans and metrics collectors.

Every request that passes the logging layer gets:

- a request id in ``X-Request-ID`` (kept when the caller set one), UUID4 by
  default or ULID (``pip install 'buttress[ulid]'``);
- trace context (unless the caller set a ``traceparent``): it continues the
  active OpenTelemetry trace when there is one and starts a new trace
  otherwise. Once the application uses OpenTelemetry (see below), its
  configured propagators write it (``opentelemetry.propagate.inject``: W3C
  ``traceparent``, ``tracestate`` and ``baggage`` by default, B3 or your own
  when configured); until then, a W3C ``traceparent`` and ``tracestate``.
  Each network attempt and each redirect hop sends its own span id; the hops
  of one call share a trace;
- with ``buttress[tracing]`` and an OpenTelemetry SDK configured, an
  ``INTERNAL`` span for the logical request and a ``CLIENT`` span per network
  attempt, with the HTTP semantic-convention attributes.

buttress imports OpenTelemetry (tens of milliseconds, more in a large
environment) only once it is in use: something in the process has imported it
(configuring an SDK, a propagator or baggage does), ``OTEL_PROPAGATORS`` or
``OTEL_PYTHON_TRACER_PROVIDER`` is set when a client is built, or
:class:`TracingConfig` asks for spans (``spans=True``, ``tracer_provider=``).
Before that no span could be recorded and OpenTelemetry's default propagators
would write the very ``traceparent`` buttress writes itself.

The headers go on a copy of the request, the request *as sent*: the caller's
``Request`` is never changed. They go to the origin the caller addressed and
to the hosts listed in :attr:`TracingConfig.propagate_to`; a redirect to any
other origin gets none of them.

Metrics go to a :class:`MetricsCollector`; :class:`PrometheusCollector`
(``buttress[prometheus]``) keeps them in a prometheus-client registry.

Examples:
    >>> import httpx
    >>> request = httpx.Request("GET", "https://api.example.com/users")
    >>> sent, trace = start_request(request, TracingConfig())
    >>> sent.headers["X-Request-ID"] == trace.request_id
    True
    >>> sent.headers["traceparent"].startswith("00-"), "traceparent" in request.headers
    (True, False)
"""

from __future__ import annotations

import os
import random
import sys
import weakref
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache, lru_cache
from types import ModuleType
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from ._config import AnyCollection, FrozenConfig, PythonOnly
from ._exceptions import ConfigurationError
from ._extensions import METRICS_EXTENSION, TRACE_EXTENSION
from ._prometheus import PrometheusCollector
from ._redact import Redactor
from ._redirects import same_origin
from ._version import __version__

__all__ = [
    "METRICS_EXTENSION",
    "TRACE_EXTENSION",
    "MetricsCollector",
    "PrometheusCollector",
    "RequestTrace",
    "TracingConfig",
    "new_request_id",
    "notify",
    "report",
    "request_trace",
    "start_request",
]


class TracingConfig(FrozenConfig):
    """Request ids, trace context propagation and OpenTelemetry spans.

    Attributes:
        request_id: ``"uuid4"`` (default), ``"ulid"`` (needs ``buttress[ulid]``)
            or ``None`` to send no request id.
        request_id_header: the header carrying it.
        propagate: send trace context: what OpenTelemetry's configured
            propagators write once it is in use (see the module's
            documentation), else W3C ``traceparent`` and ``tracestate``.
        propagate_to: hosts that receive the request id and trace headers
            besides the origin the caller addressed (which always does), as
            shell-style patterns: ``("api.example.com", "*.internal")``, or
            ``("*",)`` for every host. A redirect to an origin not covered
            gets no request id and no trace context (``traceparent``,
            ``baggage``, B3, ...) from us.
        spans: OpenTelemetry spans per logical request and per attempt;
            ``None`` (default) means "when OpenTelemetry is in use", ``True``
            requires ``buttress[tracing]`` and puts it in use.
        tracer_provider: the OpenTelemetry ``TracerProvider`` for the spans
            (default: the global one).

    Examples:
        >>> TracingConfig(request_id="ulid").request_id
        'ulid'
        >>> TracingConfig(propagate_to=["*.test"]).sends_to(httpx.URL("https://api.test"))
        True
    """

    request_id: Literal["uuid4", "ulid"] | None = "uuid4"
    request_id_header: str = "X-Request-ID"
    propagate: bool = True
    propagate_to: AnyCollection[tuple[str, ...]] = ()
    spans: bool | None = None
    tracer_provider: PythonOnly[Any] = None

    def require_extras(self) -> TracingConfig:
        """Check that the optional packages this configuration needs are installed.

        OpenTelemetry is loaded here, once for all requests, when this configuration
        asks for spans or a tracer provider or the environment configures it.

        Raises:
            ConfigurationError: naming the extra to install.
        """
        if self.request_id == "ulid":
            _ulid_class()
        # Loading OpenTelemetry puts it in use for every request (see _otel).
        if self.spans and _load_otel() is None:
            raise ConfigurationError(
                "OpenTelemetry spans need the tracing extra: pip install 'buttress[tracing]'"
            )
        if self.tracer_provider is not None or _configured_by_environment():
            _load_otel()
        return self

    def sends_to(self, url: httpx.URL) -> bool:
        """True when ``url``'s host is one of :attr:`propagate_to` (the origin aside).

        Examples:
            >>> TracingConfig(propagate_to=("*",)).sends_to(httpx.URL("https://any.test"))
            True
            >>> TracingConfig().sends_to(httpx.URL("https://any.test"))
            False
        """
        host = url.host.lower()
        return any(fnmatchcase(host, pattern.lower()) for pattern in self.propagate_to)


@cache
def _ulid_class() -> Any:
    try:
        from ulid import ULID
    except ImportError:
        raise ConfigurationError(
            "ULID request ids need python-ulid: pip install 'buttress[ulid]'"
        ) from None
    return ULID


def new_request_id(kind: Literal["uuid4", "ulid"] = "uuid4") -> str:
    """A fresh request id: a UUID4, or a ULID (sortable by creation time).

    Examples:
        >>> len(new_request_id()), len(new_request_id("ulid"))
        (36, 26)
    """
    if kind == "ulid":
        return str(_ulid_class()())
    # A version-4 UUID from the ``random`` module, as OpenTelemetry makes trace ids:
    # an id needs to be unique, not secret, and this is several times cheaper.
    bits = random.getrandbits(128) & ~(0xF000 << 64 | 0xC000 << 48) | (0x4000 << 64 | 0x8000 << 48)
    digits = bits.to_bytes(16, "big").hex()  # a third of the cost of formatting the int
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


# Imported by every use of OpenTelemetry: tracer providers, propagators, baggage.
_OTEL_IN_USE = "opentelemetry.context"
# What configures OpenTelemetry's API without any code: other headers, an SDK.
_OTEL_ENVIRONMENT = ("OTEL_PROPAGATORS", "OTEL_PYTHON_TRACER_PROVIDER")


def _configured_by_environment() -> bool:
    return any(os.environ.get(name) for name in _OTEL_ENVIRONMENT)


def _otel() -> ModuleType | None:
    """``opentelemetry.trace`` once OpenTelemetry is in use in this process, else ``None``.

    Checked on every request: an application may configure its SDK after building
    its clients.
    """
    return _load_otel() if _OTEL_IN_USE in sys.modules else None


@cache
def _load_otel() -> ModuleType | None:
    """``opentelemetry.trace`` when installed, else ``None`` (imported once)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


@cache
def _load_propagate() -> ModuleType:
    """``opentelemetry.propagate`` (imported once); ask once OpenTelemetry is in use."""
    from opentelemetry import propagate

    return propagate


@lru_cache(maxsize=16)
def _tracer(provider: Any) -> Any:
    """buttress's tracer from ``provider`` (``None``: the global one, followed when it is set)."""
    otel = _otel()
    assert otel is not None
    return otel.get_tracer("buttress", __version__, tracer_provider=provider)


def _start_span(request: httpx.Request, config: TracingConfig, context: Any, kind: Any) -> Any:
    """A ``kind`` span for ``request`` in ``context``, or ``None`` when it would not be recorded.

    Attributes are computed only for a recording span: with no SDK configured
    (or the trace sampled out) a request pays for no span at all. The tracer is
    called with positional arguments: keywords cost more than its no-op work.
    """
    span = _tracer(config.tracer_provider).start_span(request.method, context, kind)
    if not span.is_recording():
        return None
    span.set_attributes(http_attributes(request))
    return span


def _random_hex(bits: int) -> str:
    # as f"{n:0{bits // 4}x}" makes it, at a third of the cost
    return random.getrandbits(bits).to_bytes(bits // 8, "big").hex()


@dataclass(slots=True)
class RequestTrace:
    """What the logging layer knows about one request (one redirect hop, all its attempts).

    It travels in the extensions of the request as sent (see
    :func:`start_request`); the attempt layer counts attempts into it and hangs
    its spans below :attr:`span`. A redirect hop gets a trace of its own.

    Examples:
        >>> RequestTrace(request_id="r-1").attempts
        0
    """

    request_id: str | None
    attempts: int = 0
    rate_limit_wait: float = 0.0  # seconds the client-side limiter held it back, all attempts
    span: Any = None
    context: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    origin: httpx.URL | None = None  # what the caller addressed: the first hop's URL
    trace_id: str | None = None  # the W3C trace id we send; None when we send no traceparent
    sampled: bool = True
    sends_headers: bool = False  # this hop may carry our request id and trace headers
    propagated: frozenset[str] = frozenset()  # the trace headers we wrote (lowercase)


class _Issued:
    """A trace, left in the extensions of the request it was made for.

    httpx hands a redirect hop the *same* extensions dict, so the hop finds this,
    sees it was made for another request, and starts its own trace (continuing the
    trace id) instead of counting itself as an attempt of the previous hop.
    Not a frozen dataclass: one is made per request, and a frozen one's ``__init__``
    costs twice a plain one's. Nothing changes it once made.
    """

    __slots__ = ("request", "trace")

    def __init__(self, request: httpx.Request, trace: RequestTrace) -> None:
        self.request = weakref.ref(request)
        self.trace = trace


def request_trace(request: httpx.Request) -> RequestTrace | None:
    """The :class:`RequestTrace` of ``request``, if the logging layer has seen it.

    Examples:
        >>> request_trace(httpx.Request("GET", "https://api.example.com")) is None
        True
    """
    found = request.extensions.get(TRACE_EXTENSION)
    if isinstance(found, _Issued):
        return found.trace if found.request() is request else None
    return found if isinstance(found, RequestTrace) else None


def _traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def http_attributes(request: httpx.Request) -> dict[str, Any]:
    """The HTTP semantic-convention attributes of ``request`` (URL redacted with its vocabulary).

    Examples:
        >>> http_attributes(httpx.Request("GET", "https://api.example.com/x?token=t"))["url.full"]
        'https://api.example.com/x?token=[REDACTED]'
    """
    url = request.url
    return {
        "http.request.method": request.method,
        "url.full": Redactor.for_request(request).url(url),
        "server.address": url.host,
        "server.port": url.port or (443 if url.scheme == "https" else 80),
    }


def start_request(
    request: httpx.Request, config: TracingConfig
) -> tuple[httpx.Request, RequestTrace]:
    """The request as sent, with its request id and trace context, and its :class:`RequestTrace`.

    ``request`` itself is left as it was (headers untouched): the headers go on
    a copy that carries the trace in its extensions. A request already prepared
    (below another logging layer) comes back as it is; the same request sent
    again (by a retrying middleware) keeps its trace and id. Headers the caller
    set are kept; ours go only where :meth:`TracingConfig.sends_to` allows when
    the request leaves the origin the caller addressed.

    Examples:
        >>> request = httpx.Request("GET", "https://x.io", headers={"X-Request-ID": "r1"})
        >>> sent, trace = start_request(request, TracingConfig())
        >>> trace.request_id, sent is request
        ('r1', False)
    """
    found = request.extensions.get(TRACE_EXTENSION)
    if isinstance(found, RequestTrace):
        return request, found
    # Our headers are checked against the request's names (lowercase), found in one pass
    # over its headers (each ``name in request.headers`` is a pass of its own); a new
    # trace under a configuration that sends none of ours needs no pass.
    names: AbstractSet[str]
    if isinstance(found, _Issued) and found.request() is request:
        trace, names = found.trace, request.headers.keys()
        if trace.span is not None and not trace.span.is_recording():
            # its span ended with its first send: this one gets its own, a child of it, so
            # the trace (and the traceparent already decided) stays the same
            _open_span(request, trace, config, trace.context)
    else:  # a new request, or a redirect hop that found the previous hop's trace
        previous = found.trace if isinstance(found, _Issued) else None
        sends = config.request_id is not None or config.propagate
        names = request.headers.keys() if sends else frozenset()
        trace = _new_trace(request, config, previous, names)
        request.extensions[TRACE_EXTENSION] = _Issued(request, trace)
    return _as_sent(request, trace, config, names), trace


def _open_span(
    request: httpx.Request, trace: RequestTrace, config: TracingConfig, parent: Any
) -> None:
    """Start ``trace``'s span for ``request`` in ``parent`` (``None``: the current context)."""
    otel = _otel()
    assert otel is not None  # asked only with OpenTelemetry in use
    trace.span = _start_span(request, config, parent, otel.SpanKind.INTERNAL)
    if trace.span is not None:
        trace.context = otel.set_span_in_context(trace.span)


def _new_trace(
    request: httpx.Request,
    config: TracingConfig,
    previous: RequestTrace | None,
    names: AbstractSet[str],
) -> RequestTrace:
    request_id = None
    if config.request_id is not None:
        given = None
        if config.request_id_header.lower() in names:
            given = request.headers.get(config.request_id_header)
        request_id = given or new_request_id(config.request_id)
    origin = (previous.origin if previous is not None else None) or request.url
    trace = RequestTrace(request_id=request_id, origin=origin)
    trace.sends_headers = same_origin(request.url, origin) or config.sends_to(request.url)
    otel = _otel()
    if otel is not None and config.spans is not False:  # spans on
        # A hop is a child of the previous hop's span: one trace for the whole call.
        _open_span(request, trace, config, previous.context if previous is not None else None)
    if config.propagate and "traceparent" not in names:
        trace.trace_id, trace.sampled, state = _trace_identity(trace.span, otel, previous)
        if state:
            trace.extra["tracestate"] = state
    return trace


def _trace_identity(
    span: Any, otel: ModuleType | None, previous: RequestTrace | None
) -> tuple[str, bool, str]:
    """Trace id, sampled flag and ``tracestate``: our span's, the previous hop's, the caller's."""
    if span is not None and span.is_recording():
        context = span.get_span_context()
    elif previous is not None and previous.trace_id is not None:
        return previous.trace_id, previous.sampled, previous.extra.get("tracestate", "")
    else:
        context = otel.get_current_span().get_span_context() if otel is not None else None
    if context is not None and context.is_valid:
        assert otel is not None
        state = context.trace_state.to_header() if context.trace_state else ""
        return otel.format_trace_id(context.trace_id), bool(context.trace_flags & 1), state
    return _random_hex(128), True, ""


def _as_sent(
    request: httpx.Request,
    trace: RequestTrace,
    config: TracingConfig,
    names: AbstractSet[str],
) -> httpx.Request:
    """A copy of ``request`` carrying ``trace`` and, where allowed, our headers.

    ``names`` are the request's header names, lowercase.
    """
    # A shallow copy by hand: copy.copy() follows httpx's pickling rules, which drop
    # the stream, and costs several times more.
    sent = object.__new__(type(request))
    sent.__dict__.update(request.__dict__)
    sent.extensions = {**request.extensions, TRACE_EXTENSION: trace}
    sent.headers = headers = request.headers.copy()
    if trace.sends_headers:
        request_id_name = config.request_id_header.lower()
        if trace.request_id is not None and request_id_name not in names:
            headers[config.request_id_header] = trace.request_id
            names = names | {request_id_name}  # ours now: no trace header overwrites it
        if trace.trace_id is not None:
            span_id = _span_id(trace.span) or _random_hex(64)
            _propagate_context(headers, trace, span_id, names)
    return sent


def _propagate_context(
    headers: httpx.Headers,
    trace: RequestTrace,
    span_id: str,
    names: AbstractSet[str] | None = None,
) -> None:
    """Write the trace context of ``trace``, as seen from span ``span_id``, into ``headers``.

    A header the caller set is left as it is; ours are replaced at each attempt.
    ``names``, when given, are the names in ``headers`` (lowercase), known already.
    """
    if names is None:
        names = headers.keys()
    written = []
    for name, value in _context_headers(trace, span_id).items():
        lower = name.lower()
        if lower in trace.propagated or lower not in names:
            headers[name] = value
            written.append(lower)
    trace.propagated = frozenset(written)


def _context_headers(trace: RequestTrace, span_id: str) -> dict[str, str]:
    """The trace context headers: from OpenTelemetry's propagators, else W3C's by hand."""
    trace_id, state = trace.trace_id, trace.extra.get("tracestate", "")
    assert trace_id is not None
    otel = _otel()  # its propagators are asked only once it is in use
    if otel is None or _writes_w3c_alone(_load_propagate()):
        headers = {"traceparent": _traceparent(trace_id, span_id, trace.sampled)}
        if state:
            headers["tracestate"] = state
        return headers
    # Our ids as the current span of the caller's context (so its baggage goes too),
    # handed to whatever propagators the application configured.
    span = otel.NonRecordingSpan(
        otel.SpanContext(
            int(trace_id, 16),
            int(span_id, 16),
            is_remote=False,
            trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED if trace.sampled else 0),
            trace_state=otel.TraceState.from_header([state]) if state else None,
        )
    )
    carrier: dict[str, str] = {}
    _load_propagate().inject(carrier, context=otel.set_span_in_context(span))
    return carrier


def _writes_w3c_alone(propagate: ModuleType) -> bool:
    """True when the configured propagators would write only what we write by hand.

    OpenTelemetry's default propagators (W3C trace context and baggage) write a
    ``traceparent`` and ``tracestate`` of our ids, and a ``baggage`` header only
    when the context has baggage: without baggage, handing them our ids would
    write the same headers at several times the cost.
    """
    return _is_w3c(propagate.get_global_textmap()) and not _baggage().get_all()


@cache
def _baggage() -> ModuleType:
    from opentelemetry import baggage

    return baggage


def _is_w3c(textmap: object) -> bool:
    """True for W3C trace context with at most W3C baggage (OpenTelemetry's default)."""
    composite, trace_context, baggage = _w3c_propagators()
    # exact types: a subclass may write something else
    members = getattr(textmap, "_propagators", ()) if type(textmap) is composite else (textmap,)
    kinds = {type(member) for member in members}
    return trace_context in kinds and kinds <= {trace_context, baggage}


@cache
def _w3c_propagators() -> tuple[type, type, type]:
    """OpenTelemetry's composite propagator and its two default members."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return CompositePropagator, TraceContextTextMapPropagator, W3CBaggagePropagator


def _span_id(span: Any) -> str | None:
    """The id of ``span`` when it is ours and recording (else ``None``)."""
    if span is None:  # no span, nearly always: OpenTelemetry need not be asked
        return None
    otel = _otel()
    if otel is None or not span.is_recording():
        return None
    return str(otel.format_span_id(span.get_span_context().span_id))


def start_attempt(request: httpx.Request, trace: RequestTrace, config: TracingConfig) -> Any:
    """Count one network attempt of ``request`` (as sent); return its span (or ``None``).

    The attempt sends a span id of its own in its trace context: its ``CLIENT``
    span's, or a fresh one when no span is recorded.

    Examples:
        >>> sent, trace = start_request(httpx.Request("GET", "https://x.io"), TracingConfig())
        >>> before = sent.headers["traceparent"]
        >>> start_attempt(sent, trace, TracingConfig(spans=False)) is None
        True
        >>> trace.attempts, sent.headers["traceparent"][:35] == before[:35]
        (1, True)
    """
    trace.attempts += 1
    span = None
    otel = _otel() if trace.span is not None else None  # a span only under the request's
    if otel is not None:
        span = _start_span(request, config, trace.context, otel.SpanKind.CLIENT)
        if span is not None and trace.attempts > 1:
            span.set_attribute("http.request.resend_count", trace.attempts - 1)
    # The first attempt without spans keeps the fresh span id the request was sent with.
    first_unrecorded = span is None and trace.span is None and trace.attempts == 1
    if trace.sends_headers and trace.trace_id is not None and not first_unrecorded:
        _propagate_context(request.headers, trace, _span_id(span) or _random_hex(64))
    return span


def end_span(span: Any, outcome: httpx.Response | BaseException) -> None:
    """Finish ``span`` with the status code, or the error, of ``outcome``.

    Examples:
        >>> end_span(None, httpx.Response(200))  # no span: nothing to do
    """
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    if isinstance(outcome, httpx.Response):
        span.set_attribute("http.response.status_code", outcome.status_code)
        if outcome.status_code >= 400:
            span.set_attribute("error.type", str(outcome.status_code))
            span.set_status(Status(StatusCode.ERROR))
    else:
        span.set_attribute("error.type", type(outcome).__qualname__)
        span.set_status(Status(StatusCode.ERROR, type(outcome).__qualname__))
    span.end()


# -- metrics -------------------------------------------------------------------------------


@runtime_checkable
class MetricsCollector(Protocol):
    """Where buttress reports what happened; implement the methods you care about.

    Implementations must be thread-safe and fast: they run on the request path.
    :class:`MetricsMiddleware` calls :meth:`request_finished` and
    :meth:`cache_result`, and :meth:`rate_limit_waited` when the client-side
    limiter held the request back (the logging layer, on by default, carries
    that figure up to it); connect :meth:`breaker_state_changed` with
    ``CircuitBreakerConfig(on_state_change=...)``, which calls it with positional
    arguments ``(host, old, new)``.

    Optional hooks, each called only when the collector has it (all keyword
    arguments): ``attempt_finished(method, host, status, duration, error)``,
    ``retried(host, reason)`` and ``retry_budget_refused(host)`` from the retry
    layer, ``rate_limit_queue(host, depth)`` from the rate limiter, and
    ``cache_revalidated(host)``, ``cache_stale_served(host)`` and
    ``bytes_transferred(host, sent, received)`` from the middleware, and
    ``store_degraded_changed(store, degraded)``, connected with
    ``RedisStore(on_degraded_change=...)``. The
    middleware hands its collector down with the request
    (:data:`METRICS_EXTENSION`) so that the layers beneath it can report.

    Examples:
        >>> isinstance(PrometheusCollector(), MetricsCollector)
        True
    """

    def request_finished(
        self,
        *,
        method: str,
        host: str,
        status: int | None,
        duration: float,
        attempts: int,
        error: str | None,
    ) -> None:
        """A logical request ended: its status (``None`` on failure) and seconds taken."""

    def cache_result(self, *, host: str, hit: bool) -> None:
        """The cache answered (``hit``) or the request went to the network."""

    def breaker_state_changed(self, host: str, old: str, new: str) -> None:
        """A circuit breaker moved between ``closed``, ``open`` and ``half_open``."""

    def rate_limit_waited(self, *, host: str, seconds: float) -> None:
        """The client-side rate limiter held a request back for ``seconds``."""


def report(request: httpx.Request, hook: str, **fields: Any) -> None:
    """Call ``hook`` of the collector ``request`` carries, if it has one.

    Examples:
        >>> request = httpx.Request("GET", "https://api.example.com")
        >>> report(request, "retried", host="api.example.com", reason="503")  # none: no-op
    """
    notify(request.extensions.get(METRICS_EXTENSION), hook, **fields)


def notify(collector: object, hook: str, **fields: Any) -> None:
    """Call ``collector``'s optional ``hook``, if it has one.

    Examples:
        >>> notify(object(), "retried", host="api.example.com", reason="503")  # no such hook
    """
    method = getattr(collector, hook, None)
    if method is not None:
        method(**fields)
