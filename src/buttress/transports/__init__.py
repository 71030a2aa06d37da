"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from .breaker import CircuitBreakerTransport
from .ratelimit import RateLimitBackend, RateLimiter, RateLimitStatus, RateLimitTransport
from .retry import RetryTransport
from .stack import stack

__all__ = [
    "AttemptTransport",
    "BodyGuardTransport",
    "CacheResult",
    "CacheTransport",
    "CircuitBreakerTransport",
    "LoggingTransport",
    "MiddlewareTransport",
    "RateLimitBackend",
    "RateLimitStatus",
    "RateLimitTransport",
    "RateLimiter",
    "RetryTransport",
    "stack",
]
from .cache import CacheResult, CacheTransport
from .guard import BodyGuardTransport
from .logging import AttemptTransport, LoggingTransport
from .middleware import MiddlewareTransport
