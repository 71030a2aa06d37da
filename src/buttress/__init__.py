"""buttress: REST API calls on httpx that survive the real world.

Examples:
    >>> import buttress
    >>> from buttress.testing import DemoServer
    >>> with DemoServer() as server, buttress.Client(base_url=server.url) as client:
    ...     client.get("/users/1").json()["name"]
    'Ada Lovelace'
"""

import logging as _stdlib_logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import httpx as _httpx

from . import _exceptions, _lazy

# Every name ``import buttress`` offers, by the module that provides it: ``__all__``,
# ``dir(buttress)`` and the imports on first use are made from this one table (a test
# checks that the imports for type checkers below list the same names).
_EXPORTS: dict[str, Sequence[str]] = {
    "._client": ("AsyncClient", "BodyKwargs", "Client", "RequestKwargs"),
    "._clock": ("Clock", "SystemClock"),
    "._config": ("APIVersion", "TimeoutConfig"),
    "._exceptions": _exceptions.__all__,  # the exception tree, all of it
    "._options": ("RequestOptions", "options"),
    "._redirects": ("RedirectConfig",),
    "._response": ("ErrorParser", "Response", "default_error_parser"),
    "._settings": ("ButtressSettings",),
    "._version": ("__version__",),
    ".auth": ("APIKeyAuth", "BearerAuth", "RefreshingAuth", "Token"),
    ".graphql": ("GraphQLErrorDetail", "RelayPagination"),
    ".cache": (
        "Cache",
        "CacheBackend",
        "CacheConfig",
        "CacheStats",
        "DiskCache",
        "MemcachedCache",
        "MemoryCache",
        "RedisCache",
    ),
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
    ".policies.logging": ("JSONFormatter", "LoggingConfig", "RedactingFilter"),
    ".policies.ratelimit": ("EndpointLimit", "RateLimitConfig", "RateLimitStatus"),
    ".policies.retry": ("RetryBudgetConfig", "RetryConfig"),
    ".streaming": ("EventStream", "ServerSentEvent"),
    ".stores.redis": ("RedisStore",),
    ".websocket": ("AsyncWebSocket", "WebSocket"),
}

