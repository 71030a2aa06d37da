"""Run one scenario on one kind of client, bare or through the full stack, and record it all.

:func:`observe` returns everything a user of the client can see: the response
(status, headers, body or chunks, ``elapsed``, ``history``, httpx's extension
keys, the request it carries), the exception raised, event-hook and auth-flow
calls, the cookie jar and the lifecycle calls the network transport received.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import httpx

from buttress import (
    CacheConfig,
    CircuitBreakerConfig,
    LoggingConfig,
    RateLimitConfig,
    RetryConfig,
    TracingConfig,
)
from buttress.testing import FakeClock
from buttress.transports import stack

from .app import DIGEST_PASSWORD, DIGEST_USER, App, mock_handler, wsgi_app
from .scenarios import Scenario

DOCUMENTED_REQUEST_HEADERS = frozenset({"x-request-id", "traceparent", "tracestate"})
"""What the logging layer adds to a request as sent (docs/transports.md lists it)."""

NOT_COMPARED_RESPONSE_HEADERS = frozenset({"date"})  # the server's clock, not ours


async def passthrough(request: httpx.Request, call_next: Any) -> httpx.Response:
    return await call_next(request)  # type: ignore[no-any-return]


def full_stack(network: Any) -> Any:
    """Every layer on, with settings that let everything through."""
    return stack(
        network,
        middleware=[passthrough],
        logging=LoggingConfig(),
        tracing=TracingConfig(),
        retry=RetryConfig(budget=None),
        circuit_breaker=CircuitBreakerConfig(failure_threshold=1000),
        rate_limit=RateLimitConfig(max_requests=1_000_000, time_window=1.0),
        cache=CacheConfig(),
        guard=True,
        clock=FakeClock(),
    )


class Lifecycle(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Forwards to the network transport and notes every lifecycle call it gets."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)  # type: ignore[no-any-return]

    def __enter__(self) -> Lifecycle:
        self.calls.append("enter")
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.calls.append(f"exit {type(exc_info[1]).__name__}")
        self.inner.__exit__(*exc_info)

    async def __aenter__(self) -> Lifecycle:
        self.calls.append("aenter")
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.calls.append(f"aexit {type(exc_info[1]).__name__}")
        await self.inner.__aexit__(*exc_info)

    def close(self) -> None:
        self.calls.append("close")
        self.inner.close()

    async def aclose(self) -> None:
        self.calls.append("aclose")
        await self.inner.aclose()


class RecordingDigest(httpx.DigestAuth):
    """httpx's Digest auth, noting each step of its challenge round trip."""

    def __init__(self, calls: list[Any]) -> None:
        super().__init__(DIGEST_USER, DIGEST_PASSWORD)
        self.calls = calls

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = super().auth_flow(request)
        request = next(flow)
        while True:
            self.calls.append(("send", request.method, "authorization" in request.headers))
            response = yield request
            self.calls.append(("got", response.status_code))
            try:
                request = flow.send(response)
            except StopIteration:
                return


class RecordingAuth(httpx.Auth):
    """A custom auth flow that notes what it sends and receives."""

    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Signed"] = "yes"
        self.calls.append(("send", request.method, str(request.url)))
        response = yield request
        self.calls.append(("got", response.status_code, response.headers.get("x-echo")))


@dataclass
class Env:
    """Where the networks are: the app served on 127.0.0.1, a proxy, a closed port."""

    server_url: str
    other_url: str  # the same server under another origin (localhost)
    refused_url: str
    proxy_url: str | None = None

    def network(self, scenario: Scenario, is_async: bool) -> tuple[Any, str, str]:
        """The network transport, the base URL and the other origin of ``scenario``."""
        kind = scenario.network
        if kind == "mock":
            return httpx.MockTransport(mock_handler), "http://app.test", "http://other.test"
        if kind == "asgi":
            return httpx.ASGITransport(App()), "http://app.test", "http://other.test"
        if kind == "wsgi":
            return httpx.WSGITransport(wsgi_app), "http://app.test", "http://other.test"
        proxy = self.proxy_url if kind == "proxy" else None
        network: Any = (
            httpx.AsyncHTTPTransport(proxy=proxy) if is_async else httpx.HTTPTransport(proxy=proxy)
        )
        base = self.refused_url if kind == "refused" else self.server_url
        return network, base, self.other_url


def _masked(headers: httpx.Headers) -> list[tuple[str, str]]:
    """Header items, with Digest's per-request random parts hidden."""
    return [(k, "<auth>" if k == "authorization" else v) for k, v in headers.multi_items()]


def _elapsed(response: httpx.Response) -> str:
    try:
        response.elapsed  # noqa: B018 - the property raises until the body is closed
    except RuntimeError:
        return "unset"
    return "set"


def _content(response: httpx.Response) -> Any:
    """The body; an echo with the documented request additions taken out."""
    try:
        content = response.content
    except httpx.ResponseNotRead:
        return "<not read>"
    if response.headers.get("x-echo") != "1" or not content:  # a HEAD's echo has no body
        return content
    echo = json.loads(content)
    echo["headers"] = [h for h in echo["headers"] if h[0] not in DOCUMENTED_REQUEST_HEADERS]
    return echo


