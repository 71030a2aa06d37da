"""buttress: REST API calls on httpx that survive the real world.

Examples:
    >>> import buttress
    >>> from buttress.testing import DemoServer
    >>> with DemoServer() as server, buttress.Client(base_url=server.url) as client:
    ...     client.get("/users/1").json()["name"]
    'Ada Lovelace'
"""

import logging as _stdlib_logging
from typing import TYPE_CHECKING

import httpx as _httpx

if TYPE_CHECKING:  # at run time, imported on first use (see the end of this module)
    from ._client import AsyncClient, BodyKwargs, Client, RequestKwargs
    from ._clock import Clock, SystemClock
    from ._config import APIVersion, TimeoutConfig
    from ._options import RequestOptions, options
    from ._redirects import RedirectConfig
    from ._response import ErrorParser, Response, default_error_parser
    from ._settings import ButtressSettings
    from .auth import APIKeyAuth, BearerAuth, RefreshingAuth, Token
    from .cache import Cache, CacheBackend, CacheConfig, CacheStats, DiskCache, MemoryCache
    from .graphql import GraphQLErrorDetail, RelayPagination
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
    from .policies.logging import JSONFormatter, LoggingConfig, RedactingFilter
    from .policies.ratelimit import EndpointLimit, RateLimitConfig, RateLimitStatus
    from .policies.retry import RetryBudgetConfig, RetryConfig
    from .streaming import EventStream, ServerSentEvent
    from .websocket import (
        AsyncWebSocket,
        MessageTooLargeError,
        WebSocket,
        WebSocketClosedError,
        WebSocketError,
        WebSocketUpgradeError,
    )

# Imported at once: cheap, and what code that catches buttress's errors needs.
from . import _lazy
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
    GraphQLError,
    HTTPError,
    IncompleteResponseError,
    InvalidJSONError,
    InvalidURLError,
    NotFoundError,
    PaginationError,
    PoolTimeoutError,
    RateLimitError,
    ReadTimeoutError,
    RedirectRefusedError,
    ResponseTooLargeError,
    SchemaValidationError,
    ServerError,
    TimeoutError,
    TooManyRedirectsError,
    ValidationError,
    WriteTimeoutError,
)
from ._version import __version__

# A library logs; the application decides where records go (no "last resort" output).
_stdlib_logging.getLogger("buttress").addHandler(_stdlib_logging.NullHandler())

Request = _httpx.Request
"""``httpx.Request``, re-exported for type hints in middleware and hooks."""

__all__ = [
    "APIKeyAuth",
    "APIVersion",
    "AsyncClient",
    "AsyncPaginator",
    "AsyncWebSocket",
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
    "GraphQLError",
    "GraphQLErrorDetail",
    "HTTPError",
    "IncompleteResponseError",
    "InvalidJSONError",
    "InvalidURLError",
    "JSONFormatter",
    "LinkHeaderPagination",
    "LoggingConfig",
    "LoggingMiddleware",
    "MemoryCache",
    "MessageTooLargeError",
    "MetricsCollector",
    "MetricsMiddleware",
    "Middleware",
    "NotFoundError",
    "OffsetLimitPagination",
    "PageNumberPagination",
    "PaginationConfig",
    "PaginationError",
    "PaginationStrategy",
    "Paginator",
    "PoolTimeoutError",
    "PrometheusCollector",
    "RateLimitConfig",
    "RateLimitError",
    "RateLimitInfo",
    "RateLimitStatus",
    "ReadTimeoutError",
    "RedactingFilter",
    "RedirectConfig",
    "RedirectRefusedError",
    "RefreshingAuth",
    "RelayPagination",
    "Request",
    "RequestKwargs",
    "RequestOptions",
    "Response",
    "ResponseTooLargeError",
    "RetryBudgetConfig",
    "RetryConfig",
    "RetryMiddleware",
    "SchemaValidationError",
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
    "WebSocket",
    "WebSocketClosedError",
    "WebSocketError",
    "WebSocketUpgradeError",
    "WriteTimeoutError",
    "__version__",
    "default_error_parser",
    "options",
]

# ``import buttress`` loads httpx, the exception tree and the version; every other export
# is imported from its module on first use (see ``buttress._lazy``).
if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error
    __getattr__, __dir__ = _lazy.lazy_exports(
        __name__,
        {
            "._client": ("AsyncClient", "BodyKwargs", "Client", "RequestKwargs"),
            "._clock": ("Clock", "SystemClock"),
            "._config": ("APIVersion", "TimeoutConfig"),
            ".policies.logging": ("JSONFormatter", "LoggingConfig", "RedactingFilter"),
            "._options": ("RequestOptions", "options"),
            "._redirects": ("RedirectConfig",),
            "._response": ("ErrorParser", "Response", "default_error_parser"),
            "._settings": ("ButtressSettings",),
            ".auth": ("APIKeyAuth", "BearerAuth", "RefreshingAuth", "Token"),
            ".cache": (
                "Cache",
                "CacheBackend",
                "CacheConfig",
                "CacheStats",
                "DiskCache",
                "MemoryCache",
            ),
            ".graphql": ("GraphQLErrorDetail", "RelayPagination"),
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
            ".policies.ratelimit": ("EndpointLimit", "RateLimitConfig", "RateLimitStatus"),
            ".policies.retry": ("RetryBudgetConfig", "RetryConfig"),
            ".streaming": ("EventStream", "ServerSentEvent"),
            ".websocket": (
                "AsyncWebSocket",
                "MessageTooLargeError",
                "WebSocket",
                "WebSocketClosedError",
                "WebSocketError",
                "WebSocketUpgradeError",
            ),
        },
        # an eager ``import buttress`` bound these as attributes; they still resolve
        submodules=(
            "auth",
            "cache",
            "graphql",
            "middleware",
            "observability",
            "openapi",
            "pagination",
            "policies",
            "streaming",
            "transports",
            "websocket",
        ),
    )
