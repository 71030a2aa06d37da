"""buttress: REST API calls on httpx that survive the real world.

Examples:
    >>> import buttress
    >>> from buttress.testing import DemoServer
    >>> with DemoServer() as server, buttress.Client(base_url=server.url) as client:
    ...     client.get("/users/1").json()["name"]
    'Ada Lovelace'
"""

import httpx as _httpx

from ._client import AsyncClient, BodyKwargs, Client, RequestKwargs
from ._clock import Clock, SystemClock
from ._config import APIVersion, EndpointLimit, RateLimitConfig, TimeoutConfig
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
from ._logging import JSONFormatter, LoggingConfig
from ._options import RequestOptions, options
from ._redirects import RedirectConfig
from ._response import ErrorParser, Response, default_error_parser
from ._settings import ButtressSettings
from ._version import __version__
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
