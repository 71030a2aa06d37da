"""The order of the layers, built by one function for ``stack()`` and the clients alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import buttress
from buttress import CacheConfig, CircuitBreakerConfig, LoggingConfig, RateLimitConfig, RetryConfig
from buttress.testing import DemoServer, FakeClock
from buttress.transports.stack import Layers, build, stack
from tests.conftest import Either

pytestmark = pytest.mark.anyio


def _chain(transport: Any) -> list[str]:
    """The class names from the outermost layer down to the network transport."""
    names = []
    while transport is not None:
        names.append(type(transport).__name__)
        transport = getattr(transport, "_inner", None)
    return names


def test_stack_orders_every_layer_as_documented() -> None:
    network = httpx.MockTransport(lambda request: httpx.Response(204))
    full = stack(
        network,
        middleware=[lambda request, call_next: call_next(request)],
        logging=LoggingConfig(),
        retry=RetryConfig(),
        circuit_breaker=CircuitBreakerConfig(),
        rate_limit=RateLimitConfig(max_requests=10),
        cache=CacheConfig(),
        guard=True,
        pool_gate=4,
    )
    assert _chain(full) == [
        "MiddlewareTransport",
        "LoggingTransport",
        "CacheTransport",
        "RetryTransport",
        "CircuitBreakerTransport",
        "RateLimitTransport",
        "AttemptTransport",
        "BodyGuardTransport",
        "PoolGateTransport",
        "RateLimitAdmission",
        "MockTransport",
    ]


def test_a_layers_value_shares_its_breaker_between_the_stacks_it_builds() -> None:
    breaker = buttress.CircuitBreaker(CircuitBreakerConfig(failure_threshold=1))
    layers = Layers(circuit_breaker=breaker)
    first = build(httpx.MockTransport(lambda request: httpx.Response(503)), layers)
    second = build(httpx.MockTransport(lambda request: httpx.Response(204)), layers)
    with httpx.Client(transport=first) as client:
        assert client.get("https://api.test/").status_code == 503
    with httpx.Client(transport=second) as client, pytest.raises(buttress.CircuitBreakerOpenError):
        client.get("https://api.test/")  # the one circuit opened through the first stack


async def test_the_client_builds_its_stack_as_stack_does(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    options: dict[str, Any] = {
        "retry": RetryConfig(),
        "circuit_breaker": CircuitBreakerConfig(),
        "rate_limit": RateLimitConfig(max_requests=10),
        "cache": CacheConfig(),
        "middleware": [lambda request, call_next: call_next(request)],
    }
    client = make_client(base_url=demo.url, clock=FakeClock(), **options)
    built = client.client._transport
    network = httpx.MockTransport(lambda request: httpx.Response(204))
    alone = stack(network, logging=LoggingConfig(), guard=True, pool_gate=100, **options)
    assert _chain(built)[:-1] == _chain(alone)[:-1]  # the same layers, in the same order
    assert (await client.get("/users/1")).json()["name"] == "Ada Lovelace"