if TYPE_CHECKING:  # the table above, as imports; ``X as X`` marks a re-export
    from ._client import AsyncClient as AsyncClient
    from ._client import BodyKwargs as BodyKwargs
    from ._client import Client as Client
    from ._client import RequestKwargs as RequestKwargs
    from ._clock import Clock as Clock
    from ._clock import SystemClock as SystemClock
    from ._config import APIVersion as APIVersion
    from ._config import TimeoutConfig as TimeoutConfig
    from ._exceptions import AuthenticationError as AuthenticationError
    from ._exceptions import CircuitBreakerError as CircuitBreakerError
    from ._exceptions import CircuitBreakerOpenError as CircuitBreakerOpenError
    from ._exceptions import ClientError as ClientError
    from ._exceptions import ClientResponseError as ClientResponseError
    from ._exceptions import ConfigurationError as ConfigurationError
    from ._exceptions import ConnectionError as ConnectionError
    from ._exceptions import ConnectTimeoutError as ConnectTimeoutError
    from ._exceptions import DecodingError as DecodingError
    from ._exceptions import ForbiddenError as ForbiddenError
    from ._exceptions import GraphQLError as GraphQLError
    from ._exceptions import HTTPError as HTTPError
    from ._exceptions import IncompleteResponseError as IncompleteResponseError
    from ._exceptions import InvalidJSONError as InvalidJSONError
    from ._exceptions import InvalidURLError as InvalidURLError
    from ._exceptions import MessageTooLargeError as MessageTooLargeError
    from ._exceptions import NotFoundError as NotFoundError
    from ._exceptions import PaginationError as PaginationError
    from ._exceptions import PoolTimeoutError as PoolTimeoutError
    from ._exceptions import RateLimitError as RateLimitError
    from ._exceptions import ReadTimeoutError as ReadTimeoutError
    from ._exceptions import RedirectRefusedError as RedirectRefusedError
    from ._exceptions import ResponseTooLargeError as ResponseTooLargeError
    from ._exceptions import SchemaValidationError as SchemaValidationError
    from ._exceptions import ServerError as ServerError
    from ._exceptions import StoreError as StoreError
    from ._exceptions import TimeoutError as TimeoutError
    from ._exceptions import TooManyRedirectsError as TooManyRedirectsError
    from ._exceptions import ValidationError as ValidationError
    from ._exceptions import WebSocketClosedError as WebSocketClosedError
    from ._exceptions import WebSocketError as WebSocketError
    from ._exceptions import WebSocketUpgradeError as WebSocketUpgradeError
    from ._exceptions import WriteTimeoutError as WriteTimeoutError
    from ._options import RequestOptions as RequestOptions
    from ._options import options as options
    from ._redirects import RedirectConfig as RedirectConfig
    from ._response import ErrorParser as ErrorParser
    from ._response import Response as Response
    from ._response import default_error_parser as default_error_parser
    from ._settings import ButtressSettings as ButtressSettings
    from ._version import __version__ as __version__
    from .auth import APIKeyAuth as APIKeyAuth
    from .auth import BearerAuth as BearerAuth
    from .auth import RefreshingAuth as RefreshingAuth
    from .auth import Token as Token
    from .cache import Cache as Cache
    from .cache import CacheBackend as CacheBackend
    from .cache import CacheConfig as CacheConfig
    from .cache import CacheStats as CacheStats
    from .cache import DiskCache as DiskCache
    from .cache import MemcachedCache as MemcachedCache
    from .cache import MemoryCache as MemoryCache
    from .cache import RedisCache as RedisCache
    from .graphql import GraphQLErrorDetail as GraphQLErrorDetail
    from .graphql import RelayPagination as RelayPagination
    from .middleware import AuthMiddleware as AuthMiddleware
    from .middleware import LoggingMiddleware as LoggingMiddleware
    from .middleware import MetricsMiddleware as MetricsMiddleware
    from .middleware import Middleware as Middleware
    from .middleware import RetryMiddleware as RetryMiddleware
    from .middleware import TimeoutMiddleware as TimeoutMiddleware
    from .observability import MetricsCollector as MetricsCollector
    from .observability import PrometheusCollector as PrometheusCollector
    from .observability import TracingConfig as TracingConfig
    from .pagination import AsyncPaginator as AsyncPaginator
    from .pagination import CursorPagination as CursorPagination
    from .pagination import LinkHeaderPagination as LinkHeaderPagination
    from .pagination import OffsetLimitPagination as OffsetLimitPagination
    from .pagination import PageNumberPagination as PageNumberPagination
    from .pagination import PaginationConfig as PaginationConfig
    from .pagination import PaginationStrategy as PaginationStrategy
    from .pagination import Paginator as Paginator
    from .policies.breaker import CircuitBreaker as CircuitBreaker
    from .policies.breaker import CircuitBreakerConfig as CircuitBreakerConfig
    from .policies.breaker import CircuitMetrics as CircuitMetrics
    from .policies.headers import RateLimitInfo as RateLimitInfo
    from .policies.logging import JSONFormatter as JSONFormatter
    from .policies.logging import LoggingConfig as LoggingConfig
    from .policies.logging import RedactingFilter as RedactingFilter
    from .policies.ratelimit import EndpointLimit as EndpointLimit
    from .policies.ratelimit import RateLimitConfig as RateLimitConfig
    from .policies.ratelimit import RateLimitStatus as RateLimitStatus
    from .policies.retry import RetryBudgetConfig as RetryBudgetConfig
    from .policies.retry import RetryConfig as RetryConfig
    from .stores.redis import RedisStore as RedisStore
    from .streaming import EventStream as EventStream
    from .streaming import ServerSentEvent as ServerSentEvent
    from .websocket import AsyncWebSocket as AsyncWebSocket
    from .websocket import WebSocket as WebSocket
else:
    # Imported at once: the exception tree (cheap, and what code that catches buttress's
    # errors needs) and the version; every other module on first use of one of its names.
    __getattr__, __dir__ = _lazy.lazy_exports(
        __name__,
        _EXPORTS,
        eager=("._exceptions", "._version"),
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
            "stores",
            "transports",
            "websocket",
        ),
    )
    __all__ = _lazy.names(_EXPORTS, "Request")

# A library logs; the application decides where records go (no "last resort" output).
_stdlib_logging.getLogger("buttress").addHandler(_stdlib_logging.NullHandler())

Request = _httpx.Request
"""``httpx.Request``, re-exported for type hints in middleware and hooks."""
