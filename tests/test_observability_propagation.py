"""Trace context goes out through OpenTelemetry's configured propagators (B3, baggage, your own).

Every test sends through a real client to the demo API's ``/echo`` (or records
what reached the network), with the global propagator swapped for the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from itertools import count
from typing import Any

import httpx
import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

import buttress.observability as observability
from buttress import RetryConfig, TracingConfig
from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

_keys = count()

CALLER = trace.SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "v1")]),
)
CALLER_TRACE_ID = trace.format_trace_id(CALLER.trace_id)
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


class HousePropagator(TextMapPropagator):
    """A house format: one ``x-house-trace: <trace id>:<span id>`` header."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            trace_id = trace.format_trace_id(span_context.trace_id)
            span_id = trace.format_span_id(span_context.span_id)
            setter.set(carrier, "x-house-trace", f"{trace_id}:{span_id}")

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        [value] = getter.get(carrier, "x-house-trace") or [""]
        trace_id, _, span_id = value.partition(":")
        found = trace.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True)
        return trace.set_span_in_context(trace.NonRecordingSpan(found), context)

    @property
    def fields(self) -> set[str]:
        return {"x-house-trace"}


@pytest.fixture
def propagator() -> Iterator[Callable[[TextMapPropagator], None]]:
    """Configure the global propagator for one test; the previous one comes back after."""
    before = propagate.get_global_textmap()
    yield propagate.set_global_textmap
    propagate.set_global_textmap(before)


def as_caller() -> Any:
    """Run as a handler would inside the caller's (remote) trace."""
    return trace.use_span(trace.NonRecordingSpan(CALLER))


async def echoed(client: Either, path: str = "/echo", **kwargs: Any) -> dict[str, str]:
    response = await client.get(path, **kwargs)
    headers: dict[str, str] = response.json()["headers"]
    return headers


