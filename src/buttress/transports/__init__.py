"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from .cache import CacheResult, CacheTransport
from .stack import stack

__all__ = ["CacheResult", "CacheTransport", "stack"]
