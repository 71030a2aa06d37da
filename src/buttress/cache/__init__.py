"""Storage for the cache layer: backends, their interface, invalidation and statistics.

Examples:
    >>> from buttress.cache import CacheConfig, MemoryCache
    >>> CacheConfig(backend=MemoryCache(max_size=100)).enabled
    True
"""

from .base import AsyncStorage, CacheBackend
from .cache import Cache
from .config import CacheConfig
from .disk import DiskCache
from .memory import MemoryCache
from .stats import CacheStats, StatsRecorder

__all__ = [
    "AsyncStorage",
    "Cache",
    "CacheBackend",
    "CacheConfig",
    "CacheStats",
    "DiskCache",
    "MemoryCache",
    "StatsRecorder",
]
