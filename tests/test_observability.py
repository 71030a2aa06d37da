"""Request ids, W3C trace context and OpenTelemetry spans (checked with the in-memory exporter)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.span import TraceState
from ulid import ULID

import buttress
from buttress import TracingConfig
from buttress.observability import new_request_id, request_trace, start_attempt, start_request
from buttress.testing import DemoServer
from buttress.transports import AttemptTransport, LoggingTransport
from tests.conftest import Either

pytestmark = pytest.mark.anyio

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


async def test_every_request_gets_a_uuid4_request_id_and_a_new_trace(client: Either) -> None:
    first = (await client.get("/echo")).json()["headers"]
    second = (await client.get("/echo")).json()["headers"]
    assert uuid.UUID(first["x-request-id"]).version == 4
    assert first["x-request-id"] != second["x-request-id"]
    one, two = TRACEPARENT.match(first["traceparent"]), TRACEPARENT.match(second["traceparent"])
    assert one
    assert two
    assert one.group(1) != two.group(1)  # each request starts its own trace


async def test_ulid_request_ids(make_client: Callable[..., Either], demo: DemoServer) -> None:
    config = TracingConfig(request_id="ulid", request_id_header="X-Correlation-ID")
    client = make_client(base_url=demo.url, tracing=config)
    sent = (await client.get("/echo")).json()["headers"]["x-correlation-id"]
    assert str(ULID.from_str(sent)) == sent
    assert len(new_request_id("ulid")) == 26


async def test_tracing_false_sends_neither(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, tracing=False)
    headers = (await client.get("/echo")).json()["headers"]
    assert "x-request-id" not in headers
    assert "traceparent" not in headers


async def test_caller_trace_headers_are_kept(client: Either) -> None:
    mine = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = (await client.get("/echo", headers={"traceparent": mine})).json()["headers"]
    assert headers["traceparent"] == mine


async def test_active_opentelemetry_context_is_continued_with_tracestate(
    client: Either, provider: TracerProvider
) -> None:
    """No buttress spans here (the global provider is a no-op): the caller's trace goes on."""
    tracer = provider.get_tracer("app")
    parent = tracer.start_span("handler")
    context = parent.get_span_context()
    state = TraceState([("vendor", "v1")])
    span = trace.NonRecordingSpan(
        trace.SpanContext(context.trace_id, context.span_id, False, context.trace_flags, state)
    )
    with trace.use_span(span):
        headers = (await client.get("/echo")).json()["headers"]
    parent.end()
    match = TRACEPARENT.match(headers["traceparent"])
    assert match
    assert match.group(1) == trace.format_trace_id(context.trace_id)
    assert match.group(2) != trace.format_span_id(context.span_id)  # a new child id
    assert headers["tracestate"] == "vendor=v1"


async def test_spans_per_logical_request_and_per_attempt(
    make_client: Callable[..., Either],
    demo: DemoServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = make_client(base_url=demo.url, tracing=TracingConfig(tracer_provider=provider))
    with provider.get_tracer("app").start_as_current_span("handler") as handler:
        headers = (await client.get("/echo", params={"api_key": "k-secret"})).json()["headers"]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    attempt = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT)
    logical = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.INTERNAL)
    assert set(spans) == {"GET", "handler"}
    assert logical.parent is not None
    assert logical.parent.span_id == handler.get_span_context().span_id
    assert attempt.parent is not None
    assert attempt.parent.span_id == logical.context.span_id
    assert logical.context.trace_id == handler.get_span_context().trace_id
    for span in (logical, attempt):
        attributes = dict(span.attributes or {})
        assert attributes["http.request.method"] == "GET"
        assert str(attributes["url.full"]).endswith("/echo?api_key=[REDACTED]")
        assert attributes["http.response.status_code"] == 200
        assert attributes["server.address"] == "127.0.0.1"
        assert span.status.status_code == StatusCode.UNSET
    assert "http.request.resend_count" not in (attempt.attributes or {})
    # The server saw the attempt span as its parent.
    assert headers["traceparent"] == (
        f"00-{trace.format_trace_id(attempt.context.trace_id)}-"
        f"{trace.format_span_id(attempt.context.span_id)}-01"
    )


