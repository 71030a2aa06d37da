"""httpx event hooks on both clients, including SPEC 18.7's observability hooks as written."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from buttress.testing import DemoServer
from tests.conftest import Either

pytestmark = pytest.mark.anyio

logger = logging.getLogger(__name__)


# -- SPEC 18.7, as written -------------------------------------------------------------------


def add_correlation_id(request):  # type: ignore[no-untyped-def]
    """Add correlation ID to all requests."""
    if "X-Correlation-ID" not in request.headers:
        request.headers["X-Correlation-ID"] = str(uuid.uuid4())


def log_request(request):  # type: ignore[no-untyped-def]
    """Log outgoing requests."""
    logger.info(
        "HTTP Request",
        extra={
            "method": request.method,
            "url": str(request.url),
            "correlation_id": request.headers.get("X-Correlation-ID"),
        },
    )


def log_response(response):  # type: ignore[no-untyped-def]
    """Log incoming responses."""
    logger.info(
        "HTTP Response",
        extra={
            "status_code": response.status_code,
            "url": str(response.url),
            "duration_ms": response.elapsed.total_seconds() * 1000,
            "correlation_id": response.request.headers.get("X-Correlation-ID"),
        },
    )


async def test_spec_18_7_event_hooks(
    make_client: Callable[..., Either], demo: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=__name__)
    client = make_client(
        base_url=demo.url,
        event_hooks={
            "request": [add_correlation_id, log_request],
            "response": [log_response],
        },
    )
    response = await client.get("/echo")
    sent = response.json()["headers"]["x-correlation-id"]
    assert uuid.UUID(sent).version == 4
    request_record, response_record = (r for r in caplog.records if r.name == __name__)
    assert request_record.getMessage() == "HTTP Request"
    assert request_record.correlation_id == sent  # type: ignore[attr-defined]
    assert request_record.method == "GET"  # type: ignore[attr-defined]
    assert response_record.getMessage() == "HTTP Response"
    assert response_record.correlation_id == sent  # type: ignore[attr-defined]
    assert response_record.status_code == 200  # type: ignore[attr-defined]
    assert response_record.duration_ms >= 0  # type: ignore[attr-defined]


async def test_caller_correlation_id_is_kept(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    client = make_client(base_url=demo.url, event_hooks={"request": [add_correlation_id]})
    response = await client.get("/echo", headers={"X-Correlation-ID": "abc"})
    assert response.json()["headers"]["x-correlation-id"] == "abc"


async def test_async_client_accepts_plain_and_coroutine_hooks(demo: DemoServer) -> None:
    import buttress

    seen: list[str] = []

    def plain(request: httpx.Request) -> None:
        seen.append("plain")

    async def coroutine(response: httpx.Response) -> None:
        seen.append(f"coroutine {response.status_code}")

    async with buttress.AsyncClient(
        base_url=demo.url, event_hooks={"request": [plain], "response": [coroutine]}
    ) as client:
        await client.get("/users/1")
    assert seen == ["plain", "coroutine 200"]


async def test_hooks_see_the_request_id_of_the_logging_layer(
    make_client: Callable[..., Either], demo: DemoServer
) -> None:
    """Response hooks run after the stack: the response carries the id the layer sent.

    The caller's request is left as it was built: the id went on the request as sent.
    """
    ids: list[Any] = []

    def hook(response: httpx.Response) -> None:
        ids.append(response.extensions.get("buttress.request_id"))
        ids.append(response.request.headers.get("X-Request-ID"))

    client = make_client(base_url=demo.url, event_hooks={"response": [hook]})
    response = await client.get("/echo")
    assert ids == [response.json()["headers"]["x-request-id"], None]
