"""The buttress layers as ordinary httpx transports.

Each works alone on a plain ``httpx.Client`` / ``httpx.AsyncClient`` and under
``mounts``; :func:`stack` assembles them in the documented order.
"""

from .logging import AttemptTransport, LoggingTransport
from .middleware import MiddlewareTransport
from .stack import stack

__all__ = ["AttemptTransport", "LoggingTransport", "MiddlewareTransport", "stack"]
