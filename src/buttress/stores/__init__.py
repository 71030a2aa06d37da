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

from typing import TYPE_CHECKING

from .. import _lazy

# UNAVAILABLE is importable from here for the store's users inside the package and for
# custom stores; it is a value of StoreHealth's vocabulary, documented there.
from .health import UNAVAILABLE as UNAVAILABLE

# Every name this package offers, by the module that provides it. A client with no store
# imports ``health`` and ``ratelimit`` alone (for their markers); ``redis``, which loads
# anyio's thread pool, waits until a store is made.
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".breaker": ("SharedCircuit",),
    ".budget": ("RedisRetryBudget",),
    ".health": ("StoreHealth", "StoreStatus"),
    ".ratelimit": ("SharedLimits",),
    ".redis": ("RedisStore",),
}

if TYPE_CHECKING:  # the table above, as imports; ``X as X`` marks a re-export
    from .breaker import SharedCircuit as SharedCircuit
    from .budget import RedisRetryBudget as RedisRetryBudget
    from .health import StoreHealth as StoreHealth
    from .health import StoreStatus as StoreStatus
    from .ratelimit import SharedLimits as SharedLimits
    from .redis import RedisStore as RedisStore
else:  # each module is imported on first use (see ``buttress._lazy``)
    __getattr__, __dir__ = _lazy.lazy_exports(__name__, _EXPORTS)
    __all__ = _lazy.names(_EXPORTS)