def describe(response: httpx.Response) -> dict[str, Any]:
    """What a user can see of a finished response."""
    echo = response.headers.get("x-echo") == "1"
    skip = NOT_COMPARED_RESPONSE_HEADERS | ({"content-length"} if echo else set())
    return {
        "status": (response.status_code, response.reason_phrase, response.http_version),
        "url": str(response.url),
        "headers": [(k, v) for k, v in response.headers.multi_items() if k not in skip],
        "content": _content(response),
        "elapsed": _elapsed(response),
        "closed": (response.is_closed, response.is_stream_consumed),
        "history": [(h.status_code, str(h.url), h.request.method) for h in response.history],
        "extensions": sorted(k for k in response.extensions if not k.startswith("buttress")),
        "request": (response.request.method, str(response.request.url)),
        "request_headers": _masked(response.request.headers),
        "request_extensions": sorted(
            k for k in response.request.extensions if not k.startswith("buttress")
        ),
    }


def _stream_start(response: httpx.Response, seen: dict[str, Any]) -> None:
    seen["elapsed_while_open"] = _elapsed(response)
    try:
        response.content  # noqa: B018
        seen["content_while_open"] = "readable"
    except httpx.ResponseNotRead:
        seen["content_while_open"] = "not read"


def _stream_end(scenario: Scenario, chunks: list[bytes], again: str, seen: dict[str, Any]) -> None:
    seen["chunks"] = chunks if scenario.in_process else b"".join(chunks)
    seen["iterate_again"] = again


async def observe(scenario: Scenario, is_async: bool, layered: bool, env: Env) -> dict[str, Any]:
    """Run ``scenario`` once and return what was observable."""
    seen: dict[str, Any] = {"hooks": [], "auth": []}
    inner, base, other = env.network(scenario, is_async)
    network = Lifecycle(inner)
    transport = full_stack(network) if layered else network

    def on_request(request: httpx.Request) -> None:
        seen["hooks"].append(
            ("request", request.method, str(request.url), _masked(request.headers))
        )

    def on_response(response: httpx.Response) -> None:
        seen["hooks"].append(("response", response.status_code, _masked(response.request.headers)))

    async def aon_request(request: httpx.Request) -> None:
        on_request(request)

    async def aon_response(response: httpx.Response) -> None:
        on_response(response)

    options: dict[str, Any] = {
        "event_hooks": {
            "request": [aon_request if is_async else on_request],
            "response": [aon_response if is_async else on_response],
        },
        "follow_redirects": scenario.follow_redirects,
        "cookies": scenario.cookies,
        "timeout": scenario.timeout,
    }
    if scenario.network in ("mounts",):
        options["mounts"] = {base: transport}
    else:
        options["transport"] = transport
    auth: Any = None
    if scenario.auth == "digest":
        auth = RecordingDigest(seen["auth"])
    elif scenario.auth == "recording":
        auth = RecordingAuth(seen["auth"])
    call: dict[str, Any] = scenario.body(is_async) if scenario.body else {}
    if auth is not None:
        call["auth"] = auth
    url = base + scenario.path.format(other=other)
    response: httpx.Response | None = None
    try:
        if is_async:
            response = await _send_async(scenario, url, call, options, seen)
        else:
            response = _send_sync(scenario, url, call, options, seen)
    except Exception as error:
        seen["error"] = error
    if response is not None:
        seen.update(describe(response))
    seen["lifecycle"] = network.calls
    return seen


def _send_sync(
    scenario: Scenario,
    url: str,
    call: dict[str, Any],
    options: dict[str, Any],
    seen: dict[str, Any],
) -> httpx.Response:
    with httpx.Client(**options) as client:
        try:
            if scenario.stream is None:
                return client.request(scenario.method, url, **call)
            with client.stream(scenario.method, url, **call) as response:
                _stream_start(response, seen)
                reader = response.iter_raw if scenario.stream == "raw" else response.iter_bytes
                chunks = list(reader())
                try:
                    list(response.iter_raw())
                    again = "allowed"
                except httpx.StreamConsumed:
                    again = "StreamConsumed"
                _stream_end(scenario, chunks, again, seen)
            return response
        finally:
            seen["cookies"] = sorted(
                (c.name, c.value, c.domain, c.path) for c in client.cookies.jar
            )


async def _send_async(
    scenario: Scenario,
    url: str,
    call: dict[str, Any],
    options: dict[str, Any],
    seen: dict[str, Any],
) -> httpx.Response:
    async with httpx.AsyncClient(**options) as client:
        try:
            if scenario.stream is None:
                return await client.request(scenario.method, url, **call)
            async with client.stream(scenario.method, url, **call) as response:
                _stream_start(response, seen)
                reader = response.aiter_raw if scenario.stream == "raw" else response.aiter_bytes
                chunks = [chunk async for chunk in reader()]
                try:
                    _ = [chunk async for chunk in response.aiter_raw()]
                    again = "allowed"
                except httpx.StreamConsumed:
                    again = "StreamConsumed"
                _stream_end(scenario, chunks, again, seen)
            return response
        finally:
            seen["cookies"] = sorted(
                (c.name, c.value, c.domain, c.path) for c in client.cookies.jar
            )


def assert_same(bare: dict[str, Any], layered: dict[str, Any]) -> None:
    """Identical observations; an error of ours may be a subclass of the one httpx raised."""
    expected, got = bare.pop("error", None), layered.pop("error", None)
    if expected is None:
        assert got is None, f"the stack raised {got!r}; bare httpx did not"
    else:
        assert isinstance(got, type(expected)), f"bare httpx raised {expected!r}, the stack {got!r}"
    differences = {
        key: {"bare": bare.get(key), "stack": layered.get(key)}
        for key in sorted(bare.keys() | layered.keys())
        if bare.get(key) != layered.get(key)
    }
    assert not differences, differences
