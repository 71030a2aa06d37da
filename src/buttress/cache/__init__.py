"""Storage for the cache layer: backends, their interface, invalidation and statistics.

Examples:
    >>> from buttress.cache import CacheConfig, MemoryCache
    >>> CacheConfig(backend=MemoryCache(max_size=100)).enabled
    True
"""

from .. import _lazy
from .base import AsyncStorage, CacheBackend
from .cache import Cache
from .config import CacheConfig
from .disk import DiskCache
from .memcached import MemcachedCache
from .memory import MemoryCache
from .redis import RedisCache
from .stats import CacheStats, StatsRecorder

__all__ = [
    "AsyncStorage",
    "Cache",
    "CacheBackend",
    "CacheConfig",
    "CacheStats",
    "DiskCache",
    "MemcachedCache",
    "MemoryCache",
    "RedisCache",
    "StatsRecorder",
]

# Shown as this package's own: ``buttress.cache.X``, not the module that defines it.
_lazy.adopt(__name__, __all__)
