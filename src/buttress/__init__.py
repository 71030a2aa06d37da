"""buttress: REST API calls on httpx that survive the real world.

Examples:
    >>> import buttress
    >>> from buttress.testing import DemoServer
    >>> with DemoServer() as server, buttress.Client(base_url=server.url) as client:
    ...     client.get("/users/1").json()["name"]
    'Ada Lovelace'
"""

import importlib
from typing import TYPE_CHECKING

import httpx as _httpx

from ._exceptions import (
    AuthenticationError,
    CircuitBreakerError,
    CircuitBreakerOpenError,
    ClientError,
    ClientResponseError,
    ConfigurationError,
    ConnectionError,
    ConnectTimeoutError,
    DecodingError,
    ForbiddenError,
    HTTPError,
    IncompleteResponseError,
    InvalidJSONError,
    NotFoundError,
    PoolTimeoutError,
    RateLimitError,
    ReadTimeoutError,
    RedirectRefusedError,
    ResponseTooLargeError,
    ServerError,
    TimeoutError,
    TooManyRedirectsError,
    ValidationError,
    WriteTimeoutError,
)
from ._version import __version__

if TYPE_CHECKING:
    from ._client import AsyncClient, BodyKwargs, Client, RequestKwargs
    from ._clock import Clock, SystemClock
    from ._config import APIVersion, EndpointLimit, RateLimitConfig, TimeoutConfig
    from ._logging import JSONFormatter, LoggingConfig
    from ._options import RequestOptions, options
    from ._redirects import RedirectConfig
    from ._response import ErrorParser, Response, default_error_parser
    from ._settings import ButtressSettings
    from .auth import APIKeyAuth, BearerAuth, RefreshingAuth, Token
    from .cache import Cache, CacheBackend, CacheConfig, CacheStats, DiskCache, MemoryCache
    from .middleware import (
        AuthMiddleware,
        LoggingMiddleware,
        MetricsMiddleware,
        Middleware,
        RetryMiddleware,
        TimeoutMiddleware,
    )
    from .observability import MetricsCollector, PrometheusCollector, TracingConfig
    from .pagination import (
        AsyncPaginator,
        CursorPagination,
        LinkHeaderPagination,
        OffsetLimitPagination,
        PageNumberPagination,
        PaginationConfig,
        PaginationStrategy,
        Paginator,
    )
    from .policies.breaker import CircuitBreaker, CircuitBreakerConfig, CircuitMetrics
    from .policies.headers import RateLimitInfo
    from .policies.retry import RetryBudgetConfig, RetryConfig
    from .streaming import EventStream, ServerSentEvent
    from .transports.ratelimit import RateLimitStatus

Request = _httpx.Request
"""``httpx.Request``, re-exported for type hints in middleware and hooks."""

__all__ = [
    "APIKeyAuth",
    "APIVersion",
    "AsyncClient",
    "AsyncPaginator",
    "AuthMiddleware",
    "AuthenticationError",
    "BearerAuth",
    "BodyKwargs",
    "ButtressSettings",
    "Cache",
    "CacheBackend",
    "CacheConfig",
    "CacheStats",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "CircuitMetrics",
    "Client",
    "ClientError",
    "ClientResponseError",
    "Clock",
    "ConfigurationError",
    "ConnectTimeoutError",
    "ConnectionError",
    "CursorPagination",
    "DecodingError",
    "DiskCache",
    "EndpointLimit",
    "ErrorParser",
    "EventStream",
    "ForbiddenError",
    "HTTPError",
    "IncompleteResponseError",
    "InvalidJSONError",
    "JSONFormatter",
    "LinkHeaderPagination",
    "LoggingConfig",
    "LoggingMiddleware",
    "MemoryCache",
    "MetricsCollector",
    "MetricsMiddleware",
    "Middleware",
    "NotFoundError",
    "OffsetLimitPagination",
    "PageNumberPagination",
    "PaginationConfig",
    "PaginationStrategy",
    "Paginator",
    "PoolTimeoutError",
    "PrometheusCollector",
    "RateLimitConfig",
    "RateLimitError",
    "RateLimitInfo",
    "RateLimitStatus",
    "ReadTimeoutError",
    "RedirectConfig",
    "RedirectRefusedError",
    "RefreshingAuth",
    "Request",
    "RequestKwargs",
    "RequestOptions",
    "Response",
    "ResponseTooLargeError",
    "RetryBudgetConfig",
    "RetryConfig",
    "RetryMiddleware",
    "ServerError",
    "ServerSentEvent",
    "SystemClock",
    "TimeoutConfig",
    "TimeoutError",
    "TimeoutMiddleware",
    "Token",
    "TooManyRedirectsError",
    "TracingConfig",
    "ValidationError",
    "WriteTimeoutError",
    "__version__",
    "default_error_parser",
    "options",
]

# ``import buttress`` loads httpx, the exception tree and the version; every other name
# is imported from its module on first use (PEP 562), so a program pays only for the
# parts it uses. Type checkers read the ``TYPE_CHECKING`` imports above instead.
_LAZY_MODULES: dict[str, tuple[str, ...]] = {
    "._client": ("AsyncClient", "BodyKwargs", "Client", "RequestKwargs"),
    "._clock": ("Clock", "SystemClock"),
    "._config": ("APIVersion", "EndpointLimit", "RateLimitConfig", "TimeoutConfig"),
    "._logging": ("JSONFormatter", "LoggingConfig"),
    "._options": ("RequestOptions", "options"),
    "._redirects": ("RedirectConfig",),
    "._response": ("ErrorParser", "Response", "default_error_parser"),
    "._settings": ("ButtressSettings",),
    ".auth": ("APIKeyAuth", "BearerAuth", "RefreshingAuth", "Token"),
    ".cache": ("Cache", "CacheBackend", "CacheConfig", "CacheStats", "DiskCache", "MemoryCache"),
    ".middleware": (
        "AuthMiddleware",
        "LoggingMiddleware",
        "MetricsMiddleware",
        "Middleware",
        "RetryMiddleware",
        "TimeoutMiddleware",
    ),
    ".observability": ("MetricsCollector", "PrometheusCollector", "TracingConfig"),
    ".pagination": (
        "AsyncPaginator",
        "CursorPagination",
        "LinkHeaderPagination",
        "OffsetLimitPagination",
        "PageNumberPagination",
        "PaginationConfig",
        "PaginationStrategy",
        "Paginator",
    ),
    ".policies.breaker": ("CircuitBreaker", "CircuitBreakerConfig", "CircuitMetrics"),
    ".policies.headers": ("RateLimitInfo",),
    ".policies.retry": ("RetryBudgetConfig", "RetryConfig"),
    ".streaming": ("EventStream", "ServerSentEvent"),
    ".transports.ratelimit": ("RateLimitStatus",),
}
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}
# Subpackages an eager ``import buttress`` used to bind as attributes; they still resolve.
_SUBMODULES = {
    "auth",
    "cache",
    "middleware",
    "observability",
    "pagination",
    "policies",
    "streaming",
    "transports",
}

if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error

    def __getattr__(name: str) -> object:
        if name in _SUBMODULES:
            return importlib.import_module(f".{name}", __name__)
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # later lookups find it directly
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
