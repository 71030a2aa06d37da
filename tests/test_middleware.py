"""The built-in middleware: logging, metrics, auth and timeouts, on both clients."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress import (
    AuthMiddleware,
    LoggingMiddleware,
    MetricsMiddleware,
    PrometheusCollector,
    TimeoutMiddleware,
)
from buttress._options import RequestOptions
from buttress.testing import DemoServer, FakeClock
from buttress.transports import MiddlewareTransport
from buttress.transports.middleware import CallNext
from tests.conftest import Either

pytestmark = pytest.mark.anyio


async def test_logging_middleware_logs_at_its_level_with_redaction(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="buttress.middleware")
    client = make_client(
        base_url=demo.url,
        middleware=[LoggingMiddleware(level="DEBUG", redact_headers=["X-Tenant"])],
        headers={"X-Tenant": "tenant-secret", "Authorization": "Bearer bearer-secret"},
    )
    response = await client.get("/users/1")
    ours = [r for r in caplog.records if r.name == "buttress.middleware"]
    [record] = ours
    assert record.levelno == logging.DEBUG
    assert record.headers["x-tenant"] == "[REDACTED]"  # type: ignore[attr-defined]
    assert record.headers["authorization"] == "[REDACTED]"  # type: ignore[attr-defined]
    assert record.request_id == response.extensions["buttress.request_id"]  # type: ignore[attr-defined]
    assert record.status_code == 200  # type: ignore[attr-defined]
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert "tenant-secret" not in text
    assert "bearer-secret" not in text


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
async def test_logging_middleware_logs_failures_at_its_level(
    make_client: Callable[..., Either], caplog: pytest.LogCaptureFixture, level: str
) -> None:
    """The caller gets the exception and decides how bad it is: never ERROR."""
    caplog.set_level(logging.INFO, logger="buttress.middleware")
    client = make_client(base_url="http://127.0.0.1:1", middleware=[LoggingMiddleware(level)])
    with pytest.raises(buttress.ConnectionError):
        await client.get("/users")
    [record] = [r for r in caplog.records if r.name == "buttress.middleware"]
    assert record.levelname == level
    assert record.getMessage().startswith("GET http://127.0.0.1:1/users failed after ")
    assert record.error.startswith("ConnectError")  # type: ignore[attr-defined]


def sample(collector: PrometheusCollector, name: str, **labels: str | None) -> float | None:
    """A sample's value; requests to the demo API are labelled host 127.0.0.1, method GET."""
    wanted = {"host": "127.0.0.1", "method": "GET", **labels}
    return collector.registry.get_sample_value(
        name, {k: v for k, v in wanted.items() if v is not None}
    )


def test_logging_middleware_refuses_unknown_levels() -> None:
    with pytest.raises(buttress.ConfigurationError):
        LoggingMiddleware(level="LOUD")


