"""Middleware: logging, timing and a retry counter around every request.

``LoggingMiddleware(level="DEBUG")`` logs at DEBUG, so this script shows DEBUG logs.
Runs as-is against the bundled demo API: ``python examples/custom_middleware.py``.
"""

from __future__ import annotations

import logging
import sys
import time

import httpx

from buttress import Client, LoggingMiddleware, Middleware
from buttress.middleware import CallNext
from buttress.testing import DemoServer


class TimingMiddleware(Middleware):
    """Add request timing to response headers."""

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        start = time.perf_counter()
        response = await call_next(request)
        duration = time.perf_counter() - start
        response.headers["X-Request-Duration"] = f"{duration:.3f}"
        return response


class RetryCountMiddleware(Middleware):
    """Track retry attempts."""

    async def __call__(self, request: httpx.Request, call_next: CallNext) -> httpx.Response:
        request.extensions["retry_count"] = 0
        return await call_next(request)


def main(base_url: str) -> None:
    client = Client(
        base_url=base_url,
        middleware=[LoggingMiddleware(level="DEBUG"), TimingMiddleware(), RetryCountMiddleware()],
    )

    # Middleware executes in order: Logging -> Timing -> RetryCount -> [actual request]
    # Response flows back: [response] -> RetryCount -> Timing -> Logging
    response = client.get("/users")
    print(f"Request took: {response.headers['X-Request-Duration']}s")
    print(f"retry_count seen by the transport: {response.request.extensions['retry_count']}")
    client.close()


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stdout, level=logging.DEBUG, format="%(levelname)-7s %(name)s: %(message)s"
    )
    for noisy in ("httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with DemoServer() as server:
        main(server.url)
