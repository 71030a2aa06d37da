"""buttress: REST API calls on httpx that survive the real world.

Example:
    >>> import buttress
    >>> from buttress.testing import DemoServer
    >>> with DemoServer() as server, buttress.Client(base_url=server.url) as client:
    ...     client.get("/users/1").json()["name"]
    'Ada Lovelace'
"""

from ._client import AsyncClient, BodyKwargs, Client, RequestKwargs
from ._clock import Clock, SystemClock
from ._config import APIVersion, TimeoutConfig
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
    ResponseTooLargeError,
    ServerError,
    TimeoutError,
    TooManyRedirectsError,
    ValidationError,
    WriteTimeoutError,
)
from ._options import RequestOptions, options
from ._response import ErrorParser, Response, default_error_parser
from ._settings import ButtressSettings
from ._version import __version__
from .auth import APIKeyAuth, BearerAuth
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
from .streaming import EventStream, ServerSentEvent

Request = __import__("httpx").Request
"""``httpx.Request``, re-exported for type hints in middleware and hooks."""

__all__ = [
    "APIKeyAuth",
    "APIVersion",
    "AsyncClient",
    "AsyncPaginator",
    "AuthenticationError",
    "BearerAuth",
    "BodyKwargs",
    "ButtressSettings",
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "Client",
    "ClientError",
    "ClientResponseError",
    "Clock",
    "ConfigurationError",
    "ConnectTimeoutError",
    "ConnectionError",
    "CursorPagination",
    "DecodingError",
    "ErrorParser",
    "EventStream",
    "ForbiddenError",
    "HTTPError",
    "IncompleteResponseError",
    "InvalidJSONError",
    "LinkHeaderPagination",
    "NotFoundError",
    "OffsetLimitPagination",
    "PageNumberPagination",
    "PaginationConfig",
    "PaginationStrategy",
    "Paginator",
    "PoolTimeoutError",
    "RateLimitError",
    "ReadTimeoutError",
    "Request",
    "RequestKwargs",
    "RequestOptions",
    "Response",
    "ResponseTooLargeError",
    "ServerError",
    "ServerSentEvent",
    "SystemClock",
    "TimeoutConfig",
    "TimeoutError",
    "TooManyRedirectsError",
    "ValidationError",
    "WriteTimeoutError",
    "__version__",
    "default_error_parser",
    "options",
]