async def test_a_custom_propagator_writes_the_context(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    house = HousePropagator()
    propagator(house)
    with as_caller():
        headers = await echoed(client)
    assert "traceparent" not in headers  # only what the application configured
    assert "tracestate" not in headers
    sent = trace.get_current_span(house.extract(headers)).get_span_context()
    assert trace.format_trace_id(sent.trace_id) == CALLER_TRACE_ID  # the caller's trace goes on
    assert sent.span_id != CALLER.span_id  # from a span of its own
    assert headers["x-request-id"]  # the request id is ours, not a propagator's


@pytest.mark.parametrize("b3", [B3MultiFormat(), B3SingleFormat()], ids=["multi", "single"])
async def test_b3_continues_the_callers_trace(
    client: Either, propagator: Callable[[TextMapPropagator], None], b3: TextMapPropagator
) -> None:
    propagator(b3)
    with as_caller():
        headers = await echoed(client)
    assert "traceparent" not in headers
    sent = trace.get_current_span(b3.extract(headers)).get_span_context()
    assert sent.is_valid
    assert trace.format_trace_id(sent.trace_id) == CALLER_TRACE_ID
    assert sent.span_id != CALLER.span_id
    assert sent.trace_flags.sampled


async def test_b3_starts_a_trace_when_there_is_none(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    propagator(B3MultiFormat())
    first, second = await echoed(client), await echoed(client)
    assert len(first["x-b3-traceid"]) == 32
    assert first["x-b3-traceid"] != second["x-b3-traceid"]  # each request its own trace
    assert first["x-b3-sampled"] == "1"


async def test_every_attempt_sends_its_own_span_id(
    make_client: Callable[..., Either],
    demo: DemoServer,
    propagator: Callable[[TextMapPropagator], None],
) -> None:
    propagator(B3MultiFormat())
    network = Recorder()
    retry = RetryConfig(backoff_factor=0.001, jitter="none")
    client = make_client(base_url=demo.url, transport=network, retry=retry)
    with as_caller():
        response = await client.get("/flaky", params={"key": f"b3-{next(_keys)}", "failures": 2})
    assert response.json()["attempts"] == 3
    assert {sent["x-b3-traceid"] for sent in network.sent} == {CALLER_TRACE_ID}
    assert len({sent["x-b3-spanid"] for sent in network.sent}) == 3


async def test_the_default_propagators_carry_baggage(client: Either) -> None:
    """OpenTelemetry's default: W3C trace context and baggage."""
    with as_caller():
        token = context.attach(baggage.set_baggage("tenant", "blue"))
        try:
            headers = await echoed(client)
        finally:
            context.detach(token)
    assert headers["baggage"] == "tenant=blue"
    assert headers["traceparent"].split("-")[1] == CALLER_TRACE_ID
    assert headers["tracestate"] == "vendor=v1"


async def test_the_default_propagators_without_baggage_send_the_w3c_context(
    client: Either,
) -> None:
    """Written by hand (the same headers as OpenTelemetry's own would be), and no baggage."""
    with as_caller():
        headers = await echoed(client)
    assert "baggage" not in headers
    assert TRACEPARENT.match(headers["traceparent"])
    assert headers["traceparent"].split("-")[1] == CALLER_TRACE_ID
    assert headers["tracestate"] == "vendor=v1"


class StampingTraceContext(TraceContextTextMapPropagator):
    """W3C trace context, and a header of its own: not to be taken for the default."""

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        super().inject(carrier, context, setter)
        setter.set(carrier, "x-stamped", "yes")


async def test_a_subclass_of_the_w3c_propagator_is_asked_not_imitated(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    propagator(CompositePropagator([StampingTraceContext(), W3CBaggagePropagator()]))
    with as_caller():
        headers = await echoed(client)
    assert headers["x-stamped"] == "yes"
    assert headers["traceparent"].split("-")[1] == CALLER_TRACE_ID


class ComparableHousePropagator(HousePropagator):
    """Equal to any other of its kind, so unhashable: buttress must not need its hash."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComparableHousePropagator)

    __hash__ = None  # type: ignore[assignment]


async def test_an_unhashable_propagator_writes_the_context(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    propagator(ComparableHousePropagator())
    with as_caller():
        headers = await echoed(client)
    assert headers["x-house-trace"].startswith(f"{CALLER_TRACE_ID}:")
    assert "traceparent" not in headers


async def test_propagators_that_write_nothing_send_nothing(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    propagator(CompositePropagator([]))  # what OTEL_PROPAGATORS=none configures
    with as_caller():
        headers = await echoed(client)
    assert not {"traceparent", "tracestate", "baggage"} & set(headers)
    assert headers["x-request-id"]


async def test_headers_the_caller_set_are_kept(
    client: Either, propagator: Callable[[TextMapPropagator], None]
) -> None:
    propagator(CompositePropagator([B3SingleFormat(), HousePropagator()]))
    with as_caller():
        headers = await echoed(client, headers={"x-house-trace": "mine"})
    assert headers["x-house-trace"] == "mine"
    assert headers["b3"].startswith(CALLER_TRACE_ID)


@pytest.mark.parametrize("listed", [False, True])
async def test_only_the_origin_and_listed_hosts_receive_the_context(
    make_client: Callable[..., Either],
    demo: DemoServer,
    propagator: Callable[[TextMapPropagator], None],
    listed: bool,
) -> None:
    propagator(CompositePropagator([B3MultiFormat(), HousePropagator()]))
    network = Recorder()
    tracing = TracingConfig(propagate_to=("local*",) if listed else ())
    client = make_client(
        base_url=demo.url, follow_redirects=True, tracing=tracing, transport=network
    )
    elsewhere = f"/redirect?to=http://localhost:{httpx.URL(demo.url).port}/echo"
    with as_caller():
        headers = await echoed(client, elsewhere)
    assert network.sent[0]["x-b3-traceid"] == CALLER_TRACE_ID  # the origin addressed
    assert ("x-b3-traceid" in headers) is listed
    assert ("x-house-trace" in headers) is listed
    assert ("x-request-id" in headers) is listed


async def test_without_opentelemetry_a_w3c_traceparent_is_written_by_hand(
    client: Either,
    monkeypatch: pytest.MonkeyPatch,
    propagator: Callable[[TextMapPropagator], None],
) -> None:
    propagator(B3MultiFormat())  # not used: OpenTelemetry is "not installed"
    monkeypatch.setattr(observability, "_otel", lambda: None)  # nor its propagators, then
    headers = await echoed(client)
    assert TRACEPARENT.match(headers["traceparent"])
    assert "x-b3-traceid" not in headers


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network transport, noting the headers of every request that reaches it."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []
        self._sync, self._async = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(dict(request.headers))
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(dict(request.headers))
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()
