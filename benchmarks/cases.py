"""The clients under test, each reduced to "open, GET the URL and read the body, close".

``full_stack()`` is the one place that says what "buttress with its full default
stack" means; every buttress case is built from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import requests
from httpx_aiohttp import AiohttpTransport

import buttress

__all__ = ["ASYNC_CASES", "SYNC_CASES", "AsyncCase", "SyncCase", "full_stack", "quiet_logging"]

TIMEOUT = 120.0
"""Generous timeouts everywhere: at 1000 concurrent requests on 100 connections a slow
client queues for a long time, and the benchmark measures throughput, not pool timeouts."""

GENEROUS_RATE = 1_000_000_000


def quiet_logging() -> None:
    """Logging at INFO with no handler output: records are made, nothing is written."""
    log = logging.getLogger("buttress")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.handlers[:] = [logging.NullHandler()]


def full_stack() -> tuple[dict[str, Any], list[str]]:
    """Keyword arguments for the buttress "full default stack", and the layers switched on.

    Each layer is enabled when the client has its parameter: retry and circuit
    breaker with their defaults, a rate limiter far too generous to bind, the
    cache enabled but never hit (the server answers ``no-store``), logging at INFO
    with no handler output (:func:`quiet_logging`).
    """
    kwargs: dict[str, Any] = {
        "timeout": TIMEOUT,
        "retry": buttress.RetryConfig(),
        "circuit_breaker": buttress.CircuitBreakerConfig(),
        "rate_limit": buttress.RateLimitConfig(max_requests=GENEROUS_RATE, time_window=1.0),
        "cache": buttress.CacheConfig(enabled=True),
    }
    layers = ["retry", "circuit breaker", "rate limit", "cache (always missing)"]
    layers.append("logging at INFO, no output")
    return kwargs, layers


# -- async ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncCase:
    """``open(url)`` returns ``(get, close)``; ``get()`` fetches and reads one response."""

    name: str
    bottom: str  # which bare-httpx case has the same bottom transport
    open: Callable[[str], tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]]


def _httpx_async(url: str) -> Any:
    client = httpx.AsyncClient(timeout=TIMEOUT)
    return (lambda: client.get(url)), client.aclose


def _httpx_aiohttp_async(url: str) -> Any:
    client = httpx.AsyncClient(timeout=TIMEOUT, transport=AiohttpTransport())
    return (lambda: client.get(url)), client.aclose


def _buttress_async(url: str, backend: buttress._backends.Backend = "httpx") -> Any:
    kwargs, _ = full_stack()
    client = buttress.AsyncClient(backend=backend, **kwargs)
    return (lambda: client.get(url)), client.aclose


def _aiohttp(url: str) -> Any:
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))

    async def get() -> bytes:
        async with session.get(url) as response:
            return await response.read()

    return get, session.close


ASYNC_CASES = [
    AsyncCase("httpx.AsyncClient", "httpx.AsyncClient", _httpx_async),
    AsyncCase("buttress.AsyncClient", "httpx.AsyncClient", _buttress_async),
    AsyncCase("httpx.AsyncClient + AiohttpTransport", "", _httpx_aiohttp_async),
    AsyncCase(
        "buttress.AsyncClient(backend='aiohttp')",
        "httpx.AsyncClient + AiohttpTransport",
        lambda url: _buttress_async(url, "aiohttp"),
    ),
    AsyncCase("aiohttp.ClientSession", "", _aiohttp),
]


# -- sync -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncCase:
    """``open(url)`` returns ``(get, close)``; ``get()`` is called from many threads."""

    name: str
    bottom: str
    open: Callable[[str], tuple[Callable[[], Any], Callable[[], Any]]]


def _httpx_sync(url: str) -> Any:
    client = httpx.Client(timeout=TIMEOUT)
    return (lambda: client.get(url)), client.close


def _buttress_sync(url: str) -> Any:
    kwargs, _ = full_stack()
    client = buttress.Client(**kwargs)
    return (lambda: client.get(url)), client.close


def _requests(url: str) -> Any:
    local = threading.local()  # a Session is not documented as thread-safe: one per thread
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def get() -> bytes:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            with lock:
                sessions.append(session)
        return session.get(url, timeout=TIMEOUT).content

    def close() -> None:
        for session in sessions:
            session.close()

    return get, close


SYNC_CASES = [
    SyncCase("httpx.Client", "httpx.Client", _httpx_sync),
    SyncCase("buttress.Client", "httpx.Client", _buttress_sync),
    SyncCase("requests.Session", "", _requests),
]