async def test_metrics_middleware_reports_duration_status_and_attempts(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    collector = PrometheusCollector()
    client = make_client(base_url=demo.url, middleware=[MetricsMiddleware(collector)])
    await client.get("/users/1")
    with pytest.raises(buttress.NotFoundError):
        await client.get("/users/999")
    for status_class in ("2xx", "4xx"):
        assert sample(collector, "buttress_requests_total", status_class=status_class) == 1
    assert sample(collector, "buttress_attempts_total", status_class="2xx") == 1
    assert sample(collector, "buttress_attempts_total", status_class="4xx") == 1

    down = make_client(base_url="http://127.0.0.1:1", middleware=[MetricsMiddleware(collector)])
    with pytest.raises(buttress.ConnectionError):
        await down.get("/users")
    assert sample(collector, "buttress_requests_total", status_class="error") == 1


async def test_metrics_middleware_reports_the_rate_limiters_waits(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    collector = PrometheusCollector()
    client = make_client(
        base_url=demo.url,
        middleware=[MetricsMiddleware(collector)],
        rate_limit=buttress.RateLimitConfig(max_requests=2, time_window=1.0, burst_size=1),
    )
    for user in (1, 2, 3):  # one after another: the second and third wait 0.5 s each
        await client.get(f"/users/{user}")
    assert sample(collector, "buttress_rate_limit_wait_seconds_sum", method=None) == 1.0
    assert sample(collector, "buttress_rate_limit_wait_seconds_count", method=None) == 2


def test_metrics_middleware_measures_with_the_clock_and_reports_cache_hits() -> None:
    clock = FakeClock()
    collector = PrometheusCollector()

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(0.25)
        return httpx.Response(200, extensions={"hishel_from_cache": True})

    transport = MiddlewareTransport(
        httpx.MockTransport(handler), [MetricsMiddleware(collector, clock=clock)]
    )
    with httpx.Client(transport=transport) as client:
        client.get("https://api.example.com/x")
    labels = {"host": "api.example.com", "method": "GET"}
    assert (
        collector.registry.get_sample_value("buttress_request_duration_seconds_sum", labels) == 0.25
    )
    hits = {"host": "api.example.com", "result": "hit"}
    assert collector.registry.get_sample_value("buttress_cache_requests_total", hits) == 1


def test_prometheus_collector_renders_every_metric() -> None:
    collector = PrometheusCollector()
    collector.request_finished(
        method="GET", host="api", status=200, duration=0.5, attempts=2, error=None
    )
    collector.cache_result(host="api", hit=False)
    collector.breaker_state_changed(host="api", old="closed", new="open")
    collector.rate_limit_waited(host="api", seconds=1.5)
    text = collector.render()
    for line in (
        'buttress_requests_total{host="api",method="GET",status_class="2xx"} 1.0',
        'buttress_request_duration_seconds_sum{host="api",method="GET"} 0.5',
        'buttress_cache_requests_total{host="api",result="miss"} 1.0',
        'buttress_circuit_breaker_transitions_total{from_state="closed",host="api",'
        'to_state="open"} 1.0',
        'buttress_circuit_breaker_state{host="api",state="open"} 1.0',
        'buttress_rate_limit_wait_seconds_sum{host="api"} 1.5',
    ):
        assert line in text.splitlines()
    assert isinstance(collector, buttress.MetricsCollector)


async def test_auth_middleware_adapts_auth_values(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, middleware=[AuthMiddleware(("bearer", "tok-1"))])
    headers = (await client.get("/echo")).json()["headers"]
    assert headers["authorization"] == "Bearer tok-1"

    keyed = make_client(
        base_url=demo.url, middleware=[AuthMiddleware(buttress.APIKeyAuth("k-1", param="key"))]
    )
    assert (await keyed.get("/echo")).json()["query"] == {"key": "k-1"}


async def test_auth_middleware_answers_challenges(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    """A multi-step httpx.Auth: the first answer is a 401, the middleware sends again."""

    class Challenge(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            response = yield request
            if response.status_code == 404:  # stands for a challenge
                request.url = request.url.copy_with(path="/users/1")
                yield request

    client = make_client(base_url=demo.url, middleware=[AuthMiddleware(Challenge())])
    assert (await client.get("/users/999")).json()["id"] == 1


def test_auth_middleware_refuses_nothing_and_body_readers() -> None:
    class NeedsBody(httpx.Auth):
        requires_response_body = True

    with pytest.raises(buttress.ConfigurationError):
        AuthMiddleware(None)
    with pytest.raises(buttress.ConfigurationError, match="auth="):
        AuthMiddleware(NeedsBody())


async def test_timeout_middleware_sets_options_and_only_tightens(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    seen: list[Any] = []

    async def spy(request: httpx.Request, call_next: CallNext) -> httpx.Response:
        seen.append((request.extensions["timeout"], RequestOptions.of(request).total_timeout))
        return await call_next(request)

    client = make_client(
        base_url=demo.url, timeout=30, middleware=[TimeoutMiddleware(total=5, timeout=2), spy]
    )
    await client.get("/users/1")
    await client.get("/users/1", timeout=1)
    assert seen[0] == ({"connect": 2, "read": 2, "write": 2, "pool": 2}, 5.0)
    assert seen[1] == ({"connect": 1, "read": 1, "write": 1, "pool": 1}, 5.0)


async def test_timeout_middleware_times_out_a_slow_answer(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(
        base_url=demo.url, middleware=[TimeoutMiddleware(total=0.2)], clock=buttress.SystemClock()
    )
    with pytest.raises(buttress.TimeoutError, match=r"total timeout of 0\.2s ran out"):
        await client.get("/slow", params={"delay": 3})


def test_timeout_middleware_refuses_nonsense() -> None:
    with pytest.raises(buttress.ConfigurationError):
        TimeoutMiddleware(total=0)


async def test_metrics_count_cache_hits_from_the_cache_layer(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    seen: list[bool] = []

    class Collector(buttress.PrometheusCollector):
        def cache_result(self, *, host: str, hit: bool) -> None:
            seen.append(hit)

    client = make_client(
        base_url=demo.url,
        cache=buttress.CacheConfig(),
        middleware=[buttress.MetricsMiddleware(collector=Collector())],
    )
    params = {"key": f"metrics-{id(seen)}"}
    await client.get("/cacheable", params=params)
    await client.get("/cacheable", params=params)
    assert seen == [False, True]
