"""The clients under test, each reduced to "open, GET the URL and read the body, close".

``full_stack()`` is the one place that says what "buttress with its full default
stack" means; every buttress case is built from it. The clients compared against
(aiohttp, httpx-aiohttp, requests) are imported by their cases only, so that
:mod:`benchmarks.minimal` runs where nothing but buttress is installed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

import buttress

__all__ = [
    "ASYNC_CASES",
    "SYNC_CASES",
    "AsyncCase",
    "SyncCase",
    "check_full_stack",
    "full_stack",
    "quiet_logging",
]

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


def full_stack() -> dict[str, Any]:
    """Keyword arguments for the buttress "full default stack".

    Every layer is on: retry and circuit breaker with their defaults, a rate
    limiter far too generous to bind, the cache enabled but never hit (the
    server answers ``no-store``), and logging and tracing with their defaults
    (request ids, ``traceparent``, one INFO record per request, which
    :func:`quiet_logging` sends to a handler that writes nothing).
    :func:`check_full_stack` proves it on a real request.
    """
    return {
        "timeout": TIMEOUT,
        "retry": buttress.RetryConfig(),
        "circuit_breaker": buttress.CircuitBreakerConfig(),
        "rate_limit": buttress.RateLimitConfig(max_requests=GENEROUS_RATE, time_window=1.0),
        "cache": buttress.CacheConfig(enabled=True),
        "logging": buttress.LoggingConfig(),
        "tracing": buttress.TracingConfig(),
    }


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


def _layers(transport: Any) -> list[str]:
    names = []
    while transport is not None:
        names.append(type(transport).__name__)
        transport = getattr(transport, "_inner", None)
    return names


_EXPECTED = (
    "LoggingTransport",
    "CacheTransport",
    "RetryTransport",
    "CircuitBreakerTransport",
    "RateLimitTransport",
    "AttemptTransport",
    "BodyGuardTransport",
)


def check_full_stack(url: str) -> list[str]:
    """Send one request through :func:`full_stack` and describe what each layer did.

    Raises ``RuntimeError`` when a layer is missing, the cache hit or stored,
    the limiter is close to binding, or no INFO record or request id was made.
    """
    counter = _Counter()
    log = logging.getLogger("buttress")
    level = log.level
    log.addHandler(counter)
    log.setLevel(logging.INFO)  # a library leaves levels to the application; this one asks
    try:
        with buttress.Client(**full_stack()) as client:
            layers = _layers(client._transport)
            response = client.get(url)
            budget = client.get_rate_limit_status(response.url.netloc.decode())
    finally:
        log.removeHandler(counter)
        log.setLevel(level)
    cache = response.extensions["buttress.cache"]
    problems = [f"no {name}" for name in _EXPECTED if name not in layers]
    if cache.from_cache or cache.stored:
        problems.append(f"the cache did not miss: {cache}")
    if budget.remaining is None or budget.remaining < GENEROUS_RATE // 2:
        problems.append(f"the rate limiter may bind: {budget}")
    if not counter.records:
        problems.append("no INFO record was made")
    # The id goes out on the copy the layers send (the caller's request stays as built).
    if not response.extensions.get("buttress.request_id"):
        problems.append("no request id was sent")
    if problems:
        raise RuntimeError(f"full_stack() is not the full stack: {'; '.join(problems)}")
    return [
        f"retry (max {full_stack()['retry'].max_attempts} attempts)",
        "circuit breaker",
        f"rate limit {GENEROUS_RATE:.0e}/s (never binds)",
        "cache (enabled, always missing: no-store)",
        f"logging at INFO ({counter.records} record per request, no output)",
        "request id + traceparent",
        "body guard",
        f"layers: {' > '.join(layers)}",
    ]


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
    from httpx_aiohttp import AiohttpTransport

    client = httpx.AsyncClient(timeout=TIMEOUT, transport=AiohttpTransport())
    return (lambda: client.get(url)), client.aclose


def _buttress_async(url: str, backend: buttress._network.backends.Backend = "httpx") -> Any:
    client = buttress.AsyncClient(backend=backend, **full_stack())
    return (lambda: client.get(url)), client.aclose


def _aiohttp(url: str) -> Any:
    import aiohttp

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
    client = buttress.Client(**full_stack())
    return (lambda: client.get(url)), client.close


def _requests(url: str) -> Any:
    import requests

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
