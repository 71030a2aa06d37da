"""Bare httpx and httpx over ``stack()`` with every layer on: what a user sees is the same.

Every row of the scenario table runs twice per client kind, once straight to
the network transport and once through the full stack (permissive settings, so
no feature triggers), and the two observations must be equal. The additions
the docs list (``X-Request-ID``, ``traceparent``) are taken out of what the
server echoes; nothing else is.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from .run import (
    Env,
    Lifecycle,
    assert_same,
    full_stack,
    observe,
)
from .scenarios import SCENARIOS, Scenario

pytestmark = pytest.mark.anyio

CASES = [
    pytest.param(scenario, kind, id=f"{scenario.name}-{kind}")
    for scenario in SCENARIOS
    for kind in scenario.clients
]


@pytest.mark.parametrize(("scenario", "kind"), CASES)
async def test_the_stack_is_transparent(
    scenario: Scenario, kind: str, env: Env, request: pytest.FixtureRequest
) -> None:
    if scenario.network == "proxy":
        env.proxy_url = request.getfixturevalue("http_proxy").url
    is_async = kind == "async"
    bare = await observe(scenario, is_async, layered=False, env=env)
    layered = await observe(scenario, is_async, layered=True, env=env)
    assert_same(bare, layered)


async def _interrupted_mid_body(is_async: bool, layered: bool, env: Env) -> dict[str, Any]:
    """Break off a streamed body after its first chunk, then send again on a one-connection pool."""
    limits = httpx.Limits(max_connections=1)
    inner: Any = (
        httpx.AsyncHTTPTransport(limits=limits) if is_async else httpx.HTTPTransport(limits=limits)
    )
    network = Lifecycle(inner)
    transport = full_stack(network) if layered else network
    seen: dict[str, Any] = {}
    url = f"{env.server_url}/chunks"
    timeout = httpx.Timeout(5.0, pool=2.0)  # a connection left checked out fails the next send
    if is_async:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            with anyio.CancelScope() as scope:
                async with client.stream("GET", url) as response:
                    async for _ in response.aiter_raw():
                        scope.cancel()
                        await anyio.lowlevel.checkpoint()
            seen["interrupted"] = scope.cancelled_caught
            seen["closed"] = response.is_closed
            seen["next"] = (await client.get(url)).content
    else:
        with httpx.Client(transport=transport, timeout=timeout) as client:
            try:
                with client.stream("GET", url) as response:
                    for _ in response.iter_raw():
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                seen["interrupted"] = True
            seen["closed"] = response.is_closed
            seen["next"] = client.get(url).content
    seen["lifecycle"] = network.calls
    return seen


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_interrupting_a_streamed_body_is_transparent(kind: str, env: Env) -> None:
    is_async = kind == "async"
    bare = await _interrupted_mid_body(is_async, layered=False, env=env)
    assert bare["interrupted"]
    assert bare["closed"]
    assert_same(bare, await _interrupted_mid_body(is_async, layered=True, env=env))
