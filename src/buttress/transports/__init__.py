"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from .ratelimit import RateLimitBackend, RateLimiter, RateLimitStatus, RateLimitTransport
from .stack import stack

__all__ = ["RateLimitBackend", "RateLimitStatus", "RateLimitTransport", "RateLimiter", "stack"]
