"""Event hooks for observability: a correlation ID and structured request logs.

The log records carry structured ``extra`` fields; :class:`buttress.JSONFormatter`
prints them, one JSON object per line.
Runs as-is against the bundled demo API: ``python examples/event_hooks.py``.
"""

from __future__ import annotations

import logging
import sys
import uuid

import httpx

from buttress import Client, JSONFormatter
from buttress.testing import DemoServer

logger = logging.getLogger(__name__)


def add_correlation_id(request: httpx.Request) -> None:
    """Add correlation ID to all requests."""
    if "X-Correlation-ID" not in request.headers:
        request.headers["X-Correlation-ID"] = str(uuid.uuid4())


def log_request(request: httpx.Request) -> None:
    """Log outgoing requests."""
    logger.info(
        "HTTP Request",
        extra={
            "method": request.method,
            "url": str(request.url),
            "correlation_id": request.headers.get("X-Correlation-ID"),
        },
    )


def log_response(response: httpx.Response) -> None:
    """Log incoming responses."""
    logger.info(
        "HTTP Response",
        extra={
            "status_code": response.status_code,
            "url": str(response.url),
            "duration_ms": round(response.elapsed.total_seconds() * 1000, 1),
            "correlation_id": response.request.headers.get("X-Correlation-ID"),
        },
    )


def main(base_url: str) -> None:
    client = Client(
        base_url=base_url,
        event_hooks={
            "request": [add_correlation_id, log_request],
            "response": [log_response],
        },
    )
    with client:
        echoed = client.get("/echo").json()["headers"]
        print(f"the server saw X-Correlation-ID: {echoed['x-correlation-id']}")
        client.get("/users/1", headers={"X-Correlation-ID": "caller-chosen-id"})


if __name__ == "__main__":
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with DemoServer() as server:
        main(server.url)
