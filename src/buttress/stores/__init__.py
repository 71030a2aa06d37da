"""Shared stores: where many processes keep one rate limit, one breaker per host, one cache.

Without a store every process keeps its own state (the default, and what most
programs want). Give the same :class:`RedisStore` (same server, same
``namespace``) to every worker's configuration and they share it::

    store = buttress.RedisStore("redis://127.0.0.1:6379/0", namespace="billing")
    client = buttress.Client(
        rate_limit=buttress.RateLimitConfig(max_requests=200, store=store),
        circuit_breaker=buttress.CircuitBreakerConfig(per_host=True, store=store),
        cache=buttress.CacheConfig(backend=buttress.RedisCache(store)),
    )

A flow asks the store through the :class:`~buttress._flow.Call` effect, so the
synchronous client blocks on the store and the asynchronous one awaits it; when
the store is slow or gone, :class:`StoreHealth` decides whether to fall back to
per-process state (the default) or raise :class:`~buttress.StoreError`.
"""

from .. import _lazy
from .breaker import SharedCircuit
from .budget import RedisRetryBudget
from .health import UNAVAILABLE as UNAVAILABLE
from .health import StoreHealth, StoreStatus
from .ratelimit import SharedLimits
from .redis import RedisStore

# UNAVAILABLE is importable from here for the store's users inside the package and for
# custom stores; it is a value of StoreHealth's vocabulary, documented there.
__all__ = [
    "RedisRetryBudget",
    "RedisStore",
    "SharedCircuit",
    "SharedLimits",
    "StoreHealth",
    "StoreStatus",
]

# Shown as this package's own: ``buttress.stores.X``, not the module that defines it.
_lazy.adopt(__name__, __all__)
