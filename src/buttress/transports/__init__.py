"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from typing import TYPE_CHECKING

from .. import _lazy

# ``stack`` is eager: it shares its name with its module, which an import of
# ``buttress.transports.stack`` would otherwise bind here. It imports layers as it uses them.
from .stack import stack

if TYPE_CHECKING:
    from .breaker import CircuitBreakerTransport
    from .cache import CacheResult, CacheTransport
    from .gate import PoolGateTransport
    from .guard import BodyGuardTransport
    from .logging import AttemptTransport, LoggingTransport
    from .middleware import MiddlewareTransport
    from .ratelimit import RateLimitBackend, RateLimiter, RateLimitStatus, RateLimitTransport
    from .retry import RetryTransport

__all__ = [
    "AttemptTransport",
    "BodyGuardTransport",
    "CacheResult",
    "CacheTransport",
    "CircuitBreakerTransport",
    "LoggingTransport",
    "MiddlewareTransport",
    "PoolGateTransport",
    "RateLimitBackend",
    "RateLimitStatus",
    "RateLimitTransport",
    "RateLimiter",
    "RetryTransport",
    "stack",
]

# Each layer's module is imported on first use (see ``buttress._lazy``).
if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error
    __getattr__, __dir__ = _lazy.lazy_exports(
        __name__,
        {
            ".breaker": ("CircuitBreakerTransport",),
            ".cache": ("CacheResult", "CacheTransport"),
            ".gate": ("PoolGateTransport",),
            ".guard": ("BodyGuardTransport",),
            ".logging": ("AttemptTransport", "LoggingTransport"),
            ".middleware": ("MiddlewareTransport",),
            ".ratelimit": (
                "RateLimitBackend",
                "RateLimiter",
                "RateLimitStatus",
                "RateLimitTransport",
            ),
            ".retry": ("RetryTransport",),
        },
    )
