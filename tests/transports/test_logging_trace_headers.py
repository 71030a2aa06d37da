"""Request ids and trace context: per request as sent, per hop, per attempt, per origin.

httpx builds a redirect hop with the previous request's ``extensions`` dict and
copies its headers; nothing the logging layer adds may leak through either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import count
from typing import Any

import httpx
import pytest

import buttress
from buttress import LoggingConfig, RetryConfig, TracingConfig
from buttress.testing import DemoServer, FakeClock
from buttress.transports import AttemptTransport, LoggingTransport, RetryTransport
from tests.transports.conftest import Plain

pytestmark = pytest.mark.anyio

_keys = count()


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The network: notes the headers of every request that reaches it."""

    def __init__(self) -> None:
        self.sent: list[httpx.Headers] = []
        self._sync, self._async = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers.copy())
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers.copy())
        return await self._async.handle_async_request(request)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()

    def traceparents(self) -> list[tuple[str, str]]:
        """(trace id, span id) of each request sent."""
        parts = [headers["traceparent"].split("-") for headers in self.sent]
        return [(trace_id, span_id) for _, trace_id, span_id, _ in parts]


def observed(tracing: TracingConfig | None = None, retry: bool = False) -> Callable[[Any], Any]:
    """The logging layer around (optionally) a retry layer around the attempt layer."""

    def build(network: Any) -> Any:
        inner: Any = AttemptTransport(network, LoggingConfig(), tracing=tracing)
        if retry:
            config = RetryConfig(backoff_factor=0.001, jitter="none", budget=None)
            inner = RetryTransport(inner, config, clock=FakeClock())
        return LoggingTransport(inner, LoggingConfig(), tracing=tracing)

    return build


async def send(client: Plain, request: httpx.Request) -> httpx.Response:
    if isinstance(client.client, httpx.AsyncClient):
        return await client.client.send(request, follow_redirects=True)
    return client.client.send(request, follow_redirects=True)


async def test_a_redirect_hop_is_not_a_retry(
    plain: Callable[..., Plain], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress")
    network = Recorder()
    client = plain(observed(retry=True), network=network)
    request = client.client.build_request("GET", f"{demo.url}/redirect?to=/echo")
    response = await send(client, request)
    assert [r.status_code for r in response.history] == [302]
    assert response.extensions["buttress.attempts"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finished = [r for r in caplog.records if r.name == "buttress.request" and "->" in r.msg]
    ids = [r.request_id for r in finished]  # type: ignore[attr-defined]
    assert len(set(ids)) == 2  # one record, and one id, per hop
    assert ids[1] == response.extensions["buttress.request_id"]
    assert response.json()["headers"]["x-request-id"] == ids[1]


async def test_attempts_after_a_redirect_count_from_one(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(observed(retry=True), network=Recorder())
    flaky = f"/flaky?key=trace-{next(_keys)}%26failures=1"
    request = client.client.build_request("GET", f"{demo.url}/redirect?to={flaky}")
    response = await send(client, request)
    assert response.json() == {"ok": True, "attempts": 2}
    assert response.extensions["buttress.attempts"] == 2  # the flaky hop's, not 3


async def test_the_callers_request_is_left_as_it_was(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(observed())
    request = client.client.build_request("GET", f"{demo.url}/echo")
    before = dict(request.headers)
    response = await send(client, request)
    echoed = response.json()["headers"]
    assert "x-request-id" in echoed
    assert "traceparent" in echoed
    assert dict(request.headers) == before  # ... on the request as sent, not the caller's
    assert response.request is request


async def test_each_hop_and_attempt_has_its_own_span_under_one_trace(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    network = Recorder()
    client = plain(observed(retry=True), network=network)
    flaky = f"/flaky?key=trace-{next(_keys)}%26failures=1"
    await send(client, client.client.build_request("GET", f"{demo.url}/redirect?to={flaky}"))
    traces = network.traceparents()
    assert len(traces) == 3  # the redirect, then two attempts at /flaky
    assert len({trace_id for trace_id, _ in traces}) == 1
    assert len({span_id for _, span_id in traces}) == 3
    request_ids = [headers["x-request-id"] for headers in network.sent]
    assert request_ids[1] == request_ids[2] != request_ids[0]  # a retry keeps the hop's id


def cross_origin(demo: DemoServer) -> str:
    port = httpx.URL(demo.url).port
    return f"{demo.url}/redirect?to=http://localhost:{port}/echo"


async def test_a_cross_origin_hop_gets_no_trace_headers_by_default(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    network = Recorder()
    client = plain(observed(), network=network)
    response = await send(client, client.client.build_request("GET", cross_origin(demo)))
    assert response.url.host == "localhost"
    echoed = response.json()["headers"]
    assert "x-request-id" not in echoed
    assert "traceparent" not in echoed
    assert "traceparent" in network.sent[0]  # the origin the caller addressed got them
    assert response.extensions["buttress.request_id"]  # logged all the same


async def test_hosts_in_propagate_to_get_them_on_redirect(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    network = Recorder()
    client = plain(observed(TracingConfig(propagate_to=("local*",))), network=network)
    response = await send(client, client.client.build_request("GET", cross_origin(demo)))
    echoed = response.json()["headers"]
    assert echoed["x-request-id"] == response.extensions["buttress.request_id"]
    [first, hop] = network.traceparents()
    assert first[0] == hop[0]
    assert first[1] != hop[1]


async def test_the_callers_own_headers_are_kept(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(observed(retry=True))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"X-Request-ID": "mine", "traceparent": parent}
    request = client.client.build_request("GET", f"{demo.url}/echo", headers=headers)
    echoed = (await send(client, request)).json()["headers"]
    assert (echoed["x-request-id"], echoed["traceparent"]) == ("mine", parent)


async def test_the_facade_follows_the_same_rules(demo: DemoServer) -> None:
    with buttress.Client(base_url=demo.url, follow_redirects=True) as client:
        response = client.get(f"/redirect?to=http://localhost:{httpx.URL(demo.url).port}/echo")
    assert response.attempts == 1
    assert "x-request-id" not in response.json()["headers"]
    assert "X-Request-ID" not in response.request.headers


async def test_a_header_the_caller_set_is_kept_whatever_the_case_of_its_name(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(observed(TracingConfig(request_id_header="Correlation-ID"), retry=True))
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {"correlation-id": "mine", "TraceParent": parent}
    request = client.client.build_request("GET", f"{demo.url}/echo", headers=headers)
    echoed = (await send(client, request)).json()["headers"]
    assert (echoed["correlation-id"], echoed["traceparent"]) == ("mine", parent)
    assert "x-request-id" not in echoed


async def test_tracing_without_request_ids_or_propagation_adds_no_header(
    plain: Callable[..., Plain], demo: DemoServer
) -> None:
    client = plain(observed(TracingConfig(request_id=None, propagate=False), retry=True))
    request = client.client.build_request("GET", f"{demo.url}/echo")
    response = await send(client, request)
    echoed = response.json()["headers"]
    assert not {"x-request-id", "traceparent", "tracestate"} & set(echoed)
    assert response.extensions["buttress.request_id"] is None
