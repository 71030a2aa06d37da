"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from typing import TYPE_CHECKING

from .. import _lazy

# ``stack`` is eager: it shares its name with its module, which an import of
# ``buttress.transports.stack`` would otherwise bind here. It imports layers as it uses them.
from .stack import stack as stack

# Every name this package offers but ``stack``, by the module that provides it: ``__all__``,
# ``dir()`` and the imports on first use are made from this one table (a test checks that
# the imports for type checkers below list the same names).
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".breaker": ("CircuitBreakerTransport",),
    ".cache": ("CacheResult", "CacheTransport"),
    ".gate": ("PoolGateTransport",),
    ".guard": ("BodyGuardTransport",),
    ".logging": ("AttemptTransport", "LoggingTransport"),
    ".middleware": ("MiddlewareTransport",),
    ".ratelimit": ("RateLimitBackend", "RateLimiter", "RateLimitStatus", "RateLimitTransport"),
    ".retry": ("RetryTransport",),
}

if TYPE_CHECKING:  # the table above, as imports; ``X as X`` marks a re-export
    from .breaker import CircuitBreakerTransport as CircuitBreakerTransport
    from .cache import CacheResult as CacheResult
    from .cache import CacheTransport as CacheTransport
    from .gate import PoolGateTransport as PoolGateTransport
    from .guard import BodyGuardTransport as BodyGuardTransport
    from .logging import AttemptTransport as AttemptTransport
    from .logging import LoggingTransport as LoggingTransport
    from .middleware import MiddlewareTransport as MiddlewareTransport
    from .ratelimit import RateLimitBackend as RateLimitBackend
    from .ratelimit import RateLimiter as RateLimiter
    from .ratelimit import RateLimitStatus as RateLimitStatus
    from .ratelimit import RateLimitTransport as RateLimitTransport
    from .retry import RetryTransport as RetryTransport
else:  # each layer's module is imported on first use (see ``buttress._lazy``)
    __getattr__, __dir__ = _lazy.lazy_exports(__name__, _EXPORTS)
    __all__ = _lazy.names(_EXPORTS, "stack")
    _lazy.adopt(__name__, ["stack"])
