"""PrometheusCollector: every metric, scraped from the registry after real requests."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import buttress
from buttress import (
    CacheConfig,
    CircuitBreakerConfig,
    MetricsMiddleware,
    PrometheusCollector,
    RateLimitConfig,
    RetryConfig,
)
from buttress.policies.retry import RetryBudgetConfig
from buttress.testing import DemoServer, FakeClock
from buttress.transports import MiddlewareTransport, RetryTransport
from tests.conftest import Either

pytestmark = pytest.mark.anyio
MakeClient = Callable[..., Either]
HOST = "127.0.0.1"


def scrape(collector: PrometheusCollector) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The text exposition, parsed by prometheus-client's own parser: (name, labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(collector.render()):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Recording(PrometheusCollector):
    """Also keeps each queue depth reported (a gauge shows only the last)."""

    def __init__(self) -> None:
        super().__init__()
        self.depths: list[int] = []

    def rate_limit_queue(self, *, host: str, depth: int) -> None:
        self.depths.append(depth)
        super().rate_limit_queue(host=host, depth=depth)


async def test_requests_attempts_retries_and_bytes(
    make_client: MakeClient, demo: DemoServer, mode: str
) -> None:
    collector = PrometheusCollector()
    client = make_client(
        base_url=demo.url,
        middleware=[MetricsMiddleware(collector)],
        retry=RetryConfig(max_attempts=3, budget=None),
    )
    for user in range(1, 21):  # twenty URLs, one series: labels name the host, not the URL
        await client.get(f"/users/{user}")
    with pytest.raises(buttress.NotFoundError):
        await client.get("/users/999")
    await client.get("/flaky", params={"key": f"prom-{mode}", "failures": 2})
    await client.post("/upload", content=b"x" * 1000)

    samples = scrape(collector)
    get = {"host": HOST, "method": "GET"}
    assert value(samples, "buttress_requests_total", **get, status_class="2xx") == 21
    assert value(samples, "buttress_requests_total", **get, status_class="4xx") == 1
    assert value(samples, "buttress_request_duration_seconds_count", **get) == 22
    assert value(samples, "buttress_attempts_total", **get, status_class="5xx") == 2
    assert value(samples, "buttress_attempts_total", **get, status_class="2xx") == 21
    assert value(samples, "buttress_attempt_duration_seconds_count", **get) == 24
    assert value(samples, "buttress_retries_total", host=HOST, reason="503") == 2
    assert value(samples, "buttress_request_body_bytes_total", host=HOST) == 1000
    assert value(samples, "buttress_response_body_bytes_total", host=HOST) > 0
    series = {labels for name, labels in samples if name == "buttress_requests_total"}
    assert len(series) == 3  # GET 2xx, GET 4xx, POST 2xx: no URL in any label


async def test_a_failed_request_counts_as_an_error(make_client: MakeClient) -> None:
    collector = PrometheusCollector()
    client = make_client(
        base_url="http://127.0.0.1:1", middleware=[MetricsMiddleware(collector)], retry=False
    )
    with pytest.raises(buttress.ConnectionError):
        await client.get("/users")
    samples = scrape(collector)
    labels = {"host": HOST, "method": "GET", "status_class": "error"}
    assert value(samples, "buttress_requests_total", **labels) == 1
    assert value(samples, "buttress_attempts_total", **labels) == 1


async def test_retry_budget_refusals(make_client: MakeClient, demo: DemoServer, mode: str) -> None:
    collector = PrometheusCollector()
    budget = RetryBudgetConfig(ratio=0.0, min_per_second=0.0)  # no retry is ever affordable
    client = make_client(
        base_url=demo.url,
        middleware=[MetricsMiddleware(collector)],
        retry=RetryConfig(max_attempts=3, budget=budget),
    )
    with pytest.raises(buttress.ServerError):
        await client.get("/flaky", params={"key": f"budget-{mode}", "failures": 5})
    samples = scrape(collector)
    assert value(samples, "buttress_retry_budget_refusals_total", host=HOST) == 1
    assert value(samples, "buttress_retries_total", host=HOST, reason="503") == 0


async def test_breaker_state_and_transitions(
    make_client: MakeClient, demo: DemoServer, mode: str
) -> None:
    collector = PrometheusCollector()
    breaker = CircuitBreakerConfig(
        failure_threshold=2, per_host=True, on_state_change=collector.breaker_state_changed
    )
    client = make_client(
        base_url=demo.url,
        middleware=[MetricsMiddleware(collector)],
        retry=False,
        circuit_breaker=breaker,
    )
    for _ in range(2):
        with pytest.raises(buttress.ServerError):
            await client.get("/status/503")
    with pytest.raises(buttress.CircuitBreakerOpenError):
        await client.get("/users/1")
    samples = scrape(collector)
    assert value(samples, "buttress_circuit_breaker_state", host=HOST, state="open") == 1
    assert value(samples, "buttress_circuit_breaker_state", host=HOST, state="closed") == 0
    transition = {"host": HOST, "from_state": "closed", "to_state": "open"}
    assert value(samples, "buttress_circuit_breaker_transitions_total", **transition) == 1


async def test_rate_limit_waits_and_queue_depth(make_client: MakeClient, demo: DemoServer) -> None:
    collector = Recording()
    client = make_client(
        base_url=demo.url,
        middleware=[MetricsMiddleware(collector)],
        rate_limit=RateLimitConfig(max_requests=2, time_window=1.0, burst_size=1),
    )
    for user in (1, 2, 3):  # one after another: the second and third wait 0.5 s each
        await client.get(f"/users/{user}")
    samples = scrape(collector)
    assert value(samples, "buttress_rate_limit_wait_seconds_count", host=HOST) == 2
    assert value(samples, "buttress_rate_limit_wait_seconds_sum", host=HOST) == 1.0
    assert collector.depths == [1, 0, 1, 0]  # each waiter queued alone, then left
    assert value(samples, "buttress_rate_limit_queue_depth", host=HOST) == 0


async def test_cache_hits_misses_revalidations_and_stale_serves(
    make_client: MakeClient, mode: str
) -> None:
    collector = PrometheusCollector()
    clock = FakeClock()
    params = {"key": f"prom-cache-{mode}", "max_age": 10}
    with DemoServer() as origin:
        client = make_client(
            base_url=origin.url,
            middleware=[MetricsMiddleware(collector)],
            cache=CacheConfig(stale_if_error=600),
            clock=clock,
            retry=False,
        )
        await client.get("/cacheable", params=params)  # miss
        await client.get("/cacheable", params=params)  # hit
        clock.advance(30)
        await client.get("/cacheable", params=params)  # revalidated with a 304
        clock.advance(30)
    response = await client.get("/cacheable", params=params)  # the origin is gone: stale
    assert response.json()["key"] == params["key"]
    samples = scrape(collector)
    for result, count in (("miss", 1), ("hit", 3), ("stale", 1), ("revalidated", 1)):
        assert value(samples, "buttress_cache_requests_total", host=HOST, result=result) == count


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_a_plain_httpx_client(kind: str, demo: DemoServer) -> None:
    """The collector and the layers need no buttress client: middleware over any transport."""
    collector = PrometheusCollector()
    middleware = [MetricsMiddleware(collector)]
    params: dict[str, str | int] = {"key": f"prom-plain-{kind}", "failures": 1}
    if kind == "sync":
        retry = RetryTransport(httpx.HTTPTransport(), RetryConfig(budget=None), clock=FakeClock())
        with httpx.Client(transport=MiddlewareTransport(retry, middleware)) as client:
            client.get(f"{demo.url}/flaky", params=params)
    else:
        network = httpx.AsyncHTTPTransport()
        aretry = RetryTransport(network, RetryConfig(budget=None), clock=FakeClock())
        async with httpx.AsyncClient(transport=MiddlewareTransport(aretry, middleware)) as ac:
            await ac.get(f"{demo.url}/flaky", params=params)
    samples = scrape(collector)
    assert value(samples, "buttress_retries_total", host=HOST, reason="503") == 1
    get = {"host": HOST, "method": "GET"}
    assert value(samples, "buttress_requests_total", **get, status_class="2xx") == 1
    assert value(samples, "buttress_attempts_total", **get, status_class="5xx") == 1


def test_registry_choice_and_duplicates() -> None:
    registry = CollectorRegistry()
    collector = PrometheusCollector(registry)
    assert collector.registry is registry
    with pytest.raises(buttress.ConfigurationError, match="its own registry"):
        PrometheusCollector(registry)
    assert PrometheusCollector().registry is not PrometheusCollector().registry


def test_unknown_methods_do_not_grow_the_label_set() -> None:
    collector = PrometheusCollector()
    for method in ("PURGE", "BREW", "GET"):
        collector.request_finished(
            method=method, host="api", status=200, duration=0.1, attempts=1, error=None
        )
    samples = scrape(collector)
    assert (
        value(samples, "buttress_requests_total", host="api", method="OTHER", status_class="2xx")
        == 2
    )
    assert isinstance(collector, buttress.MetricsCollector)