async def test_a_redirect_hop_is_a_new_request_span_in_the_same_trace(
    make_client: Callable[..., Either],
    demo: DemoServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = make_client(
        base_url=demo.url, follow_redirects=True, tracing=TracingConfig(tracer_provider=provider)
    )
    headers = (await client.get("/redirect", params={"to": "/echo"})).json()["headers"]
    spans = exporter.get_finished_spans()
    first, second = [s for s in spans if s.kind == SpanKind.INTERNAL]
    attempts = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(attempts) == 2  # one per hop, neither a resend
    assert all("http.request.resend_count" not in (s.attributes or {}) for s in attempts)
    assert second.parent is not None
    assert second.parent.span_id == first.context.span_id
    assert len({s.context.trace_id for s in spans}) == 1
    last = next(s for s in attempts if s.parent and s.parent.span_id == second.context.span_id)
    assert headers["traceparent"] == (
        f"00-{trace.format_trace_id(last.context.trace_id)}-"
        f"{trace.format_span_id(last.context.span_id)}-01"
    )


def test_resends_get_their_own_span_with_the_resend_count(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    class SendTwice(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            self.inner.handle_request(request).close()
            return self.inner.handle_request(request)

    statuses = iter([503, 200])
    network = httpx.MockTransport(lambda r: httpx.Response(next(statuses)))
    config = TracingConfig(tracer_provider=provider)
    transport = LoggingTransport(
        SendTwice(AttemptTransport(network, tracing=config)), tracing=config
    )
    with httpx.Client(transport=transport) as client:
        client.get("https://api.example.com/x")
    first, second, logical = exporter.get_finished_spans()
    assert (first.kind, second.kind, logical.kind) == (
        SpanKind.CLIENT,
        SpanKind.CLIENT,
        SpanKind.INTERNAL,
    )
    assert first.status.status_code == StatusCode.ERROR
    assert dict(first.attributes or {})["error.type"] == "503"
    assert dict(second.attributes or {})["http.request.resend_count"] == 1
    assert second.status.status_code == StatusCode.UNSET
    assert logical.status.status_code == StatusCode.UNSET


async def test_failures_set_error_status(
    make_client: Callable[..., Either], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    client = make_client(
        base_url="http://127.0.0.1:1", tracing=TracingConfig(tracer_provider=provider)
    )
    with pytest.raises(buttress.ConnectionError):
        await client.get("/users")  # three attempts: one request span, three attempt spans
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    for span in spans:
        assert span.status.status_code == StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "ConnectError"


async def test_error_statuses_set_error_status(
    make_client: Callable[..., Either],
    demo: DemoServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    client = make_client(base_url=demo.url, tracing=TracingConfig(tracer_provider=provider))
    with pytest.raises(buttress.ServerError):
        await client.get("/status/500")
    for span in exporter.get_finished_spans():
        assert span.status.status_code == StatusCode.ERROR
        assert dict(span.attributes or {})["http.response.status_code"] == 500


async def test_spans_false_creates_none(
    make_client: Callable[..., Either],
    demo: DemoServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    config = TracingConfig(tracer_provider=provider, spans=False)
    client = make_client(base_url=demo.url, tracing=config)
    await client.get("/users/1")
    assert exporter.get_finished_spans() == ()


async def test_the_same_request_sent_again_gets_a_span_of_its_own_in_its_trace(
    make_client: Callable[..., Either],
    demo: DemoServer,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Regression: the second send reused the first's ended span, so it had none of its own
    # and OpenTelemetry warned about setting attributes on, and ending, an ended span.
    client = make_client(base_url=demo.url, tracing=TracingConfig(tracer_provider=provider))
    request = client.client.build_request("GET", "/echo")
    first = (await client.send(request)).json()["headers"]
    second = (await client.send(request)).json()["headers"]
    assert first["x-request-id"] == second["x-request-id"]  # one request, sent twice
    logical = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.INTERNAL]
    assert len(logical) == 2
    one, two = logical
    assert two.parent is not None
    assert two.parent.span_id == one.context.span_id  # the resend continues the first's trace
    sent_trace = TRACEPARENT.match(second["traceparent"])
    assert sent_trace
    assert sent_trace.group(1) == f"{two.context.trace_id:032x}" == f"{one.context.trace_id:032x}"
    assert "ended span" not in caplog.text


def test_no_spans_are_kept_while_no_sdk_is_configured() -> None:
    """With the API alone every span would be a non-recording no-op, so none is kept."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    request = httpx.Request("GET", "https://api.example.com")
    sent, trace_ = start_request(request, TracingConfig())
    assert trace_.span is None
    assert start_attempt(sent, trace_, TracingConfig()) is None
    assert TRACEPARENT.match(sent.headers["traceparent"])


def test_start_request_is_idempotent() -> None:
    request = httpx.Request("GET", "https://api.example.com")
    sent, first = start_request(request, TracingConfig())
    assert start_request(sent, TracingConfig()) == (sent, first)  # prepared: as it is
    again, same = start_request(request, TracingConfig())  # sent again: same trace, new copy
    assert same is first
    assert again is not sent
    assert again.headers["X-Request-ID"] == sent.headers["X-Request-ID"]
    assert request_trace(request) is first
    assert request_trace(sent) is first
    assert "X-Request-ID" not in request.headers
    assert "traceparent" not in request.headers


def test_missing_extras_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import buttress.observability as observability

    monkeypatch.setattr(observability, "_load_otel", lambda: None)  # not installed
    with pytest.raises(buttress.ConfigurationError, match=r"buttress\[tracing\]"):
        buttress.Client(tracing=TracingConfig(spans=True))

    def no_ulid() -> None:
        raise buttress.ConfigurationError("pip install 'buttress[ulid]'")

    monkeypatch.setattr(observability, "_ulid_class", no_ulid)
    with pytest.raises(buttress.ConfigurationError, match=r"buttress\[ulid\]"):
        LoggingTransport(
            httpx.MockTransport(lambda r: httpx.Response(200)),
            tracing=TracingConfig(request_id="ulid"),
        )


def test_without_opentelemetry_a_new_trace_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    import buttress.observability as observability

    monkeypatch.setattr(observability, "_otel", lambda: None)
    request = httpx.Request("GET", "https://api.example.com")
    sent, trace_ = start_request(request, TracingConfig())
    assert trace_.span is None
    assert TRACEPARENT.match(sent.headers["traceparent"])


class _Interrupted(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A network that is interrupted (not an ``Exception``: cancellation, Ctrl-C) mid-request."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt


async def test_an_interrupted_request_ends_its_spans_as_cancelled(
    provider: TracerProvider, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="buttress")
    config = TracingConfig(tracer_provider=provider)
    transport = LoggingTransport(AttemptTransport(_Interrupted(), tracing=config), tracing=config)
    with pytest.raises(KeyboardInterrupt):
        transport.handle_request(httpx.Request("GET", "https://api.example.com/x"))
    with pytest.raises(KeyboardInterrupt):
        await transport.handle_async_request(httpx.Request("GET", "https://api.example.com/x"))
    spans = exporter.get_finished_spans()
    assert [span.kind for span in spans] == [SpanKind.CLIENT, SpanKind.INTERNAL] * 2
    for span in spans:
        assert span.status.status_code == StatusCode.ERROR
        assert dict(span.attributes or {})["error.type"] == "_Cancelled"
    assert not [r for r in caplog.records if r.levelno >= 20]  # not a failure to report
